/**
 * A real JupyterHub (from the project's .venv, with configurable-http-proxy; both installed by
 * scripts/setup-hub.sh) on free loopback ports, in its own temporary folder. Users' single-user
 * servers are `jupyterhub-singleuser` from .venv (jupyter_server 2.21, the Sense kernelspecs),
 * spawned as this user (SimpleLocalProcessSpawner, for tests only) with homes under that folder.
 * The test talks to the hub's REST API and to users' servers through the hub's proxy with a
 * service token that never appears on a command line. `stop()` always ends the hub, the proxy,
 * every single-user server and every kernel they started.
 */
import { ChildProcess, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { endService, freePort, killProcessesUnder, REPO, VENV } from "./local-server";

/** The hub's proxy (configurable-http-proxy from npm, kept out of package.json). */
export const CHP_BIN = path.join(VENV, "hub-proxy", "node_modules", ".bin", "configurable-http-proxy");

/** A user's running single-user server, as seen from outside through the proxy. */
export interface HubUserServer {
  /** `http://127.0.0.1:<proxy port>/user/<name>/` */
  url: string;
  /** A token that may use this server (the hub's test service token). */
  token: string;
  /** The user's home, the single-user server's root folder. */
  rootDir: string;
}

/** A running JupyterHub. */
export interface LocalHub {
  /** The public (proxy) URL, e.g. `http://127.0.0.1:PORT/`. */
  url: string;
  /** The test service's API token (admin of users and servers, may access every server). */
  token: string;
  /** Temporary folder holding the hub's database, config, users' homes and runtime files. */
  baseDir: string;
  process: ChildProcess;
  /** Hub REST call (`/hub/api/<path>`) with the service token; throws on an HTTP error. */
  api(method: string, apiPath: string, body?: unknown): Promise<unknown>;
  /** Creates `name` if needed, starts their default server and resolves when the hub says it is ready. */
  startServer(name: string, timeoutMs?: number): Promise<HubUserServer>;
  /** Stops `name`'s server and resolves when the hub no longer lists it. */
  stopServer(name: string, timeoutMs?: number): Promise<void>;
  /** Hub output so far (the proxy and single-user servers log here too). */
  log(): string;
  /** Stops the hub (which stops the proxy and the servers), then kills anything left. Never throws. */
  stop(): Promise<void>;
}

/**
 * Installs JupyterHub and the proxy when missing (scripts/setup-hub.sh, argv array, no shell).
 * @throws Error with the script's output when the setup fails.
 */
export function ensureHub(): void {
  if (fs.existsSync(path.join(VENV, "bin", "jupyterhub-singleuser")) && fs.existsSync(CHP_BIN)) return;
  const r = spawnSync("bash", [path.join(REPO, "scripts", "setup-hub.sh")], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  if (r.status !== 0) throw new Error(`scripts/setup-hub.sh failed:\n${r.stdout}${r.stderr}`);
}

/** The hub's config: every value that differs per run comes from the environment, never a secret in the file. */
const HUB_CONFIG = `
import os
c = get_config()  # noqa
e = os.environ
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = int(e["SENSE_HUB_PORT"])
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = int(e["SENSE_HUB_API_PORT"])
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:" + e["SENSE_HUB_PROXY_API_PORT"]
c.ConfigurableHTTPProxy.command = [e["SENSE_HUB_CHP"]]
c.JupyterHub.db_url = "sqlite:///" + os.path.join(e["SENSE_HUB_BASE"], "jupyterhub.sqlite")
c.JupyterHub.cookie_secret_file = os.path.join(e["SENSE_HUB_BASE"], "cookie_secret")
c.JupyterHub.cleanup_servers = True
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allow_all = True
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = os.path.join(e["SENSE_HUB_BASE"], "home", "{username}")
c.Spawner.ip = "127.0.0.1"
c.Spawner.cmd = [os.path.join(e["SENSE_HUB_VENV"], "bin", "jupyterhub-singleuser")]
c.Spawner.args = [
    "--ServerApp.jpserver_extensions=jupyterlab=False",
    "--ServerApp.jpserver_extensions=jupyter_lsp=False",
    "--ServerApp.jpserver_extensions=jupyter_server_terminals=False",
    "--ServerApp.jpserver_extensions=notebook_shim=False",
    "--ServerApp.jpserver_extensions=ipyparallel=False",
    "--KernelManager.shutdown_wait_time=2",
] + (["--allow-root"] if os.getuid() == 0 else [])
c.Spawner.environment = {
    "PATH": e["PATH"],
    "SENSE_TEST_MARKER": e["SENSE_HUB_BASE"],
    "JUPYTER_RUNTIME_DIR": os.path.join(e["SENSE_HUB_BASE"], "runtime"),
    "JUPYTER_CONFIG_DIR": os.path.join(e["SENSE_HUB_BASE"], "config"),
    "JUPYTER_DATA_DIR": os.path.join(e["SENSE_HUB_BASE"], "data"),
    "JUPYTER_PLATFORM_DIRS": "1",
    "SENSE_KEEPER_SCRIPT": e.get("SENSE_KEEPER_SCRIPT", ""),
}
c.Spawner.start_timeout = 60
c.Spawner.http_timeout = 60
c.JupyterHub.services = [{"name": "sense-test", "api_token": e["SENSE_HUB_SERVICE_TOKEN"]}]
c.JupyterHub.load_roles = [
    {"name": "sense-test", "scopes": ["admin:users", "admin:servers", "access:servers", "list:users", "read:users"], "services": ["sense-test"]},
]
`;

/** Options of {@link startLocalHub}. */
export interface HubOptions {
  /** Extra environment for the hub (and, where listed in its config, the single-user servers). */
  env?: Record<string, string>;
}

/**
 * Starts JupyterHub with its proxy; resolves when the hub's API answers.
 * @throws Error when the hub cannot be installed or does not come up within 60 s (it is stopped first).
 */
export async function startLocalHub(options: HubOptions = {}): Promise<LocalHub> {
  ensureHub();
  const baseDir = fs.mkdtempSync(path.join(os.tmpdir(), "sense-hub-"));
  for (const d of ["home", "runtime", "config", "data"]) fs.mkdirSync(path.join(baseDir, d), { recursive: true });
  const configFile = path.join(baseDir, "jupyterhub_config.py");
  fs.writeFileSync(configFile, HUB_CONFIG, { mode: 0o600 });
  const port = await freePort();
  const token = randomBytes(16).toString("hex");
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PATH: `${path.join(VENV, "bin")}:${process.env.PATH ?? ""}`,
    SENSE_HUB_PORT: String(port),
    SENSE_HUB_API_PORT: String(await freePort()),
    SENSE_HUB_PROXY_API_PORT: String(await freePort()),
    SENSE_HUB_CHP: CHP_BIN,
    SENSE_HUB_BASE: baseDir,
    SENSE_HUB_VENV: VENV,
    SENSE_HUB_SERVICE_TOKEN: token,
    CONFIGPROXY_AUTH_TOKEN: randomBytes(16).toString("hex"),
    SENSE_TEST_MARKER: baseDir,
    ...options.env,
  };
  for (const k of Object.keys(env)) if (k.startsWith("JUPYTERHUB_") || k.startsWith("JUPYTER_") || k === "JPY_PARENT_PID") delete env[k];
  const child = spawn(path.join(VENV, "bin", "jupyterhub"), ["-f", configFile], { env, cwd: baseDir, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout?.on("data", (d: Buffer) => (output += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (output += d.toString()));
  let exited = false;
  const exitPromise = new Promise<void>((resolve) => child.on("exit", () => ((exited = true), resolve())));
  const url = `http://127.0.0.1:${port}/`;
  const onExit = () => {
    if (!exited) child.kill("SIGKILL");
    killProcessesUnder(baseDir);
  };
  process.once("exit", onExit);

  const stop = async () => {
    // SIGTERM: the hub stops the servers it spawned (cleanup_servers) and its proxy
    await endService(child, () => exited, exitPromise, 20_000, baseDir);
    process.removeListener("exit", onExit);
  };

  const api = async (method: string, apiPath: string, body?: unknown): Promise<unknown> => {
    const res = await fetch(`${url}hub/api/${apiPath}`, {
      method,
      headers: { Authorization: `token ${token}`, ...(body === undefined ? {} : { "Content-Type": "application/json" }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`hub ${method} /hub/api/${apiPath}: ${res.status} ${text.slice(0, 300)}`);
    return text ? (JSON.parse(text) as unknown) : undefined;
  };

  const poll = async <T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (exited) throw new Error(`JupyterHub exited while waiting for ${what}:\n${output.slice(-4000)}`);
      const v = await probe().catch(() => undefined);
      if (v !== undefined) return v;
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}:\n${output.slice(-4000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  type UserModel = { name: string; servers?: Record<string, { ready: boolean; pending: string | null; url: string }> };
  const user = (name: string) => api("GET", `users/${encodeURIComponent(name)}`) as Promise<UserModel>;

  const hub: LocalHub = {
    url,
    token,
    baseDir,
    process: child,
    api,
    log: () => output,
    stop,
    async startServer(name, timeoutMs = 90_000) {
      await api("POST", `users/${encodeURIComponent(name)}`).catch((e: Error) => {
        if (!/\b409\b/.test(e.message)) throw e; // already exists
      });
      await api("POST", `users/${encodeURIComponent(name)}/server`);
      const server = await poll(`${name}'s server`, timeoutMs, async () => {
        const s = (await user(name)).servers?.[""];
        return s?.ready ? s : undefined;
      });
      return { url: new URL(server.url, url).toString(), token, rootDir: path.join(baseDir, "home", name) };
    },
    async stopServer(name, timeoutMs = 60_000) {
      await api("DELETE", `users/${encodeURIComponent(name)}/server`).catch(() => undefined);
      await poll(`${name}'s server to stop`, timeoutMs, async () => ((await user(name)).servers?.[""] ? undefined : true));
    },
  };

  try {
    await poll("the hub's API", 60_000, async () => ((await api("GET", "")) ? true : undefined));
  } catch (e) {
    await stop();
    throw e;
  }
  return hub;
}
