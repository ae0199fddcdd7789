/**
 * The protocol core of every Sense kernel (`sense-ts`, `sense-js`, `sense-fast`): Jupyter
 * messaging 5.3 over ZeroMQ, one implementation for all of them. It owns the sockets (wire codec
 * and HMAC in fast-wire.ts), iopub pacing (iopub-pace.ts), the execute queue with busy/idle,
 * `stop_on_error` both ways, per-cell output, execute_result and error messages, magics, history,
 * interrupt, shutdown with the lifecycle hooks, and the parent watch. What a cell's code means is
 * the {@link Engine}'s business (js-engine.ts, ts-engine.ts).
 *
 * Output: `process.stdout`/`process.stderr` writes (so `console.*`) are attributed to the cell
 * whose code (or whose timers and promises) produced it, via AsyncLocalStorage; the first write
 * of a turn of the event loop goes out at once, the rest of the turn is coalesced (or sent at
 * 64 KiB), so a burst of prints becomes a handful of messages.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import * as util from "node:util";
import type * as Zmq from "zeromq";
import { CURRENT_CELL_KEY, type CellIO, type CurrentCell, type DisplayMessage, type MimeBundle, type OutputSink } from "../src/protocol/cell";
import type { CellOutcome, Engine } from "./engine";
import { Codec, ConnectionInfo, Message, SendQueue } from "../src/protocol/wire";
import { frameBytes, Pacer, paceLimits } from "./iopub-pace";
import { StreamCoalescer } from "./stream-coalesce";
import { LateOutput } from "./late-output";
import { isMagicSource } from "../src/protocol/cell";
import type { MagicsModule } from "./magic-cells";
import { watchParent } from "./parent-gone";
import { evaluateUserExpressions } from "./js-exec";
import { isMimeBundle } from "../src/display/bundle";
import { presenter, type Presenter } from "./present";
import { describeError, KeyboardInterrupt } from "./cell-errors";
import { distPath, isPrecompiled, isSenseSessionName } from "../src/protocol/marks";
import { UsageMeter } from "./usage";

type StreamName = "stdout" | "stderr";

/** Output state of one execute request; lives as long as code started by that cell can write. */
class CellContext {
  readonly abort = new AbortController();
  /** Set when the cell's reply is due: output from now on is late. */
  done = false;
  /** Holders of this cell's sink that may write after it finished (launched workers). */
  holds = 0;
  /** Where late output goes, when the cell ended with holders (late-output.ts). */
  late: LateOutput | null = null;
  constructor(
    readonly parent: Message,
    readonly executionCount: number,
  ) {}
}

/** Options of the `display()` global. */
interface DisplayGlobalOptions {
  displayId?: string;
  update?: boolean;
  metadata?: Record<string, unknown>;
}

/** What the core needs besides the engine. */
export interface CoreOptions {
  /** `implementation` in kernel_info (the kernelspec's name). */
  implementation: string;
  /** This package's version. */
  version: string;
  /** This package's root (to find `dist/src/...` lazily). */
  root: string;
  /** One line to the kernel log (the server's log). */
  log: (line: string) => void;
  /** Loads the magics registry (on the first magic cell). */
  loadMagics: () => MagicsModule;
}

/** One history entry: session, line number, input. */
type HistoryEntry = [number, number, string];

/** The protocol core; {@link KernelCore.start} binds the sockets. */
export class KernelCore {
  private readonly codec: Codec;
  private iopubQ!: SendQueue;
  private sockets: Zmq.Socket[] = [];
  private readonly cells = new AsyncLocalStorage<CellContext>();
  private lastCell: CellContext | null = null;
  private running: CellContext | null = null;
  private readonly streams = new StreamCoalescer<CellContext>((ctx, name, text) => void this.publish("stream", { name, text }, ctx.parent));
  private executionCount = 0;
  /** Requests numbered by arrival; after an error with stop_on_error, those up to abortThrough are aborted. */
  private arrived = 0;
  private abortThrough = 0;
  private shellChain: Promise<void> = Promise.resolve();
  private shuttingDown: Promise<void> | null = null;
  private readonly pacer = new Pacer(paceLimits());
  private readonly history: HistoryEntry[] = [];
  private magics: MagicsModule | null = null;
  /** Late displays still written to. */
  private readonly lateOutputs = new Set<LateOutput>();
  /** Updates of finished cells' displays sent while no cell ran (no recorder saw them): replayed under the next cell. */
  private readonly unseenUpdates = new Map<string, { content: unknown; owner: Message }>();
  private warmTimer: NodeJS.Timeout | null = null;
  private workerCode = false;
  /** How a value is shown (a last expression, `display(value)`). */
  private readonly present: Presenter;
  /** Answers usage_request (jupyter-resource-usage's Kernel Usage panel, Sense's worker tables). */
  private readonly usage = new UsageMeter();

  constructor(
    private readonly info: ConnectionInfo,
    private readonly zmq: typeof Zmq,
    private readonly engine: Engine,
    private readonly options: CoreOptions,
  ) {
    this.codec = new Codec(info);
    this.present = presenter(options.root);
  }

  // ---- output ----

  private publish(msgType: string, content: unknown, parent: Message | null, metadata?: Record<string, unknown>): Promise<void> {
    const frames = this.codec.encode(msgType, content, parent, false, metadata);
    // Paced under the server's IOPub limits: a flood is delayed, never dropped by the server.
    return this.pacer.send(msgType, frameBytes(frames), () => this.iopubQ.send(frames), parent?.header.msg_id ?? "");
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

  /** Buffers stream text for `ctx` (default: the cell that is running this code). */
  write(name: StreamName, text: string, ctx: CellContext | null = this.currentCell()): void {
    if (!ctx) {
      this.options.log(text.replace(/\n$/, ""));
      return;
    }
    if (ctx.done && ctx.late) {
      ctx.late.append(text);
      return;
    }
    // Coalesced per cell (stream-coalesce.ts): the first write of a turn of the event loop at once.
    this.streams.write(ctx, name, text);
  }

  /** Sends a display_data (or update_display_data) for `ctx`. */
  private displayMessage(ctx: CellContext | null, msg: DisplayMessage, update: boolean): void {
    if (ctx) this.flush(ctx);
    const content = { data: msg.data, metadata: msg.metadata ?? {}, transient: msg.transient ?? {} };
    const displayId = msg.transient?.display_id;
    if (ctx?.done && update && displayId) return this.lateUpdate(ctx, displayId, content);
    // A new display after the cell ended can only be recorded inside the cell's late display.
    if (ctx?.done && ctx.late && !update) return ctx.late.appendDisplay(msg.data);
    void this.publish(update ? "update_display_data" : "display_data", content, ctx?.parent ?? null);
  }

  /**
   * An update of a display that a finished cell showed. It goes under the cell running now, as
   * recorders (nbclient) keep only that cell's messages and apply updates by display id; with no
   * cell running, under the cell that owns it (JupyterLab routes it by id all the same), and it
   * is sent again under the next cell so recorders get the final state too.
   */
  private lateUpdate(owner: CellContext, displayId: string, content: unknown): void {
    const running = this.running;
    if (running) this.unseenUpdates.delete(displayId);
    else this.unseenUpdates.set(displayId, { content, owner: owner.parent });
    void this.publish("update_display_data", content, running?.parent ?? owner.parent);
  }

  /** Opens the late display of `ctx` (it ends with holders of its sink): shown now, updated later. */
  private openLate(ctx: CellContext): void {
    const displayId = `sense-late-${ctx.parent.header.msg_id}`;
    const transient = { display_id: displayId };
    const late = new LateOutput(displayId, (bundle) => this.lateUpdate(ctx, displayId, { data: bundle, metadata: {}, transient }));
    ctx.late = late;
    this.lateOutputs.add(late);
    void this.publish("display_data", { data: LateOutput.empty(), metadata: {}, transient }, ctx.parent);
  }

  /** Sends what finished cells' displays gathered, under `req` (a cell starts or ends). */
  private catchUpLate(req: Message): void {
    for (const late of this.lateOutputs) late.flush();
    for (const [displayId, u] of [...this.unseenUpdates]) {
      this.unseenUpdates.delete(displayId);
      void this.publish("update_display_data", u.content, req);
    }
  }

  /** A sink writing to `ctx`, whenever it is written. */
  private sinkFor(ctx: CellContext | null): OutputSink {
    return {
      stdout: (text) => this.write("stdout", text, ctx),
      stderr: (text) => this.write("stderr", text, ctx),
      retain: () => {
        if (!ctx) return () => undefined;
        ctx.holds++;
        let held = true;
        return () => {
          if (!held) return;
          held = false;
          ctx.holds--;
          if (ctx.holds === 0 && ctx.late) {
            ctx.late.flush();
            ctx.late.close();
            this.lateOutputs.delete(ctx.late);
          }
        };
      },
      display: (bundle: MimeBundle, options = {}) =>
        this.displayMessage(ctx, { data: { ...bundle }, metadata: {}, transient: options.displayId ? { display_id: options.displayId } : {} }, !!(options.update && options.displayId)),
    };
  }

  private cellIO(ctx: CellContext): CellIO {
    return {
      sink: this.sinkFor(ctx),
      scope: this.engine.scope(),
      signal: ctx.abort.signal,
      displayMessage: (msg, update) => this.displayMessage(ctx, msg, update),
      executionCount: ctx.executionCount,
    };
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
    const display = (value: unknown, options: DisplayGlobalOptions = {}): void => {
      const data = isMimeBundle(value, { partial: true }) ? (value as Record<string, unknown>) : this.present(value);
      const msg = { data: { ...data }, metadata: options.metadata ?? {}, transient: options.displayId ? { display_id: options.displayId } : {} };
      this.displayMessage(this.currentCell(), msg, !!options.update);
    };
    // IPython's clear_output: the front end clears the cell's output (at the next output when `wait`).
    const clearOutput = (wait = false): void => {
      const ctx = this.currentCell();
      if (ctx) this.flush(ctx);
      void this.publish("clear_output", { wait: wait === true }, ctx?.parent ?? null);
    };
    for (const [name, value] of Object.entries({ display, clearOutput })) {
      Object.defineProperty(globalThis, name, { value, writable: true, configurable: true, enumerable: false });
    }
    // The package's captureSink() (and tslab's display API) ask this for the cell running now.
    const current = (): CurrentCell => {
      const ctx = this.currentCell();
      return { sink: this.sinkFor(ctx), displayMessage: (msg, update) => this.displayMessage(ctx, msg, update) };
    };
    Object.defineProperty(globalThis, CURRENT_CELL_KEY, { value: current, configurable: true, enumerable: false });

    process.on("uncaughtException", (e) => this.write("stderr", `Uncaught ${util.inspect(e)}\n`));
    process.on("unhandledRejection", (e) => this.write("stderr", `Unhandled promise rejection: ${util.inspect(e)}\n`));
    // A busy synchronous cell is stopped by breakOnSigint; this covers a cell waiting on a promise
    // and a cell still compiling (its engine looks at the signal before running it).
    process.on("SIGINT", () => this.interruptRunning());
    process.on("SIGTERM", () => void this.shutdown(0));
  }

  private interruptRunning(): void {
    this.running?.abort.abort(new KeyboardInterrupt());
  }

  // ---- requests ----

  private reply(sock: SendQueue, req: Message, msgType: string, content: unknown): Promise<void> {
    return sock.send(this.codec.encode(msgType, content, req, true));
  }

  private kernelInfo() {
    const { languageInfo, banner } = this.engine.info;
    return {
      status: "ok",
      protocol_version: "5.3",
      implementation: this.options.implementation,
      implementation_version: this.options.version,
      language_info: languageInfo,
      banner: `${banner} (Sense ${this.options.version}, Node ${process.version})`,
      help_links: [
        { text: "Sense for TypeScript notebooks", url: "https://github.com/yunabe/tslab#readme" },
        { text: "TypeScript handbook", url: "https://www.typescriptlang.org/docs/handbook/intro.html" },
        { text: "Node.js API", url: "https://nodejs.org/api/" },
      ],
    };
  }

  private loadMagics(): MagicsModule {
    this.magics ??= this.options.loadMagics();
    return this.magics;
  }

  private async runMagic(code: string, io: CellIO): Promise<CellOutcome & { reported?: boolean }> {
    const magics = this.loadMagics();
    const aborted = new Promise<{ ok: false; error: unknown }>((resolve) =>
      io.signal.addEventListener("abort", () => resolve({ ok: false, error: io.signal.reason }), { once: true }),
    );
    const result = await Promise.race([magics.runCell(code, { sink: io.sink, scope: io.scope, signal: io.signal }), aborted]);
    if (result.ok) return { ok: true, value: result.displayed ? undefined : (result.value ?? undefined) };
    // The registry has reported its own failures on stderr (one line); an interrupt it has not.
    return { ok: false, error: result.error, reported: !(result.error instanceof KeyboardInterrupt) };
  }

  private async runCode(code: string, io: CellIO, precompiled: boolean): Promise<CellOutcome & { reported?: boolean }> {
    try {
      if (!precompiled && isMagicSource(code)) return await this.runMagic(code, io);
      return await this.engine.execute(code, io, precompiled);
    } catch (error) {
      return { ok: false, error };
    }
  }

  private async execute(sock: SendQueue, req: Message, seq: number): Promise<void> {
    const c = req.content as { code?: unknown; silent?: unknown; store_history?: unknown; stop_on_error?: unknown; user_expressions?: unknown };
    const code = String(c.code ?? "");
    const silent = c.silent === true;
    const precompiled = isPrecompiled(req.metadata);
    if (precompiled) this.seenWorkerCode();
    else this.cancelWarm();
    if (seq <= this.abortThrough) {
      await this.reply(sock, req, "execute_reply", { status: "aborted", execution_count: this.executionCount });
      return;
    }
    if (!silent && c.store_history !== false) {
      this.executionCount++;
      this.history.push([0, this.executionCount, code]);
      if (this.history.length > 1000) this.history.shift();
    }
    const count = this.executionCount;
    if (!silent) void this.publish("execute_input", { code, execution_count: count }, req);
    const ctx = new CellContext(req, count);
    this.lastCell = ctx;
    this.running = ctx;
    if (!silent) this.catchUpLate(req);
    const outcome = await this.cells.run(ctx, () => this.runCode(code, this.cellIO(ctx), precompiled));
    this.flush(ctx);
    // Before the idle: a recorder takes the latest state of earlier cells' displays with this cell.
    if (!silent) this.catchUpLate(req);
    this.running = null;
    ctx.done = true;
    if (ctx.holds > 0 && !silent) this.openLate(ctx);
    if (outcome.ok) {
      if (outcome.value !== undefined && !silent) {
        let data: MimeBundle;
        try {
          data = this.present(outcome.value);
        } catch (e) {
          data = { "text/plain": `(the value could not be shown: ${e instanceof Error ? e.message : String(e)})` };
        }
        void this.publish("execute_result", { execution_count: count, data, metadata: {} }, req);
      }
      // Evaluated after the code, in this context, as ipykernel does (remote execution's answers).
      const userExpressions = evaluateUserExpressions(c.user_expressions, (v) => (isMimeBundle(v, { partial: true }) ? (v as Record<string, unknown>) : { "text/plain": util.inspect(v) }));
      await this.reply(sock, req, "execute_reply", { status: "ok", execution_count: count, user_expressions: userExpressions, payload: [] });
      return;
    }
    const content = describeError(outcome.error);
    if (!silent && !outcome.reported) void this.publish("error", content, req);
    if (c.stop_on_error !== false) {
      // Requests already sent but not read yet (a sync cell kept the loop busy) count as queued.
      await new Promise((r) => setImmediate(r));
      await new Promise((r) => setImmediate(r));
      this.abortThrough = this.arrived;
    }
    await this.reply(sock, req, "execute_reply", { status: "error", execution_count: count, ...content, user_expressions: {}, payload: [] });
  }

  private onShell = (sock: SendQueue, req: Message): void => {
    const t = req.header.msg_type;
    if (t === "execute_request") {
      const seq = ++this.arrived;
      this.shellChain = this.shellChain.then(async () => {
        await this.publish("status", { execution_state: "busy" }, req);
        try {
          await this.execute(sock, req, seq);
        } catch (e) {
          this.options.log(`sense: execute failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
        } finally {
          await this.publish("status", { execution_state: "idle" }, req);
        }
      });
      return;
    }
    if (t === "shutdown_request") {
      void this.onShutdownRequest(sock, req);
      return;
    }
    // comm messages have no reply; a front end opening a comm gets no target (closed at once).
    if (t === "comm_open") {
      void this.publish("comm_close", { comm_id: (req.content as { comm_id?: unknown }).comm_id, data: {} }, req);
      return;
    }
    if (!t.endsWith("_request")) return;
    // Answered at once even while a cell runs, so a person can connect to a busy worker.
    const busy = this.running !== null;
    void this.publish("status", { execution_state: "busy" }, req);
    let content: unknown;
    try {
      content = this.answer(req);
    } catch (e) {
      content = { status: "error", ...describeError(e) };
    }
    void this.reply(sock, req, t.replace(/_request$/, "_reply"), content);
    // Every request ends with its idle (front ends wait for it before they call it done); while a
    // cell runs, its busy is said again right after, so a status indicator stays busy.
    void this.publish("status", { execution_state: "idle" }, req);
    const running = this.running;
    if (busy && running) void this.publish("status", { execution_state: "busy" }, running.parent);
    if (t === "kernel_info_request") this.scheduleWarm();
  };

  private answer(req: Message): unknown {
    const c = req.content as { code?: unknown; cursor_pos?: unknown };
    const code = String(c.code ?? "");
    const cursor = typeof c.cursor_pos === "number" ? c.cursor_pos : code.length;
    switch (req.header.msg_type) {
      case "kernel_info_request":
        return this.kernelInfo();
      case "is_complete_request": {
        if (isMagicSource(code)) return { status: "complete" };
        const r = this.engine.isComplete(code);
        return r.status === "incomplete" ? { status: r.status, indent: r.indent ?? "" } : { status: r.status };
      }
      case "complete_request": {
        const r = isMagicSource(code) ? { matches: [], start: cursor, end: cursor } : this.engine.complete(code, cursor);
        return { status: "ok", matches: r.matches, cursor_start: r.start, cursor_end: r.end, metadata: {} };
      }
      case "inspect_request": {
        const text = isMagicSource(code) ? null : this.engine.inspect(code, cursor);
        return { status: "ok", found: text !== null, data: text === null ? {} : { "text/plain": text }, metadata: {} };
      }
      case "history_request":
        return { status: "ok", history: this.historyFor(req.content) };
      case "comm_info_request":
        return { status: "ok", comms: {} };
      default:
        return { status: "error", ename: "NotImplemented", evalue: `${req.header.msg_type} is not supported by this kernel`, traceback: [] };
    }
  }

  /** history_request: `tail` (last n), `range` (this session's lines), `search` (glob, optionally unique). */
  private historyFor(content: Record<string, unknown>): HistoryEntry[] {
    const output = content.output === true;
    const shape = (e: HistoryEntry): HistoryEntry => (output ? ([e[0], e[1], [e[2], null]] as unknown as HistoryEntry) : e);
    const n = typeof content.n === "number" && content.n > 0 ? content.n : this.history.length;
    switch (content.hist_access_type) {
      case "tail":
        return this.history.slice(-n).map(shape);
      case "range": {
        const start = typeof content.start === "number" ? content.start : 0;
        const stop = typeof content.stop === "number" && content.stop > 0 ? content.stop : Infinity;
        return this.history.filter((e) => e[1] >= start && e[1] < stop).map(shape);
      }
      case "search": {
        const pattern = typeof content.pattern === "string" ? content.pattern : "*";
        const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, "[\\s\\S]*").replace(/\?/g, "[\\s\\S]")}$`);
        let hits = this.history.filter((e) => re.test(e[2]));
        if (content.unique === true) hits = hits.filter((e, i) => hits.findIndex((x) => x[2] === e[2]) === i);
        return hits.slice(-n).map(shape);
      }
      default:
        return [];
    }
  }

  private onControl = async (sock: SendQueue, req: Message): Promise<void> => {
    const t = req.header.msg_type;
    if (t === "shutdown_request") await this.onShutdownRequest(sock, req);
    else if (t === "interrupt_request") {
      this.interruptRunning();
      await this.reply(sock, req, "interrupt_reply", { status: "ok" });
    } else if (t === "kernel_info_request") await this.reply(sock, req, "kernel_info_reply", this.kernelInfo());
    else if (t === "usage_request") await this.reply(sock, req, "usage_reply", this.usage.sample());
  };

  private async onShutdownRequest(sock: SendQueue, req: Message): Promise<void> {
    const content = { status: "ok", restart: (req.content as { restart?: unknown }).restart === true };
    // The lifecycle hooks (this master's workers stop) run before the reply: the server kills
    // the process soon after it has the reply, also for a restart.
    await this.runLifecycleHooks();
    await this.reply(sock, req, "shutdown_reply", content);
    await this.publish("shutdown_reply", content, req);
    await this.shutdown(0);
  }

  /** Runs the package's shutdown hooks when a cell loaded the lifecycle module (else there are none). */
  private runLifecycleHooks(): Promise<void> {
    const file = distPath(this.options.root, "lifecycle");
    const mod = require.cache[file]?.exports as { runShutdownHooks?: (ms: number) => Promise<void> } | undefined;
    if (typeof mod?.runShutdownHooks !== "function") return Promise.resolve();
    return mod.runShutdownHooks(4_000).catch((e: unknown) => this.options.log(`sense: a shutdown hook failed: ${e instanceof Error ? e.message : String(e)}`));
  }

  /** Runs the lifecycle hooks once, closes the sockets (sent messages get a moment to leave) and exits. */
  shutdown(code: number): Promise<void> {
    this.shuttingDown ??= (async () => {
      this.cancelWarm();
      await this.runLifecycleHooks();
      this.flushAll();
      for (const s of this.sockets) {
        s.linger = 200;
        s.close();
      }
      // User code may hold timers or sockets open; the kernel must go now, not when they end.
      setTimeout(() => process.exit(code), 50);
    })();
    return this.shuttingDown;
  }

  // ---- warm-up ----

  /** A worker's code arrived: never warm up the compiler (the worker may never need it). */
  private seenWorkerCode(): void {
    this.workerCode = true;
    this.cancelWarm();
  }

  private cancelWarm(): void {
    if (this.warmTimer) clearTimeout(this.warmTimer);
    this.warmTimer = null;
  }

  // A front end asked kernel_info and sent no worker code for a while: a person will type a cell
  // soon; prepare for it. A worker's preamble follows kernel_info at once and cancels this.
  private scheduleWarm(): void {
    if (this.workerCode || this.warmTimer || !this.engine.warm) return;
    // jupyter_server names the session in JPY_SESSION_NAME: a worker's or a pooled kernel's
    // session never warms (its code comes precompiled); a notebook's warms at once.
    const session = workerSession(process.env.JPY_SESSION_NAME);
    if (session === true) {
      this.workerCode = true;
      return;
    }
    this.warmTimer = setTimeout(() => {
      this.warmTimer = null;
      if (this.workerCode || this.running) return;
      try {
        this.engine.warm?.();
      } catch (e) {
        this.options.log(`sense: warm-up failed: ${e instanceof Error ? e.message : String(e)}`);
      }
    }, session === false ? 0 : WARM_DELAY_MS);
    this.warmTimer.unref();
  }

  /**
   * Answers every subscription on iopub (a frame 0x01 + topic) with an `iopub_welcome` and the
   * kernel's status now. The status is for jupyter_server: it waits for a kernel to leave
   * `starting` by the status messages its activity watcher sees, and a watcher that subscribed
   * after the first request's status would otherwise wait for the next nudge, 0.5 s later.
   */
  private async welcomeSubscribers(iopub: AsyncIterable<Buffer[]>): Promise<void> {
    for await (const [frame] of iopub) {
      if (frame?.[0] !== 1 || this.shuttingDown) continue;
      void this.publish("iopub_welcome", { subscription: frame.subarray(1).toString("utf8") }, null);
      const running = this.running;
      void this.publish("status", { execution_state: running ? "busy" : "idle" }, running?.parent ?? null);
    }
  }

  async start(): Promise<void> {
    const { zmq, info } = this;
    const addr = (port: number) => `${info.transport}://${info.ip}:${port}`;
    // sendTimeout 0: see SendQueue. No high-water mark on iopub: output is never dropped.
    // XPUB, as ipykernel 7: each new subscriber gets an `iopub_welcome` (JEP 65), proof that its
    // subscription is in place. Without it a client whose SUB joined after a request's status went
    // out waits for its next try: jupyter_server nudges every 0.5 s, and a worker lost that much.
    const iopub = new zmq.XPublisher({ sendHighWaterMark: 0, sendTimeout: 0, verbosity: "allSubs" });
    const shell = new zmq.Router({ sendTimeout: 0 });
    const control = new zmq.Router({ sendTimeout: 0 });
    const stdin = new zmq.Router();
    const hb = new zmq.Reply({ sendTimeout: 0 });
    this.sockets = [iopub, shell, control, stdin, hb];
    // Once shutting down, a send that meets its closed socket (a welcome queued behind the pacer,
    // say) is the shutdown itself, not an event to log.
    const onErr = (e: unknown) => {
      if (!this.shuttingDown) this.options.log(`sense: send failed: ${e instanceof Error ? e.message : String(e)}`);
    };
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
          this.options.log(`sense: dropped a message: ${e instanceof Error ? e.message : String(e)}`);
          continue;
        }
        await handle(msg);
      }
    };
    // A loop ends when its socket closes (shutdown): nothing to report then.
    const ended = (which: string) => (e: unknown) => {
      if (!this.shuttingDown) this.options.log(`sense: ${which} loop ended: ${e instanceof Error ? e.message : String(e)}`);
    };
    void loop(shell, (m) => this.onShell(shellQ, m)).catch(ended("shell"));
    void loop(control, (m) => this.onControl(controlQ, m)).catch(ended("control"));
    void (async () => {
      for await (const frames of hb) await hb.send(frames);
    })().catch(() => undefined);
    void this.welcomeSubscribers(iopub).catch(ended("iopub"));
    void this.publish("status", { execution_state: "starting" }, null);
    // Exit when the Jupyter Server that started this kernel is gone (SIGKILLed, say).
    watchParent(() => void this.shutdown(0));
  }
}

/** Whether a session path (JPY_SESSION_NAME) is a Sense worker's or pooled kernel's: {@link isSenseSessionName}. */
export const workerSession = isSenseSessionName;

/** How long after kernel_info, with no cell yet and no session name, the engine warms up. */
const WARM_DELAY_MS = 1_500;
