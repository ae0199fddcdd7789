/**
 * A real Jupyter Enterprise Gateway (from .venv-eg) on a free loopback port, with the Sense
 * kernelspecs, their EG-launcher variants (DistributedProcessProxy on loopback) and python3, and a
 * real Jupyter Server from the main .venv pointed at it with `--gateway-url`. `stop()` always ends
 * both and every kernel they started.
 */
import { ChildProcess, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { writeKernelSpecs } from "../src/kernelspecs";
import { writeLauncherKernelSpecs, writeSizedKernelSpecs } from "../kernel-extension/eg-launcher/kernelspec";
import { kernelSpec } from "../src/kernelspecs";
import { SIZES } from "../src/workers/options";
import { endService, freePort, JupyterServer, killProcessesUnder, REPO, startJupyterServer, StartOptions } from "./local-server";

/** Enterprise Gateway's own environment (scripts/setup-gateway.sh). */
export const EG_VENV = path.join(REPO, ".venv-eg");

/** Variables that must cross the gateway for Sense discovery to work in a gateway kernel. */
export const SENSE_CROSSING_ENVS = ["SENSE_API_URL", "SENSE_API_TOKEN", "SENSE_PROJECT_HOME"];

/** A running gateway plus the Jupyter Server in front of it. */
export interface LocalGateway {
  /** EG's base URL, e.g. `http://127.0.0.1:PORT/`. */
  egUrl: string;
  /** EG's auth token (the Jupyter Server sends it as `JUPYTER_GATEWAY_AUTH_TOKEN`). */
  egToken: string;
  egProcess: ChildProcess;
  /** Temporary folder holding EG's kernelspecs, runtime files and kernel logs. */
  egBaseDir: string;
  /** The Jupyter Server pointed at EG. */
  server: JupyterServer;
  /** EG output so far. */
  egLog(): string;
  /** Stops the server, then EG, then any process left under either base folder. Never throws. */
  stop(): Promise<void>;
}

/** Options of {@link startLocalGateway}. */
export interface GatewayOptions {
  /** Extra environment for EG (e.g. `EG_CLIENT_ENVS`). */
  egEnv?: Record<string, string>;
  /** Extra EG arguments. */
  egArgs?: string[];
  /** Options for the Jupyter Server (its `args` get `--gateway-url` added). */
  server?: StartOptions;
}

/**
 * Creates .venv-eg when it is missing (runs scripts/setup-gateway.sh, argv array, no shell).
 * @throws Error with the script's output when the setup fails.
 */
export function ensureGatewayVenv(): void {
  if (fs.existsSync(path.join(EG_VENV, "bin", "jupyter-enterprisegateway"))) return;
  const r = spawnSync("bash", [path.join(REPO, "scripts", "setup-gateway.sh")], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  if (r.status !== 0) throw new Error(`scripts/setup-gateway.sh failed:\n${r.stdout}${r.stderr}`);
}

/**
 * Starts EG and a Jupyter Server in front of it; resolves when both answer.
 * @throws Error when .venv-eg cannot be set up, or EG or the server does not come up within 60 s
 * (everything started so far is stopped first).
 */
export async function startLocalGateway(options: GatewayOptions = {}): Promise<LocalGateway> {
  ensureGatewayVenv();
  const egBaseDir = fs.mkdtempSync(path.join(os.tmpdir(), "sense-eg-"));
  const dataDir = path.join(egBaseDir, "data");
  const kernelsDir = path.join(dataDir, "kernels");
  const runtimeDir = path.join(egBaseDir, "runtime");
  const logDir = path.join(egBaseDir, "kernel-logs");
  for (const d of [kernelsDir, runtimeDir, logDir]) fs.mkdirSync(d, { recursive: true });
  writeKernelSpecs(kernelsDir);
  writeLauncherKernelSpecs(kernelsDir, { processProxy: "distributed", remoteHosts: ["127.0.0.1"] });
  // sense-ts-small/-medium/-large: the size table as EG resource variables (KERNEL_CPUS, ...)
  writeSizedKernelSpecs(kernelsDir, "sense-ts", { ...kernelSpec("sense-ts") }, SIZES);
  // python3 from EG's own venv (ipykernel 6 there), with an absolute interpreter path
  fs.mkdirSync(path.join(kernelsDir, "python3"));
  fs.writeFileSync(
    path.join(kernelsDir, "python3", "kernel.json"),
    JSON.stringify({ argv: [path.join(EG_VENV, "bin", "python"), "-m", "ipykernel_launcher", "-f", "{connection_file}"], display_name: "Python 3 (ipykernel)", language: "python", interrupt_mode: "signal", metadata: {} }),
  );

  const egPort = await freePort();
  const responsePort = await freePort();
  const egToken = randomBytes(16).toString("hex");
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    JUPYTER_DATA_DIR: dataDir,
    JUPYTER_PATH: dataDir,
    JUPYTER_RUNTIME_DIR: runtimeDir,
    JUPYTER_CONFIG_DIR: path.join(egBaseDir, "config"),
    JUPYTER_PLATFORM_DIRS: "1",
    PATH: `${path.join(EG_VENV, "bin")}:${process.env.PATH ?? ""}`,
    EG_LIST_KERNELS: "true",
    // A websocket whose client stopped reading is closed after max(3 x interval, 30 s) instead of
    // 90 s; a reconnect with the same session id waits that long behind it (docs/scale-out.md).
    // 10 s reaches EG's 30 s floor with a tenth of the pings of 1 s.
    EG_WS_PING_INTERVAL_SECS: "10",
    EG_CLIENT_ENVS: SENSE_CROSSING_ENVS.join(","),
    // EG picks a local kernel's 5 ports by binding and releasing them, then reuses exactly those on
    // every restart; from the OS's ephemeral range (32768-60999) an outgoing connection could take
    // one in between ("Address already in use", seen 2 in 14 runs). Below that range nothing does.
    EG_PORT_RANGE: "20000..29999",
    // kernels start in the notebook's folder (KERNEL_WORKING_DIR): EG 3.3 does it for container
    // kernels only; Sense kernels enter it themselves (kernel-extension/working-dir.ts)
    EG_MIRROR_WORKING_DIRS: "true",
    EG_KERNEL_LOG_DIR: logDir,
    // Keep EG's launcher traffic on loopback and off the default port 8877 other runs may hold.
    EG_RESPONSE_IP: "127.0.0.1",
    EG_RESPONSE_PORT: String(responsePort),
    EG_PROHIBITED_LOCAL_IPS: "",
    EG_AUTH_TOKEN: egToken,
    // EG refuses kernels for user root by default; tests (and CI) run as root.
    EG_UNAUTHORIZED_USERS: "sense-nobody",
    EG_SENSITIVE_ENV_KEYS: "token,password,secret",
    SENSE_TEST_MARKER: egBaseDir,
    ...options.egEnv,
  };
  for (const k of Object.keys(env)) if ((k.startsWith("SENSE_") && k !== "SENSE_TEST_MARKER" && !(options.egEnv && k in options.egEnv)) || k.startsWith("JUPYTERHUB_")) delete env[k];
  const args = ["--ip=127.0.0.1", `--port=${egPort}`, "--port_retries=0", ...(options.egArgs ?? [])];
  const egProcess = spawn(path.join(EG_VENV, "bin", "jupyter-enterprisegateway"), args, { env, cwd: egBaseDir, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  egProcess.stdout?.on("data", (d: Buffer) => (output += d.toString()));
  egProcess.stderr?.on("data", (d: Buffer) => (output += d.toString()));
  let exited = false;
  const exitPromise = new Promise<void>((resolve) => egProcess.on("exit", () => ((exited = true), resolve())));
  const egUrl = `http://127.0.0.1:${egPort}/`;
  let server: JupyterServer | undefined;

  const stopEg = () => endService(egProcess, () => exited, exitPromise, 10_000, egBaseDir);
  const stop = async () => {
    try {
      await server?.stop();
    } catch {
      /* keep stopping EG */
    }
    await stopEg();
  };
  process.once("exit", () => {
    if (!exited) egProcess.kill("SIGKILL");
    killProcessesUnder(egBaseDir);
  });

  const until = Date.now() + 60_000;
  for (;;) {
    if (exited) {
      await stop();
      throw new Error(`Enterprise Gateway exited during startup:\n${output}`);
    }
    try {
      const res = await fetch(`${egUrl}api/kernelspecs`, { headers: { Authorization: `token ${egToken}` } });
      if (res.ok) break;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > until) {
      await stop();
      throw new Error(`Enterprise Gateway did not answer within 60 s:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }

  // Kernels under a gateway get only KERNEL_* and allow-listed variables, never the server's
  // runtime file: the server's own address, token and root reach them as allow-listed SENSE_*
  // variables (JUPYTER_GATEWAY_ALLOWED_ENVS on the server, EG_CLIENT_ENVS on EG), which needs
  // the server's port and token before it starts.
  const serverPort = options.server?.port ?? (await freePort());
  const serverToken = options.server?.token ?? randomBytes(16).toString("hex");
  const rootDir = options.server?.rootDir ?? path.join(egBaseDir, "project");
  fs.mkdirSync(rootDir, { recursive: true });
  try {
    server = await startJupyterServer({
      ...options.server,
      port: serverPort,
      token: serverToken,
      rootDir,
      // WARN: at INFO, jupyter_server 2.21 logs every gateway kernel start with its whole
      // environment, tokens included ("GatewayKernelManager started kernel: ..., args: {...}").
      args: [`--gateway-url=${egUrl}`, "--GatewayClient.request_timeout=120", "--ServerApp.log_level=WARN", ...(options.server?.args ?? [])],
      env: {
        JUPYTER_GATEWAY_AUTH_TOKEN: egToken,
        JUPYTER_GATEWAY_ALLOWED_ENVS: SENSE_CROSSING_ENVS.join(","),
        SENSE_API_URL: `http://127.0.0.1:${serverPort}/`,
        SENSE_API_TOKEN: serverToken,
        SENSE_PROJECT_HOME: rootDir,
        ...options.server?.env,
      },
    });
  } catch (e) {
    await stopEg();
    throw e;
  }
  return { egUrl, egToken, egProcess, egBaseDir, server, egLog: () => output, stop };
}
