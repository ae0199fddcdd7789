/**
 * The Enterprise Gateway kernel-launcher contract, as pure functions: parse the arguments EG puts
 * in a remote kernelspec's argv, pick ports inside `--port-range`, and encrypt the connection
 * information the way EG's `ResponseManager._decode_payload` (payload version 1) expects it.
 * Reference: EG `docs/source/developers/kernel-launcher.md` and
 * `etc/kernel-launchers/python/scripts/launch_ipykernel.py` (EG 3.3.0).
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import { isSenseError, UsageError } from "../../src/errors";

/** Payload version this launcher writes (EG 3.x understands 1). */
export const LAUNCHER_VERSION = 1;

/** The Sense kernels a launcher can start. */
export type LaunchableKernel = "sense-ts" | "sense-js";

/** What EG told the launcher, validated. */
export interface LauncherArgs {
  /** The kernel id EG knows this kernel by (a UUID). */
  kernelId: string;
  /** Where to send the encrypted connection info; absent means EG "pull" mode (nothing is sent). */
  responseAddress?: { host: string; port: number };
  /** EG's RSA public key: base64 DER (PEM body without header, footer and newlines). */
  publicKey: string;
  /** Inclusive port range for the 5 kernel ports and the communication port; 0..0 means any. */
  portRange: { lower: number; upper: number };
  /** Which Sense kernel to start. */
  kernelName: LaunchableKernel;
}

const USAGE =
  "launch --kernel-id ID --public-key KEY [--response-address HOST:PORT] [--port-range LOW..HIGH] [--kernel-name sense-ts|sense-js] [--spark-context-initialization-mode none]";

function bad(message: string): UsageError {
  return new UsageError(message, { code: "bad_option", usage: USAGE });
}

/**
 * Parses `--port-range LOW..HIGH`. EG leaves `{port_range}` unsubstituted when no range is
 * configured, and sends `0..0` for "any port"; both mean no range.
 * @throws UsageError (`bad_option`) for a malformed range, or one narrower than
 * `minSize` (EG's `EG_MIN_PORT_RANGE_SIZE`, default 1000), as EG's own launchers refuse it.
 */
export function parsePortRange(value: string | undefined, minSize = 1000): { lower: number; upper: number } {
  if (value === undefined || value === "" || value === "{port_range}") return { lower: 0, upper: 0 };
  const m = /^(\d+)\.\.(\d+)$/.exec(value);
  if (!m) throw bad(`--port-range must look like LOW..HIGH, not ${JSON.stringify(value)}`);
  const lower = Number(m[1]);
  const upper = Number(m[2]);
  if (upper > 65535 || lower > upper) throw bad(`--port-range ${value} is not a range of TCP ports`);
  if (upper - lower !== 0 && upper - lower < minSize) throw bad(`--port-range ${value} is narrower than ${minSize} ports (EG_MIN_PORT_RANGE_SIZE)`);
  return { lower, upper };
}

/**
 * Parses the launcher's argv (without `node` and the script). Accepts both EG spellings,
 * `--kernel-id` and the older `--RemoteProcessProxy.kernel-id`, and ignores a connection-file
 * positional (deprecated by EG). Spark modes other than `none` are refused: there is no Spark here.
 * @throws UsageError (`bad_option`) for a missing kernel id or public key, an unknown flag, a
 * malformed response address or port range, or an unknown kernel name.
 */
export function parseLauncherArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): LauncherArgs {
  const values = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith("--")) continue; // EG's deprecated connection_file positional
    const eq = arg.indexOf("=");
    const rawName = eq >= 0 ? arg.slice(2, eq) : arg.slice(2);
    const name = rawName.replace(/^RemoteProcessProxy\./, "");
    const known = ["kernel-id", "response-address", "public-key", "port-range", "kernel-name", "spark-context-initialization-mode", "cluster-type"];
    if (!known.includes(name)) throw bad(`unknown option --${rawName}`);
    const value = eq >= 0 ? arg.slice(eq + 1) : argv[++i];
    if (value === undefined) throw bad(`--${rawName} needs a value`);
    // the new spelling wins over the deprecated one, as in EG's Python launcher
    if (!values.has(name) || !rawName.startsWith("RemoteProcessProxy.")) values.set(name, value);
  }
  const kernelId = values.get("kernel-id");
  if (!kernelId || kernelId === "{kernel_id}") throw bad("--kernel-id is required");
  if (!/^[A-Za-z0-9-]{1,64}$/.test(kernelId)) throw bad("--kernel-id must be a kernel id (letters, digits, dashes)");
  const publicKey = values.get("public-key");
  if (!publicKey || publicKey === "{public_key}") throw bad("--public-key is required");
  const spark = values.get("spark-context-initialization-mode");
  if (spark !== undefined && spark !== "none") throw bad(`--spark-context-initialization-mode ${spark}: only none is supported by the Sense kernels`);
  const kernelName = (values.get("kernel-name") ?? "sense-ts") as LaunchableKernel;
  if (kernelName !== "sense-ts" && kernelName !== "sense-js") throw bad(`--kernel-name must be sense-ts or sense-js, not ${JSON.stringify(kernelName)}`);
  let responseAddress: LauncherArgs["responseAddress"];
  const ra = values.get("response-address");
  if (ra !== undefined && ra !== "{response_address}") {
    const m = /^([^:\s]+):(\d{1,5})$/.exec(ra);
    if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535) throw bad(`--response-address must be HOST:PORT, not ${JSON.stringify(ra)}`);
    responseAddress = { host: m[1], port: Number(m[2]) };
  }
  const minSize = Number(env.MIN_PORT_RANGE_SIZE ?? env.EG_MIN_PORT_RANGE_SIZE ?? "1000");
  return { kernelId, publicKey, responseAddress, portRange: parsePortRange(values.get("port-range"), Number.isFinite(minSize) ? minSize : 1000), kernelName };
}

/**
 * Encrypts connection info for EG: AES-128-ECB (PKCS#7 padding) under a fresh random key, that
 * key RSA-encrypted (PKCS#1 v1.5) with EG's public key, both base64 in a JSON
 * `{version, key, conn_info}` that is itself base64-encoded. Returns the bytes to send.
 * @throws Node's crypto error when `publicKeyB64` is not an RSA public key.
 */
export function encryptConnectionInfo(connectionInfoJson: string, publicKeyB64: string): Buffer {
  const aesKey = crypto.randomBytes(16);
  const cipher = crypto.createCipheriv("aes-128-ecb", aesKey, null);
  const connInfo = Buffer.concat([cipher.update(connectionInfoJson, "utf8"), cipher.final()]);
  const key = crypto.createPublicKey({ key: Buffer.from(publicKeyB64, "base64"), format: "der", type: "spki" });
  const encryptedKey = crypto.publicEncrypt({ key, padding: crypto.constants.RSA_PKCS1_PADDING }, aesKey);
  const payload = { version: LAUNCHER_VERSION, key: encryptedKey.toString("base64"), conn_info: connInfo.toString("base64") };
  return Buffer.from(Buffer.from(JSON.stringify(payload), "utf8").toString("base64"), "ascii");
}

/**
 * The address the kernel and the communication port listen on: `SENSE_KERNEL_IP` (set by the
 * Docker launcher for host-network containers, so a kernel listens on the host's loopback only),
 * else every interface, as EG's own launchers do.
 * @throws UsageError (`bad_option`) when `SENSE_KERNEL_IP` is set but not an IP address.
 */
export function kernelListenIp(env: NodeJS.ProcessEnv = process.env): string {
  const ip = env.SENSE_KERNEL_IP;
  if (ip === undefined || ip === "") return "0.0.0.0";
  if (net.isIP(ip) === 0) throw bad(`SENSE_KERNEL_IP must be an IP address, not ${JSON.stringify(ip)}`);
  return ip;
}

/** Binds a TCP server on `host` (default 0.0.0.0) to a port in `range` (any free port for 0..0), retrying as EG does. */
export async function listenInRange(server: net.Server, range: { lower: number; upper: number }, retries = 5, host = "0.0.0.0"): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    const port = range.upper === range.lower ? 0 : range.lower + crypto.randomInt(range.upper - range.lower + 1);
    try {
      await new Promise<void>((resolve, reject) => {
        const onError = (e: Error) => reject(e);
        server.once("error", onError);
        server.listen(port, host, () => (server.off("error", onError), resolve()));
      });
      const addr = server.address();
      return typeof addr === "object" && addr ? addr.port : port;
    } catch (e) {
      if (attempt >= retries) throw new Error(`no free port in ${range.lower}..${range.upper} after ${retries + 1} tries: ${(e as Error).message}`, { cause: e });
    }
  }
}

/** Picks `count` distinct free ports in `range` (held open together so none repeats, then released). */
export async function selectPorts(count: number, range: { lower: number; upper: number }): Promise<number[]> {
  const servers: net.Server[] = [];
  try {
    const ports: number[] = [];
    for (let i = 0; i < count; i++) {
      const s = net.createServer();
      servers.push(s);
      ports.push(await listenInRange(s, range));
    }
    return ports;
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((r) => (s.listening ? s.close(() => r()) : r()))));
  }
}

/** The process group of this process, from /proc (Node has no getpgid); 0 when unknown. */
export function ownProcessGroup(): number {
  try {
    const stat = fs.readFileSync("/proc/self/stat", "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(fields[2]) || 0;
  } catch {
    return 0;
  }
}

/** One request EG sends on the communication port. */
export type ListenerRequest = { signum: number } | { shutdown: true };

/**
 * Parses one communication-port message (`{"signum": n}` or `{"shutdown": 1}`).
 * @returns null for anything else (EG may grow new requests; an old launcher ignores them).
 */
export function parseListenerRequest(text: string): ListenerRequest | null {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof v !== "object" || v === null) return null;
  const o = v as Record<string, unknown>;
  if (o.shutdown !== undefined && Boolean(o.shutdown)) return { shutdown: true };
  if (o.signum !== undefined) {
    const n = Number(o.signum);
    if (Number.isInteger(n) && n >= 0 && n < 65) return { signum: n };
  }
  return null;
}

/** A child's exit as a shell would report it: its code, or 128 + the signal's number. Pure. */
export function exitStatus(code: number | null, signal: NodeJS.Signals | null): number {
  return code ?? (signal ? 128 + (os.constants.signals[signal] ?? 0) : 1);
}

/**
 * Runs a launcher's `main` and exits with its status; a failure is logged in one line (a Sense
 * error as `code: message`) and exits 2 for bad options, else 1.
 */
export function runMain(main: () => Promise<number>, log: (message: string) => void): void {
  main().then(
    (code) => process.exit(code),
    (e: unknown) => {
      log(isSenseError(e) ? `${e.code}: ${e.message}` : String((e as Error)?.stack ?? e));
      process.exit(isSenseError(e) && e.code === "bad_option" ? 2 : 1);
    },
  );
}
