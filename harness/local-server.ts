/**
 * A real Jupyter Server from the project's own .venv, on a free loopback port,
 * in its own temporary root, runtime, config and data folders, with the Sense kernelspecs
 * registered. `stop()` always ends it and every process it started, even tslab kernels that
 * would outlive it.
 */
import { ChildProcess, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { packageRoot } from "../src/kernelspecs";

/** The repository root (works from harness/ under ts-jest and from build/harness/). */
export const REPO = packageRoot(__dirname);
export const VENV = path.join(REPO, ".venv");

export interface JupyterServer {
  url: string;
  token: string;
  port: number;
  /** The server's root_dir (the Sense project home). */
  rootDir: string;
  runtimeDir: string;
  /** Temporary folder holding everything of this server. */
  baseDir: string;
  process: ChildProcess;
  pid: number;
  /** Environment the server was started with. */
  env: NodeJS.ProcessEnv;
  /** Stops the server (graceful, then SIGKILL) and kills any process left that belongs to it. */
  stop(): Promise<void>;
  /** Kills the server with SIGKILL (kernels are not told). `stop()` still cleans up afterwards. */
  kill(): Promise<void>;
  /** Server output so far (stdout + stderr). */
  log(): string;
}

const live = new Set<JupyterServer>();
process.on("exit", () => {
  for (const s of live) {
    try {
      s.process.kill("SIGKILL");
    } catch {
      /* already gone */
    }
    killProcessesUnder(s.baseDir);
  }
});

/** A free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Pids of live processes whose command line or environment mentions `marker` (a temp folder). */
export function processesUnder(marker: string): number[] {
  const pids: number[] = [];
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8");
      let hit = cmd.includes(marker);
      if (!hit) {
        const env = fs.readFileSync(`/proc/${pid}/environ`, "utf8");
        hit = env.includes(marker);
      }
      if (hit) {
        const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
        // skip zombies: they hold no resources and vanish when reaped
        const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
        if (state !== "Z") pids.push(pid);
      }
    } catch {
      /* process ended while we looked */
    }
  }
  return pids;
}

/**
 * Ends a started service: SIGTERM (SIGKILL after `graceMs`) unless it already exited, then kills
 * whatever still runs under `baseDir` and removes that folder. Shared by the local Jupyter Server,
 * Enterprise Gateway and JupyterHub harnesses.
 */
export async function endService(child: ChildProcess, exited: () => boolean, exitPromise: Promise<void>, graceMs: number, baseDir: string): Promise<void> {
  if (!exited()) {
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
    await exitPromise;
    clearTimeout(timer);
  }
  killProcessesUnder(baseDir);
  fs.rmSync(baseDir, { recursive: true, force: true, maxRetries: 3 });
}

/** SIGKILLs every process that belongs to `marker`; returns how many there were. */
export function killProcessesUnder(marker: string): number {
  const pids = processesUnder(marker);
  for (const pid of pids) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      /* gone */
    }
  }
  return pids.length;
}

/** Resolves when `pid` no longer exists (polls /proc; the kernel gives no event for a non-child). */
export async function waitForExit(pid: number, timeoutMs = 10_000): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (!isAlive(pid)) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  return !isAlive(pid);
}

export function isAlive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    return state !== "Z";
  } catch {
    return false;
  }
}

export interface StartOptions {
  /** Extra environment for the server (and so its kernels). */
  env?: Record<string, string>;
  /** Extra server arguments. */
  args?: string[];
  /** Token; random by default. */
  token?: string;
  /** Use this root dir instead of a fresh one. */
  rootDir?: string;
  /** Load JupyterLab's server extensions (browser tests). */
  lab?: boolean;
  /** Listen on this port instead of a fresh free one (when the URL must be known before start). */
  port?: number;
  /** Serve under this base path (e.g. `/user/alice/`, as behind JupyterHub); `url` includes it. */
  baseUrl?: string;
}

/** Starts a real Jupyter Server and resolves once its REST API answers. */
export async function startJupyterServer(options: StartOptions = {}): Promise<JupyterServer> {
  const jupyterServerBin = path.join(VENV, "bin", "jupyter-server");
  if (!fs.existsSync(jupyterServerBin)) {
    throw new Error(`No Jupyter in ${VENV}: run 'bash scripts/setup.sh' (npm test does it).`);
  }
  const baseDir = fs.mkdtempSync(path.join(os.tmpdir(), "sense-test-"));
  const rootDir = options.rootDir ?? path.join(baseDir, "project");
  const runtimeDir = path.join(baseDir, "runtime");
  for (const d of [rootDir, runtimeDir, path.join(baseDir, "config"), path.join(baseDir, "data")]) fs.mkdirSync(d, { recursive: true });
  const port = options.port ?? (await freePort());
  const token = options.token ?? randomBytes(16).toString("hex");
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    JUPYTER_RUNTIME_DIR: runtimeDir,
    JUPYTER_CONFIG_DIR: path.join(baseDir, "config"),
    JUPYTER_DATA_DIR: path.join(baseDir, "data"),
    JUPYTER_PLATFORM_DIRS: "1",
    IPYTHONDIR: path.join(baseDir, "ipython"),
    // kernels must find the venv's python first (ipykernel), and our node
    PATH: `${path.join(VENV, "bin")}:${process.env.PATH ?? ""}`,
    SENSE_TEST_MARKER: baseDir,
    // The token goes by environment, not argv: argv is world-readable in the process table.
    JUPYTER_TOKEN: token,
    ...options.env,
  };
  // Tests must not inherit a developer's Sense/Hub settings.
  for (const k of Object.keys(env)) {
    if ((k.startsWith("SENSE_") && k !== "SENSE_TEST_MARKER" && !(options.env && k in options.env)) || k.startsWith("JUPYTERHUB_")) {
      if (!(options.env && k in options.env)) delete env[k];
    }
  }
  delete env.JPY_PARENT_PID;
  if (options.lab) {
    // A fresh settings folder; no "news" prompt from a closed network over the notebook.
    const settings = path.join(baseDir, "lab-settings", "@jupyterlab", "apputils-extension");
    fs.mkdirSync(settings, { recursive: true });
    fs.writeFileSync(path.join(settings, "notification.jupyterlab-settings"), JSON.stringify({ fetchNews: "false", checkForUpdates: false }));
    env.JUPYTERLAB_SETTINGS_DIR = path.join(baseDir, "lab-settings");
  }
  const args = [
    `--ServerApp.port=${port}`,
    "--ServerApp.port_retries=0",
    "--ServerApp.ip=127.0.0.1",
    `--ServerApp.root_dir=${rootDir}`,
    "--ServerApp.open_browser=False",
    "--ServerApp.shutdown_no_activity_timeout=0",
    "--KernelManager.shutdown_wait_time=2",
    // jupyter-resource-usage (its kernel usage endpoint is tested) walks the process tree every
    // second for Prometheus: not wanted on a machine running many test servers.
    "--ResourceUseDisplay.enable_prometheus_metrics=False",
    ...(options.baseUrl ? [`--ServerApp.base_url=${options.baseUrl}`] : []),
    ...(process.getuid?.() === 0 ? ["--allow-root"] : []),
    // Lab's server extensions cost seconds per start; tests that need Lab pass { lab: true }.
    ...(options.lab ? [] : ["--ServerApp.jpserver_extensions=jupyterlab=False", "--ServerApp.jpserver_extensions=jupyter_lsp=False", "--ServerApp.jpserver_extensions=jupyter_server_terminals=False", "--ServerApp.jpserver_extensions=notebook_shim=False", "--ServerApp.jpserver_extensions=ipyparallel=False"]),
    ...(options.args ?? []),
  ];
  const child = spawn(jupyterServerBin, args, { env, cwd: rootDir, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout?.on("data", (d: Buffer) => (output += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (output += d.toString()));
  const url = `http://127.0.0.1:${port}${options.baseUrl ?? "/"}`;
  let exited = false;
  const exitPromise = new Promise<void>((resolve) => child.on("exit", () => ((exited = true), resolve())));

  const server: JupyterServer = {
    url,
    token,
    port,
    rootDir,
    runtimeDir,
    baseDir,
    process: child,
    pid: child.pid ?? -1,
    env,
    log: () => output,
    async kill() {
      if (!exited) child.kill("SIGKILL");
      await exitPromise;
    },
    async stop() {
      await endService(child, () => exited, exitPromise, 15_000, baseDir);
      live.delete(server);
    },
  };
  live.add(server);

  // Readiness: the REST API answers with our token.
  const until = Date.now() + 60_000;
  for (;;) {
    if (exited) {
      await server.stop();
      throw new Error(`Jupyter Server exited during startup:\n${output}`);
    }
    try {
      const res = await fetch(`${url}api/status`, { headers: { Authorization: `token ${token}` } });
      if (res.ok) break;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > until) {
      await server.stop();
      throw new Error(`Jupyter Server did not answer within 60 s:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return server;
}

/** Runs a command from the venv (argv array, no shell). */
export function venvRun(cmd: string, args: string[], env?: NodeJS.ProcessEnv): string {
  const r = spawnSync(path.join(VENV, "bin", cmd), args, { env: env ?? process.env, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed: ${r.stderr}`);
  return r.stdout;
}
