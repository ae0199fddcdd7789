/**
 * Waiting for workers to reach a state: local workers change state on channel events and other
 * processes' workers only on the server, so a short poll of the records covers both.
 */
import type { WorkerRecord, WorkerStatus } from "../jupyter/schemas";
import { sleep } from "../util/timing";

/** Options of `awaitWorkers`. */
export interface AwaitOptions {
  /** Wait until the startup code finished (`idle` or `failed`), not just until it runs. Default false. */
  waitForCompletion?: boolean;
  /** Give up after this many seconds (default 600); pending workers then come back in `failures` with reason `timeout`. */
  timeoutSeconds?: number;
  /** Where the call runs (see `WorkerContextInput`). */
  context?: import("../jupyter/context-input").WorkerContextInput;
  /** Poll interval for workers of other processes, ms (default 100). */
  pollMs?: number;
}

/** The result of `awaitWorkers`, shaped as Cloudera ML's `await_workers`. */
export interface AwaitResult {
  /** Workers that reached the state waited for. */
  workers: WorkerRecord[];
  /** Workers that failed, were stopped, vanished or timed out; `reason` says which. */
  failures: WorkerRecord[];
}

/**
 * Polls `records()` until every worker of `wanted` reached the state (or a final one), or the
 * deadline passed. Never throws on timeout: pending workers come back with `reason: "timeout"`.
 */
export async function awaitRecords(
  wanted: string[],
  first: WorkerRecord[],
  records: () => Promise<WorkerRecord[]>,
  options: { waitForCompletion: boolean; deadline: number; pollMs: number; masterId: string },
): Promise<AwaitResult> {
  const reached = (s: WorkerStatus) => (options.waitForCompletion ? s === "idle" : s === "running" || s === "idle");
  const final = (s: WorkerStatus) => reached(s) || s === "failed" || s === "stopped";
  let current = first;
  for (;;) {
    const byId = new Map(current.map((r) => [r.id, r]));
    const now = wanted.map((id) => byId.get(id));
    if (now.every((r) => !r || final(r.status)) || Date.now() >= options.deadline) {
      const result: AwaitResult = { workers: [], failures: [] };
      wanted.forEach((id, i) => {
        const r = now[i];
        const placeholder: WorkerRecord = { id, name: id, engine: "", size: "small", status: "stopped", masterId: options.masterId, startedAt: "", sessionId: "", path: "", index: 0 };
        if (!r) result.failures.push({ ...(current.find((x) => x.id === id) ?? placeholder), status: "stopped", reason: "gone" });
        else if (reached(r.status)) result.workers.push(r);
        else if (final(r.status)) result.failures.push({ ...r, reason: r.reason ?? r.status });
        else result.failures.push({ ...r, reason: "timeout" });
      });
      return result;
    }
    await sleep(Math.min(options.pollMs, Math.max(0, options.deadline - Date.now())));
    current = await records();
  }
}
