/**
 * Control-channel requests that `@jupyterlab/services` cannot build (it types control messages as
 * a closed union), and `sense_cluster_request` / `sense_cluster_reply`: what a Sense master kernel
 * answers about its cluster, so the JupyterLab panel (labextension/) can show a failed worker (its
 * session is deleted; only the master that launched it keeps its record and reason) and restart
 * or stop it through the master's own `restartWorkers` / `stopWorkers`. Imports nothing, so the
 * panel bundles it too. The master's side is src/workers/cluster-requests.ts.
 */

/** A control message as `@jupyterlab/services`' `createMessage` builds one. */
export interface ControlMessage<C> {
  channel: "control";
  header: Record<string, string>;
  parent_header: Record<string, never>;
  metadata: Record<string, never>;
  content: C;
  buffers: [];
}

/** A control request of type `msgType` with `content`, from the client `session` of `username`. */
export function controlRequestMessage<C>(msgType: string, content: C, session: string, username: string): ControlMessage<C> {
  return {
    channel: "control",
    header: { msg_id: globalThis.crypto.randomUUID(), msg_type: msgType, session, username, date: new Date().toISOString(), version: "5.3" },
    parent_header: {},
    metadata: {},
    content,
    buffers: [],
  };
}

/** The kernelspec names (and kernel_info `implementation`s) of the Sense kernels. */
export const SENSE_KERNEL_NAMES = ["sense-ts", "sense-js", "sense-fast"] as const;

/** The request's message type; the kernel answers `sense_cluster_reply`. */
export const CLUSTER_REQUEST = "sense_cluster_request";

/** What a `sense_cluster_request` asks: the failed workers, or to restart or stop workers by name. */
export type ClusterRequest = { action: "list" } | { action: "restart" | "stop"; workers: string[] };

/** The actions a master takes (an allowlist: anything else is refused). */
export const CLUSTER_ACTIONS = ["list", "restart", "stop"] as const;

/** A worker name as the panel sends it (`w<index>`). */
export const WORKER_NAME = /^w[1-9]\d{0,8}$/;

/** One worker in a `sense_cluster_reply`. */
export interface ClusterWorker {
  name: string;
  /** Its (last) kernel's id. */
  kernelId: string;
  engine: string;
  size: string;
  status: string;
  /** Why it failed, as the master recorded it. */
  reason?: string;
  startedAtMs: number;
  /** Whether this master can restart it (it launched it, so it knows its engine, env and code). */
  restartable: boolean;
}

/** A `sense_cluster_reply`'s content, read. */
export type ClusterReply = { status: "ok"; workers: ClusterWorker[] } | { status: "error"; code: string; message: string };

const text = (v: unknown, max = 2_000): string | undefined => (typeof v === "string" && v.length <= max ? v : undefined);

/**
 * A `sense_cluster_reply`'s content; workers with a field of the wrong type are left out (a
 * kernel's bug must not break the panel). Never throws.
 */
export function clusterReply(content: unknown): ClusterReply {
  const c = content !== null && typeof content === "object" ? (content as Record<string, unknown>) : {};
  if (c.status !== "ok") return { status: "error", code: text(c.code, 100) ?? "error", message: text(c.evalue) ?? "the kernel refused the request" };
  const workers: ClusterWorker[] = [];
  for (const w of Array.isArray(c.workers) ? (c.workers as unknown[]) : []) {
    const r = w !== null && typeof w === "object" ? (w as Record<string, unknown>) : {};
    const name = text(r.name, 20);
    const kernelId = text(r.kernelId, 100);
    const engine = text(r.engine, 200);
    const size = text(r.size, 20);
    const status = text(r.status, 20);
    const reason = r.reason === undefined ? undefined : text(r.reason);
    const startedAtMs = typeof r.startedAtMs === "number" && Number.isFinite(r.startedAtMs) ? r.startedAtMs : undefined;
    if (!name || !WORKER_NAME.test(name) || kernelId === undefined || engine === undefined || size === undefined || !status || startedAtMs === undefined || (r.reason !== undefined && reason === undefined)) continue;
    workers.push({ name, kernelId, engine, size, status, ...(reason ? { reason } : {}), startedAtMs, restartable: r.restartable === true });
  }
  return { status: "ok", workers };
}
