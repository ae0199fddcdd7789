/**
 * Where a kernel's output goes: each execute request is a cell ({@link CellContext}), and
 * everything written (`process.stdout`/`stderr`, so `console.*`; `display()`; a package's sink) is
 * attributed to the cell whose code, timers or promises wrote it, via AsyncLocalStorage. The first
 * stream write of a turn of the event loop goes out at once, the rest of the turn is coalesced
 * (stream-coalesce.ts). Output that comes after its cell finished, from code that still holds the
 * cell's sink (a launched worker), goes into that cell's late display (late-output.ts), updated in
 * place under whichever cell runs then, so recorders (nbclient) keep it.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import * as util from "node:util";
import { CURRENT_CELL_KEY, type CellIO, type CurrentCell, type DisplayMessage, type MagicScope, type MimeBundle, type OutputSink } from "../src/protocol/cell";
import type { Message } from "../src/protocol/wire";
import { isMimeBundle } from "../src/display/bundle";
import { LateOutput } from "./late-output";
import type { Presenter } from "./present";
import { StreamCoalescer } from "./stream-coalesce";
import { KeyboardInterrupt } from "./cell-errors";

type StreamName = "stdout" | "stderr";

/** Output state of one execute request; lives as long as code started by that cell can write. */
export class CellContext {
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

/** What cell output is sent through. */
export interface CellOutputDeps {
  /** Publishes one iopub message (sockets.ts). */
  publish(msgType: string, content: unknown, parent: Message | null): Promise<void>;
  /** How a value is shown. */
  present: Presenter;
  /** Output that belongs to no cell (before the first) goes to the kernel log. */
  log(line: string): void;
}

/** The cells of one kernel and their output. */
export class CellOutput {
  private readonly cells = new AsyncLocalStorage<CellContext>();
  private lastCell: CellContext | null = null;
  private current: CellContext | null = null;
  private readonly streams = new StreamCoalescer<CellContext>((ctx, name, text) => void this.deps.publish("stream", { name, text }, ctx.parent));
  /** Late displays still written to. */
  private readonly lateOutputs = new Set<LateOutput>();
  /** Updates of finished cells' displays sent while no cell ran (no recorder saw them): replayed under the next cell. */
  private readonly unseenUpdates = new Map<string, { content: unknown; owner: Message }>();

  constructor(private readonly deps: CellOutputDeps) {}

  /** The cell running now (its code, not its timers), if any. */
  get running(): CellContext | null {
    return this.current;
  }

  /**
   * Runs a cell: `run` with `ctx` as the cell its output belongs to. Before it, earlier cells'
   * late displays catch up under this cell within their bandwidth budget; after it, completely
   * (a recorder takes the latest state of earlier cells' displays with this cell, one update per
   * display and cell). `silent` requests show nothing of the sort.
   */
  async run<T>(ctx: CellContext, silent: boolean, run: () => Promise<T>): Promise<T> {
    this.lastCell = ctx;
    this.current = ctx;
    if (!silent) this.catchUpLate(ctx.parent, false);
    const result = await this.cells.run(ctx, run);
    this.flush(ctx);
    if (!silent) this.catchUpLate(ctx.parent, true);
    this.current = null;
    ctx.done = true;
    if (ctx.holds > 0 && !silent) this.openLate(ctx);
    return result;
  }

  /** The I/O a cell's code gets (protocol/cell.ts). */
  cellIO(ctx: CellContext, scope: MagicScope): CellIO {
    return {
      sink: this.sinkFor(ctx),
      scope,
      signal: ctx.abort.signal,
      displayMessage: (msg, update) => this.displayMessage(ctx, msg, update),
      executionCount: ctx.executionCount,
    };
  }

  /** Aborts the running cell's signal (reason: a `KeyboardInterrupt`). */
  interruptRunning(): void {
    this.current?.abort.abort(new KeyboardInterrupt());
  }

  /** Sends every cell's buffered stream text now. */
  flushAll = (): void => {
    this.streams.flushAll();
  };

  /** Buffers stream text for `ctx` (default: the cell that is running this code). */
  write(name: StreamName, text: string, ctx: CellContext | null = this.currentCell()): void {
    if (!ctx) {
      this.deps.log(text.replace(/\n$/, ""));
      return;
    }
    if (ctx.done && ctx.late) {
      ctx.late.append(text);
      return;
    }
    // Coalesced per cell (stream-coalesce.ts): the first write of a turn of the event loop at once.
    this.streams.write(ctx, name, text);
  }

  /**
   * Takes over the process's output: `process.stdout`/`stderr` writes, the `display()` and
   * `clearOutput()` globals, the current-cell hook the package's `captureSink()` asks
   * ({@link CURRENT_CELL_KEY}), and uncaught errors, all attributed to the cell that caused them.
   */
  installGlobals(): void {
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
      const data = isMimeBundle(value, { partial: true }) ? (value as Record<string, unknown>) : this.deps.present(value);
      const msg = { data: { ...data }, metadata: options.metadata ?? {}, transient: options.displayId ? { display_id: options.displayId } : {} };
      this.displayMessage(this.currentCell(), msg, !!options.update);
    };
    // IPython's clear_output: the front end clears the cell's output (at the next output when `wait`).
    const clearOutput = (wait = false): void => {
      const ctx = this.currentCell();
      if (ctx) this.flush(ctx);
      void this.deps.publish("clear_output", { wait: wait === true }, ctx?.parent ?? null);
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
  }

  private flush(ctx: CellContext): void {
    this.streams.flush(ctx);
  }

  private currentCell(): CellContext | null {
    return this.cells.getStore() ?? this.lastCell;
  }

  /** Sends a display_data (or update_display_data) for `ctx`. */
  private displayMessage(ctx: CellContext | null, msg: DisplayMessage, update: boolean): void {
    if (ctx) this.flush(ctx);
    const content = { data: msg.data, metadata: msg.metadata ?? {}, transient: msg.transient ?? {} };
    const displayId = msg.transient?.display_id;
    if (ctx?.done && update && displayId) return void this.lateUpdate(ctx, displayId, content);
    // A new display after the cell ended can only be recorded inside the cell's late display.
    if (ctx?.done && ctx.late && !update) return ctx.late.appendDisplay(msg.data);
    void this.deps.publish(update ? "update_display_data" : "display_data", content, ctx?.parent ?? null);
  }

  /**
   * An update of a display that a finished cell showed. It goes under the cell running now, as
   * recorders (nbclient) keep only that cell's messages and apply updates by display id; with no
   * cell running, under the cell that owns it (JupyterLab routes it by id all the same), and it
   * is sent again under the next cell so recorders get the final state too.
   */
  private lateUpdate(owner: CellContext, displayId: string, content: unknown): Promise<void> {
    const running = this.current;
    if (running) this.unseenUpdates.delete(displayId);
    else this.unseenUpdates.set(displayId, { content, owner: owner.parent });
    return this.deps.publish("update_display_data", content, running?.parent ?? owner.parent);
  }

  /** Opens the late display of `ctx` (it ends with holders of its sink): shown now, updated later. */
  private openLate(ctx: CellContext): void {
    const displayId = `sense-late-${ctx.parent.header.msg_id}`;
    const transient = { display_id: displayId };
    const late = new LateOutput(displayId, (bundle) => this.lateUpdate(ctx, displayId, { data: bundle, metadata: {}, transient }));
    ctx.late = late;
    this.lateOutputs.add(late);
    void this.deps.publish("display_data", { data: LateOutput.empty(), metadata: {}, transient }, ctx.parent);
  }

  /**
   * Sends what finished cells' displays gathered, under `req` (a cell starts or ends): when a cell
   * ends, all of it; when one starts, what their bandwidth budget allows now (the rest follows).
   */
  private catchUpLate(req: Message, all: boolean): void {
    for (const late of this.lateOutputs) {
      if (all) late.flush();
      else late.flushIfDue();
    }
    for (const [displayId, u] of [...this.unseenUpdates]) {
      this.unseenUpdates.delete(displayId);
      void this.deps.publish("update_display_data", u.content, req);
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
}
