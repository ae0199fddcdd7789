/**
 * The I/O of one notebook cell, built by the kernel for each execute request and passed down to
 * everything the cell runs (the magics runner, the magics, a cell's last expression): where its
 * output goes, where `$name`/`{expr}` find the notebook's variables, the signal the user's
 * interrupt aborts, and how a value is shown (display/present.ts decides).
 */
import type { OutputSink } from "./display/sink";
import type { MagicScope } from "./magics/expand";

/** One cell's I/O. */
export interface CellIO {
  /** The cell's output: lands in this cell, even when written after the cell finished. */
  readonly sink: OutputSink;
  /** The notebook's variables, for `$name` and `{expr}` in magic arguments. */
  readonly scope: MagicScope;
  /** Aborted when the user interrupts this cell. */
  readonly signal: AbortSignal;
  /** Shows a value in this cell (rich when it has a rich form, else as text). */
  show(value: unknown): void;
}
