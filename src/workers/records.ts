/**
 * Worker records as plain data: read from the server's sessions (any process can), overlaid with
 * what the launching process knows better, and matched against what a caller names.
 */
import { shown, UsageError, WorkerError } from "../errors";
import type { SessionModel, WorkerRecord, WorkerStatus } from "../jupyter/schemas";
import type { ResolvedContext } from "../jupyter/context-input";
import { decodeWorkerTag, WORKER_SESSION_TYPE, WorkerTag } from "./session-tags";

/** What names a worker: its kernel id, session id or name (`w2`), a record, or a list of these. */
export type WorkerRef = string | Pick<WorkerRecord, "id"> | readonly (string | Pick<WorkerRecord, "id">)[];

/** The record of a worker session this process did not launch (or no longer holds). */
export function recordFromSession(s: SessionModel, tag: WorkerTag): WorkerRecord {
  const dead = !s.kernel || s.kernel.execution_state === "dead";
  const status: WorkerStatus = dead && tag.status !== "stopped" ? "failed" : tag.status;
  return {
    id: s.kernel?.id ?? "",
    name: `w${tag.index}`,
    engine: s.kernel?.name ?? "",
    size: tag.size,
    status,
    masterId: tag.masterId,
    startedAt: new Date(tag.startedAtMs).toISOString(),
    sessionId: s.id,
    path: s.path,
    index: tag.index,
    ...(s.kernel?.execution_state ? { executionState: s.kernel.execution_state } : {}),
    ...(dead && tag.status !== "stopped" ? { reason: "kernel dead" } : {}),
  };
}

/** Where the launching process's own knowledge comes from. */
export interface LocalRecords {
  /** The record of a worker this process launched, by kernel id. */
  byKernel(kernelId: string): WorkerRecord | undefined;
  /** Every worker record this process holds (live and ended). */
  all(): WorkerRecord[];
}

/**
 * Records of every worker of `masterId` in `sessions`, overlaid with `local`, and the local
 * workers that failed (their kernels deleted); with `includeGone` also the local workers stopped
 * since. In launch order.
 */
export function clusterRecords(sessions: SessionModel[], masterId: string, local: LocalRecords, includeGone: boolean): WorkerRecord[] {
  const out = new Map<string, WorkerRecord>();
  for (const s of sessions) {
    if (s.type !== WORKER_SESSION_TYPE) continue;
    const tag = decodeWorkerTag(s.name);
    if (!tag || tag.masterId !== masterId) continue;
    const known = s.kernel ? local.byKernel(s.kernel.id) : undefined;
    const rec = known ? { ...known, executionState: s.kernel?.execution_state ?? known.executionState } : recordFromSession(s, tag);
    if (!rec.executionState) delete rec.executionState;
    out.set(rec.id || s.id, rec);
  }
  // A failed worker stays listed (with its reason) until it is restarted or stopped, though its kernel is gone.
  for (const r of local.all()) {
    if (r.masterId !== masterId || out.has(r.id)) continue;
    if (r.status === "failed") out.set(r.id, r);
    else if (includeGone) out.set(r.id, { ...r, status: "stopped" });
  }
  return [...out.values()].sort((a, b) => a.index - b.index);
}

/** The master's record: its kernel's session (for a kernel master) or this plain Node process. */
export function masterRecord(ctx: ResolvedContext, sessions: SessionModel[]): WorkerRecord {
  const own = sessions.find((s) => s.kernel?.id === ctx.masterId);
  if (own?.kernel) {
    const busy = own.kernel.execution_state === "busy";
    return {
      id: own.kernel.id,
      name: "master",
      engine: own.kernel.name,
      size: "small",
      status: own.kernel.execution_state === "dead" ? "failed" : busy ? "running" : "idle",
      masterId: "",
      startedAt: own.kernel.last_activity ?? "",
      sessionId: own.id,
      path: own.path,
      index: 0,
      ...(own.kernel.execution_state ? { executionState: own.kernel.execution_state } : {}),
    };
  }
  return {
    id: ctx.masterId,
    name: "master",
    engine: ctx.masterId.startsWith("process-") ? "node" : "",
    size: "small",
    status: "running",
    masterId: "",
    startedAt: ctx.isWorker ? "" : new Date(Date.now() - process.uptime() * 1000).toISOString(),
    sessionId: "",
    path: "",
    index: 0,
  };
}

/**
 * The ids named by `refs` (nested lists flattened).
 * @throws UsageError `bad_option` for something that is neither an id nor a record.
 */
export function flattenRefs(refs: readonly WorkerRef[]): string[] {
  const ids: string[] = [];
  for (const r of refs) {
    if (Array.isArray(r)) ids.push(...flattenRefs(r as readonly WorkerRef[]));
    else if (typeof r === "string") ids.push(r);
    else if (r && typeof r === "object" && typeof (r as { id?: unknown }).id === "string") ids.push((r as { id: string }).id);
    else throw new UsageError(`not a worker id or record: ${shown(r)}`, { code: "bad_option" });
  }
  return ids;
}

/**
 * The records `ids` name (kernel id, session id or name like `w2`), each once.
 * @throws WorkerError `unknown_worker` naming every id not among `records`.
 */
export function pickRecords(records: WorkerRecord[], ids: string[]): WorkerRecord[] {
  const unknown: string[] = [];
  const chosen = new Map<string, WorkerRecord>();
  for (const id of ids) {
    const r = records.find((x) => x.id === id || x.sessionId === id || x.name === id);
    if (r) chosen.set(r.id, r);
    else unknown.push(id);
  }
  if (unknown.length) {
    throw new WorkerError("unknown_worker", `unknown worker${unknown.length > 1 ? "s" : ""} ${unknown.map((u) => JSON.stringify(u)).join(", ")} in this cluster; nothing was stopped or awaited`, {
      unknown,
    });
  }
  return [...chosen.values()];
}
