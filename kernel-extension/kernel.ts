/**
 * The Sense kernels' entry point:
 * `node <package>/dist/kernel-extension/kernel.js --config-path {connection_file} [--js]`.
 *
 * It builds tslab 1.0.22's kernel from its `dist` modules, as tslab's own `startKernel` does but
 * never delegating to a notebook-local tslab copy, with these changes:
 * - `%`/`%%` cells go to the magics registry (`dist/src/magics`), see magic-cells.ts;
 * - converters rebuild themselves after `npm install`, see converters.ts;
 * - `sense-tslab` resolves (run time and type-check) from any folder, and `console.log` compiles
 *   in an empty folder, see resolve.ts;
 * - `shutdown_request` (also for a restart) runs the lifecycle hooks first (stopping this master's
 *   workers), and the process exits right after, even when live sockets would keep Node running;
 * - `@jupyterlab/services`' console chatter is dropped instead of landing in a cell (src/util/services-console.ts).
 *
 * tslab's `dist/*` is not a public API: the seams used here are checked at startup and fail loudly.
 */
import { createHmac } from "node:crypto";
import { createRequire } from "node:module";
import * as path from "node:path";
import { parseArgs } from "node:util";
import type * as ConverterModule from "tslab/dist/converter";
import type * as ExecutorModule from "tslab/dist/executor";
import type * as JupyterModule from "tslab/dist/jupyter";
import { createHealingConverterSet, HealingConverterSet, wrapTypeScriptWatchers } from "./converters";
import { packageRoot, packageVersion } from "./install";
import { createMagicExecutor, KernelCell, MagicsModule, notebookScope, openCell, RequestWriters } from "./magic-cells";
import { hookPackageResolution, loadTslabTypeScript, overlayTslabTypeScript, prepareTypeRoots } from "./resolve";
import { pacedPublisher } from "./iopub-pace";
import { watchParent } from "./parent-gone";
import { coalesceStream } from "./stream-coalesce";
import { enterGatewayWorkingDir } from "./working-dir";
import { silenceServicesConsole } from "../src/util/services-console";

/** Command-line options of the kernel. */
export interface KernelOptions {
  /** The connection file Jupyter wrote for this kernel. */
  configPath: string;
  /** JavaScript flavour (`sense-js`) instead of TypeScript (`sense-ts`). */
  jsKernel: boolean;
}

const USAGE = "usage: node kernel.js --config-path <connection_file> [--js]";

/**
 * Parses the kernel's argv (without `node` and the script).
 * @throws Error with the usage text for unknown options or a missing `--config-path`.
 */
export function parseKernelArgs(argv: string[]): KernelOptions {
  let values: { "config-path"?: string; js?: boolean };
  try {
    ({ values } = parseArgs({ args: argv, options: { "config-path": { type: "string" }, js: { type: "boolean" } }, strict: true }));
  } catch (e) {
    throw new Error(`${(e as Error).message}\n${USAGE}`, { cause: e });
  }
  if (!values["config-path"]) throw new Error(`--config-path is required\n${USAGE}`);
  return { configPath: values["config-path"], jsKernel: !!values.js };
}

type Jupyter = typeof JupyterModule;
type ZmqServerInstance = InstanceType<Jupyter["ZmqServer"]>;
type ShellSocket = Parameters<ZmqServerInstance["handleShellMessage"]>[0];
type HandlerInstance = InstanceType<Jupyter["JupyterHandlerImpl"]>;
type ExecuteImpl = (req: { code: string }, writeStream: RequestWriters["writeStream"], writeDisplayData: RequestWriters["writeDisplayData"]) => Promise<unknown>;

const DELIM = Buffer.from("<IDS|MSG>");

/**
 * The `msg_type` of a raw shell/control message, or null when it is malformed or its signature
 * does not match `key` (then tslab's own handling reports it; nothing of ours runs for it).
 */
export function peekMessageType(key: string, frames: Buffer[]): string | null {
  const at = frames.findIndex((f) => f.equals(DELIM));
  if (at < 0 || frames.length < at + 6) return null;
  const signature = frames[at + 1].toString();
  const parts = frames.slice(at + 2);
  if (key) {
    const h = createHmac("sha256", key);
    for (const p of parts) h.update(p);
    if (h.digest("hex") !== signature) return null;
  }
  try {
    const header = JSON.parse(parts[0].toString()) as { msg_type?: unknown };
    return typeof header.msg_type === "string" ? header.msg_type : null;
  } catch {
    return null;
  }
}

/** What {@link startSenseKernel} returns (for logs and tests). */
export interface RunningKernel {
  server: ZmqServerInstance;
  converters: HealingConverterSet;
  /** Runs the lifecycle hooks once; later calls get the same promise. */
  shutdown(): Promise<void>;
}

/**
 * Starts the kernel and resolves once its sockets are bound.
 * @throws Error when tslab 1.0.22's internals this kernel relies on are missing.
 */
export async function startSenseKernel(options: KernelOptions): Promise<RunningKernel> {
  // The kernel's own stderr (the server log) — tslab redirects process.stderr.write per cell later.
  const kernelLog = process.stderr.write.bind(process.stderr);
  const log = (msg: string) => void kernelLog(`${msg}\n`);
  silenceServicesConsole();

  const root = packageRoot(__dirname);
  hookPackageResolution(root);
  try {
    overlayTslabTypeScript(root, prepareTypeRoots());
  } catch (e) {
    log(`sense: sense-tslab types will not resolve outside a folder that has them: ${(e as Error).message}`);
  }
  wrapTypeScriptWatchers(loadTslabTypeScript().sys);

  // Loaded only now: tslab's modules must see the overlaid TypeScript.
  const load = createRequire(__filename);
  const { createConverter } = load("tslab/dist/converter") as typeof ConverterModule;
  const { createExecutor } = load("tslab/dist/executor") as typeof ExecutorModule;
  const jupyter = load("tslab/dist/jupyter") as Jupyter;
  const { runShutdownHooks } = load(path.join(root, "dist", "src", "lifecycle")) as typeof import("../src/lifecycle");

  // The registry's index when it has one; else its runner, with the built-in %sense_* magics
  // registered by importing their module.
  const loadRegistry = (): unknown => {
    const dir = path.join(root, "dist", "src", "magics");
    try {
      return load(dir);
    } catch (e) {
      if ((e as { code?: string }).code !== "MODULE_NOT_FOUND" || !String((e as Error).message).includes(dir)) throw e;
    }
    try {
      load(path.join(dir, "builtins"));
    } catch (e) {
      log(`sense: built-in magics unavailable: ${(e as Error).message}`);
    }
    return load(path.join(dir, "run"));
  };

  const converters = createHealingConverterSet({ isJS: options.jsKernel, cwd: process.cwd(), create: createConverter, log });
  // The cell being run: opened for each execute request (its CellIO: sink, scope, signal, show).
  let current: KernelCell | null = null;
  const scope = notebookScope();
  // tslab prints a cell's last expression with this `log`. An object goes to the cell's `show`,
  // which displays what has a rich form (worker lists, network info, ...) and prints the rest.
  const lastExpressionLog = (...args: unknown[]): void => {
    if (args.length === 1 && typeof args[0] === "object" && args[0] !== null && current) {
      try {
        current.io.show(args[0]);
        return;
      } catch (e) {
        log(`sense: rich display failed, printing as text: ${(e as Error).message}`);
      }
    }
    console.log(...args);
  };
  const tslabExecutor = createExecutor(process.cwd(), converters, { log: lastExpressionLog, error: console.error });

  let magics: MagicsModule | null = null;
  const executor = createMagicExecutor(tslabExecutor, {
    currentCell: () => current,
    scope,
    loadMagics() {
      if (!magics) {
        const m = loadRegistry() as Partial<MagicsModule>;
        if (typeof m.runCell !== "function") throw new Error("dist/src/magics exports no runCell");
        magics = m as MagicsModule;
      }
      return magics;
    },
  });

  const handler: HandlerInstance = new jupyter.JupyterHandlerImpl(executor, options.jsKernel);
  // The seam: handleExecuteImpl runs in queue order and calls executor.execute synchronously, so
  // the writers recorded here are the ones of the request whose code the executor is given.
  const seam = handler as unknown as { handleExecuteImpl?: ExecuteImpl };
  const executeImpl = seam.handleExecuteImpl;
  if (typeof executeImpl !== "function") throw new Error("tslab internals changed: JupyterHandlerImpl.handleExecuteImpl is missing (tslab 1.0.22 expected)");
  seam.handleExecuteImpl = function (this: HandlerInstance, req, writeStream, writeDisplayData) {
    // tslab sends every write as its own message; a print loop must not become a message flood.
    const stream = coalesceStream(writeStream);
    const display: typeof writeDisplayData = (data, update) => {
      stream.flush();
      writeDisplayData(data, update);
    };
    current = openCell({ writeStream: stream.write, writeDisplayData: display }, scope);
    return executeImpl.call(this, req, stream.write, display).finally(stream.flush);
  };
  const kernelInfo = handler.handleKernel.bind(handler);
  const version = packageVersion(root);
  handler.handleKernel = () => {
    const info = kernelInfo();
    info.banner = `${info.banner} (Sense ${version})`;
    return info;
  };
  // tslab always answers restart: false; the protocol wants the request's value echoed.
  handler.handleShutdown = (req) => ({ restart: !!req.restart });

  let hooks: Promise<void> | null = null;
  const shutdown = () => (hooks ??= runShutdownHooks(4_000));
  let warmed = false;
  const warm = () => {
    if (warmed) return;
    warmed = true;
    // Building the first converter takes ~1-2 s; do it after the first kernel_info reply so the
    // client sees the kernel ready early (the first cell waits for it either way).
    try {
      converters.warm();
    } catch (e) {
      log(`sense: converter warm-up failed: ${(e as Error).message}`);
    }
    try {
      const { onInstalled } = load(path.join(root, "dist", "src", "install")) as { onInstalled?: (l: () => void) => () => void };
      onInstalled?.(() => converters.invalidate("install"));
    } catch (e) {
      log(`sense: install notifications unavailable: ${(e as Error).message}`);
    }
  };

  class SenseZmqServer extends jupyter.ZmqServer {
    override async handleShellMessage(sock: ShellSocket, ...frames: Buffer[]): Promise<void> {
      const type = peekMessageType(this.connInfo?.key ?? "", frames);
      if (type === "shutdown_request") await shutdown();
      await super.handleShellMessage(sock, ...frames);
      if (type === "kernel_info_request" && !warmed) setImmediate(warm);
      if (type === "shutdown_request") {
        // Sockets are closed now; anything else (a worker's websocket, a timer) must not keep
        // the process alive until Jupyter's SIGKILL. The short delay lets ZeroMQ flush the reply.
        setTimeout(() => process.exit(0), 50).unref();
      }
    }
  }

  const server = new SenseZmqServer(handler, options.configPath);
  process.on("SIGINT", () => executor.interrupt());
  process.on("SIGTERM", () => {
    void shutdown().finally(() => process.exit(0));
  });
  process.on("uncaughtException", (err) => console.error("UncaughtException:", err));
  process.on("unhandledRejection", (reason) => console.error("UnhandledPromiseRejection:", reason));
  await server.init();
  // Exit when the Jupyter Server that started us is gone (SIGKILLed, say): tslab has no parent
  // poller, so a kernel — a worker whose launch was in flight, with no watchdog yet — would
  // otherwise outlive its server forever. Same rule as ipykernel and the fast kernel.
  watchParent(() => void shutdown().finally(() => process.exit(0)));
  // Serialise and pace iopub: a flood of prints is delayed, never dropped (see iopub-pace.ts).
  const seamServer = server as unknown as { iopub?: { send(frames: (Buffer | string)[]): Promise<void> } };
  if (seamServer.iopub) seamServer.iopub = pacedPublisher(seamServer.iopub);
  else log("sense: tslab internals changed: no iopub socket to pace");
  // In case no kernel_info_request comes soon (a plain ZeroMQ client), warm up anyway.
  setTimeout(warm, 1_000).unref();
  return { server, converters, shutdown };
}

/** Runs the kernel from the command line; exits 2 on bad arguments, 1 when it cannot start. */
export function main(argv: string[] = process.argv.slice(2)): void {
  let options: KernelOptions;
  try {
    options = parseKernelArgs(argv);
  } catch (e) {
    process.stderr.write(`sense kernel: ${(e as Error).message}\n`);
    process.exit(2);
  }
  // The connection file path is resolved before a gateway kernel moves to its notebook's folder.
  options = { ...options, configPath: path.resolve(options.configPath) };
  enterGatewayWorkingDir();
  startSenseKernel(options).catch((e: unknown) => {
    process.stderr.write(`sense kernel: cannot start: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  });
}

if (require.main === module) main();
