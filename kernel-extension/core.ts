/**
 * The protocol core of every Sense kernel (`sense-ts`, `sense-js`, `sense-fast`): Jupyter
 * messaging 5.3, one implementation for all of them. It handles the requests: the execute queue
 * with busy/idle, `stop_on_error` both ways, execute_result and error messages, magics, user
 * expressions, completion and inspection, history, interrupt, shutdown with the lifecycle hooks,
 * and the engine's warm-up. The sockets are sockets.ts's (wire codec, pacing, heartbeat, welcome);
 * where output goes is cell-output.ts's; what a cell's code means is the {@link Engine}'s
 * (js-engine.ts, ts-engine.ts).
 */
import * as util from "node:util";
import type * as Zmq from "zeromq";
import { isMagicSource, type CellIO, type MimeBundle } from "../src/protocol/cell";
import type { ConnectionInfo, Message } from "../src/protocol/wire";
import { distPath, isPrecompiled, isSenseSessionName, RESULT_IN_REPLY_KEY, wantsResultInReply } from "../src/protocol/marks";
import { CLUSTER_REQUEST } from "../src/protocol/control";
import { isMimeBundle } from "../src/display/bundle";
import type { CellOutcome, Engine } from "./engine";
import type { MagicsModule } from "./magic-cells";
import { watchParent } from "./parent-gone";
import { evaluateUserExpressions } from "./js-exec";
import { presenter, type Presenter } from "./present";
import { describeError, KeyboardInterrupt } from "./cell-errors";
import { CellContext, CellOutput } from "./cell-output";
import { History } from "./history";
import { KernelSockets, type RequestSocket } from "./sockets";
import { UsageMeter } from "./usage";

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

/** The protocol core; {@link KernelCore.start} binds the sockets. */
export class KernelCore {
  private readonly sockets: KernelSockets;
  private readonly output: CellOutput;
  private executionCount = 0;
  /** Requests numbered by arrival; after an error with stop_on_error, those up to abortThrough are aborted. */
  private arrived = 0;
  private abortThrough = 0;
  private shellChain: Promise<void> = Promise.resolve();
  private shuttingDown: Promise<void> | null = null;
  private readonly history = new History();
  private magics: MagicsModule | null = null;
  private warmTimer: NodeJS.Timeout | null = null;
  private workerCode = false;
  /** How a value is shown (a last expression, `display(value)`). */
  private readonly present: Presenter;
  /** Answers usage_request (jupyter-resource-usage's Kernel Usage panel, Sense's worker tables). */
  private readonly usage = new UsageMeter();

  constructor(
    info: ConnectionInfo,
    zmq: typeof Zmq,
    private readonly engine: Engine,
    private readonly options: CoreOptions,
  ) {
    this.sockets = new KernelSockets(info, zmq, options.log);
    this.present = presenter(options.root);
    this.output = new CellOutput({ publish: (t, c, p) => this.publish(t, c, p), present: this.present, log: options.log });
  }

  async start(): Promise<void> {
    await this.sockets.bind({
      shell: this.onShell,
      control: this.onControl,
      status: () => {
        const running = this.output.running;
        return { state: running ? "busy" : "idle", parent: running?.parent ?? null };
      },
    });
    this.output.installGlobals();
    // A busy synchronous cell is stopped by breakOnSigint; this covers a cell waiting on a promise
    // and a cell still compiling (its engine looks at the signal before running it).
    process.on("SIGINT", () => this.output.interruptRunning());
    process.on("SIGTERM", () => void this.shutdown(0));
    void this.publish("status", { execution_state: "starting" }, null);
    // Exit when the Jupyter Server that started this kernel is gone (SIGKILLed, say).
    watchParent(() => void this.shutdown(0));
  }

  /** Runs the lifecycle hooks once, closes the sockets (sent messages get a moment to leave) and exits. */
  shutdown(code: number): Promise<void> {
    this.shuttingDown ??= (async () => {
      this.cancelWarm();
      await this.runLifecycleHooks();
      this.output.flushAll();
      this.sockets.close(200);
      // User code may hold timers or sockets open; the kernel must go now, not when they end.
      setTimeout(() => process.exit(code), 50);
    })();
    return this.shuttingDown;
  }

  private publish(msgType: string, content: unknown, parent: Message | null, metadata?: Record<string, unknown>): Promise<void> {
    return this.sockets.publish(msgType, content, parent, metadata);
  }

  private reply(sock: RequestSocket, req: Message, msgType: string, content: unknown): Promise<void> {
    return this.sockets.reply(sock, req, msgType, content);
  }

  // ---- requests ----

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

  private async execute(sock: RequestSocket, req: Message, seq: number): Promise<void> {
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
      this.history.add(this.executionCount, code);
    }
    const count = this.executionCount;
    // The master's remote calls read the result from the reply: two iopub messages fewer per
    // request for the server to deserialize and forward (marks.ts wantsResultInReply).
    const inReply = wantsResultInReply(req.metadata);
    if (!silent && !inReply) void this.publish("execute_input", { code, execution_count: count }, req);
    const ctx = new CellContext(req, count);
    const outcome = await this.output.run(ctx, silent, () => this.runCode(code, this.output.cellIO(ctx, this.engine.scope()), precompiled));
    if (outcome.ok) {
      let result: { data: MimeBundle; metadata: Record<string, unknown> } | undefined;
      if (outcome.value !== undefined && !silent) {
        let data: MimeBundle;
        try {
          data = this.present(outcome.value);
        } catch (e) {
          data = { "text/plain": `(the value could not be shown: ${e instanceof Error ? e.message : String(e)})` };
        }
        if (inReply) result = { data, metadata: {} };
        else void this.publish("execute_result", { execution_count: count, data, metadata: {} }, req);
      }
      // Evaluated after the code, in this context, as ipykernel does (remote execution's answers).
      const userExpressions = evaluateUserExpressions(c.user_expressions, (v) => (isMimeBundle(v, { partial: true }) ? (v as Record<string, unknown>) : { "text/plain": util.inspect(v) }));
      await this.reply(sock, req, "execute_reply", { status: "ok", execution_count: count, user_expressions: userExpressions, payload: [], ...(result ? { [RESULT_IN_REPLY_KEY]: result } : {}) });
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

  private onShell = (sock: RequestSocket, req: Message): void => {
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
    const busy = this.output.running !== null;
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
    const running = this.output.running;
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
        return { status: "ok", history: this.history.answer(req.content) };
      case "comm_info_request":
        return { status: "ok", comms: {} };
      default:
        return { status: "error", ename: "NotImplemented", evalue: `${req.header.msg_type} is not supported by this kernel`, traceback: [] };
    }
  }

  private onControl = async (sock: RequestSocket, req: Message): Promise<void> => {
    const t = req.header.msg_type;
    if (t === "shutdown_request") await this.onShutdownRequest(sock, req);
    else if (t === "interrupt_request") {
      this.output.interruptRunning();
      await this.reply(sock, req, "interrupt_reply", { status: "ok" });
    } else if (t === "kernel_info_request") await this.reply(sock, req, "kernel_info_reply", this.kernelInfo());
    else if (t === "usage_request") await this.reply(sock, req, "usage_reply", this.usage.sample());
    // Not awaited: a restart takes seconds, and control must keep answering (an interrupt, usage).
    else if (t === CLUSTER_REQUEST) void this.onClusterRequest(sock, req);
  };

  /**
   * Answers `sense_cluster_request` (the JupyterLab panel) from this process's cluster. A kernel
   * whose cells never used workers has none: it lists no failed worker without loading the
   * package's workers modules.
   */
  private async onClusterRequest(sock: RequestSocket, req: Message): Promise<void> {
    const root = this.options.root;
    let content: unknown;
    try {
      // Resolved as require keys its cache (the real path, were the package reached through a link).
      const loaded = require.cache[require.resolve(distPath(root, "workersApi"))] !== undefined;
      if (!loaded && (req.content as { action?: unknown }).action === "list") content = { status: "ok", workers: [] };
      else {
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const mod = require(distPath(root, "clusterRequests")) as { answerClusterRequest(content: unknown): Promise<unknown> };
        content = await mod.answerClusterRequest(req.content);
      }
    } catch (e) {
      content = { status: "error", code: "error", ...describeError(e) };
    }
    await this.reply(sock, req, "sense_cluster_reply", content);
  }

  private async onShutdownRequest(sock: RequestSocket, req: Message): Promise<void> {
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
      if (this.workerCode || this.output.running) return;
      try {
        this.engine.warm?.();
      } catch (e) {
        this.options.log(`sense: warm-up failed: ${e instanceof Error ? e.message : String(e)}`);
      }
    }, session === false ? 0 : WARM_DELAY_MS);
    this.warmTimer.unref();
  }
}

/** Whether a session path (JPY_SESSION_NAME) is a Sense worker's or pooled kernel's: {@link isSenseSessionName}. */
export const workerSession = isSenseSessionName;

/** How long after kernel_info, with no cell yet and no session name, the engine warms up. */
const WARM_DELAY_MS = 1_500;
