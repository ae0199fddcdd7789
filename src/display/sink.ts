/**
 * Where output goes. Everything that writes to a notebook (magics, worker output, live tables)
 * writes through an {@link OutputSink}, captured when the user's call starts, so output lands
 * in the cell that made the call even after that cell has finished.
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
}
