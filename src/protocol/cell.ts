/**
 * The kernel↔package contract for one cell: what the protocol core (kernel-extension/core.ts)
 * builds for every execute request and what everything the cell runs (engines, the magics
 * registry, live tables, worker output) writes through, so output lands in the cell that produced
 * it, even after the cell finished. Types and two constants only: kernels load it at start, so it
 * imports nothing.
 */

/** A MIME bundle: `{ "text/plain": ..., "text/html": ... }`. `text/plain` is always present. */
export type MimeBundle = { "text/plain": string } & Record<string, unknown>;

/** Options of one display message. */
export interface DisplayOptions {
  /** A display id; later calls with `update: true` replace the output in place. */
  displayId?: string;
  /** Send `update_display_data` for `displayId` instead of a new `display_data`. */
  update?: boolean;
}

/** An output destination: a notebook cell (inside a kernel) or a terminal (a plain Node process). */
export interface OutputSink {
  stdout(text: string): void;
  stderr(text: string): void;
  display(bundle: MimeBundle, options?: DisplayOptions): void;
  /**
   * Says that output may still come after the calling cell finished (a launched worker's), until
   * the returned release is called. A Sense kernel then ends the cell with a display that later
   * output updates in place, so front ends that record only the running cell's messages (nbclient,
   * papermill, nbconvert, VS Code) store it too. Sinks with no cells (a terminal) leave it out.
   */
  retain?(): () => void;
}

/** A display message as Jupyter (and tslab's `display` API) shapes it. */
export interface DisplayMessage {
  data: Record<string, unknown>;
  metadata: Record<string, unknown>;
  transient?: { display_id?: string };
}

/** Where `$name` and `{expr}` in a magic's argument line get their values: the notebook's variables, or an explicit object. */
export interface MagicScope {
  /** Looks up a top-level variable. `found: false` makes `$name` a usage error. */
  lookup(name: string): { found: boolean; value?: unknown };
  /** Evaluates `{expr}`; when absent, `{expr}` is a usage error. May throw. */
  evaluate?(expr: string): unknown;
  /** Appended to the "no variable named ..." error, e.g. how to pass variables in this host. */
  missingHint?: string;
}

/** The per-cell I/O object: one per execute request. */
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

/** What a cell of magics gets: the magics registry reads no more of a {@link CellIO}. */
export type MagicCellIO = Pick<CellIO, "sink" | "scope"> & Partial<Pick<CellIO, "signal">>;

/** The output side of the cell running now (see {@link CURRENT_CELL_KEY}). */
export type CurrentCell = Pick<CellIO, "sink" | "displayMessage">;

/**
 * The global under which a Sense kernel publishes a function returning the {@link CurrentCell}
 * (the cell whose code, timers or promises are running now). The package's `captureSink()` asks
 * it first, so live tables and worker output land in the calling cell, richly, in every Sense kernel.
 */
export const CURRENT_CELL_KEY = Symbol.for("sense-tslab.current-cell");

/**
 * True when the first non-empty line of `source` starts with `%` (a line magic) or `%%` (a cell
 * magic), leading spaces allowed: such a cell goes to the magics registry, not to the language.
 */
export function isMagicSource(source: string): boolean {
  const first = source.split(/\r?\n/).find((l) => l.trim() !== "");
  return first !== undefined && first.trimStart().startsWith("%");
}
