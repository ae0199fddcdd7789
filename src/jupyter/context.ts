/**
 * "Where am I": finds the Jupyter Server this process talks to, this process's own kernel id,
 * its dashboard/master ids and the project home, synchronously, from (in this order) explicit
 * options, `SENSE_*` variables, JupyterHub variables, and the runtime file of the Jupyter Server
 * that started the kernel this process runs in (or under).
 *
 * Runtime-file discovery (Jupyter Server 1.x and 2.x): a kernel's argv holds its connection file
 * `<runtime dir>/kernel-<id>.json`; beside it, `jpserver-<server pid>.json` holds the server's
 * `url`, `token` and `root_dir`. See https://jupyter-server.readthedocs.io/en/latest/ (ServerApp
 * `info_file`) and jupyter_client `MultiKernelManager.pre_start_kernel`.
 */
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { inspect } from "node:util";
import { ConfigError, redact } from "../errors";
import { RestClient, ServerEndpoint, normalizeBaseUrl } from "./rest";
import { ServerInfoFile } from "./schemas";
import { jupyterRuntimeDir } from "./paths";
import { processDefault } from "../util/process-default";
import { checkOptionKeys } from "../util/check-options";

/** Who this process is, whichever backend serves it. */
export interface ProcessIdentity {
  /** This process's own kernel id, when it runs inside (or under) a kernel. */
  kernelId?: string;
  /** `SENSE_DASHBOARD_ID` ?? `kernelId` ?? `process-<pid>-<random>` (stable per process). */
  dashboardId: string;
  /** `SENSE_MASTER_ID` when this is a worker; otherwise equal to `dashboardId`. */
  masterId: string;
  /** True when `SENSE_MASTER_ID` is set and differs from `dashboardId`. */
  isWorker: boolean;
  /** Path of the kernel connection file found on this process's (or an ancestor's) argv. */
  connectionFile?: string;
}

/** The JavaScript runtime a process runs on: Node, or Deno (its Node compatibility layer). */
export type JsRuntime = "node" | "deno";

/** The runtime of this process: `deno` inside Deno (its Jupyter kernel, `deno run`), else `node`. */
export function jsRuntime(): JsRuntime {
  return typeof (globalThis as { Deno?: { version?: { deno?: unknown } } }).Deno?.version?.deno === "string" ? "deno" : "node";
}

/** Everything a Sense API call needs to know about where it runs, when a Jupyter Server serves it. */
export interface SenseContext extends ProcessIdentity {
  /** Kernels are started through a Jupyter Server (see {@link DirectContext} for the other kind). */
  backend: "server";
  /** The JavaScript runtime this process runs on. */
  runtime: JsRuntime;
  /** The Jupyter Server's base URL (with any base_url prefix) and token. */
  endpoint: ServerEndpoint;
  /** The REST client for `endpoint` (one per server and token, shared by every context). */
  rest: RestClient;
  /** Which source gave the endpoint. */
  source: "options" | "sense_env" | "jupyterhub" | "runtime_file";
  /** `SENSE_PROJECT_HOME` ?? the server's root_dir ?? cwd, always absolute. */
  projectHome: string;
  /** The server's root_dir, when known. */
  serverRootDir?: string;
  /** Folder of the kernel connection file / jpserver file, when known. */
  runtimeDir?: string;
  /** The Jupyter Server's pid, when known. */
  serverPid?: number;
}

/**
 * Where a Sense API call runs when no Jupyter Server serves it (VS Code, nbconvert, papermill,
 * nbclient, `jupyter console`, a plain Node script): Sense starts kernels itself from their
 * kernelspecs (the direct backend, src/backends/direct/).
 */
export interface DirectContext extends ProcessIdentity {
  backend: "direct";
  /** The JavaScript runtime this process runs on. */
  runtime: JsRuntime;
  /** Why: `SENSE_BACKEND=direct`, or what was looked for to find a server (for error messages). */
  why: string;
  /** `SENSE_PROJECT_HOME` ?? the working folder (the notebook's folder, for a kernel), always absolute. */
  projectHome: string;
  /** The Jupyter runtime folder: connection files and the direct backend's sessions. */
  runtimeDir: string;
}

/** Where this process runs: served by a Jupyter Server, or by kernels Sense starts itself. */
export type RunContext = SenseContext | DirectContext;

/** `SENSE_BACKEND`: which backend to use (`auto`, the default: a server when one is found). */
export type BackendChoice = "auto" | "server" | "direct";

/**
 * Reads `SENSE_BACKEND` (an allowlist: empty, `auto`, `server`, `direct`).
 * @throws {ConfigError} `bad_config` for anything else, naming the accepted values.
 */
export function backendChoice(env: NodeJS.ProcessEnv = process.env): BackendChoice {
  const v = (env.SENSE_BACKEND ?? "").trim().toLowerCase();
  if (v === "" || v === "auto") return "auto";
  if (v === "server" || v === "direct") return v;
  throw new ConfigError("bad_config", `SENSE_BACKEND must be "server", "direct" or "auto", not ${JSON.stringify(env.SENSE_BACKEND)}.`, { variable: "SENSE_BACKEND" });
}

/** Overrides for {@link discover}; every field is optional. */
export interface DiscoverOptions {
  /** Server base URL; wins over every other source. */
  baseUrl?: string;
  /** Token for `baseUrl` (default: `SENSE_API_TOKEN`, else empty). */
  token?: string;
  /** This process's kernel id (default: `SENSE_KERNEL_ID`, else from the connection file). */
  kernelId?: string;
  /** Project home (default: `SENSE_PROJECT_HOME`, else the server's root_dir, else cwd). */
  projectHome?: string;
  /** Environment to read instead of `process.env` (tests). */
  env?: NodeJS.ProcessEnv;
  /** Root of the proc file system (tests point it at a fake tree). Default `/proc`. */
  procRoot?: string;
  /** The pid whose ancestry is searched for a kernel. Default `process.pid`. */
  pid?: number;
  /** Working directory used to resolve relative paths. Default `process.cwd()`. */
  cwd?: string;
}

/** The keys of {@link DiscoverOptions}. */
const DISCOVER_OPTION_KEYS = ["baseUrl", "token", "kernelId", "projectHome", "env", "procRoot", "pid", "cwd"];

/** What the process tree tells about the kernel this process runs in or under. */
interface KernelProcess {
  kernelId: string;
  connectionFile: string;
  /** The pid whose argv held the connection file. */
  pid: number;
  /** That process's parent (normally the Jupyter Server). */
  ppid?: number;
}

/** What a jpserver runtime file tells. */
interface ServerInfo {
  file: string;
  info: ServerInfoFile;
}

// Per-process, so a plain Node master keeps one dashboard id however often it rediscovers.
const processSuffix = randomBytes(4).toString("hex");

/**
 * The identity of a plain Node process that is no kernel: `process-<pid>-<random>`, the same for
 * every caller in this process (discovery and explicit worker contexts alike).
 */
export function processDashboardId(pid: number = process.pid): string {
  return `process-${pid}-${processSuffix}`;
}
const KERNEL_FILE = /(?:^|[/=])kernel-([A-Za-z0-9][A-Za-z0-9_-]*)\.json$/;
// A process tree deeper than this is a loop or something we do not understand.
const MAX_ANCESTORS = 64;

/**
 * Finds, caches and forgets where this process runs, with the REST clients its contexts share.
 * One per process backs the functions below ({@link defaultDiscovery}); tests construct their own,
 * with `defaults` standing for the process (its environment, `/proc`, pid, working folder).
 */
export class Discovery {
  private readonly restClients = new Map<string, RestClient>();
  private cached: SenseContext | undefined;
  private cachedRun: RunContext | undefined;

  /** `defaults` apply to every call; a call's own options win field by field. */
  constructor(private readonly defaults: DiscoverOptions = {}) {}

  /**
   * As {@link discover}, reading this instance's defaults; the context's `rest` is this
   * instance's client for the endpoint.
   * @throws {ConfigError} as {@link discover}.
   */
  discover(options: DiscoverOptions = {}): SenseContext {
    return discoverServer(this.with(options, "discover"), (endpoint) => this.restClient(endpoint));
  }

  /**
   * As {@link discoverRun}, reading this instance's defaults.
   * @throws {ConfigError} as {@link discoverRun}.
   */
  discoverRun(options: DiscoverOptions = {}): RunContext {
    return discoverEither(this.with(options, "discoverRun"), (endpoint) => this.restClient(endpoint));
  }

  /**
   * The server context, discovered on first call and cached.
   * @throws {ConfigError} as {@link discover} (nothing is cached then, so a later call can succeed).
   */
  context(): SenseContext {
    this.cached ??= this.discover();
    return this.cached;
  }

  /**
   * The {@link discoverRun} context, discovered on first call and cached.
   * @throws {ConfigError} as {@link discoverRun} (nothing is cached then).
   */
  runContext(): RunContext {
    this.cachedRun ??= this.discoverRun();
    return this.cachedRun;
  }

  /** Forgets the cached contexts and REST clients. */
  reset(): void {
    this.cached = undefined;
    this.cachedRun = undefined;
    this.restClients.clear();
  }

  /** One {@link RestClient} per server and token, so every caller shares its connection pool. */
  restClient(endpoint: ServerEndpoint): RestClient {
    const key = `${endpoint.baseUrl}\u0000${endpoint.token}`;
    let client = this.restClients.get(key);
    if (!client) {
      client = new RestClient(endpoint);
      this.restClients.set(key, client);
    }
    return client;
  }

  private with(options: DiscoverOptions, call: string): DiscoverOptions {
    checkOptionKeys(options, DISCOVER_OPTION_KEYS, call);
    const merged: DiscoverOptions = { ...this.defaults };
    for (const [k, v] of Object.entries(options) as [keyof DiscoverOptions, unknown][]) {
      if (v !== undefined) (merged as Record<string, unknown>)[k] = v;
    }
    return merged;
  }
}

/**
 * The process's default {@link Discovery} (the one the functions below use): every API call
 * shares its cached context and its REST clients.
 */
export const defaultDiscovery: () => Discovery = processDefault(() => new Discovery());

/**
 * Finds where this process runs. Synchronous: it reads only environment variables and local
 * files (`/proc`, the server's runtime file); it makes no network call.
 *
 * @throws {ConfigError} `not_configured` when no source names a server (the message says what
 *   to set); `bad_config` when a `SENSE_*`/JupyterHub URL is not an http(s) URL. Messages never
 *   contain the token.
 */
export function discover(options: DiscoverOptions = {}): SenseContext {
  return defaultDiscovery().discover(options);
}

/** {@link discover}'s work; the REST client comes from the {@link Discovery} that asks, so each instance shares its own. */
function discoverServer(options: DiscoverOptions, restClientFor: (endpoint: ServerEndpoint) => RestClient): SenseContext {
  const env = options.env ?? process.env;
  const procRoot = options.procRoot ?? "/proc";
  const pid = options.pid ?? process.pid;
  const cwd = path.resolve(options.cwd ?? process.cwd());

  const kernel = findKernelProcess(procRoot, pid);
  const runtimeDir = kernel ? path.dirname(kernel.connectionFile) : undefined;
  const jpParent = parsePid(env.JPY_PARENT_PID);
  const serverPidHint = jpParent ?? kernel?.ppid;
  // Read the runtime file whatever the endpoint source: it also gives root_dir and the server pid.
  const server = runtimeDir ? readServerInfo(runtimeDir, serverPidHint, procRoot) : undefined;

  let source: SenseContext["source"];
  let endpoint: ServerEndpoint;
  if (options.baseUrl) {
    source = "options";
    endpoint = { baseUrl: checkUrl(options.baseUrl, "the baseUrl option"), token: options.token ?? env.SENSE_API_TOKEN ?? "" };
  } else if (env.SENSE_API_URL) {
    source = "sense_env";
    endpoint = { baseUrl: checkUrl(env.SENSE_API_URL, "SENSE_API_URL"), token: options.token ?? env.SENSE_API_TOKEN ?? "" };
  } else if (env.JUPYTERHUB_SERVICE_URL && env.JUPYTERHUB_API_TOKEN) {
    source = "jupyterhub";
    endpoint = { baseUrl: hubUrl(env.JUPYTERHUB_SERVICE_URL, env.JUPYTERHUB_SERVICE_PREFIX), token: options.token ?? env.JUPYTERHUB_API_TOKEN };
  } else if (server) {
    if (server.info.sock) {
      throw new ConfigError(
        "not_configured",
        `The Jupyter Server (${server.file}) listens on a Unix socket, which sense-tslab cannot reach. Set SENSE_API_URL (and SENSE_API_TOKEN) to an http(s) address of the server.`,
        { file: server.file },
      );
    }
    source = "runtime_file";
    endpoint = { baseUrl: checkUrl(server.info.url, server.file), token: options.token ?? server.info.token };
  } else {
    throw new ConfigError(
      "not_configured",
      "Cannot tell which Jupyter Server to use: this process is not inside a Jupyter kernel" +
        (kernel ? ` whose server runtime file could be read (looked in ${runtimeDir})` : "") +
        ". Set SENSE_API_URL to the server's URL (e.g. http://127.0.0.1:8888/) and SENSE_API_TOKEN to its token, " +
        "or pass { baseUrl, token } explicitly.",
      { kernelConnectionFile: kernel?.connectionFile },
    );
  }
  endpoint = { baseUrl: normalizeBaseUrl(endpoint.baseUrl), token: endpoint.token };

  // The runtime file describes *our* server only if it is the one the endpoint names.
  const sameServer = server !== undefined && (source === "runtime_file" || sameAddress(server.info.url, endpoint.baseUrl));
  const serverRootDir = sameServer ? (server.info.root_dir ?? server.info.notebook_dir) : undefined;
  const serverPid = sameServer ? (server.info.pid ?? parsePid(path.basename(server.file).replace(/^jpserver-|\.json$/g, ""))) : undefined;

  const kernelId = options.kernelId ?? nonEmpty(env.SENSE_KERNEL_ID) ?? kernel?.kernelId;
  const dashboardId = nonEmpty(env.SENSE_DASHBOARD_ID) ?? kernelId ?? processDashboardId(pid);
  const master = nonEmpty(env.SENSE_MASTER_ID);
  const projectHome = path.resolve(cwd, options.projectHome ?? nonEmpty(env.SENSE_PROJECT_HOME) ?? serverRootDir ?? cwd);

  const ctx: SenseContext = {
    backend: "server",
    runtime: jsRuntime(),
    endpoint,
    rest: restClientFor(endpoint),
    source,
    kernelId,
    dashboardId,
    masterId: master ?? dashboardId,
    isWorker: master !== undefined && master !== dashboardId,
    projectHome,
    serverRootDir,
    runtimeDir,
    serverPid,
    connectionFile: kernel?.connectionFile,
  };
  return maskSecrets(ctx);
}

/**
 * The context of this process, discovered once and cached.
 * @throws {ConfigError} as {@link discover} (nothing is cached then, so a later call can succeed).
 */
export function getContext(): SenseContext {
  return defaultDiscovery().context();
}

/**
 * Finds where this process runs, whichever backend serves it: with `SENSE_BACKEND` unset or
 * `auto`, the Jupyter Server {@link discover} finds, else (none found) the direct backend;
 * `server` only a server (throwing as {@link discover}); `direct` never a server.
 * @throws {ConfigError} `bad_config` for a bad `SENSE_BACKEND` or a malformed server URL;
 *   `not_configured` with `SENSE_BACKEND=server` and no server found.
 */
export function discoverRun(options: DiscoverOptions = {}): RunContext {
  return defaultDiscovery().discoverRun(options);
}

/** {@link discoverRun}'s work, with the asking {@link Discovery}'s REST clients. */
function discoverEither(options: DiscoverOptions, restClientFor: (endpoint: ServerEndpoint) => RestClient): RunContext {
  const env = options.env ?? process.env;
  const choice = backendChoice(env);
  let why = "SENSE_BACKEND=direct";
  if (choice !== "direct") {
    try {
      return discoverServer(options, restClientFor);
    } catch (e) {
      if (choice === "server" || !(e instanceof ConfigError) || e.code !== "not_configured") throw e;
      why = `no Jupyter Server was found (${e.message})`;
    }
  }
  const procRoot = options.procRoot ?? "/proc";
  const pid = options.pid ?? process.pid;
  const cwd = path.resolve(options.cwd ?? process.cwd());
  const kernel = findKernelProcess(procRoot, pid);
  const kernelId = options.kernelId ?? nonEmpty(env.SENSE_KERNEL_ID) ?? kernel?.kernelId;
  const dashboardId = nonEmpty(env.SENSE_DASHBOARD_ID) ?? kernelId ?? processDashboardId(pid);
  const master = nonEmpty(env.SENSE_MASTER_ID);
  return {
    backend: "direct",
    runtime: jsRuntime(),
    why,
    kernelId,
    dashboardId,
    masterId: master ?? dashboardId,
    isWorker: master !== undefined && master !== dashboardId,
    projectHome: path.resolve(cwd, options.projectHome ?? nonEmpty(env.SENSE_PROJECT_HOME) ?? cwd),
    // A worker uses its master's folder (SENSE_RUNTIME_DIR), so they share one session store.
    runtimeDir: nonEmpty(env.SENSE_RUNTIME_DIR) ?? jupyterRuntimeDir({ env, home: os.homedir(), procRoot }),
    connectionFile: kernel?.connectionFile ?? ownConnectionFile(procRoot, pid),
  };
}

/**
 * The connection file on this process's own argv (`--config-path F`, `-f F`, Deno's `--conn F`), whatever its name:
 * nbclient, papermill and VS Code name it `/tmp/tmp<random>.json`, not `kernel-<id>.json`.
 */
function ownConnectionFile(procRoot: string, pid: number): string | undefined {
  let argv: string[];
  try {
    argv = fs.readFileSync(path.join(procRoot, String(pid), "cmdline"), "utf8").split("\0");
  } catch {
    return undefined;
  }
  const at = argv.findIndex((a) => a === "--config-path" || a === "-f" || a === "--connection-file" || a === "--conn");
  const file = at >= 0 ? argv[at + 1] : undefined;
  return file && file.endsWith(".json") && path.isAbsolute(file) ? file : undefined;
}

/**
 * The {@link discoverRun} context of this process, discovered once and cached.
 * @throws {ConfigError} as {@link discoverRun} (nothing is cached then).
 */
export function getRunContext(): RunContext {
  return defaultDiscovery().runContext();
}

/** Forgets the cached contexts and REST clients (tests, or after changing `SENSE_*` variables). */
export function resetContext(): void {
  defaultDiscovery().reset();
}

/**
 * Walks from `pid` up the process tree and returns the first process whose argv names a kernel
 * connection file. A Node process started by a kernel (or by a child of one) thus finds its kernel.
 */
function findKernelProcess(procRoot: string, pid: number): KernelProcess | undefined {
  const seen = new Set<number>();
  let current: number | undefined = pid;
  for (let depth = 0; current !== undefined && current > 0 && depth < MAX_ANCESTORS && !seen.has(current); depth++) {
    seen.add(current);
    const argv = readCmdline(procRoot, current);
    const ppid = readPpid(procRoot, current);
    if (argv) {
      for (const arg of argv) {
        const m = KERNEL_FILE.exec(arg);
        if (m) {
          // `--config-path=/x/kernel-1.json` and `-f /x/kernel-1.json` both occur.
          const file = arg.includes("=") ? arg.slice(arg.lastIndexOf("=") + 1) : arg;
          return { kernelId: m[1], connectionFile: path.resolve(readCwd(procRoot, current) ?? "/", file), pid: current, ppid };
        }
      }
    }
    current = ppid;
  }
  return undefined;
}

function readCmdline(procRoot: string, pid: number): string[] | undefined {
  try {
    return fs.readFileSync(path.join(procRoot, String(pid), "cmdline"), "utf8").split("\0").filter((a) => a.length > 0);
  } catch {
    return undefined;
  }
}

/** The parent pid from `/proc/<pid>/stat`; the command name may contain spaces and `)`, so parse after the last `)`. */
function readPpid(procRoot: string, pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(path.join(procRoot, String(pid), "stat"), "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return parsePid(fields[1]);
  } catch {
    return undefined;
  }
}

/** A relative connection file path is relative to the kernel's cwd; absolute in practice. */
function readCwd(procRoot: string, pid: number): string | undefined {
  try {
    return fs.readlinkSync(path.join(procRoot, String(pid), "cwd"));
  } catch {
    return undefined;
  }
}

function isAlive(procRoot: string, pid: number): boolean {
  return fs.existsSync(path.join(procRoot, String(pid)));
}

/**
 * Reads `jpserver-<pid>.json` in `dir`; without a usable pid, or if that file is missing or
 * invalid, the one live server file in `dir` (a stale file from a SIGKILLed server is skipped).
 */
function readServerInfo(dir: string, pidHint: number | undefined, procRoot: string): ServerInfo | undefined {
  if (pidHint !== undefined) {
    const direct = readInfoFile(path.join(dir, `jpserver-${pidHint}.json`));
    if (direct) return direct;
  }
  let names: string[];
  try {
    names = fs.readdirSync(dir).filter((n) => /^jpserver-\d+\.json$/.test(n));
  } catch {
    return undefined;
  }
  const live = names
    .map((n) => ({ n, pid: Number(n.slice("jpserver-".length, -".json".length)) }))
    .filter((x) => isAlive(procRoot, x.pid))
    .map((x) => readInfoFile(path.join(dir, x.n)))
    .filter((x): x is ServerInfo => x !== undefined);
  // With several live servers sharing a runtime dir we cannot tell which one is ours: say nothing.
  return live.length === 1 ? live[0] : undefined;
}

function readInfoFile(file: string): ServerInfo | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch {
    return undefined;
  }
  const parsed = ServerInfoFile.safeParse(raw);
  return parsed.success ? { file, info: parsed.data } : undefined;
}

function checkUrl(url: string, from: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new ConfigError("bad_config", `${from} is not a URL: ${JSON.stringify(redact(url))}. Expected e.g. http://127.0.0.1:8888/.`, { from });
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") {
    throw new ConfigError("bad_config", `${from} must be an http:// or https:// URL, not ${u.protocol}//...`, { from });
  }
  if (u.username || u.password) {
    throw new ConfigError("bad_config", `${from} must not carry credentials in the URL; set SENSE_API_TOKEN instead.`, { from });
  }
  // A token in the query would be sent and logged with every path; the token has its own variable.
  u.search = "";
  u.hash = "";
  return u.toString();
}

/**
 * `JUPYTERHUB_SERVICE_URL` is the single-user server's bind URL; its host may be empty (bind to
 * all interfaces) and older hubs leave the prefix out, so fill both in.
 */
function hubUrl(serviceUrl: string, prefix: string | undefined): string {
  const fixed = serviceUrl.replace(/^(https?:\/\/)(:|\/)/, "$1127.0.0.1$2");
  const u = new URL(checkUrl(fixed, "JUPYTERHUB_SERVICE_URL"));
  if (u.hostname === "0.0.0.0" || u.hostname === "[::]") u.hostname = "127.0.0.1";
  if (prefix && (u.pathname === "/" || u.pathname === "")) u.pathname = prefix;
  return u.toString();
}

/** Same server when port and path prefix agree (hosts differ legitimately: 127.0.0.1, localhost, a hostname). */
function sameAddress(a: string, b: string): boolean {
  try {
    const ua = new URL(a);
    const ub = new URL(b);
    const port = (u: URL) => u.port || (u.protocol === "https:" ? "443" : "80");
    return port(ua) === port(ub) && normalizeBaseUrl(ua.pathname) === normalizeBaseUrl(ub.pathname);
  } catch {
    return false;
  }
}

function parsePid(text: string | undefined): number | undefined {
  if (!text || !/^\d+$/.test(text)) return undefined;
  const n = Number(text);
  return n > 0 ? n : undefined;
}

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v === "" ? undefined : v;
}

/** Printing a context (tslab prints a cell's last value) must not show the token. */
function maskSecrets(ctx: SenseContext): SenseContext {
  const safe = () => ({
    ...ctx,
    endpoint: { baseUrl: ctx.endpoint.baseUrl, token: ctx.endpoint.token ? "***" : "" },
    rest: `RestClient(${ctx.endpoint.baseUrl})`,
  });
  Object.defineProperty(ctx, "toJSON", { value: safe, enumerable: false });
  Object.defineProperty(ctx, inspect.custom, {
    value: (_depth: number, opts: object) => `SenseContext ${inspect(safe(), { ...opts, depth: 2 })}`,
    enumerable: false,
  });
  // The endpoint is shown on its own too (`console.log(ctx.endpoint)` in a cell): mask it there as
  // well. Non-enumerable, so spreading or reading `.token` still gives the real value.
  const endpointSafe = () => ({ baseUrl: ctx.endpoint.baseUrl, token: ctx.endpoint.token ? "***" : "" });
  Object.defineProperty(ctx.endpoint, "toJSON", { value: endpointSafe, enumerable: false });
  Object.defineProperty(ctx.endpoint, inspect.custom, { value: (_depth: number, opts: object) => inspect(endpointSafe(), opts), enumerable: false });
  return ctx;
}
