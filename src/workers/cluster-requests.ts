/**
 * The master's side of `sense_cluster_request` (src/protocol/control.ts): a Sense master kernel
 * hands the request's content here (kernel-extension/core.ts), and the answer comes from the
 * process's cluster: its failed workers with their reasons (their sessions are deleted, so the
 * JupyterLab panel cannot read them from the server), or the same `restart` / `stop` the API and
 * `%sense_restart` / `%sense_stop` call. The content is data checked against allowlists; nothing
 * in it becomes code.
 */
import { isSenseError, redact, UsageError } from "../errors";
import { CLUSTER_ACTIONS, type ClusterRequest, type ClusterWorker, WORKER_NAME } from "../protocol/control";
import type { WorkerRecord } from "../jupyter/schemas";
import { defaultCluster } from "./api";
import type { Cluster } from "./cluster";

/** At most this many workers named in one request (a cluster's own limit is far lower). */
const MAX_NAMES = 1_024;

/**
 * The request in `content`, checked: a known action and, for `restart` / `stop`, a non-empty list
 * of distinct worker names (`w<index>`).
 * @throws UsageError `bad_option` naming what is wrong.
 */
export function parseClusterRequest(content: unknown): ClusterRequest {
  const c = content !== null && typeof content === "object" && !Array.isArray(content) ? (content as Record<string, unknown>) : undefined;
  const action = c?.action;
  if (typeof action !== "string" || !(CLUSTER_ACTIONS as readonly string[]).includes(action)) {
    throw new UsageError(`sense_cluster_request: action must be one of ${CLUSTER_ACTIONS.join(", ")}`, { code: "bad_option" });
  }
  const keys = Object.keys(c ?? {}).filter((k) => k !== "action" && !(action !== "list" && k === "workers"));
  if (keys.length) throw new UsageError(`sense_cluster_request: unknown field${keys.length > 1 ? "s" : ""} ${keys.join(", ")}`, { code: "bad_option" });
  if (action === "list") return { action };
  const workers = c?.workers;
  if (!Array.isArray(workers) || workers.length === 0 || workers.length > MAX_NAMES || !workers.every((w): w is string => typeof w === "string" && WORKER_NAME.test(w))) {
    throw new UsageError(`sense_cluster_request: ${action} needs workers, a list of 1 to ${MAX_NAMES} worker names like "w2"`, { code: "bad_option" });
  }
  return { action: action as "restart" | "stop", workers: [...new Set(workers)] };
}

function wire(record: WorkerRecord, restartable: boolean): ClusterWorker {
  return {
    name: record.name,
    kernelId: record.id,
    engine: record.engine,
    size: record.size,
    status: record.status,
    ...(record.reason ? { reason: record.reason } : {}),
    startedAtMs: Date.parse(record.startedAt) || 0,
    restartable,
  };
}

/**
 * The `sense_cluster_reply` content for a request's `content`: `list` gives the cluster's failed
 * workers and those it is restarting, `starting` (no server asked); `restart` starts fresh kernels in place of the named workers (their
 * output goes where it went before: the launching cell) and resolves once they run; `stop` stops
 * them (a failed worker's record then leaves the list). Never rejects: a refused request or a
 * failed action is `{ status: "error", code, ename, evalue }` (`code` as the error's: `bad_option`,
 * `unknown_worker`, `launch_failed`, ...).
 */
export async function answerClusterRequest(content: unknown, cluster: Cluster = defaultCluster()): Promise<Record<string, unknown>> {
  try {
    const request = parseClusterRequest(content);
    if (request.action === "list") return { status: "ok", workers: cluster.failed().map((f) => wire(f.record, f.restartable)) };
    const records = request.action === "restart" ? await cluster.restart(request.workers, { sink: "launching" }) : await cluster.stop(request.workers);
    return { status: "ok", workers: records.map((r) => wire(r, request.action === "restart")) };
  } catch (e) {
    const error = e instanceof Error ? e : new Error(String(e));
    return { status: "error", code: isSenseError(error) ? error.code : "error", ename: error.name, evalue: redact(error.message), traceback: [] };
  }
}
