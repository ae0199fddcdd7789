/**
 * Output that reaches a cell after the cell finished (a launched worker printing later), kept in a
 * display the cell showed before it ended and updated in place. Front ends that record only the
 * messages of the cell they are running (nbclient, so nbconvert and papermill; VS Code) never
 * store a stream sent under a finished request, but they do apply an `update_display_data` for a
 * display id they have seen, whichever cell it arrives under (nbclient `_update_display_id`;
 * JupyterLab routes it by display id to the cell that showed it). So the text accumulates here
 * (labelled as it came, lossless up to a cap) and goes out whole, coalesced, as an update.
 */

/** Characters of late output one cell keeps (the newest); older text is dropped and the display says so. */
export const LATE_OUTPUT_CAP = 4 * 1024 * 1024;
/** Shortest time between two updates of one late display, ms. */
const MIN_INTERVAL_MS = 100;
/** Characters per ms of update interval: a big display is resent less often (4 MiB: every 2 s). */
const CHARS_PER_MS = 2048;

/** The MIME bundle of a late display. */
export type LateBundle = { "text/plain": string };

/** The late output of one finished cell. */
export class LateOutput {
  private text = "";
  private dropped = 0;
  private dirty = false;
  private timer: NodeJS.Timeout | undefined;
  private lastSent = -Infinity;

  /**
   * @param displayId the id of the display the cell showed before it ended
   * @param send sends an update of that display with `bundle` (the core picks its parent)
   */
  constructor(
    readonly displayId: string,
    private readonly send: (bundle: LateBundle) => void,
    private readonly cap = LATE_OUTPUT_CAP,
    private readonly now: () => number = () => Date.now(),
  ) {}

  /** The bundle of the first (empty) display. */
  static empty(): LateBundle {
    return { "text/plain": "" };
  }

  /** Adds text (already labelled by whoever wrote it); an update follows within the interval. */
  append(text: string): void {
    if (!text) return;
    this.text += text;
    if (this.text.length > this.cap) {
      // Cut at a line start so no line is shown half.
      let cut = this.text.length - this.cap;
      const nl = this.text.indexOf("\n", cut);
      if (nl >= 0 && nl - cut < 4096) cut = nl + 1;
      this.dropped += cut;
      this.text = this.text.slice(cut);
    }
    this.dirty = true;
    this.schedule();
  }

  /** What the display shows now. */
  bundle(): LateBundle {
    const head = this.dropped
      ? `[Sense: the first ${(this.dropped / (1024 * 1024)).toFixed(1)} MiB of this cell's late output were dropped (it keeps the last ${Math.round(this.cap / (1024 * 1024))} MiB); workerOutput(id) has each worker's own]\n`
      : "";
    return { "text/plain": head + this.text };
  }

  /** Sends an update now if anything changed since the last one. */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (!this.dirty) return;
    this.dirty = false;
    this.lastSent = this.now();
    this.send(this.bundle());
  }

  /** Stops the timer (the kernel is shutting down). */
  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(): void {
    if (this.timer) return;
    const interval = Math.max(MIN_INTERVAL_MS, this.text.length / CHARS_PER_MS);
    const due = Math.max(0, this.lastSent + interval - this.now());
    // The first line after a quiet spell goes out on the next turn, later ones are coalesced.
    this.timer = setTimeout(() => this.flush(), due);
    this.timer.unref();
  }
}
