/**
 * Worker output multiplexed into the master: every stream, error and rich output of a worker is
 * kept (for {@link WorkerOutput.text}) and republished through the master's sink, labelled by
 * worker. Streams are coalesced by line: a partial line waits for its newline, for the worker to
 * go idle, or for `flushMs`, whichever comes first, so lines of two workers never interleave
 * mid-line and each worker's output stays in order.
 *
 * Label format (one, documented in docs/workers.md): every stream line is prefixed `[w1] ` and
 * written to the master's stdout or stderr as the worker wrote it; an error is written to stderr
 * as `[w1] ` + each traceback line; rich output is shown as a display whose `text/plain` starts
 * with `[w1] ` and whose `text/html` is preceded by a small `[w1]` label.
 */
import { escapeHtml } from "../display/bundle";
import type { MimeBundle, OutputSink } from "../display/sink";

/** One output of a worker, as kept by the master. */
export type WorkerOutputItem =
  | { type: "stream"; name: "stdout" | "stderr"; text: string }
  | { type: "display"; data: MimeBundle; displayId?: string; update?: boolean }
  | { type: "error"; ename: string; evalue: string; traceback: string[] };

/** Options of {@link WorkerOutput}. */
export interface WorkerOutputOptions {
  /** Label shown in front of every line, e.g. `w1`. */
  label: string;
  /** Where republished output goes; `null` keeps output without showing it. */
  sink: OutputSink | null;
  /** Longest time a partial line waits for its newline, in ms (default 50). */
  flushMs?: number;
}

// ANSI colour codes in ipykernel tracebacks would show as garbage in a terminal-less master.
const ANSI = new RegExp(String.fromCharCode(27) + "\\[[0-9;]*[A-Za-z]", "g");

/** The output of one worker: kept in full, republished line by line. */
export class WorkerOutput {
  readonly label: string;
  private readonly sink: OutputSink | null;
  private readonly flushMs: number;
  private readonly items: WorkerOutputItem[] = [];
  private readonly pending: Record<"stdout" | "stderr", string> = { stdout: "", stderr: "" };
  private timer: NodeJS.Timeout | undefined;

  constructor(options: WorkerOutputOptions) {
    this.label = options.label;
    this.sink = options.sink;
    this.flushMs = options.flushMs ?? 50;
  }

  /** Takes a stream chunk; complete lines go out at once, a partial line after at most `flushMs`. */
  stream(name: "stdout" | "stderr", text: string): void {
    if (!text) return;
    this.keep({ type: "stream", name, text });
    const buffered = this.pending[name] + text;
    const cut = buffered.lastIndexOf("\n");
    if (cut >= 0) {
      // the other stream's partial line was written first, so keep order across streams
      this.flush(name === "stdout" ? "stderr" : "stdout");
      this.emitLines(name, buffered.slice(0, cut + 1));
      this.pending[name] = buffered.slice(cut + 1);
    } else {
      this.pending[name] = buffered;
    }
    this.schedule();
  }

  /** Takes an error (a traceback): shown on the master's stderr, labelled, without colour codes. */
  error(ename: string, evalue: string, traceback: string[]): void {
    this.flushAll();
    this.keep({ type: "error", ename, evalue, traceback });
    const lines = traceback.length ? traceback.join("\n").replace(ANSI, "") : `${ename}: ${evalue}`;
    this.emitLines("stderr", lines.endsWith("\n") ? lines : lines + "\n");
  }

  /** Takes rich output (display_data, update_display_data, execute_result) and shows it labelled. */
  display(data: Record<string, unknown>, options: { displayId?: string; update?: boolean } = {}): void {
    this.flushAll();
    const bundle = labelBundle(this.label, data);
    this.keep({ type: "display", data: bundle, displayId: options.displayId, update: options.update });
    if (!this.sink) return;
    // display ids are per kernel: namespace them so two workers never update each other's output
    const displayId = options.displayId ? `${this.label}:${options.displayId}` : undefined;
    this.sink.display(bundle, displayId ? { displayId, update: options.update } : undefined);
  }

  /**
   * A line from Sense itself about this worker (e.g. that it failed), shown labelled on the
   * master's stderr but not kept: `text()` stays exactly what the worker wrote.
   */
  notice(text: string): void {
    this.flushAll();
    this.emitLines("stderr", text.endsWith("\n") ? text : text + "\n");
  }

  /** Writes out partial lines now (the worker went idle, or stopped). */
  flushAll(): void {
    this.flush("stdout");
    this.flush("stderr");
  }

  /** Everything the worker wrote so far (streams and error text, in order). */
  text(): string {
    return this.items
      .map((i) => (i.type === "stream" ? i.text : i.type === "error" ? (i.traceback.length ? i.traceback.join("\n").replace(ANSI, "") : `${i.ename}: ${i.evalue}`) + "\n" : ""))
      .join("");
  }

  /** Every output item so far, in order (a copy). */
  list(): WorkerOutputItem[] {
    return [...this.items];
  }

  /** Flushes and stops the flush timer. */
  close(): void {
    this.flushAll();
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private keep(item: WorkerOutputItem): void {
    // consecutive chunks of one stream are merged so the kept list stays small
    const last = this.items[this.items.length - 1];
    if (item.type === "stream" && last?.type === "stream" && last.name === item.name) last.text += item.text;
    else this.items.push(item);
  }

  private flush(name: "stdout" | "stderr"): void {
    const rest = this.pending[name];
    if (!rest) return;
    this.pending[name] = "";
    this.emitLines(name, rest + "\n");
  }

  private emitLines(name: "stdout" | "stderr", text: string): void {
    if (!this.sink || !text) return;
    const prefix = `[${this.label}] `;
    const body = text.endsWith("\n") ? text.slice(0, -1) : text;
    const out = body.split("\n").map((l) => prefix + l.replace(/\r$/, "")).join("\n") + "\n";
    if (name === "stdout") this.sink.stdout(out);
    else this.sink.stderr(out);
  }

  private schedule(): void {
    if (this.timer || (!this.pending.stdout && !this.pending.stderr)) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.flushAll();
    }, this.flushMs);
    this.timer.unref();
  }
}

/** Returns a copy of `data` labelled for `label`: `text/plain` prefixed, `text/html` preceded by a label. */
export function labelBundle(label: string, data: Record<string, unknown>): MimeBundle {
  const plain = typeof data["text/plain"] === "string" ? (data["text/plain"] as string) : "";
  const out: MimeBundle = { ...data, "text/plain": `[${label}] ${plain}` };
  if (typeof data["text/html"] === "string") {
    out["text/html"] = `<div class="sense-worker-output"><small style="opacity:.7">[${escapeHtml(label)}]</small>${data["text/html"] as string}</div>`;
  }
  return out;
}
