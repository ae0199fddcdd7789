/**
 * `%sense_top`: the workers table with CPU % and memory, updated in place every few seconds until
 * the cell is interrupted or `seconds` have passed. Each refresh asks every worker at once with a
 * short timeout (src/workers/usage.ts), so a worker that does not answer shows `—` and the table
 * still moves on; refreshes never overlap (the next waits for the previous one).
 */
import type { WorkerRecord } from "../jupyter/schemas";
import { liveDisplay } from "../display/live";
import { renderWorkers, type UsageLike } from "../display/tables";
import type { MimeBundle, OutputSink } from "../display/sink";

/** One worker's record and figures, as the core's `workerUsage` answers. */
export interface WorkerUsageLike {
  record: WorkerRecord;
  usage?: UsageLike;
}

/** The workers table with usage columns, captioned with the time of the figures. */
export function renderUsage(rows: readonly WorkerUsageLike[], caption?: string): MimeBundle {
  return renderWorkers(
    rows.map((r) => r.record),
    new Map(rows.map((r) => [r.record.id, r.usage])),
    caption,
  );
}

/** Options of {@link runTop}. */
export interface TopOptions {
  /** Stop after this many seconds (default: until `signal` aborts). */
  seconds?: number;
  /** Time between refreshes, ms. */
  intervalMs: number;
  signal?: AbortSignal;
}

/** Waits `ms`, or less when `signal` aborts. */
function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

/**
 * Shows the usage table in `sink` and refreshes it in place until `signal` aborts or
 * `options.seconds` passed; resolves then (an interrupt ends it quietly: the last table stays).
 * @throws what `usage` throws on the first call (nothing is shown then); later failures keep
 *   the last table and end the refreshes.
 */
export async function runTop(sink: OutputSink, usage: () => Promise<WorkerUsageLike[]>, options: TopOptions): Promise<void> {
  const stamp = () => `updated ${new Date().toISOString().slice(11, 19)}Z`;
  const live = liveDisplay(sink, renderUsage(await usage(), stamp()));
  const end = options.seconds === undefined ? Infinity : Date.now() + options.seconds * 1000;
  for (;;) {
    const left = end - Date.now();
    if (options.signal?.aborted || left <= 0) return;
    await pause(Math.min(options.intervalMs, left), options.signal);
    if (options.signal?.aborted) return;
    let rows: WorkerUsageLike[];
    try {
      rows = await usage();
    } catch {
      return; // the server went away: the last table stays
    }
    live.update(renderUsage(rows, stamp()));
  }
}
