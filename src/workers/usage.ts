/**
 * CPU and memory of a cluster's workers: each worker's kernel is asked over the channel its
 * master already holds (`usage_request` on control, see src/protocol/usage.ts), all at once, each
 * with a short timeout, so a kernel that does not answer (an engine without the request, a
 * blocked event loop, a worker another process launched) costs one timeout and shows no figures,
 * never a hang.
 */
import type { WorkerRecord } from "../jupyter/schemas";
import { USAGE_TIMEOUT_MS, type UsageReply } from "../protocol/usage";
import type { KernelChannel } from "../backends/backend";

/** One worker's record and its figures (`usage` absent: its kernel did not answer in time). */
export interface WorkerUsage {
  record: WorkerRecord;
  usage?: UsageReply;
}

/**
 * Asks every worker in `records` for its usage through `channelOf` (the open channel of a worker
 * this process launched, `undefined` for others), in parallel; resolves within about `timeoutMs`.
 * Never rejects.
 */
export async function usageOf(records: readonly WorkerRecord[], channelOf: (id: string) => KernelChannel | undefined, timeoutMs = USAGE_TIMEOUT_MS): Promise<WorkerUsage[]> {
  return Promise.all(
    records.map(async (record) => {
      const channel = record.status === "stopped" || record.status === "failed" ? undefined : channelOf(record.id);
      const usage = channel ? await channel.usage(timeoutMs).catch(() => undefined) : undefined;
      return usage ? { record, usage } : { record };
    }),
  );
}
