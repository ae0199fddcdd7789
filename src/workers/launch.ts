/**
 * Launch of one worker: a pooled kernel adopted (its session retagged, its open channel handed
 * over) or a fresh kernel started and connected before anything runs, then the environment
 * (bootstrap.ts), then the startup code. The all-or-nothing of a whole launch is the Cluster's.
 */
import { isSenseError, WorkerError } from "../errors";
import type { OutputSink } from "../display/sink";
import type { KernelBackend } from "../backends/backend";
import { EnvFileTracker, loadEnvironment } from "./bootstrap/bootstrap";
import type { ResolvedContext } from "../jupyter/context-input";
import type { ResolvedEngine } from "./kernelspec";
import type { LaunchPlan } from "./options";
import { workerSessionPath } from "./session-paths";
import type { PooledKernel, WorkerPools } from "./pool";
import { decodeWorkerTag, encodeWorkerTag, WORKER_SESSION_TYPE, WorkerTag } from "./session-tags";
import type { Worker } from "./worker";
import type { SessionModel } from "../jupyter/schemas";
import type { FreshRead } from "../util/fresh-read";

/** What a launch needs from its cluster. */
export interface LaunchSite {
  backend: KernelBackend;
  pools: WorkerPools;
  /** Told about worker env files in flight (the keeper). */
  envFiles?: EnvFileTracker;
  /** Makes the handle of a new worker and registers it (its output labelled `label`, shown on `sink`). */
  register(k: { tag: WorkerTag; kernelId: string; sessionId: string; path: string; engine: string; projectHome: string }, label: string, sink: OutputSink): Worker;
  /** Deletes and forgets a worker whose launch failed; never throws. */
  unregister(w: Worker): Promise<void>;
  /** An index of `masterId` above every one this process handed out and at least `atLeast`, now taken. */
  reserveIndex(masterId: string, atLeast: number): number;
  /**
   * The server's sessions, listed after the call ({@link FreshRead}); its participants are the
   * launch's workers, which share one listing once each has its session (or left: its start
   * failed). Default: the backend's own listing per call.
   */
  sessions?: FreshRead<SessionModel[]>;
}

/** One worker's launch. */
export interface StartArgs {
  ctx: ResolvedContext;
  plan: LaunchPlan;
  engine: ResolvedEngine;
  /** Server API path of the folder the worker starts in. */
  folder: string;
  index: number;
  sink: OutputSink;
  /** The master's part of the environment (bootstrap.ts `masterEnv`). */
  baseEnv: Record<string, string>;
  /** Aborted when the launch is interrupted: the worker is removed before its code runs. */
  signal?: AbortSignal;
}

/** The error of an interrupted launch (the launch's `signal` was aborted). */
export function launchInterrupted(detail = ""): WorkerError {
  return new WorkerError("interrupted", `the launch was interrupted${detail}`);
}

/** Rejects with {@link launchInterrupted} when `signal` aborts first; `p` itself goes on (its result is dropped). */
function unlessAborted<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) return Promise.reject(launchInterrupted());
  let onAbort: () => void = () => undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(launchInterrupted());
    signal.addEventListener("abort", onAbort, { once: true });
  });
  return Promise.race([p, aborted]).finally(() => signal.removeEventListener("abort", onAbort));
}

/**
 * Makes the worker's index (its name `w<index>`) unique in its cluster, even when other processes
 * of the cluster (the master and its workers) launch at the same moment: its session exists with
 * the tag already, so it reads the cluster's sessions, and on a clash takes a new index above all
 * it saw and checks again. Whoever sees a clash yields, so two sessions never both keep an index:
 * of two clashing launches at least the later reader sees the other. Clashing sessions are ranked
 * by session id, so workers yielding together pick different indices.
 * @throws WorkerError `launch_failed` when no unique index was found in 20 rounds; RestError.
 */
export async function claimUniqueIndex(site: LaunchSite, w: Worker, masterId: string, label: string): Promise<void> {
  for (let round = 0; round < 20; round++) {
    // A listing started after this worker's session exists (and its last renumber), shared with
    // the other workers of the launch: one listing per worker made a launch of N O(N²) on the server.
    // (Only the first round waits for the launch's other workers; a clash's next round does not.)
    const others = (await (site.sessions ? site.sessions.get() : site.backend.listSessions()))
      .filter((s) => s.id !== w.sessionId)
      .map((s) => ({ id: s.id, tag: decodeWorkerTag(s.name) }))
      .filter((o): o is { id: string; tag: WorkerTag } => o.tag?.masterId === masterId);
    const clash = others.filter((o) => o.tag.index === w.tag.index);
    if (!clash.length) return;
    const rank = [...clash.map((c) => c.id), w.sessionId].sort().indexOf(w.sessionId);
    const index = site.reserveIndex(masterId, Math.max(w.tag.index, ...others.map((o) => o.tag.index)) + 1 + rank);
    await w.renumber(index, label);
  }
  throw new WorkerError("launch_failed", `worker ${w.name} found no unique name in its cluster (too many concurrent launches)`);
}

/**
 * Starts one worker; resolves with its handle, `running` (startup code sent) or `idle` (none).
 * @throws WorkerError `launch_failed`/`timeout`, RestError; the worker is deleted then.
 */
export async function startWorker(site: LaunchSite, a: StartArgs): Promise<Worker> {
  const { ctx, plan } = a;
  const tag: WorkerTag = { masterId: ctx.masterId, index: a.index, size: plan.size, startedAtMs: Date.now(), status: "starting" };
  const sessionPath = workerSessionPath(ctx.masterId, a.index, a.folder);
  // Pooled kernels already run the watchdog; a launch that asked for none starts its own kernels.
  const pooled = plan.watchdog ? site.pools.take(a.engine.kernelName, plan.size, a.folder) : undefined;
  let w: Worker;
  let adopted: Worker | undefined;
  try {
    adopted = pooled ? await adoptPooled(site, a, tag, sessionPath, pooled) : undefined;
    w = adopted ?? (await startFresh(site, a, tag, sessionPath));
  } catch (e) {
    // The others' shared session listing must not wait for a worker that has no session.
    site.sessions?.leave();
    throw e;
  }
  try {
    if (a.signal?.aborted) {
      site.sessions?.leave();
      throw launchInterrupted();
    }
    await unlessAborted(claimUniqueIndex(site, w, ctx.masterId, plan.label), a.signal);
    await unlessAborted(loadEnvironment({
      backend: site.backend,
      channel: w.channel!,
      kernelId: w.kernelId,
      what: `worker ${w.name} (${a.engine.engine})`,
      language: a.engine.language,
      projectHome: ctx.projectHome,
      env: { ...plan.env, ...a.baseEnv, SENSE_DASHBOARD_ID: w.kernelId, SENSE_SESSION_ID: w.sessionId, SENSE_WORKER_NAME: w.name },
      // An adopted kernel's watchdog started when it was pooled (same session, same master).
      watchdog: plan.watchdog && !adopted,
      timeoutMs: plan.startTimeoutMs,
      hidden: w.hidden,
      envFiles: site.envFiles,
    }), a.signal);
    // The last moment to stop it: after this, the startup code runs.
    if (a.signal?.aborted) throw launchInterrupted();
    if (plan.code.trim()) await w.runStartup(plan.code, plan.precompiled === true);
    else await w.setStatus("idle");
    return w;
  } catch (e) {
    await site.unregister(w);
    if (isSenseError(e)) throw e;
    throw new WorkerError("launch_failed", `worker ${w.name} failed to start: ${(e as Error).message}`);
  }
}

/** A fresh kernel for a worker: its own session, tagged, and a channel opened before anything runs. */
async function startFresh(site: LaunchSite, a: StartArgs, tag: WorkerTag, sessionPath: string): Promise<Worker> {
  const session = await site.backend.start({ path: sessionPath, type: WORKER_SESSION_TYPE, name: encodeWorkerTag(tag), kernelName: a.engine.kernelName, timeoutMs: a.plan.startTimeoutMs });
  if (!session.kernel) throw new WorkerError("launch_failed", `the server created session ${session.id} without a kernel`);
  const w = site.register({ tag, kernelId: session.kernel.id, sessionId: session.id, path: session.path, engine: session.kernel.name, projectHome: a.ctx.projectHome }, `${a.plan.label}${tag.index}`, a.sink);
  w.attach(site.backend.connect({ id: w.kernelId, name: w.engine }));
  return w;
}

/**
 * A pooled kernel turned into a worker: its session becomes a worker session (tag, type, path)
 * and its open channel is handed over. `undefined` when the pooled kernel failed meanwhile.
 */
async function adoptPooled(site: LaunchSite, a: StartArgs, tag: WorkerTag, sessionPath: string, m: PooledKernel): Promise<Worker | undefined> {
  m.release();
  await m.ready;
  if (m.state !== "ready" || !m.channel) return undefined;
  const w = site.register({ tag, kernelId: m.kernelId, sessionId: m.sessionId, path: sessionPath, engine: m.engine, projectHome: a.ctx.projectHome }, `${a.plan.label}${tag.index}`, a.sink);
  for (const id of m.hidden) w.hidden.add(id);
  w.attach(m.channel);
  try {
    await site.backend.retag(m.sessionId, { name: encodeWorkerTag(tag), type: WORKER_SESSION_TYPE, path: sessionPath });
  } catch (e) {
    await site.unregister(w);
    throw e;
  }
  return w;
}
