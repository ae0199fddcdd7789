/**
 * Worker output multiplexed into the master: every stream, error and rich output of a worker is
 * republished through the master's sink, labelled by worker, and the last part of it is kept (for
 * {@link WorkerOutput.text}; a ring of `SENSE_WORKER_OUTPUT_MIB`, 4 MiB by default: a worker
 * printing without end must not grow the master without end). Streams are coalesced by line: a partial line waits for its newline, for the worker to
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
import { ConfigError } from "../errors";

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
  /** How much output is kept, in bytes (UTF-8): the last ones (default {@link outputKeepBytes}). */
  keepBytes?: number;
}

const MIB = 1024 * 1024;
/** Default of `SENSE_WORKER_OUTPUT_MIB`: the output kept per worker, MiB. */
export const DEFAULT_OUTPUT_KEEP_MIB = 4;
/** Default of `SENSE_ENDED_OUTPUT_MIB`: the output kept for all ended workers together, MiB. */
export const DEFAULT_ENDED_OUTPUT_KEEP_MIB = 16;
// Consecutive stream chunks are merged up to this size, so the ring drops whole items (cheap, and
// a slice of a huge merged string would keep all of it alive).
const MERGE_LIMIT = 64 * 1024;

/**
 * A MiB setting from the environment (`SENSE_WORKER_OUTPUT_MIB`, `SENSE_ENDED_OUTPUT_MIB`) in
 * bytes: unset or empty = `fallbackMiB`; a positive number (fractions allowed) otherwise.
 * @throws ConfigError `bad_config` for anything else.
 */
export function outputKeepBytes(name: "SENSE_WORKER_OUTPUT_MIB" | "SENSE_ENDED_OUTPUT_MIB" = "SENSE_WORKER_OUTPUT_MIB", env: NodeJS.ProcessEnv = process.env): number {
  const fallback = name === "SENSE_WORKER_OUTPUT_MIB" ? DEFAULT_OUTPUT_KEEP_MIB : DEFAULT_ENDED_OUTPUT_KEEP_MIB;
  const raw = env[name];
  if (raw === undefined || raw.trim() === "") return fallback * MIB;
  const v = Number(raw);
  if (!Number.isFinite(v) || v <= 0) throw new ConfigError("bad_config", `${name} must be a positive number of MiB, not ${JSON.stringify(raw)}`, { variable: name });
  return Math.round(v * MIB);
}

function itemBytes(i: WorkerOutputItem): number {
  if (i.type === "stream") return Buffer.byteLength(i.text);
  if (i.type === "error") return Buffer.byteLength(i.ename) + Buffer.byteLength(i.evalue) + i.traceback.reduce((n, t) => n + Buffer.byteLength(t), 0);
  return Buffer.byteLength(JSON.stringify(i.data) ?? "");
}

// ANSI colour codes in ipykernel tracebacks would show as garbage in a terminal-less master.
const ANSI = new RegExp(String.fromCharCode(27) + "\\[[0-9;]*[A-Za-z]", "g");

/**
 * The output of one worker: the last `keepBytes` kept (a ring: the oldest output goes first, and
 * `text()` then says how much went), everything republished line by line.
 */
export class WorkerOutput {
  /** The label in front of every line (`w1`); a worker renamed while it starts is relabelled. */
  label: string;
  private readonly sink: OutputSink | null;
  private readonly flushMs: number;
  private keepBytes: number;
  private items: WorkerOutputItem[] = [];
  private sizes: number[] = [];
  private keptBytes = 0;
  private dropped = 0;
  private discardedWhy: string | undefined;
  private readonly pending: Record<"stdout" | "stderr", string> = { stdout: "", stderr: "" };
  private timer: NodeJS.Timeout | undefined;
  private releaseSink: (() => void) | undefined;

  constructor(options: WorkerOutputOptions) {
    this.label = options.label;
    this.sink = options.sink;
    this.flushMs = options.flushMs ?? 50;
    this.keepBytes = options.keepBytes ?? outputKeepBytes();
    // Until settle(): the launching cell keeps a place for what the worker prints after it ends.
    this.releaseSink = this.sink?.retain?.();
  }

  /** Bytes of output dropped so far (the oldest first); 0 when everything is kept. */
  get droppedBytes(): number {
    this.trim();
    return this.dropped;
  }

  /** Bytes of output kept now. */
  get bytes(): number {
    this.trim();
    return this.keptBytes;
  }

  /** Keeps at most `bytes` from now on (ended workers keep less), dropping the oldest output now. */
  limit(bytes: number): void {
    this.keepBytes = Math.min(this.keepBytes, bytes);
    this.trim();
  }

  /** Drops all kept output; `text()` then says `why` (the record of an ended worker outlives its output). */
  discard(why: string): void {
    this.dropped += this.keptBytes;
    this.items = [];
    this.sizes = [];
    this.keptBytes = 0;
    this.discardedWhy = why;
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

  /**
   * What the worker wrote (streams and error text, in order): everything, or the last part, then
   * starting with a line `[Sense: ... dropped ...]` saying how much is missing and why.
   */
  text(): string {
    this.trim();
    const body = this.items
      .map((i) => (i.type === "stream" ? i.text : i.type === "error" ? (i.traceback.length ? i.traceback.join("\n").replace(ANSI, "") : `${i.ename}: ${i.evalue}`) + "\n" : ""))
      .join("");
    if (!this.dropped) return body;
    const mib = (b: number) => `${(b / MIB).toFixed(1)} MiB`;
    const why = this.discardedWhy ?? `only the last ${mib(this.keepBytes)} of a worker's output are kept (SENSE_WORKER_OUTPUT_MIB)`;
    return `[Sense: output truncated: the first ${mib(this.dropped)} were dropped; ${why}]\n${body}`;
  }

  /** Every output item so far, in order (a copy). */
  list(): WorkerOutputItem[] {
    this.trim();
    return [...this.items];
  }

  /**
   * Says the worker is past its startup code: the sink is released (its cell stops keeping a
   * place for late output), while output still goes to it. Idempotent.
   */
  settle(): void {
    this.releaseSink?.();
    this.releaseSink = undefined;
  }

  /** Flushes, stops the flush timer and releases the sink (nothing more will be written). */
  close(): void {
    this.flushAll();
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.settle();
  }

  private keep(item: WorkerOutputItem): void {
    if (this.discardedWhy) {
      this.dropped += itemBytes(item);
      return;
    }
    const size = itemBytes(item);
    this.keptBytes += size;
    // consecutive chunks of one stream are merged (up to MERGE_LIMIT) so the kept list stays small
    const n = this.items.length;
    const last = this.items[n - 1];
    if (item.type === "stream" && last?.type === "stream" && last.name === item.name && this.sizes[n - 1] + size <= MERGE_LIMIT) {
      last.text += item.text;
      this.sizes[n - 1] += size;
    } else {
      this.items.push(item);
      this.sizes.push(size);
    }
    this.trim(false);
  }

  /**
   * Drops the oldest items until the kept output fits `keepBytes`. From `keep`, only once it is an
   * eighth over (at least 64 KiB): dropping in batches keeps a flood of tiny items linear.
   */
  private trim(force = true): void {
    if (this.keptBytes <= this.keepBytes) return;
    if (!force && this.keptBytes <= this.keepBytes + Math.max(MERGE_LIMIT, this.keepBytes / 8)) return;
    let cut = 0;
    while (cut < this.items.length && this.keptBytes > this.keepBytes) {
      const size = this.sizes[cut];
      const item = this.items[cut];
      const over = this.keptBytes - this.keepBytes;
      if (item.type === "stream" && size > over && cut === this.items.length - 1) {
        // One item bigger than the whole ring: keep its end, as a copy (a slice would pin the original).
        const tail = Buffer.from(item.text, "utf8").subarray(over).toString("utf8");
        this.items[cut] = { ...item, text: tail };
        const tailSize = Buffer.byteLength(tail);
        this.dropped += size - tailSize;
        this.keptBytes -= size - tailSize;
        this.sizes[cut] = tailSize;
        break;
      }
      this.keptBytes -= size;
      this.dropped += size;
      cut++;
    }
    if (cut) {
      this.items.splice(0, cut);
      this.sizes.splice(0, cut);
    }
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
    // Each line labelled, one `\r` before its newline dropped: in passes over the whole chunk (a
    // flood brings ~1,000 lines a message from each worker), not an array of lines; half the time.
    const next = `\n${prefix}`; // by a function: a `$` in the label is no replacement pattern
    const out = prefix + body.replaceAll("\r\n", "\n").replaceAll("\n", () => next).replace(/\r$/, "") + "\n";
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
