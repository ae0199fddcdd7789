/**
 * `getNetwork()` / `networkInfo()`: this dashboard's contact data, read from the `SENSE_*`
 * network variables of the original Sense platform, with sensible defaults on a plain Jupyter
 * Server (loopback address for a loopback server, else this host's primary IPv4).
 */
import { displayableInDeno } from "../display/deno-display";
import { isIP } from "node:net";
import * as os from "node:os";
import { inspect } from "node:util";
import { ConfigError } from "../errors";
import { discover, getContext } from "../jupyter/context";
import { checkOptionKeys } from "../util/check-options";

/** Options of {@link getNetwork}. */
export interface NetworkOptions {
  /** Environment to read instead of `process.env` (tests). */
  env?: NodeJS.ProcessEnv;
  /** The server URL used for the `projectIp` default (default: the discovered server, if any). */
  baseUrl?: string;
  /** Network interfaces instead of `os.networkInterfaces()` (tests). */
  interfaces?: NodeJS.Dict<os.NetworkInterfaceInfo[]>;
  /** Host name instead of `os.hostname()` (tests). */
  hostname?: string;
}

/** The keys of {@link NetworkOptions}. */
const NETWORK_OPTION_KEYS = ["env", "baseUrl", "interfaces", "hostname"];

/** Plain-data form of {@link NetworkInfo}, as JSON shows it (with `sshPassword` masked). */
export interface NetworkFields {
  publicDns: string;
  /** Internal port → public port. Includes the SSH port pair when set. */
  publicPortMapping: Record<number, number>;
  sshPassword: string;
  /** The address other dashboards of the project (workers, the master) reach this one on. */
  projectIp: string;
  /** `SENSE_SSH_PORT`, when set. */
  sshPort?: number;
  /** `SENSE_PUBLIC_SSH_PORT`, when set. */
  publicSshPort?: number;
}

/** This dashboard's contact data. Printing or JSON-encoding it shows `sshPassword` as `***`. */
export class NetworkInfo implements NetworkFields {
  readonly publicDns: string;
  readonly publicPortMapping: Record<number, number>;
  readonly sshPassword: string;
  readonly projectIp: string;
  readonly sshPort?: number;
  readonly publicSshPort?: number;

  constructor(fields: NetworkFields) {
    this.publicDns = fields.publicDns;
    this.publicPortMapping = fields.publicPortMapping;
    this.sshPassword = fields.sshPassword;
    this.projectIp = fields.projectIp;
    if (fields.sshPort !== undefined) this.sshPort = fields.sshPort;
    if (fields.publicSshPort !== undefined) this.publicSshPort = fields.publicSshPort;
  }

  /** The masked form. */
  toJSON(): NetworkFields {
    return { ...this, publicPortMapping: { ...this.publicPortMapping }, sshPassword: this.sshPassword ? "***" : "" };
  }

  [inspect.custom](_depth: number, opts: object): string {
    return `NetworkInfo ${inspect(this.toJSON(), opts)}`;
  }
}

/**
 * Reads this dashboard's network information: `SENSE_PUBLIC_DNS`, every `SENSE_PORT{i}` →
 * `SENSE_PUBLIC_PORT{i}` pair, `SENSE_SSH_PORT` → `SENSE_PUBLIC_SSH_PORT`, `SENSE_SSH_PASSWORD`,
 * `SENSE_PROJECT_IP`. An empty variable counts as unset. Defaults: `projectIp` 127.0.0.1 when the
 * server is on loopback, else the first non-internal IPv4 address; `publicDns` the host name.
 *
 * @throws {ConfigError} `bad_config` naming the variable, for a port that is not an integer in
 *   1..65535, a port without its partner variable, or a `SENSE_PROJECT_IP` that is not an IP address.
 */
export function getNetwork(options: NetworkOptions = {}): NetworkInfo {
  checkOptionKeys(options, NETWORK_OPTION_KEYS, "getNetwork");
  const env = options.env ?? process.env;
  const get = (name: string): string | undefined => (env[name] === undefined || env[name] === "" ? undefined : env[name]);

  const mapping: Record<number, number> = {};
  const indices = new Set<string>();
  for (const key of Object.keys(env)) {
    const m = /^SENSE_(?:PUBLIC_)?PORT(\d+)$/.exec(key);
    if (m && get(key) !== undefined) indices.add(m[1]);
  }
  for (const i of [...indices].sort((a, b) => Number(a) - Number(b))) {
    const inner = port(`SENSE_PORT${i}`, get(`SENSE_PORT${i}`), `SENSE_PUBLIC_PORT${i}`);
    const outer = port(`SENSE_PUBLIC_PORT${i}`, get(`SENSE_PUBLIC_PORT${i}`), `SENSE_PORT${i}`);
    mapping[inner] = outer;
  }
  let sshPort: number | undefined;
  let publicSshPort: number | undefined;
  if (get("SENSE_SSH_PORT") !== undefined || get("SENSE_PUBLIC_SSH_PORT") !== undefined) {
    sshPort = port("SENSE_SSH_PORT", get("SENSE_SSH_PORT"), "SENSE_PUBLIC_SSH_PORT");
    publicSshPort = port("SENSE_PUBLIC_SSH_PORT", get("SENSE_PUBLIC_SSH_PORT"), "SENSE_SSH_PORT");
    mapping[sshPort] = publicSshPort;
  }

  let projectIp = get("SENSE_PROJECT_IP");
  if (projectIp !== undefined && isIP(projectIp) === 0) {
    throw new ConfigError("bad_config", `SENSE_PROJECT_IP must be an IP address, not ${JSON.stringify(projectIp)}.`, { variable: "SENSE_PROJECT_IP" });
  }
  projectIp ??= defaultProjectIp(options, env);

  return displayableInDeno(new NetworkInfo({
    publicDns: get("SENSE_PUBLIC_DNS") ?? options.hostname ?? os.hostname(),
    publicPortMapping: mapping,
    sshPassword: get("SENSE_SSH_PASSWORD") ?? "",
    projectIp,
    sshPort,
    publicSshPort,
  }));
}

/** The original Sense JavaScript name of {@link getNetwork}. */
export const networkInfo = getNetwork;

function port(name: string, value: string | undefined, partner: string): number {
  if (value === undefined) {
    throw new ConfigError("bad_config", `${name} is not set but ${partner} is: set both or neither.`, { variable: name });
  }
  const n = /^\d{1,5}$/.test(value) ? Number(value) : NaN;
  if (!Number.isInteger(n) || n < 1 || n > 65535) {
    throw new ConfigError("bad_config", `${name} must be a port number (an integer from 1 to 65535), not ${JSON.stringify(value)}.`, { variable: name });
  }
  return n;
}

function defaultProjectIp(options: NetworkOptions, env: NodeJS.ProcessEnv): string {
  let baseUrl = options.baseUrl;
  if (baseUrl === undefined) {
    try {
      baseUrl = (options.env ? discover({ env }) : getContext()).endpoint.baseUrl;
    } catch {
      // No server known: a worker-less process still gets its host's address.
    }
  }
  if (baseUrl !== undefined && isLoopback(baseUrl)) return "127.0.0.1";
  return primaryIpv4(options.interfaces ?? os.networkInterfaces()) ?? "127.0.0.1";
}

function isLoopback(url: string): boolean {
  let host: string;
  try {
    host = new URL(url).hostname.replace(/^\[|\]$/g, "");
  } catch {
    return false;
  }
  return host === "localhost" || host === "::1" || /^127\./.test(host);
}

/** The first non-internal IPv4, preferring real interfaces over container bridges (in the OS's order). */
function primaryIpv4(interfaces: NodeJS.Dict<os.NetworkInterfaceInfo[]>): string | undefined {
  const virtual = /^(docker|br-|veth|virbr|cni|flannel|cali|tun|tap)/;
  const names = Object.keys(interfaces);
  for (const name of [...names.filter((n) => !virtual.test(n)), ...names.filter((n) => virtual.test(n))]) {
    for (const a of interfaces[name] ?? []) {
      if (a.family === "IPv4" && !a.internal) return a.address;
    }
  }
  return undefined;
}
