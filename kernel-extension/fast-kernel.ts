/**
 * `sense-fast`: a lean Jupyter kernel (messaging 5.3 over ZeroMQ) that runs plain JavaScript and
 * never loads TypeScript. Workers run code the master already type-checked and transpiled
 * (`src/transpile.ts`), so a worker starts in a fraction of a tslab kernel's time and memory.
 *
 * Usage (from its kernelspec, see `fast-spec.ts`): `node fast-kernel.js --config-path <connection file>`.
 *
 * Output: `process.stdout`/`process.stderr` writes (so `console.*`) are buffered per cell and
 * stream and flushed on the next macrotask or at 64 KiB, so a burst of prints becomes a handful of
 * messages and a lone line leaves as soon as the current task ends. Output is attributed to the
 * cell whose code (or whose timers and promises) produced it, via AsyncLocalStorage.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import * as fs from "node:fs";
import Module from "node:module";
import * as path from "node:path";
import * as util from "node:util";
import type * as Zmq from "zeromq";
import { isMimeBundle } from "../src/display/bundle";
import { Codec, ConnectionInfo, Message, SendQueue } from "./fast-wire";
import { frameBytes, Pacer, paceLimits } from "./iopub-pace";
import { watchParent } from "./parent-gone";
import { StreamCoalescer } from "./stream-coalesce";
import { complete, inspect, isComplete, runCell } from "./fast-exec";
import { enterGatewayWorkingDir } from "./working-dir";

type StreamName = "stdout" | "stderr";

/** Output state of one execute request; lives as long as code started by that cell can write. */
class CellContext {
  constructor(readonly parent: Message) {}
}

const kernelLog = process.stderr.write.bind(process.stderr);
function log(...args: unknown[]): void {
  kernelLog(`[sense-fast] ${util.format(...args)}\n`);
}

class InterruptError extends Error {
  override name = "KeyboardInterrupt";
  constructor() {
    super("Execution interrupted");
  }
}


/** Options of the `display()` global. */
interface DisplayOptions {
  displayId?: string;
  update?: boolean;
  metadata?: Record<string, unknown>;
}

class FastKernel {
  private readonly codec: Codec;
  private iopubQ!: SendQueue;
  private sockets: Zmq.Socket[] = [];
  private readonly cells = new AsyncLocalStorage<CellContext>();
  private lastCell: CellContext | null = null;
  private readonly streams = new StreamCoalescer<CellContext>((ctx, name, text) => void this.publish("stream", { name, text }, ctx.parent));
  private executionCount = 0;
  private executing = false;
  private aborting = false;
  private queued = 0;
  private shellChain: Promise<void> = Promise.resolve();
  private interrupt: ((e: Error) => void) | null = null;
  private shuttingDown = false;
  private readonly pacer = new Pacer(paceLimits());

  constructor(
    private readonly info: ConnectionInfo,
    private readonly zmq: typeof Zmq,
  ) {
    this.codec = new Codec(info);
  }

  // ---- output ----

  private publish(msgType: string, content: unknown, parent: Message | null, metadata?: Record<string, unknown>): Promise<void> {
    const frames = this.codec.encode(msgType, content, parent, false, metadata);
    const bytes = frameBytes(frames);
    // Paced under the server's IOPub limits: a flood is delayed, never dropped by the server.
    return this.pacer.send(msgType, bytes, () => this.iopubQ.send(frames), parent?.header.msg_id ?? "");
  }

  private flush(ctx: CellContext): void {
    this.streams.flush(ctx);
  }

  private flushAll = (): void => {
    this.streams.flushAll();
  };

  private currentCell(): CellContext | null {
    return this.cells.getStore() ?? this.lastCell;
  }

  /** Buffers stream text for the cell that produced it (stream-coalesce.ts). */
  write(name: StreamName, text: string): void {
    const ctx = this.currentCell();
    if (!ctx) {
      kernelLog(text);
      return;
    }
    this.streams.write(ctx, name, text);
  }

  /** Sends a display_data (or update_display_data) for the current cell. */
  display(value: unknown, options: DisplayOptions = {}): void {
    const ctx = this.currentCell();
    const data = isMimeBundle(value, { partial: true }) ? value : { "text/plain": util.inspect(value) };
    if (ctx) this.flush(ctx);
    const content = { data, metadata: options.metadata ?? {}, transient: options.displayId ? { display_id: options.displayId } : {} };
    void this.publish(options.update ? "update_display_data" : "display_data", content, ctx?.parent ?? null);
  }

  private installGlobals(): void {
    const makeWrite = (name: StreamName) =>
      ((chunk: string | Uint8Array, encoding?: BufferEncoding | ((e?: Error | null) => void), cb?: (e?: Error | null) => void): boolean => {
        const text = typeof chunk === "string" ? chunk : Buffer.from(chunk).toString(typeof encoding === "string" ? encoding : "utf8");
        this.write(name, text);
        const done = typeof encoding === "function" ? encoding : cb;
        if (done) process.nextTick(done);
        return true;
      }) as typeof process.stdout.write;
    process.stdout.write = makeWrite("stdout");
    process.stderr.write = makeWrite("stderr");

    const cwd = process.cwd();
    const cellFile = path.join(cwd, "__cell.js");
    const base = Module.createRequire(cellFile);
    const senseIndex = path.resolve(__dirname, "..", "src", "index.js");
    const cellRequire = ((id: string) => (id === "sense-tslab" ? base(senseIndex) : base(id))) as NodeJS.Require;
    const resolve = ((id: string, opts?: { paths?: string[] }) => (id === "sense-tslab" ? senseIndex : base.resolve(id, opts))) as NodeJS.RequireResolve;
    resolve.paths = base.resolve.paths;
    cellRequire.resolve = resolve;
    cellRequire.cache = base.cache;
    cellRequire.extensions = base.extensions;
    cellRequire.main = undefined;
    const cellModule = { exports: {}, filename: cellFile, id: ".", path: cwd, loaded: true, children: [], paths: Module.createRequire(cellFile).resolve.paths(".") ?? [] };
    const display = (value: unknown, options?: DisplayOptions): void => this.display(value, options);
    const g = globalThis as Record<string, unknown>;
    for (const [k, v] of Object.entries({ require: cellRequire, module: cellModule, exports: cellModule.exports, __filename: cellFile, __dirname: cwd, display })) {
      Object.defineProperty(g, k, { value: v, writable: true, configurable: true, enumerable: false });
    }

    process.on("uncaughtException", (e) => this.write("stderr", `Uncaught ${util.inspect(e)}\n`));
    process.on("unhandledRejection", (e) => this.write("stderr", `Unhandled promise rejection: ${util.inspect(e)}\n`));
    // A busy synchronous cell is stopped by breakOnSigint; this covers a cell waiting on a promise.
    process.on("SIGINT", () => this.interrupt?.(new InterruptError()));
  }

  // ---- requests ----

  private reply(sock: SendQueue, req: Message, msgType: string, content: unknown): Promise<void> {
    return sock.send(this.codec.encode(msgType, content, req, true));
  }

  private kernelInfo() {
    return {
      status: "ok",
      protocol_version: "5.3",
      implementation: "sense-fast",
      implementation_version: "0.1.0",
      language_info: { name: "javascript", version: process.versions.node, mimetype: "application/javascript", file_extension: ".js" },
      banner: `Sense fast JavaScript worker (Node ${process.version})`,
      help_links: [],
    };
  }

  private async execute(sock: SendQueue, req: Message): Promise<void> {
    const c = req.content as { code?: string; silent?: boolean; store_history?: boolean; stop_on_error?: boolean };
    const code = String(c.code ?? "");
    const silent = c.silent === true;
    if (this.aborting) {
      await this.reply(sock, req, "execute_reply", { status: "aborted", execution_count: this.executionCount });
      return;
    }
    if (!silent && c.store_history !== false) this.executionCount++;
    const count = this.executionCount;
    if (!silent) void this.publish("execute_input", { code, execution_count: count }, req);
    const ctx = new CellContext(req);
    this.lastCell = ctx;
    const interrupted = new Promise<never>((_, reject) => (this.interrupt = reject));
    interrupted.catch(() => undefined);
    this.executing = true;
    const outcome = await this.cells.run(ctx, () => runCell(code, interrupted));
    this.executing = false;
    this.interrupt = null;
    this.flush(ctx);
    if (outcome.ok) {
      if (outcome.value !== undefined && !silent) {
        void this.publish("execute_result", { execution_count: count, data: { "text/plain": util.inspect(outcome.value) }, metadata: {} }, req);
      }
      await this.reply(sock, req, "execute_reply", { status: "ok", execution_count: count, user_expressions: {}, payload: [] });
      return;
    }
    const err = outcome.error;
    const interruptedRun = err instanceof InterruptError || (err instanceof Error && (err as NodeJS.ErrnoException).code === "ERR_SCRIPT_EXECUTION_INTERRUPTED");
    const ename = interruptedRun ? "KeyboardInterrupt" : err instanceof Error ? err.name : "Error";
    const evalue = interruptedRun ? "Execution interrupted" : err instanceof Error ? err.message : util.inspect(err);
    const traceback = err instanceof Error && err.stack && !interruptedRun ? cleanStack(err.stack) : [`${ename}: ${evalue}`];
    const content = { ename, evalue, traceback };
    void this.publish("error", content, req);
    await this.reply(sock, req, "execute_reply", { status: "error", execution_count: count, ...content });
    if (c.stop_on_error !== false) this.aborting = true;
  }

  private onShell = (sock: SendQueue, req: Message): void => {
    const t = req.header.msg_type;
    if (t === "execute_request" || t === "history_request") {
      this.queued++;
      this.shellChain = this.shellChain.then(async () => {
        await this.publish("status", { execution_state: "busy" }, req);
        try {
          if (t === "execute_request") await this.execute(sock, req);
          else await this.reply(sock, req, "history_reply", { status: "ok", history: [] });
        } catch (e) {
          log("request failed:", e);
        } finally {
          if (--this.queued === 0) this.aborting = false;
          await this.publish("status", { execution_state: "idle" }, req);
        }
      });
      return;
    }
    // Answered at once even while a cell runs, so a person can connect to a busy worker.
    void this.publish("status", { execution_state: "busy" }, req);
    void this.reply(sock, req, t.replace(/_request$/, "_reply"), this.answer(req));
    if (!this.executing) void this.publish("status", { execution_state: "idle" }, req);
  };

  private answer(req: Message): unknown {
    const c = req.content as { code?: string; cursor_pos?: number };
    const code = String(c.code ?? "");
    const cursor = typeof c.cursor_pos === "number" ? c.cursor_pos : code.length;
    switch (req.header.msg_type) {
      case "kernel_info_request":
        return this.kernelInfo();
      case "is_complete_request": {
        const status = isComplete(code);
        return status === "incomplete" ? { status, indent: "" } : { status };
      }
      case "complete_request": {
        const r = complete(code, cursor);
        return { status: "ok", matches: r.matches, cursor_start: r.start, cursor_end: r.end, metadata: {} };
      }
      case "inspect_request": {
        const text = inspect(code, cursor);
        return { status: "ok", found: text !== null, data: text === null ? {} : { "text/plain": text }, metadata: {} };
      }
      case "comm_info_request":
        return { status: "ok", comms: {} };
      default:
        return { status: "error", ename: "NotImplemented", evalue: `${req.header.msg_type} is not supported`, traceback: [] };
    }
  }

  private onControl = async (sock: SendQueue, req: Message): Promise<void> => {
    const t = req.header.msg_type;
    if (t === "shutdown_request") {
      const content = { status: "ok", restart: (req.content as { restart?: boolean }).restart === true };
      await this.reply(sock, req, "shutdown_reply", content);
      await this.publish("shutdown_reply", content, req);
      await this.shutdown(0);
    } else if (t === "interrupt_request") {
      this.interrupt?.(new InterruptError());
      await this.reply(sock, req, "interrupt_reply", { status: "ok" });
    } else if (t === "kernel_info_request") {
      await this.reply(sock, req, "kernel_info_reply", this.kernelInfo());
    }
  };

  /** Closes the sockets (sent messages get a moment to leave) and exits. */
  async shutdown(code: number): Promise<void> {
    if (this.shuttingDown) return;
    this.shuttingDown = true;
    this.flushAll();
    for (const s of this.sockets) {
      s.linger = 200;
      s.close();
    }
    // User code may hold timers or sockets open; the kernel must go now, not when they end.
    setTimeout(() => process.exit(code), 50);
  }

  async start(): Promise<void> {
    const { zmq, info } = this;
    const addr = (port: number) => `${info.transport}://${info.ip}:${port}`;
    // sendTimeout 0: see SendQueue. No high-water mark on iopub: output is never dropped.
    const iopub = new zmq.Publisher({ sendHighWaterMark: 0, sendTimeout: 0 });
    const shell = new zmq.Router({ sendTimeout: 0 });
    const control = new zmq.Router({ sendTimeout: 0 });
    const stdin = new zmq.Router();
    const hb = new zmq.Reply({ sendTimeout: 0 });
    this.sockets = [iopub, shell, control, stdin, hb];
    const onErr = (e: unknown) => log("send failed:", e);
    this.iopubQ = new SendQueue(iopub, onErr);
    const shellQ = new SendQueue(shell, onErr);
    const controlQ = new SendQueue(control, onErr);
    await Promise.all([iopub.bind(addr(info.iopub_port)), shell.bind(addr(info.shell_port)), control.bind(addr(info.control_port)), stdin.bind(addr(info.stdin_port)), hb.bind(addr(info.hb_port))]);
    this.installGlobals();
    const loop = async (sock: Zmq.Router, handle: (m: Message) => void | Promise<void>) => {
      for await (const frames of sock) {
        let msg: Message;
        try {
          msg = this.codec.decode(frames);
        } catch (e) {
          log("dropped a message:", e instanceof Error ? e.message : e);
          continue;
        }
        await handle(msg);
      }
    };
    void loop(shell, (m) => this.onShell(shellQ, m)).catch((e) => log("shell loop ended:", e));
    void loop(control, (m) => this.onControl(controlQ, m)).catch((e) => log("control loop ended:", e));
    void (async () => {
      for await (const frames of hb) await hb.send(frames);
    })().catch(() => undefined);
    void this.publish("status", { execution_state: "starting" }, null);
    this.watchParent();
  }

  /** Exits when the Jupyter Server that started this kernel is gone (it was SIGKILLed, say). */
  private watchParent(): void {
    watchParent(() => void this.shutdown(0));
  }
}

/** Stack lines without the kernel's own frames. */
function cleanStack(stack: string): string[] {
  const lines = stack.split("\n");
  const cut = lines.findIndex((l) => /fast-exec\.js|fast-kernel\.js|node:vm|node:internal/.test(l));
  return cut > 0 ? lines.slice(0, cut) : lines;
}

function configPathFromArgv(argv: string[]): string {
  const i = argv.indexOf("--config-path");
  const p = i >= 0 ? argv[i + 1] : argv.find((a) => a.endsWith(".json"));
  if (!p) throw new Error("usage: fast-kernel.js --config-path <connection file>");
  return p;
}

async function main(): Promise<void> {
  const info = JSON.parse(fs.readFileSync(configPathFromArgv(process.argv.slice(2)), "utf8")) as ConnectionInfo;
  enterGatewayWorkingDir();
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const zmq = require("zeromq") as typeof Zmq;
  await new FastKernel(info, zmq).start();
}

if (require.main === module) {
  main().catch((e) => {
    log("failed to start:", e);
    process.exit(1);
  });
}
