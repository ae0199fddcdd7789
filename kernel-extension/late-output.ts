/**
 * Output that reaches a cell after the cell finished (a launched worker printing later, a
 * `%%sense_px --noblock` result), kept in a display the cell showed before it ended and updated in
 * place. Front ends that record only the messages of the cell they are running (nbclient, so
 * nbconvert and papermill; VS Code) never store a stream or display sent under a finished
 * request, but they do apply an `update_display_data` for a display id they have seen, whichever
 * cell it arrives under (nbclient `_update_display_id`; JupyterLab routes it by display id to the
 * cell that showed it). So the output accumulates here, in order (text labelled as it came, rich
 * displays with their HTML), lossless up to a cap, and goes out whole, coalesced, as an update.
 */

import { escapeHtml } from "../src/display/bundle";

/** Characters of late output one cell keeps (the newest); older output is dropped and the display says so. */
export const LATE_OUTPUT_CAP = 4 * 1024 * 1024;
/** Shortest time between two updates of one late display, ms. */
const MIN_INTERVAL_MS = 100;
/** Characters per ms of update interval: a big display is resent less often (4 MiB: every 2 s). */
const CHARS_PER_MS = 2048;

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
    const head = this.dropped ? `[Sense: the first ${size(this.dropped)} of this cell's late output were dropped (it keeps the last ${size(this.cap)}); workerOutput(id) has each worker's own]\n` : "";
    const plain = head + this.segments.map((s) => s.text).join("");
    if (!this.segments.some((s) => s.kind === "display" && s.html !== undefined)) return { "text/plain": plain };
    const pre = (t: string) => (t ? `<pre>${escapeHtml(t)}</pre>` : "");
    const html = pre(head) + this.segments.map((s) => (s.kind === "display" && s.html !== undefined ? `<div>${s.html}</div>` : pre(s.text))).join("");
    return { "text/plain": plain, "text/html": html };
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

  /** Stops the timer (nothing is sent until more output comes). */
  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private grew(chars: number): void {
    this.chars += chars;
    this.trim();
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
    if (this.timer) return;
    const interval = Math.max(MIN_INTERVAL_MS, this.chars / CHARS_PER_MS);
    const due = Math.max(0, this.lastSent + interval - this.now());
    // The first output after a quiet spell goes out on the next turn, later ones are coalesced.
    this.timer = setTimeout(() => this.flush(), due);
    this.timer.unref();
  }
}
