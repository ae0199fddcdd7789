/**
 * Output that reaches a cell after the cell finished (a launched worker printing later, a
 * `%%sense_px --noblock` result), kept in a display the cell showed before it ended and updated in
 * place. Front ends that record only the messages of the cell they are running (nbclient, so
 * nbconvert and papermill; VS Code) never store a stream or display sent under a finished
 * request, but they do apply an `update_display_data` for a display id they have seen, whichever
 * cell it arrives under (nbclient `_update_display_id`; JupyterLab routes it by display id to the
 * cell that showed it). So the output accumulates here, in order (text labelled as it came, rich
 * displays with their HTML), and goes out as an update of that display.
 *
 * An update carries the display whole (the protocol has no append), so its bandwidth is bounded
 * twice: the display keeps only the newest {@link LATE_OUTPUT_CAP} characters (a line says how
 * much earlier output it no longer shows; `workerOutput(id)` keeps each worker's own), and updates
 * are spaced so that at most {@link LATE_BYTES_PER_SEC} go out (plus one update), coalescing
 * whatever came meanwhile. A flooding worker used to have the whole 4 MiB resent 2-3 times a
 * second (~3 MiB/s to the client); queued behind the iopub pacer those copies grew the kernel's
 * memory by 250 MiB in 45 s. Only one update per display is ever in flight: the next waits until
 * the previous one went out. The final state always goes out ({@link LateOutput.flush}).
 */

import { escapeHtml } from "../src/display/bundle";

/** Characters of late output one cell's display keeps and shows (the newest); older output is dropped and the display says so. */
export const LATE_OUTPUT_CAP = 128 * 1024;
/** Shortest time between two updates of one late display, ms. */
const MIN_INTERVAL_MS = 100;
/** The most one late display sends per second, bytes (its updates' JSON), on average: a full display every ~0.5 s. */
export const LATE_BYTES_PER_SEC = 256 * 1024;

/** The MIME bundle of a late display: always text; HTML too once a rich display is in it. */
export type LateBundle = { "text/plain": string; "text/html"?: string };

/** One piece of late output: stream text, or a display (its text, and its HTML if it had one). */
type Segment = { kind: "text"; text: string } | { kind: "display"; text: string; html?: string };

const withNewline = (s: string) => (s === "" || s.endsWith("\n") ? s : s + "\n");
const size = (n: number) => (n >= 1024 * 1024 ? `${(n / (1024 * 1024)).toFixed(1)} MiB` : `${Math.ceil(n / 1024)} KiB`);

/** The late output of one finished cell. */
export class LateOutput {
  private segments: Segment[] = [];
  private chars = 0;
  private dropped = 0;
  private dirty = false;
  private timer: NodeJS.Timeout | undefined;
  /** When the next update may go, by the bandwidth budget. */
  private nextAt = -Infinity;
  /** An update handed to `send` that has not gone out yet. */
  private inflight = false;
  /** A flush asked for while an update was in flight: sent as soon as that one went. */
  private flushWanted = false;

  /**
   * @param displayId the id of the display the cell showed before it ended
   * @param send sends an update of that display with `bundle` (the core picks its parent); a
   *   promise it returns is waited for before the next update (so updates never queue up)
   */
  constructor(
    readonly displayId: string,
    private readonly send: (bundle: LateBundle) => void | Promise<void>,
    private readonly cap = LATE_OUTPUT_CAP,
    private readonly now: () => number = () => Date.now(),
  ) {}

  /** The bundle of the first (empty) display. */
  static empty(): LateBundle {
    return { "text/plain": "" };
  }

  /** Adds stream text (already labelled by whoever wrote it); an update follows within the interval. */
  append(text: string): void {
    if (!text) return;
    const last = this.segments[this.segments.length - 1];
    if (last?.kind === "text") last.text += text;
    else this.segments.push({ kind: "text", text });
    this.grew(text.length);
  }

  /** Adds a display (a MIME bundle): its `text/plain` (or a note naming its types), and its `text/html` when it has one. */
  appendDisplay(data: Record<string, unknown>): void {
    const plain = data["text/plain"];
    const text = withNewline(typeof plain === "string" ? plain : `(a display of ${Object.keys(data).join(", ") || "nothing"})`);
    const html = typeof data["text/html"] === "string" ? data["text/html"] : undefined;
    this.segments.push({ kind: "display", text, ...(html !== undefined ? { html } : {}) });
    this.grew(text.length + (html?.length ?? 0));
  }

  /** What the display shows now. */
  bundle(): LateBundle {
    this.trim();
    const head = this.dropped ? `[Sense: the first ${size(this.dropped)} of this cell's late output are not shown (it shows the last ${size(this.cap)}); workerOutput(id) has each worker's own]\n` : "";
    const plain = head + this.segments.map((s) => s.text).join("");
    if (!this.segments.some((s) => s.kind === "display" && s.html !== undefined)) return { "text/plain": plain };
    const pre = (t: string) => (t ? `<pre>${escapeHtml(t)}</pre>` : "");
    const html = pre(head) + this.segments.map((s) => (s.kind === "display" && s.html !== undefined ? `<div>${s.html}</div>` : pre(s.text))).join("");
    return { "text/plain": plain, "text/html": html };
  }

  /**
   * Sends an update now if anything changed since the last one (or, when one is still going out,
   * right after it): the final state always goes, whatever the bandwidth budget.
   */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (!this.dirty) return;
    if (this.inflight) {
      this.flushWanted = true;
      return;
    }
    this.dirty = false;
    const bundle = this.bundle();
    const bytes = Buffer.byteLength(JSON.stringify(bundle));
    this.nextAt = this.now() + Math.max(MIN_INTERVAL_MS, (bytes / LATE_BYTES_PER_SEC) * 1000);
    let sent: void | Promise<void>;
    try {
      sent = this.send(bundle);
    } catch {
      this.dirty = true; // not sent: the next flush (or more output) tries again
      return;
    }
    if (!(sent instanceof Promise)) return;
    this.inflight = true;
    const settled = () => {
      this.inflight = false;
      if (!this.dirty) return;
      if (this.flushWanted) {
        this.flushWanted = false;
        this.flush();
      } else this.schedule();
    };
    sent.then(settled, settled);
  }

  /** Sends an update now if anything changed and the bandwidth budget allows it; else it follows in time. */
  flushIfDue(): void {
    if (this.dirty && !this.inflight && this.now() >= this.nextAt) this.flush();
  }

  /** Stops the timer (nothing is sent until more output comes). */
  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private grew(chars: number): void {
    this.chars += chars;
    // Trimmed in steps, not on every append: cutting the head of a long text copies it, and a
    // flood appends thousands of times a second. What is sent is trimmed exactly (bundle).
    if (this.chars > this.cap * 1.5) this.trim();
    this.dirty = true;
    this.schedule();
  }

  /** Drops the oldest output past the cap: whole segments, or the head of a text cut at a line start. */
  private trim(): void {
    while (this.chars > this.cap && this.segments.length) {
      const first = this.segments[0];
      const over = this.chars - this.cap;
      const weight = first.text.length + (first.kind === "display" ? (first.html?.length ?? 0) : 0);
      if (first.kind === "text" && weight > over) {
        let cut = over;
        const nl = first.text.indexOf("\n", cut);
        if (nl >= 0 && nl - cut < 4096) cut = nl + 1;
        first.text = first.text.slice(cut);
        this.chars -= cut;
        this.dropped += cut;
        if (!first.text) this.segments.shift();
        continue;
      }
      this.segments.shift();
      this.chars -= weight;
      this.dropped += weight;
    }
  }

  private schedule(): void {
    // While an update is going out, the next is scheduled when it went (see flush).
    if (this.timer || this.inflight) return;
    const due = Math.max(0, this.nextAt - this.now());
    // The first output after a quiet spell goes out on the next turn, later ones are coalesced.
    this.timer = setTimeout(() => this.flush(), due);
    this.timer.unref();
  }
}
