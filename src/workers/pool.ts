/**
 * The warm pool: worker kernels this master starts ahead of a launch, so `launchWorkers` only has
 * to ship the worker's environment and its startup code. Starting a kernel is what makes a launch
 * slow (the Jupyter Server's session and kernel start, the kernel process's own start): 8
 * `sense-fast` workers need ~1.4 s cold on this 2-core machine and ~0.1 s from the pool.
 *
 * A pooled kernel is a session of type `sense-pool`, named `sense-pool:<masterId>:<engine>:<size>:<startedAtMs>`,
 * in the master's folder (so its cwd is the one a worker would get). It has already run the
 * preamble with the master's part of the environment, so its watchdog is running: a pooled
 * kernel is cleaned up exactly like a worker (shutdown hooks, keeper, watchdog). A launch adopts
 * it by PATCHing the session into a worker tag and running the preamble again with the worker's
 * own environment, before the startup code: env still arrives before any user code.
 */
import { WorkerSize } from "../jupyter/schemas";
import type { PoolInfoLike } from "../display/tables";
import { bestEffort } from "../util/best-effort";
import type { KernelBackend, KernelChannel } from "../backends/backend";
import { EnvFileTracker, loadEnvironment } from "./bootstrap/bootstrap";
import { poolSessionPath } from "./session-paths";
import type { PreambleLanguage } from "./bootstrap/preamble";
import { encodePoolTag, POOL_SESSION_TYPE } from "./session-tags";

/** What a pool of one kind (engine, size, folder) starts its kernels with. */
export interface PoolSpec {
  backend: KernelBackend;
  masterId: string;
  projectHome: string;
  engine: string;
  language: PreambleLanguage;
  size: WorkerSize;
  /** Server API path of the folder the kernels start in. */
  folder: string;
  /** The master's part of every worker's environment (API URL and token, master id...). */
  baseEnv: Record<string, string>;
  watchdog: boolean;
  startTimeoutMs: number;
}

/** One pooled kernel. `ready` resolves when it ran its preamble; it never rejects (`failed` says why). */
export interface PooledKernel {
  kernelId: string;
  sessionId: string;
  path: string;
  engine: string;
  channel?: KernelChannel;
  state: "starting" | "ready" | "failed";
  ready: Promise<void>;
  /** Msg ids of the pool's own preamble, to be kept out of the worker's output after adoption. */
  hidden: Set<string>;
  failed?: string;
  /** Detaches the pool's own listeners (adoption hands the connection over). */
  release(): void;
}

/** The state of one pool, as `workerPool()` and `%sense_pool` show it. */
export interface PoolInfo extends PoolInfoLike {
  size: WorkerSize;
}

/** What the pool needs from its cluster (injected: the pool knows nothing of launches). */
export interface PoolDeps {
  track(kernelId: string): void;
  forget(kernelId: string): void;
  /** Told about worker env files in flight (the keeper). */
  envFiles?: EnvFileTracker;
}

interface Pool {
  spec: PoolSpec;
  target: number;
  members: PooledKernel[];
  lastError?: string;
  /** Consecutive start failures; refilling stops after 3 so a broken engine does not loop. */
  failures: number;
  /** Lanes of {@link WorkerPools.fill} running now (a refill adds lanes only up to its limit, counting these). */
  lanes: number;
}

/** Pool key: kernels are interchangeable only with the same engine, size and folder. */
export function poolKey(engine: string, size: WorkerSize, folder: string): string {
  return `${engine}|${size}|${folder}`;
}

/** How many kernels a pool's background refill starts at once (see {@link WorkerPools.refill}). */
export const REFILL_LANES = 2;

/** A pooled kernel stopped (drain, resize) before it was ready: not a failure of the engine. */
class StoppedWhileStarting extends Error {}

/** The pools of one master (owned by its Cluster). */
export class WorkerPools {
  private readonly pools = new Map<string, Pool>();
  constructor(private readonly deps: PoolDeps) {}

  /** Sets how many kernels of `spec`'s kind stay warm, starting or stopping kernels to get there; resolves when done. */
  async resize(spec: PoolSpec, target: number): Promise<PoolInfo> {
    const key = poolKey(spec.engine, spec.size, spec.folder);
    const pool = this.pools.get(key) ?? { spec, target, members: [], failures: 0, lanes: 0 };
    pool.spec = spec;
    pool.target = target;
    pool.failures = 0;
    this.pools.set(key, pool);
    const extra = pool.members.splice(target);
    await Promise.all([...extra.map((m) => this.discard(m, pool.spec.backend)), this.fill(pool)]);
    // Members a refill started before this call are waited for too, and one that failed to start is
    // replaced (until 3 fail in a row: a broken engine): resolved means full. A pool drained
    // meanwhile (the master shut down, drainAll) is no longer filled: it is done too.
    for (;;) {
      await Promise.all(pool.members.map((m) => m.ready));
      if (pool.members.length >= pool.target || pool.failures >= 3 || this.pools.get(key) !== pool) break;
      await this.fill(pool);
    }
    if (!target && !pool.members.length && this.pools.get(key) === pool) this.pools.delete(key);
    return this.describe(pool);
  }

  /** Takes a pooled kernel of this kind (a ready one first), or `undefined`. The caller owns it now. */
  take(engine: string, size: WorkerSize, folder: string): PooledKernel | undefined {
    const pool = this.pools.get(poolKey(engine, size, folder));
    if (!pool) return undefined;
    const i = [pool.members.findIndex((m) => m.state === "ready"), pool.members.findIndex((m) => m.state === "starting")].find((x) => x >= 0);
    if (i === undefined) return undefined;
    return pool.members.splice(i, 1)[0];
  }

  /**
   * Starts kernels until every pool is back at its target (after launches took some), at most
   * {@link REFILL_LANES} at a time per pool; never throws. Why not all at once: the launch that took
   * them is still running its workers' startup code, and N kernels booting together (each a Node
   * or Python process start, and the server's work to create it) would take the machine's cores
   * from exactly those workers: a pooled launch of 64 then waited ~4 s for its first lines, not ~0.7.
   */
  refill(): void {
    for (const pool of this.pools.values()) void this.fill(pool, REFILL_LANES).catch(() => undefined);
  }

  /** Stops every pooled kernel (the master is shutting down); never throws. */
  async drainAll(): Promise<void> {
    const all = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(all.flatMap((p) => p.members.map((m) => this.discard(m, p.spec.backend))));
  }

  /** The state of every pool. */
  info(): PoolInfo[] {
    return [...this.pools.values()].map((p) => this.describe(p));
  }

  private describe(p: Pool): PoolInfo {
    return {
      engine: p.spec.engine,
      size: p.spec.size,
      folder: p.spec.folder,
      target: p.target,
      ready: p.members.filter((m) => m.state === "ready").length,
      starting: p.members.filter((m) => m.state === "starting").length,
      ...(p.lastError ? { lastError: p.lastError } : {}),
    };
  }

  /**
   * Starts the kernels `pool` misses, in at most `lanes` lanes counting those already running for it
   * (each lane starts its next kernel once its last is ready): launches in quick succession each
   * ask for a refill, and must not add theirs to the lanes the one before started.
   */
  private async fill(pool: Pool, lanes = Infinity): Promise<void> {
    const wanted = () => pool.target - pool.members.length > 0 && pool.failures < 3 && this.pools.get(poolKey(pool.spec.engine, pool.spec.size, pool.spec.folder)) === pool;
    const lane = async (): Promise<void> => {
      pool.lanes++;
      try {
        while (wanted()) {
          const m = this.startOne(pool);
          pool.members.push(m);
          await m.ready;
        }
      } finally {
        pool.lanes--;
      }
    };
    const missing = pool.target - pool.members.length;
    if (missing <= 0 || pool.failures >= 3) return;
    await Promise.all(Array.from({ length: Math.max(0, Math.min(missing, lanes - pool.lanes)) }, lane));
  }

  private startOne(pool: Pool): PooledKernel {
    const { spec } = pool;
    const m: PooledKernel = {
      kernelId: "",
      sessionId: "",
      path: poolSessionPath(spec.masterId, spec.folder),
      engine: spec.engine,
      state: "starting",
      ready: Promise.resolve(),
      hidden: new Set(),
      release: () => undefined,
    };
    m.ready = (async () => {
      try {
        const name = encodePoolTag({ masterId: spec.masterId, engine: spec.engine, size: spec.size, startedAtMs: Date.now() });
        const s = await spec.backend.start({ path: m.path, type: POOL_SESSION_TYPE, name, kernelName: spec.engine, timeoutMs: spec.startTimeoutMs });
        if (!s.kernel) throw new Error(`the server created session ${s.id} without a kernel`);
        m.kernelId = s.kernel.id;
        m.sessionId = s.id;
        this.deps.track(m.kernelId);
        const channel = spec.backend.connect({ id: m.kernelId, name: spec.engine });
        m.channel = channel;
        // A pooled kernel that restarts or dies is useless (and the server would keep restarting it).
        m.release = channel.onStatus((status) => {
          if (status === "autorestarting" || status === "restarting" || status === "dead") void this.lose(pool, m, `its kernel ${status === "dead" ? "died" : "restarted"}`);
        });
        // The pool's own stop (drain/resize) may have happened while the session was being created.
        if (m.state !== "starting") throw new StoppedWhileStarting();
        await loadEnvironment({
          backend: spec.backend,
          channel,
          kernelId: m.kernelId,
          what: `pooled kernel (${spec.engine})`,
          language: spec.language,
          projectHome: spec.projectHome,
          env: { ...spec.baseEnv, SENSE_DASHBOARD_ID: m.kernelId, SENSE_SESSION_ID: m.sessionId },
          watchdog: spec.watchdog,
          timeoutMs: spec.startTimeoutMs,
          hidden: m.hidden,
          envFiles: this.deps.envFiles,
        });
        if (m.state === "starting") {
          m.state = "ready";
          pool.failures = 0;
        }
      } catch (e) {
        await this.lose(pool, m, e instanceof StoppedWhileStarting ? undefined : (e as Error).message, true);
      }
    })();
    return m;
  }

  /**
   * Removes a member that failed or died (`why` undefined: it was stopped), deletes its session;
   * never throws. `fromStart`: called by the member's own start, which must not wait for itself.
   */
  private async lose(pool: Pool, m: PooledKernel, why: string | undefined, fromStart = false): Promise<void> {
    if (m.state === "failed") return;
    const wasMember = pool.members.includes(m);
    if (wasMember) pool.members.splice(pool.members.indexOf(m), 1);
    if (why !== undefined) {
      pool.failures++;
      pool.lastError = why;
    }
    await this.discard(m, pool.spec.backend, fromStart);
  }

  private async discard(m: PooledKernel, backend: KernelBackend, fromStart = false): Promise<void> {
    const wasStarting = m.state === "starting";
    m.state = "failed";
    m.release();
    m.channel?.dispose();
    // A member still creating its session is deleted by its own start once the session exists.
    if (!m.sessionId) {
      // (Its own start, failing before the session existed, has nothing to wait for: it would wait for itself.)
      if (wasStarting && !fromStart) await m.ready;
      if (!m.sessionId) return;
    }
    await bestEffort(`delete pooled session ${m.sessionId}`, () => backend.stop(m.sessionId));
    if (m.kernelId) this.deps.forget(m.kernelId);
  }
}
