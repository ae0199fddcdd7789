/**
 * Which workers a remote call runs on: ids, names (`w2`), records or handles, or by default every
 * running or idle worker this process launched for its master, in launch order.
 */
import { shown, UsageError, WorkerError } from "../errors";
import { isSenseKernel } from "../protocol/marks";
import type { Cluster } from "./cluster";
import type { WorkerContextInput } from "../jupyter/context-input";
import type { Worker } from "./worker";

/** One worker, by id, name, record or handle (anything with an `id`). */
export type TargetRef = string | { readonly id: string } | Worker;

/** `targets` of a remote call: one worker or several. */
export type Targets = TargetRef | readonly TargetRef[];

/** The language code for a worker is prepared in. */
export type TargetLanguage = "python" | "javascript" | "typescript";


/** A resolved target. */
export interface Target {
  worker: Worker;
  name: string;
  id: string;
  language: TargetLanguage;
  /**
   * JavaScript goes with the precompiled mark (src/transpile.ts): a Sense TypeScript kernel then
   * runs it without loading its compiler; the master transpiled it once for every worker.
   */
  precompiled: boolean;
}

function refId(r: unknown): string {
  if (typeof r === "string") return r;
  if (r && typeof r === "object" && typeof (r as { id?: unknown }).id === "string") return (r as { id: string }).id;
  if (r && typeof r === "object" && typeof (r as { kernelId?: unknown }).kernelId === "string") return (r as { kernelId: string }).kernelId;
  throw new UsageError(`not a worker id, name, record or handle: ${shown(r)}`, { code: "bad_option" });
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
 * Resolves `targets` among the workers of `cluster` (deduplicated, order kept) before anything is sent.
 * @throws WorkerError `unknown_worker` for a worker not launched by this process (or ended), or
 *   when there is no worker at all; UsageError `bad_option` for something that is not a worker
 *   reference; UsageError `unsupported_worker` for a kernel whose language Sense cannot run code in.
 */
export async function resolveTargets(cluster: Pick<Cluster, "runnable" | "worker">, targets: Targets | undefined, context?: WorkerContextInput): Promise<Target[]> {
  const ids = targets === undefined ? cluster.runnable({ context }).map((w) => w.kernelId) : (Array.isArray(targets) ? targets : [targets]).map(refId);
  if (ids.length === 0) {
    throw new WorkerError("unknown_worker", targets === undefined ? "there are no running or idle workers to run on: launch some first (launchWorkers or %%sense_worker)" : "targets is empty", { unknown: [] });
  }
  const workers = ids.map((id) => cluster.worker(id));
  for (const w of workers) {
    if (!w.channel || w.ended) {
      // A lost worker says why from the moment its channel went, before its record is `failed`.
      const why = w.lossReason ?? w.record().reason;
      const status = w.lossReason ? "failed" : w.status;
      const fix = status === "failed" ? `; restartWorkers("${w.name}") starts a fresh kernel in its place` : "";
      throw new WorkerError("unknown_worker", `worker ${w.name} is ${status}${why ? ` (${why})` : ""}: it cannot run code${fix}`, { unknown: [w.name] });
    }
  }
  const seen = new Set<string>();
  const out: Target[] = [];
  for (const worker of workers) {
    if (seen.has(worker.kernelId)) continue;
    seen.add(worker.kernelId);
    const info = await worker.kernelInfo();
    const name = info.language;
    const language = targetLanguage(name);
    if (!language) {
      throw new UsageError(`worker ${worker.name} runs ${name ?? "an unknown language"}; remote code runs on Python and JavaScript/TypeScript workers`, { code: "unsupported_worker" });
    }
    // A Sense kernel takes the master's JavaScript as is; any other TypeScript kernel gets TypeScript.
    const sense = isSenseKernel(info.implementation);
    const precompiled = sense && language === "typescript";
    out.push({ worker, name: worker.name, id: worker.kernelId, language: precompiled ? "javascript" : language, precompiled });
  }
  return out;
}
