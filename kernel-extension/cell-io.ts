/**
 * What one cell gets from the kernel: its output, the notebook's variables, its interrupt signal.
 * Built by the protocol core for every execute request ({@link CellIO}); engines and magics write
 * only through it, so output lands in the cell that produced it, even after the cell finished.
 * Types only: no runtime code, so anything can import it without loading the kernel.
 */
import type { DisplayOptions, MimeBundle, OutputSink } from "../src/display/sink";

/** A display message as Jupyter (and tslab's `display` API) shapes it. */
export interface DisplayMessage {
  data: Record<string, unknown>;
  metadata: Record<string, unknown>;
  transient?: { display_id?: string };
}

/** Where a magic looks up `$name` and evaluates `{expr}` (the registry's `MagicScope` contract). */
export interface MagicScope {
  lookup(name: string): { found: boolean; value?: unknown };
  evaluate?(expr: string): unknown;
}

/** The per-cell IO object: one per execute request. */
export interface CellIO {
  /** Stream text and display bundles of this cell. */
  sink: OutputSink;
  /** The notebook's variables, for `$name` and `{expr}` in magic arguments. */
  scope: MagicScope;
  /** Aborted (reason: a `KeyboardInterrupt` error) when the user interrupts this cell. */
  signal: AbortSignal;
  /** Sends a display message exactly as given (tslab's `display` API uses it). */
  displayMessage(msg: DisplayMessage, update: boolean): void;
  /** The cell's execution count. */
  executionCount: number;
}

export type { DisplayOptions, MimeBundle, OutputSink };

/** The output side of the cell running now (see {@link CURRENT_CELL_KEY}). */
export type CurrentCell = Pick<CellIO, "sink" | "displayMessage">;

/**
 * The global under which a Sense kernel publishes a function returning the {@link CurrentCell}
 * (the cell whose code, timers or promises are running now). The package's `captureSink()` asks
 * it first, so live tables and worker output land in the calling cell, richly, in every Sense kernel.
 */
export const CURRENT_CELL_KEY = Symbol.for("sense-tslab.current-cell");
