/**
 * Where output goes. Everything that writes to a notebook (magics, worker output, live tables)
 * writes through an {@link OutputSink}, captured when the user's call starts, so output lands
 * in the cell that made the call even after that cell has finished.
 */
import { UsageError } from "../errors";
import { CURRENT_CELL_KEY, type DisplayOptions, type MimeBundle, type OutputSink } from "../protocol/cell";
import { checkOptionKeys } from "../util/check-options";
import { denoJupyter, denoSink } from "./deno-sink";

export type { DisplayOptions, MimeBundle, OutputSink };

/** Something text can be written to (`process.stdout` fits). */
export interface TextWriter {
  write(text: string): unknown;
}

/** The streams {@link consoleSink} writes to (`process` fits). */
export interface ConsoleStreams {
  stdout: TextWriter;
  stderr: TextWriter;
}

/**
 * A sink for a plain Node process: displays print their `text/plain` form on stdout; an update
 * of a display id prints the new text only if it changed (a terminal cannot redraw a table in
 * place, and reprinting identical tables on every status poll would bury the output).
 */
export function consoleSink(stream: ConsoleStreams = process): OutputSink {
  const shown = new Map<string, string>();
  return {
    stdout: (text) => void stream.stdout.write(text),
    stderr: (text) => void stream.stderr.write(text),
    display(bundle, options = {}) {
      const text = bundle["text/plain"];
      if (options.displayId !== undefined) {
        if (options.update && shown.get(options.displayId) === text) return;
        shown.set(options.displayId, text);
      }
      stream.stdout.write(text.endsWith("\n") ? text : text + "\n");
    },
  };
}

/** tslab's per-request display writer: `lastWriteDisplayData` in `tslab/dist/jupyter.js`. */
export type TslabDisplayWriter = (
  content: { data: Record<string, unknown>; metadata: Record<string, unknown>; transient: { display_id?: string } },
  update: boolean,
) => void;

/**
 * The display writer of the tslab kernel running this process, if any: the `lastWriteDisplayData`
 * export of a loaded module whose path ends with `/tslab/dist/jupyter.js`. A library's own
 * `require("tslab")` may be another copy whose writer is never set, so the module cache is
 * searched for the copy that has one.
 */
export function findTslabDisplayWriter(
  cache: Readonly<Record<string, { exports?: unknown } | undefined>> = require.cache,
): TslabDisplayWriter | undefined {
  for (const [key, mod] of Object.entries(cache)) {
    if (!key.replace(/\\/g, "/").endsWith("/tslab/dist/jupyter.js")) continue;
    const writer = (mod?.exports as { lastWriteDisplayData?: unknown } | undefined)?.lastWriteDisplayData;
    if (typeof writer === "function") return writer as TslabDisplayWriter;
  }
  return undefined;
}

/** The running Sense kernel's current cell, if this process is one. */
function senseKernelCell(): { sink: OutputSink } | undefined {
  const f = (globalThis as Record<symbol, unknown>)[CURRENT_CELL_KEY];
  return typeof f === "function" ? (f as () => { sink: OutputSink })() : undefined;
}

/** Injection points of {@link captureSink} (tests); defaults are the real process and module cache. */
export interface CaptureOptions {
  /** The Sense kernel's current cell; default: the one the kernel publishes, if any. */
  currentCell?: () => { sink: OutputSink } | undefined;
  process?: { stdout: { write: unknown }; stderr: { write: unknown } };
  moduleCache?: Readonly<Record<string, { exports?: unknown } | undefined>>;
}

/**
 * A sink bound to the cell that is running now. Inside a Sense kernel it is the kernel's sink of
 * that cell (the kernel attributes output to it whenever it is written). Inside stock tslab it captures, at call
 * time, `process.stdout.write`, `process.stderr.write` and tslab's display writer: tslab rebinds
 * all three to each new execute request, so output written later through this sink (timers,
 * worker output) still lands in the calling cell. In Deno's kernel it broadcasts through
 * `Deno.jupyter` (deno-sink.ts). Elsewhere it is a {@link consoleSink}.
 *
 * @throws {UsageError} (from `display`) when `update` is asked for without a `displayId`.
 */
export function captureSink(options: CaptureOptions = {}): OutputSink {
  checkOptionKeys(options, ["currentCell", "process", "moduleCache"], "captureSink");
  const kernel = options.currentCell === undefined ? senseKernelCell() : options.currentCell();
  if (kernel) return kernel.sink;
  const deno = options.process ? undefined : denoJupyter();
  if (deno) return denoSink(deno);
  const proc = options.process ?? process;
  const writer = findTslabDisplayWriter(options.moduleCache);
  if (!writer) return consoleSink(proc as ConsoleStreams);
  const out = proc.stdout.write as (this: unknown, text: string) => unknown;
  const err = proc.stderr.write as (this: unknown, text: string) => unknown;
  return {
    stdout: (text) => void out.call(proc.stdout, text),
    stderr: (text) => void err.call(proc.stderr, text),
    display(bundle, opts = {}) {
      if (opts.update && opts.displayId === undefined) {
        throw new UsageError("a display update needs the displayId of the display it replaces");
      }
      writer(
        { data: { ...bundle }, metadata: {}, transient: opts.displayId === undefined ? {} : { display_id: opts.displayId } },
        opts.update === true,
      );
    },
  };
}
