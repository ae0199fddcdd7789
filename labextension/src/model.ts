/**
 * What the panel shows: every Sense cluster on the server, read from the sessions' tags (one
 * `GET api/sessions`), each kernel's CPU and memory from `usage_request` on its control channel,
 * and each master's failed workers from `sense_cluster_request` (src/protocol/control.ts). Only
 * the server's REST API and kernel channels: no server extension.
 */
import type { Kernel, Session } from "@jupyterlab/services";
import { decodeWorkerTag, poolMasterId } from "./tags";
import { formatBytes, usageReply } from "../../src/protocol/usage";
import { controlRequestMessage, SENSE_KERNEL_NAMES, type ClusterWorker } from "../../src/protocol/control";

export { formatBytes };

/** One worker of a cluster. */
export interface WorkerRow {
  name: string;
  sessionId: string;
  kernelId: string;
  engine: string;
  size: string;
  /** The tag's status; `dead` when the server says the kernel died. */
  status: string;
  /** The kernel's execution state as the server last saw it. */
  executionState: string;
  startedAtMs: number;
  /** Why it failed, as its master recorded it. */
  reason?: string;
  /** Its master can restart it (it launched it). */
  restartable?: boolean;
  /** Its session is gone (a failed worker's kernel is deleted): only its master still holds it. */
  gone?: boolean;
}

/** One master and its workers. */
export interface ClusterRow {
  masterId: string;
  /** The master's session (a notebook, a console), when the master is a kernel on this server. */
  master?: { sessionId: string; path: string; kernelName: string; executionState: string };
  workers: WorkerRow[];
  /** Warm-pool sessions of this master (stopped with the cluster). */
  poolSessionIds: string[];
}

/**
 * How the panel stops a worker: through its master (`master`: it records the worker stopped and
 * deletes its session if one is left) or by deleting its session (`session`). A failed worker its
 * master holds (it reported it: `restartable`) goes to that master even while its session still
 * exists (the master is deleting the lost kernel then): deleting that session from the panel would
 * leave the master's record `failed` for ever once the master's own delete is done, and the row with it.
 */
export function stopRoute(c: Pick<ClusterRow, "master">, w: Pick<WorkerRow, "gone" | "status" | "restartable">): "master" | "session" {
  return w.gone || (w.status === "failed" && w.restartable && c.master) ? "master" : "session";
}

/** Every cluster in `sessions`, masters in the order their first worker appears, workers by index. */
export function clustersOf(sessions: readonly Session.IModel[]): ClusterRow[] {
  const clusters = new Map<string, ClusterRow>();
  const get = (masterId: string) => {
    let c = clusters.get(masterId);
    if (!c) {
      c = { masterId, workers: [], poolSessionIds: [] };
      clusters.set(masterId, c);
    }
    return c;
  };
  const indexOf = new Map<string, number>();
  for (const s of sessions) {
    const tag = decodeWorkerTag(s.name);
    if (tag && s.kernel) {
      const state = s.kernel.execution_state ?? "unknown";
      get(tag.masterId).workers.push({
        name: `w${tag.index}`,
        sessionId: s.id,
        kernelId: s.kernel.id,
        engine: s.kernel.name,
        size: tag.size,
        status: state === "dead" ? "dead" : tag.status,
        executionState: state,
        startedAtMs: tag.startedAtMs,
      });
      indexOf.set(s.id, tag.index);
      continue;
    }
    const pool = poolMasterId(s.name);
    if (pool) get(pool).poolSessionIds.push(s.id);
  }
  for (const c of clusters.values()) {
    c.workers.sort((a, b) => (indexOf.get(a.sessionId) ?? 0) - (indexOf.get(b.sessionId) ?? 0));
    const own = sessions.find((s) => s.kernel?.id === c.masterId);
    if (own?.kernel) c.master = { sessionId: own.id, path: own.path, kernelName: own.kernel.name, executionState: own.kernel.execution_state ?? "unknown" };
  }
  // A master with only pooled kernels left is still a cluster (its pool can be stopped).
  return [...clusters.values()];
}

/**
 * The kernels that may be masters: every session's kernel that is a Sense kernel and not a
 * worker's or a pooled one (a notebook's, a console's). Each is asked for its failed workers, as a
 * master whose workers all failed has no tagged session left to be found by.
 */
export function possibleMasters(sessions: readonly Session.IModel[]): { id: string; name: string }[] {
  return sessions
    .filter((s) => s.kernel && (SENSE_KERNEL_NAMES as readonly string[]).includes(s.kernel.name) && !decodeWorkerTag(s.name) && !poolMasterId(s.name))
    .map((s) => ({ id: s.kernel!.id, name: s.kernel!.name }));
}

/**
 * Adds what master `masterId` said of its failed workers (`sense_cluster_reply`) to `clusters`: a
 * failed worker whose session is gone gets a row of its own (in index order; its master's cluster
 * is added when it had no row left), as does one the master is restarting (`starting`) before its
 * fresh kernel has a session; a row whose kernel the master names gets the master's reason.
 * A session is the truth for a name it holds (a restarted worker's new kernel). Changes
 * `clusters` in place.
 */
export function addMasterWorkers(clusters: ClusterRow[], sessions: readonly Session.IModel[], masterId: string, workers: readonly ClusterWorker[]): void {
  let cluster = clusters.find((c) => c.masterId === masterId);
  for (const w of workers) {
    const same = cluster?.workers.find((r) => r.kernelId === w.kernelId);
    if (same) {
      if (w.reason) same.reason = w.reason;
      same.restartable = w.restartable;
      if (w.status === "failed" && same.status !== "stopped") same.status = "failed";
      continue;
    }
    // A failed worker, or one its master is restarting whose fresh kernel has no session yet.
    if ((w.status !== "failed" && w.status !== "starting") || cluster?.workers.some((r) => r.name === w.name)) continue;
    if (!cluster) {
      const own = sessions.find((s) => s.kernel?.id === masterId);
      cluster = { masterId, workers: [], poolSessionIds: [] };
      if (own?.kernel) cluster.master = { sessionId: own.id, path: own.path, kernelName: own.kernel.name, executionState: own.kernel.execution_state ?? "unknown" };
      clusters.push(cluster);
    }
    cluster.workers.push({ name: w.name, sessionId: "", kernelId: w.kernelId, engine: w.engine, size: w.size, status: w.status, executionState: w.status === "failed" ? "dead" : "starting", startedAtMs: w.startedAtMs, reason: w.reason, restartable: w.restartable, gone: true });
  }
  cluster?.workers.sort((a, b) => Number(a.name.slice(1)) - Number(b.name.slice(1)));
}

/** A kernel's figures from its `usage_reply`. */
export interface Usage {
  cpu: number;
  memory: number;
}

/**
 * Asks kernels for their usage over their websockets, one connection per kernel kept while the
 * panel is visible (so a refresh costs one control message per kernel, not a new socket), at most
 * `parallel` requests in flight at once, each given up after `timeoutMs`.
 */
export class UsageClient {
  private readonly connections = new Map<string, Kernel.IKernelConnection>();

  constructor(
    private readonly kernels: Kernel.IManager,
    private readonly timeoutMs = 2_000,
    private readonly parallel = 8,
  ) {}

  /** Usage of each kernel in `wanted` (absent where it did not answer); closes connections to kernels no longer wanted. */
  async sample(wanted: readonly { id: string; name: string }[]): Promise<Map<string, Usage>> {
    const ids = new Set(wanted.map((k) => k.id));
    for (const [id, conn] of this.connections) {
      if (!ids.has(id)) {
        conn.dispose();
        this.connections.delete(id);
      }
    }
    const out = new Map<string, Usage>();
    const queue = [...wanted];
    const run = async () => {
      for (let k = queue.shift(); k; k = queue.shift()) {
        const u = await this.ask(k);
        if (u) out.set(k.id, u);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.parallel, queue.length) }, run));
    return out;
  }

  /** Closes every kernel connection (the kernels keep running). */
  close(): void {
    for (const conn of this.connections.values()) conn.dispose();
    this.connections.clear();
  }

  /**
   * Sends a control request (`msgType` with `content`) to `kernel` over the kept connection;
   * resolves with the reply's content, or `undefined` when none came within `timeoutMs` (default:
   * the client's) or the connection cannot send. Never rejects.
   */
  control(kernel: { id: string; name: string }, msgType: string, content: Record<string, unknown>, timeoutMs = this.timeoutMs): Promise<unknown> {
    let conn = this.connections.get(kernel.id);
    if (!conn) {
      conn = this.kernels.connectTo({ model: kernel, handleComms: false });
      this.connections.set(kernel.id, conn);
    }
    const c = conn;
    return new Promise((resolve) => {
      let future: Kernel.IControlFuture | undefined;
      const finish = (answer: unknown) => {
        clearTimeout(timer);
        future?.dispose();
        resolve(answer);
      };
      const timer = setTimeout(() => finish(undefined), timeoutMs);
      try {
        const msg = controlRequestMessage(msgType, content, c.clientId, c.username);
        future = c.sendControlMessage(msg as never, true, false);
        future.done.catch(() => undefined);
        future.onReply = (reply) => finish(reply.content);
      } catch {
        finish(undefined);
      }
    });
  }

  private async ask(kernel: { id: string; name: string }): Promise<Usage | undefined> {
    const content = await this.control(kernel, "usage_request", {});
    if (content === undefined) return undefined;
    const r = usageReply(content);
    return r.kernelCpu !== undefined && r.kernelMemory !== undefined ? { cpu: r.kernelCpu, memory: r.kernelMemory } : undefined;
  }
}

/** A duration as `45s`, `12m 3s`, `2h 5m`. */
export function formatUptime(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
}
