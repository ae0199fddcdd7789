/**
 * Routing of `%`/`%%` cells to the magics registry inside the Sense kernel.
 *
 * tslab's `JupyterHandlerImpl.handleExecuteImpl` points `process.stdout/stderr.write` and
 * `lastWriteDisplayData` at the current request, counts the execution and calls
 * `executor.execute(code)`; a `false` result makes the reply `error` and aborts queued cells.
 * So the kernel hands tslab an executor that sends magic cells to `runCell` and everything else
 * to tslab's executor: the count, the queue, the reply status and the redirected writers all stay
 * tslab's own. The request's `writeStream`/`writeDisplayData` come from a hook on
 * `handleExecuteImpl` (see kernel.ts), so the sink targets this cell even after it finished.
 */
import { createRequire } from "node:module";
import * as util from "node:util";
import * as vm from "node:vm";
import type { Executor } from "tslab/dist/executor";
import type { CellIO } from "../src/cell-io";
import type * as Present from "../src/display/present";
import type { DisplayOptions, MimeBundle, OutputSink } from "../src/display/sink";
import type { MagicScope } from "../src/magics/expand";
import type { isMagicCell, runCell } from "../src/magics/run";

/** What tslab's ZmqServer passes as `writeDisplayData`'s first argument. */
export interface DisplayMessage {
  data: Record<string, unknown>;
  metadata: Record<string, unknown>;
  transient?: { display_id?: string };
}

/** The output functions of one execute request, as tslab's ZmqServer builds them. */
export interface RequestWriters {
  writeStream(name: string, text: string): void;
  writeDisplayData(data: DisplayMessage, update: boolean): void;
}

/** The part of `dist/src/magics` the kernel uses (its own types, not a copy). */
export interface MagicsModule {
  runCell: typeof runCell;
  isMagicCell?: typeof isMagicCell;
}

/** True when the first non-empty line of `source` starts with `%` (a line magic) or `%%` (a cell magic). */
export function isMagicSource(source: string): boolean {
  for (const line of source.split(/\r?\n/)) {
    const t = line.trim();
    if (t) return t.startsWith("%");
  }
  return false;
}

/** An {@link OutputSink} writing to one request: output lands in that cell, whenever it is written. */
export function requestSink(w: RequestWriters): OutputSink {
  return {
    stdout: (text) => w.writeStream("stdout", text),
    stderr: (text) => w.writeStream("stderr", text),
    display(bundle: MimeBundle, options: DisplayOptions = {}) {
      const transient = options.displayId ? { display_id: options.displayId } : {};
      w.writeDisplayData({ data: { ...bundle }, metadata: {}, transient }, !!(options.update && options.displayId));
    },
  };
}

/** One execute request as the kernel runs it: its writers, and the {@link CellIO} built for it. */
export interface KernelCell {
  writers: RequestWriters;
  io: CellIO;
  /** Aborts `io.signal` (the user interrupted the cell). */
  interrupt(reason?: unknown): void;
}

/** How values are shown (display/present.ts), loaded on first use: kernel startup does not pay for it. */
const loadPresent = (): typeof Present => createRequire(__filename)("../src/display/present") as typeof Present;

/** Builds the I/O of one cell (one execute request): its sink, the notebook scope, its abort signal. */
export function openCell(writers: RequestWriters, scope: MagicScope, present: () => typeof Present = loadPresent): KernelCell {
  const controller = new AbortController();
  const sink = requestSink(writers);
  return {
    writers,
    io: { sink, scope, signal: controller.signal, show: (value) => present().showValue(sink, value) },
    interrupt: (reason) => controller.abort(reason),
  };
}

const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/;
const RESERVED = new Set(
  ("break case catch class const continue debugger default delete do else enum export extends false finally for function if " +
    "import in instanceof new null return super switch this throw true try typeof var void while with yield let static " +
    "implements interface package private protected public await arguments eval").split(" "),
);

interface TslabGlobal {
  exports: Record<string, unknown>;
  require: NodeJS.Require;
}

function tslabGlobal(): TslabGlobal | undefined {
  return (globalThis as { __tslab__?: TslabGlobal }).__tslab__;
}

/**
 * The notebook's variables as a {@link MagicScope}. tslab keeps every top-level declaration of
 * every cell in `globalThis.__tslab__.exports`; `evaluate(expr)` compiles `expr` (JavaScript) into
 * a function whose parameters are those variables, so it sees them by name and nothing else of
 * the kernel's scope. It is only ever called on a magic's argument line, never on a cell body.
 */
export function notebookScope(locals: () => Record<string, unknown> | undefined = () => tslabGlobal()?.exports): MagicScope {
  return {
    lookup(name) {
      const ex = locals();
      if (ex && Object.prototype.hasOwnProperty.call(ex, name)) return { found: true, value: ex[name] };
      return { found: false };
    },
    evaluate(expr) {
      const ex = locals() ?? {};
      const names = Object.keys(ex).filter((n) => IDENT.test(n) && !RESERVED.has(n));
      const values = names.map((n) => ex[n]);
      const req = tslabGlobal()?.require;
      if (req && !names.includes("require")) {
        names.push("require");
        values.push(req);
      }
      // The newline keeps a trailing `// comment` in expr from swallowing the closing paren.
      const fn = vm.runInThisContext(`(function (${names.join(", ")}) { return (${expr}\n); })`, { filename: "magic-expression" }) as (
        ...args: unknown[]
      ) => unknown;
      return fn(...values);
    },
  };
}

/** Raised into a magic cell's result when the user interrupts it. */
export class MagicInterrupted extends Error {
  constructor() {
    super("Interrupted");
    this.name = "KeyboardInterrupt";
  }
}

/** Options of {@link createMagicExecutor}. */
export interface MagicExecutorOptions {
  /** Loads the registry (lazily: the first magic cell pays for it, not kernel startup). */
  loadMagics: () => MagicsModule;
  /** The cell being run now (opened by the handler hook for each request), if any. */
  currentCell: () => KernelCell | null;
  /** The notebook's variables for a cell run outside a request; default: tslab's `__tslab__.exports`. */
  scope?: MagicScope;
}

/**
 * Prints why a magic cell failed, unless the registry already did. A usage error is one line
 * (`UsageError: ...` plus usage), never a stack; other errors keep their stack, like any cell error.
 */
export function describeMagicFailure(error: unknown): string {
  if (error instanceof Error) {
    if (error.name === "UsageError") {
      const usage = (error as { usage?: unknown }).usage;
      return `UsageError: ${error.message}\n${typeof usage === "string" && usage ? `${usage}\n` : ""}`;
    }
    return `${error.stack ?? `${error.name}: ${error.message}`}\n`;
  }
  return `Error: ${util.inspect(error)}\n`;
}

/**
 * Wraps tslab's executor: magic cells go to the registry's `runCell` (with a sink on the current
 * request and the notebook scope), every other cell and every inspect/complete to tslab.
 * `interrupt()` also aborts a running magic.
 */
export function createMagicExecutor(inner: Executor, options: MagicExecutorOptions): Executor {
  const scope = options.scope ?? notebookScope();
  let running: KernelCell | null = null;
  const fallbackWriters: RequestWriters = {
    writeStream: (name, text) => (name === "stderr" ? process.stderr : process.stdout).write(text),
    writeDisplayData: () => undefined,
  };

  async function runMagic(src: string): Promise<boolean> {
    const cell = options.currentCell() ?? openCell(fallbackWriters, scope);
    const { io } = cell;
    let magics: MagicsModule;
    try {
      magics = options.loadMagics();
    } catch (e) {
      io.sink.stderr(`The magics registry could not be loaded: ${e instanceof Error ? e.message : String(e)}\n`);
      return false;
    }
    running = cell;
    const aborted = new Promise<Awaited<ReturnType<MagicsModule["runCell"]>>>((resolve) => {
      const onAbort = () => resolve({ ok: false, error: io.signal.reason });
      if (io.signal.aborted) onAbort();
      else io.signal.addEventListener("abort", onAbort, { once: true });
    });
    try {
      const result = await Promise.race([magics.runCell(src, io), aborted]);
      if (!result.ok && result.error instanceof MagicInterrupted) io.sink.stderr(describeMagicFailure(result.error));
      // Like tslab's last expression: a returned value is shown, unless the registry displayed it.
      if (result.ok && result.value != null && !result.displayed) io.show(result.value);
      return result.ok;
    } catch (e) {
      // runCell reports its own failures in its result; a throw is a bug worth a stack.
      io.sink.stderr(describeMagicFailure(e));
      return false;
    } finally {
      if (running === cell) running = null;
    }
  }

  return {
    execute: (src) => (isMagicSource(src) ? runMagic(src) : inner.execute(src)),
    // Completing or inspecting `%magic args` as TypeScript would only produce noise.
    inspect: (src, pos) => (isMagicSource(src) ? (undefined as unknown as ReturnType<Executor["inspect"]>) : inner.inspect(src, pos)),
    complete: (src, pos) => (isMagicSource(src) ? { start: pos, end: pos, candidates: [] } : inner.complete(src, pos)),
    reset: () => inner.reset(),
    interrupt: () => {
      running?.interrupt(new MagicInterrupted());
      inner.interrupt();
    },
    locals: inner.locals,
    close: () => inner.close(),
  };
}
