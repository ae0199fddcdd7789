/**
 * Which workers a remote call runs on: ids, names (`w2`), records or handles, or by default every
 * running or idle worker this process launched for its master, in launch order.
 */
import { UsageError, WorkerError } from "../errors";
import type { WorkerChannel } from "../workers/channel";
import { localRunnableWorkers, workerChannel, type WorkerContextInput } from "../workers/cluster";

/** One worker, by id, name, record or handle (anything with an `id`). */
export type TargetRef = string | { readonly id: string };

/** `targets` of a remote call: one worker or several. */
export type Targets = TargetRef | readonly TargetRef[];

/** The language code for a worker is prepared in. */
export type TargetLanguage = "python" | "javascript" | "typescript";

/** A resolved target. */
export interface Target {
  channel: WorkerChannel;
  name: string;
  id: string;
  language: TargetLanguage;
}

function refId(r: unknown): string {
  if (typeof r === "string") return r;
  if (r && typeof r === "object" && typeof (r as { id?: unknown }).id === "string") return (r as { id: string }).id;
  throw new UsageError(`not a worker id, name, record or handle: ${JSON.stringify(r) ?? String(r)}`, { code: "bad_option" });
}

/** Maps a kernel's `language_info.name` to how code is prepared for it. */
export function targetLanguage(name: string | undefined): TargetLanguage | undefined {
  const l = (name ?? "").toLowerCase();
  if (l === "python" || l === "python3") return "python";
  if (l === "typescript" || l === "ts") return "typescript";
  if (l === "javascript" || l === "js" || l === "node") return "javascript";
  return undefined;
}

/**
 * Resolves `targets` (deduplicated, order kept) before anything is sent.
 * @throws WorkerError `unknown_worker` for a worker not launched by this process (or ended), or
 *   when there is no worker at all; UsageError `bad_option` for something that is not a worker
 *   reference; UsageError `unsupported_worker` for a kernel whose language Sense cannot run code in.
 */
export async function resolveTargets(targets: Targets | undefined, context?: WorkerContextInput): Promise<Target[]> {
  const ids = targets === undefined ? localRunnableWorkers({ context }).map((r) => r.id) : (Array.isArray(targets) ? targets : [targets]).map(refId);
  if (ids.length === 0) {
    throw new WorkerError("unknown_worker", targets === undefined ? "there are no running or idle workers to run on: launch some first (launchWorkers or %%sense_worker)" : "targets is empty", { unknown: [] });
  }
  const channels = ids.map((id) => workerChannel(id));
  const seen = new Set<string>();
  const out: Target[] = [];
  for (const channel of channels) {
    const rec = channel.record();
    if (seen.has(rec.id)) continue;
    seen.add(rec.id);
    const info = await channel.conn.info;
    const language = targetLanguage(info?.language_info?.name);
    if (!language) {
      throw new UsageError(`worker ${rec.name} runs ${info?.language_info?.name ?? "an unknown language"}; remote code runs on Python and JavaScript/TypeScript workers`, {
        code: "unsupported_worker",
      });
    }
    out.push({ channel, name: rec.name, id: rec.id, language });
  }
  return out;
}
