/**
 * A Cluster owns all worker state of one master process: the workers it launched (their
 * handles), the records of ended ones, its warm pools, status listeners, the shutdown hook and
 * its keeper link. Workers are sessions tagged with their record (session-tags.ts), so every
 * process sees the same cluster through the backend; the Cluster adds what only the launching
 * process has: channels and output. `api.ts` keeps one default Cluster behind the functional API.
 */
import { setMaxListeners } from "node:events";
import * as path from "node:path";
import { captureSink } from "../display/sink";
import type { OutputSink } from "../display/sink";
import { shown, UsageError, WorkerError } from "../errors";
import { defaultLifecycle, onInterrupt } from "../lifecycle";
import type { WorkerRecord, WorkerSize } from "../jupyter/schemas";
import { bestEffortSync } from "../util/best-effort";
import { AwaitOptions, AwaitResult, awaitRecords } from "./await";
import type { KernelBackend } from "../backends/backend";
import { executeContent } from "../backends/backend";
import { EnvFileTracker, masterEnv, projectIpFor } from "./bootstrap/bootstrap";
import { stopSession } from "../backends/delete-session";
import { ResolvedContext, resolveContext, WorkerContextInput } from "../jupyter/context-input";
import { prepareCode, ResolvedEngine, resolveEngine } from "./kernelspec";
import { BackendsByContext, sessionStoreDir } from "../backends/for-context";
import { KeeperLink } from "./cleanup/keeper-link";
import { FreshRead } from "../util/fresh-read";
import { launchInterrupted, LaunchSite, startWorker } from "./launch";
import { checkTimeoutSeconds, defaultMaxWorkers, LaunchOptions, LaunchPlan, validateLaunchOptions } from "./options";
import { DEFAULT_ENDED_OUTPUT_KEEP_MIB, outputKeepBytes, WorkerOutput, WorkerOutputItem } from "./output";
import { masterFolder } from "./session-paths";
import { PoolInfo, WorkerPools } from "./pool";
import { crashesInARow, HEALTHY_RUN_MS } from "./restart-policy";
import { clusterRecords, flattenRefs, LocalRecords, masterRecord, pickRecords, WorkerRef } from "./records";
import { decodeWorkerTag } from "./session-tags";
import { startupRequest, Worker } from "./worker";
import { checkWireSize } from "../protocol/limits";
import { checkOptionKeys } from "../util/check-options";
import { isRestError } from "../jupyter/rest";

/** `launchWorkers` options plus an explicit context. */
export type LaunchWorkersOptions = LaunchOptions & { context?: WorkerContextInput };

/** Options of {@link Cluster.setPool}. */
export interface PoolOptions {
  /** How many kernels to keep warm (0 stops the pool's kernels). */
  n: number;
  /** Kernelspec (or alias) of the pooled kernels; default as for `launchWorkers`. */
  engine?: string;
  /** Worker size the pooled kernels are for (default `small`). */
  size?: WorkerSize;
  /** Run the keeper (default as for `launchWorkers`). */
  keeper?: boolean;
  startTimeoutSeconds?: number;
  context?: WorkerContextInput;
}

/** Where a cluster registers the hook that stops its workers when the master shuts down. */
export interface ShutdownHooks {
  onShutdown(hook: () => Promise<void>): () => void;
  /** For a plain Node master: run the hooks on SIGINT/SIGTERM/beforeExit. */
  installProcessHooks(): void;
}

/** Options of {@link Cluster}. */
export interface ClusterOptions {
  /**
   * The backend kernels are started through: one for every context, or one per context.
   * Default: the Jupyter Server of the context's endpoint.
   */
  backend?: KernelBackend | ((ctx: ResolvedContext) => KernelBackend);
  /** The context of calls that pass none (default: discovered, `getContext()`). */
  context?: WorkerContextInput;
  /** Where the shutdown hook goes (default: the process's lifecycle, `defaultLifecycle()` in lifecycle.ts). */
  hooks?: ShutdownHooks;
  /** Milliseconds now, for the restart policy's "ran healthy for a while" (default `Date.now`; tests pass their own). */
  clock?: () => number;
}

/** The options of calls that take only where they run. */
const CONTEXT_ONLY = ["context"] as const;
/** The keys of {@link AwaitOptions}. */
const AWAIT_OPTION_KEYS = ["waitForCompletion", "timeoutSeconds", "context", "pollMs"] as const;

/** What a worker was launched with: enough to start it again in place (same name, engine, size, env and startup code). */
interface Relaunch {
  ctx: ResolvedContext;
  plan: LaunchPlan;
  engine: ResolvedEngine;
  folder: string;
  baseEnv: Record<string, string>;
  /** The launching call's sink: where an automatic restart's output goes. */
  sink: OutputSink;
  /** Crashes in a row before this kernel started (`restart: "on-failure"`, see {@link crashesInARow}). */
  crashes: number;
  /** When this kernel was started (the cluster's clock): how long it ran when it crashes. */
  upSinceMs: number;
}

/** Options of {@link Cluster.restart}. */
export interface RestartOptions {
  context?: WorkerContextInput;
  /**
   * Where the restarted workers' output goes (default: the calling cell's or terminal's sink);
   * `"launching"`: where each worker's output went before, its launching call's sink (for a
   * restart asked from outside any cell: the JupyterLab panel).
   */
  sink?: OutputSink | "launching";
}

/** Stopped and failed workers whose records and output a cluster keeps (oldest dropped first). */
export const RETIRED_KEPT = 256;

/** The workers of one master process. */
export class Cluster {
  private readonly workers = new Map<string, Worker>();
  /** How each worker of this process was launched, by kernel id (for {@link Cluster.restart}). */
  private readonly launchedWith = new Map<string, Relaunch>();
  /** Workers being restarted, by name: their records say `starting` until the fresh kernel's handle exists. */
  private readonly restarting = new Map<string, WorkerRecord>();
  /** Ended workers' kernel ids, oldest first (their handles stay for `output`/`await`). */
  private readonly retired: string[] = [];
  private readonly statusListeners = new Set<(record: WorkerRecord) => void>();
  /** The highest index handed out per master id: indexes are never reused, even for failed launches. */
  private readonly indexFloor = new Map<string, number>();
  private readonly backends = new BackendsByContext();
  private readonly keeper = new KeeperLink();
  private readonly warm: WorkerPools;
  private readonly hooks: ShutdownHooks;
  private hooksFor: string | undefined;
  /** Kernel ids of workers being replaced by a restart: their last status (`stopped`) is not announced, the fresh worker's `starting` is. */
  private readonly replacing = new Set<string>();
  private readonly now: () => number;

  constructor(private readonly options: ClusterOptions = {}) {
    this.hooks = options.hooks ?? defaultLifecycle();
    this.now = options.clock ?? Date.now;
    this.warm = new WorkerPools({ track: (id) => this.keeper.track(id), forget: (id) => this.keeper.forget(id), envFiles: this.envFiles() });
  }

  /**
   * Starts `n` workers. Every option is checked before anything starts; workers start
   * concurrently and the records come back in request order, each `running` (startup code sent)
   * or `idle` (no startup code). Their output is republished, labelled, on `options.sink` or the
   * calling cell's (or terminal's) sink.
   * @throws UsageError `bad_option` (bad n, size, env, label, unknown option, script outside the
   *   project home); WorkerError `script_not_found`, `unknown_engine` (lists the installed
   *   kernelspecs) — nothing started in these cases; WorkerError `launch_failed`/`timeout` when a
   *   worker could not start (the workers of this call that did start are stopped); RestError from the server.
   */
  async launch(options: LaunchWorkersOptions): Promise<WorkerRecord[]> {
    // Captured before the first await: later the kernel's current cell may be another one.
    const sink = options.sink ?? captureSink();
    const ctx = this.context(options.context);
    const backend = this.backendFor(ctx);
    const { context: _ignored, ...rest } = options;
    const validated = validateLaunchOptions(rest, ctx.projectHome);
    // Two independent reads of the server, at once: a launch's first request waits on one round trip, not two.
    const [engine, sessions] = await Promise.all([resolveEngine(backend, ctx, validated), backend.listSessions()]);
    const folder = masterFolder(ctx, sessions);
    // Imports in the startup code resolve from the workers' folder, as they will at run time.
    const plan = prepareCode(validated, engine.sense, engine.masterLanguage, path.join(ctx.serverRootDir ?? ctx.projectHome, folder));
    // Checked as it will be sent (after transpiling): over the server's websocket limit it would never run.
    checkWireSize(plan.codeSource ? `startup script ${plan.codeSource}` : "startup code", executeContent(startupRequest(plan.code)));

    const usedOnServer = sessions.map((s) => decodeWorkerTag(s.name)).filter((t) => t?.masterId === ctx.masterId).map((t) => t!.index);
    const first = Math.max(0, ...usedOnServer, this.indexFloor.get(ctx.masterId) ?? 0) + 1;
    this.indexFloor.set(ctx.masterId, first + plan.n - 1);

    this.prepareMaster(ctx, plan.keeper);
    const baseEnv = masterEnv(ctx, plan.size, plan.watchdog, projectIpFor(ctx));
    const site = this.site(backend, plan.n);
    // A kernel interrupt (or the caller's signal) stops the launch: its workers go before their code runs.
    const interrupt = new AbortController();
    // Each concurrent start waits on this signal: n listeners at once is expected, not a leak (Node warns past 10).
    setMaxListeners(plan.n + 10, interrupt.signal);
    const onAbort = () => interrupt.abort();
    options.signal?.addEventListener("abort", onAbort, { once: true });
    if (options.signal?.aborted) interrupt.abort();
    const offInterrupt = onInterrupt(onAbort);
    let results: PromiseSettledResult<Worker>[];
    try {
      results = await Promise.allSettled(Array.from({ length: plan.n }, (_, i) => startWorker(site, { ctx, plan, engine, folder, index: first + i, sink, baseEnv, signal: interrupt.signal })));
    } finally {
      offInterrupt();
      options.signal?.removeEventListener("abort", onAbort);
    }
    // Pools this launch drew from start replacements now, in the background.
    this.warm.refill();
    if (interrupt.signal.aborted) {
      await Promise.allSettled(results.filter((r): r is PromiseFulfilledResult<Worker> => r.status === "fulfilled").map((r) => r.value.stop()));
      const what = `${plan.n} worker${plan.n === 1 ? "" : "s"}`;
      sink.stderr(`Sense: launch interrupted; the ${what} it was starting were removed before running any code.\n`);
      throw launchInterrupted(`; the ${what} it was starting were removed before running any code`);
    }
    const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failed) {
      // All or nothing: a partial cluster would leave the caller's code waiting for peers that never come.
      // allSettled: with the server gone the stops fail too, and the launch's own failure is the one to report.
      await Promise.allSettled(results.filter((r): r is PromiseFulfilledResult<Worker> => r.status === "fulfilled").map((r) => r.value.stop()));
      throw failed.reason;
    }
    const started = results.map((r) => (r as PromiseFulfilledResult<Worker>).value);
    const upSinceMs = this.now();
    for (const w of started) this.launchedWith.set(w.kernelId, { ctx, plan, engine, folder, baseEnv, sink, crashes: 0, upSinceMs });
    return started.map((w) => w.record());
  }

  /**
   * Starts a fresh kernel in place of each worker `refs` names (none: every failed worker): the
   * old kernel is stopped when it still runs, and the new one gets the same name and index, engine,
   * size and env, and runs the same startup code again: status listeners see its fresh record go
   * `starting` (its kernel started), `running` (startup code sent), then `idle`; the old kernel's
   * `stopped` is not announced (its record is replaced, not ended). The worker's state is lost. Records come back in `refs` order.
   * @throws WorkerError `unknown_worker` for a worker not in this cluster, or one another process
   *   launched (only its launcher knows its env and startup code); UsageError `bad_option` for a
   *   ref that is no id or record — nothing is restarted in these cases. WorkerError
   *   `launch_failed`/`timeout`, RestError when a fresh kernel could not start (the others still do;
   *   the first error is thrown once all settled).
   */
  async restart(refs: readonly WorkerRef[], options: RestartOptions = {}): Promise<WorkerRecord[]> {
    checkOptionKeys(options, ["context", "sink"], "restartWorkers");
    if (typeof options.sink === "string" && options.sink !== "launching") {
      throw new UsageError(`restartWorkers: sink must be an output sink or "launching", not ${shown(options.sink)}`, { code: "bad_option" });
    }
    const sink = options.sink === "launching" ? undefined : (options.sink ?? captureSink());
    const ctx = this.context(options.context);
    const ids = flattenRefs(refs);
    const records = await this.records(ctx, true);
    const chosen = ids.length ? pickRecords(records, ids) : records.filter((r) => r.status === "failed");
    const olds = chosen.map((r) => {
      const w = this.workers.get(r.id);
      const how = w ? this.launchedWith.get(w.kernelId) : undefined;
      if (!w || !how) {
        throw new WorkerError("unknown_worker", `worker ${r.name} was not launched by this process: only its launching process knows its engine, env and startup code, so only it can restart it; nothing was restarted`, { unknown: [r.name] });
      }
      return { w, how };
    });
    // Asked for by a person: the crashes in a row start again.
    const results = await Promise.allSettled(olds.map(({ w, how }) => this.restartOne(w, { ...how, crashes: 0 }, sink ?? how.sink)));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failed) throw failed.reason;
    return results.map((r) => (r as PromiseFulfilledResult<WorkerRecord>).value);
  }

  /**
   * Keeps `n` worker kernels of an engine and size warm for this master, so the next launches of
   * that kind only ship env and startup code (and the pool refills itself after each launch).
   * Resolves when the pool holds `n` ready kernels; `n: 0` stops them.
   * @throws UsageError `bad_option` (bad n, size, engine, unknown option); WorkerError
   *   `unknown_engine`; RestError when the server cannot be asked. Nothing changes in these cases.
   */
  async setPool(options: PoolOptions): Promise<PoolInfo> {
    checkOptionKeys(options, ["n", "engine", "size", "keeper", "startTimeoutSeconds", "context"], "setWorkerPool");
    const { context: contextInput, n, ...rest } = options;
    const ctx = this.context(contextInput);
    const backend = this.backendFor(ctx);
    // The same limit as a launch: a pool of SENSE_MAX_WORKERS + 1 kernels is as many processes as that many workers.
    const maxWorkers = defaultMaxWorkers();
    if (typeof n !== "number" || !Number.isInteger(n) || n < 0 || n > maxWorkers) {
      throw new UsageError(`n must be an integer from 0 to ${maxWorkers} (SENSE_MAX_WORKERS), not ${shown(n)}`, { code: "bad_option", details: { n, maxWorkers } });
    }
    // The launch validator checks the shared options (n ≥ 1 there: a pool of 0 is checked as 1).
    const plan = validateLaunchOptions({ ...rest, n: Math.max(1, n), maxWorkers }, ctx.projectHome);
    const { kernelName: engine, language } = await resolveEngine(backend, ctx, plan);
    const folder = masterFolder(ctx, await backend.listSessions());
    this.prepareMaster(ctx, n > 0 && plan.keeper);
    return this.warm.resize(
      { backend, masterId: ctx.masterId, projectHome: ctx.projectHome, engine, language, size: plan.size, folder, baseEnv: masterEnv(ctx, plan.size, true, projectIpFor(ctx)), watchdog: true, startTimeoutMs: plan.startTimeoutMs },
      n,
    );
  }

  /**
   * This process's failed workers (their kernels gone; their records kept until they are
   * restarted or stopped), each with whether {@link Cluster.restart} can start it again (this
   * process still holds how it was launched), and the workers being restarted whose fresh kernel
   * has no handle yet (`starting`, under their old kernel's id), in launch order. Asks no server;
   * never throws.
   */
  failed(): { record: WorkerRecord; restartable: boolean }[] {
    const failed = [...this.workers.values()].filter((w) => w.status === "failed" && !this.restarting.has(w.name)).map((w) => ({ record: w.record(), restartable: this.launchedWith.has(w.kernelId) }));
    const starting = [...this.restarting.values()].map((record) => ({ record, restartable: false }));
    return [...failed, ...starting].sort((a, b) => a.record.index - b.record.index);
  }

  /** The warm pools: engine, size, target and how many kernels are ready or starting. */
  pools(): PoolInfo[] {
    return this.warm.info();
  }

  /**
   * Every live worker (one whose session exists) sharing the context's master, in launch order.
   * @throws RestError when the server cannot be asked.
   */
  async list(options: { context?: WorkerContextInput } = {}): Promise<WorkerRecord[]> {
    checkOptionKeys(options, CONTEXT_ONLY, "listWorkers");
    const ctx = this.context(options.context);
    return this.records(ctx, false);
  }

  /**
   * The master's record: its kernel (for a kernel master) or this plain Node process.
   * @throws RestError when the server cannot be asked.
   */
  async master(options: { context?: WorkerContextInput } = {}): Promise<WorkerRecord> {
    checkOptionKeys(options, CONTEXT_ONLY, "getMaster");
    const ctx = this.context(options.context);
    return masterRecord(ctx, await this.backendFor(ctx).listSessions());
  }

  /**
   * Stops the workers `refs` name, or every worker of the cluster when none. Idempotent.
   * @throws WorkerError `unknown_worker` naming the ids not in this cluster; then NOTHING is
   *   stopped. UsageError `bad_option` for a ref that is no id or record. RestError when the server
   *   fails; when it is out of reach (`unreachable`) the channels of the workers asked for are
   *   closed all the same, so none keeps reconnecting to it.
   */
  async stop(refs: readonly WorkerRef[], options: { context?: WorkerContextInput } = {}): Promise<WorkerRecord[]> {
    checkOptionKeys(options, CONTEXT_ONLY, "stopWorkers");
    const ctx = this.context(options.context);
    const ids = flattenRefs(refs);
    let records: WorkerRecord[];
    try {
      records = await this.records(ctx, ids.length > 0);
    } catch (e) {
      // The server is gone: the workers asked for cannot be stopped, but their channels must not
      // keep reconnecting to it (Worker.serverGone); the error is still the caller's.
      if (isRestError(e) && e.code === "unreachable") {
        for (const w of this.workers.values()) {
          if (w.tag.masterId === ctx.masterId && (ids.length === 0 || ids.some((id) => id === w.kernelId || id === w.sessionId || id === w.name))) w.serverGone();
        }
      }
      throw e;
    }
    const targets = ids.length ? pickRecords(records, ids) : records;
    const backend = this.backendFor(ctx);
    return Promise.all(
      targets.map(async (r) => {
        const w = this.workers.get(r.id);
        if (w) {
          await w.stop();
          return w.record();
        }
        if (r.status !== "stopped") await stopSession(backend, r.sessionId);
        const { executionState: _e, ...plain } = r;
        return { ...plain, status: "stopped" as const };
      }),
    );
  }

  /**
   * Waits for workers to be `running` (or, with `waitForCompletion`, for their startup code to end).
   * Never throws on timeout: pending workers are returned in `failures` with `reason: "timeout"`.
   * @throws WorkerError `unknown_worker` for ids not in the cluster; UsageError `bad_option` for a bad timeout.
   */
  async await(refs: readonly WorkerRef[], options: AwaitOptions = {}): Promise<AwaitResult> {
    checkOptionKeys(options, AWAIT_OPTION_KEYS, "awaitWorkers");
    const timeoutMs = checkTimeoutSeconds("timeoutSeconds", options.timeoutSeconds ?? 600, { allowZero: true });
    const pollMs = checkTimeoutSeconds("pollMs", (options.pollMs ?? 100) / 1000);
    const ctx = this.context(options.context);
    const ids = flattenRefs(refs);
    const records = await this.records(ctx, true);
    const wanted = (ids.length ? pickRecords(records, ids) : await this.records(ctx, false)).map((r) => r.id);
    return awaitRecords(wanted, records, () => this.records(ctx, true), {
      waitForCompletion: !!options.waitForCompletion,
      deadline: Date.now() + timeoutMs,
      pollMs,
      masterId: ctx.masterId,
    });
  }

  /**
   * The handle of a worker this process launched, by kernel id, session id, name (`w2`) or record.
   * @throws WorkerError `unknown_worker` for a worker this process did not launch.
   */
  worker(ref: string | Pick<WorkerRecord, "id">): Worker {
    const id = typeof ref === "string" ? ref : ref.id;
    const w = this.workers.get(id) ?? [...this.workers.values()].find((x) => x.sessionId === id || x.name === id);
    if (!w) throw new WorkerError("unknown_worker", `worker ${JSON.stringify(id)} was not launched by this process, so its output is not here`, { unknown: [id] });
    return w;
  }

  /** Handles of this process's workers for the master of `context` that can run code (running or idle), in launch order. */
  runnable(options: { context?: WorkerContextInput } = {}): Worker[] {
    const ctx = this.context(options.context);
    return [...this.workers.values()]
      .filter((w) => w.tag.masterId === ctx.masterId && w.channel !== undefined && (w.status === "running" || w.status === "idle"))
      .sort((a, b) => a.tag.index - b.tag.index);
  }

  /** Everything a worker of this process wrote so far, as text. @throws WorkerError `unknown_worker`. */
  output(ref: string | Pick<WorkerRecord, "id">): string {
    return this.worker(ref).output.text();
  }

  /** A worker's structured output (streams, displays, errors, in order). @throws WorkerError `unknown_worker`. */
  outputItems(ref: string | Pick<WorkerRecord, "id">): WorkerOutputItem[] {
    return this.worker(ref).output.list();
  }

  /** Calls `listener` with a worker's new record on each status change; returns an unsubscribe function. */
  onStatus(listener: (record: WorkerRecord) => void): () => void {
    this.statusListeners.add(listener);
    return () => this.statusListeners.delete(listener);
  }

  /** The running keeper's pid, if any. */
  keeperPid(): number | undefined {
    return this.keeper.pid();
  }

  /** Ends the keeper as a clean master exit does; resolves when it exited (at most `timeoutMs`). */
  stopKeeper(timeoutMs?: number): Promise<void> {
    return this.keeper.stop(timeoutMs);
  }

  /** Stops every live worker and pooled kernel of this cluster, then its keeper (the shutdown hook). Never throws. */
  async shutdown(): Promise<void> {
    const live = [...this.workers.values()].filter((w) => w.status !== "stopped");
    await Promise.allSettled([...live.map((w) => w.stop()), this.warm.drainAll()]);
    await this.keeper.stop(2_000);
    this.backends.close();
  }

  /** The address this master's workers reach it at (the remote data channel listens there). */
  projectIp(context?: WorkerContextInput): string {
    return projectIpFor(this.context(context));
  }

  private context(input: WorkerContextInput | undefined): ResolvedContext {
    return resolveContext(input ?? this.options.context);
  }

  private backendFor(ctx: ResolvedContext): KernelBackend {
    const b = this.options.backend;
    if (typeof b === "function") return b(ctx);
    return b ?? this.backends.for(ctx);
  }

  /** Layer 1 (the master stops its workers when it ends) once per master, and the keeper (layer 2). */
  private prepareMaster(ctx: ResolvedContext, keeper: boolean): void {
    if (this.hooksFor !== ctx.masterId) {
      this.hooksFor = ctx.masterId;
      this.hooks.onShutdown(() => this.shutdown());
      if (!ctx.kernelId) this.hooks.installProcessHooks();
    }
    // A kernel master (its connection file on its argv) is entered in the store, as a notebook's session is on a server.
    if (ctx.backend === "direct" && ctx.connectionFile && !ctx.isWorker) this.backendFor(ctx).registerMaster?.(ctx.masterId, ctx.connectionFile);
    if (keeper && !ctx.isWorker) {
      this.keeper.ensure(
        ctx.backend === "server"
          ? { baseUrl: ctx.endpoint.baseUrl, token: ctx.endpoint.token, masterId: ctx.masterId, masterPid: process.pid }
          : { baseUrl: "", token: "", sessionStore: sessionStoreDir(ctx.runtimeDir), masterId: ctx.masterId, masterPid: process.pid },
      );
    }
  }

  private records(ctx: ResolvedContext, includeGone: boolean): Promise<WorkerRecord[]> {
    const local: LocalRecords = {
      byKernel: (id) => this.workers.get(id)?.record(),
      all: () => [...this.workers.values()].map((w) => w.record()),
    };
    return this.backendFor(ctx)
      .listSessions()
      .then((sessions) => clusterRecords(sessions, ctx.masterId, local, includeGone));
  }

  /** What a launch of `workers` workers needs (their name claims share one session listing). */
  private site(backend: KernelBackend, workers = 1): LaunchSite {
    return {
      backend,
      sessions: new FreshRead(() => backend.listSessions(), workers),
      pools: this.warm,
      envFiles: this.envFiles(),
      register: (k, label, sink: OutputSink) => {
        const w = new Worker(
          { ...k, backend, output: new WorkerOutput({ label, sink }) },
          {
            status: (r) => {
              if (!this.replacing.has(r.id)) this.emit(r);
            },
            ended: (x) => {
              this.retire(x);
              this.restartOnFailure(x);
            },
          },
        );
        this.workers.set(w.kernelId, w);
        this.keeper.track(w.kernelId);
        // Announced from the start: a table follows it through starting, running, idle (a restart's row too).
        this.emit(w.record());
        return w;
      },
      reserveIndex: (masterId, atLeast) => {
        const index = Math.max(atLeast, (this.indexFloor.get(masterId) ?? 0) + 1);
        this.indexFloor.set(masterId, index);
        return index;
      },
      unregister: async (w) => {
        await w.discard();
        this.workers.delete(w.kernelId);
        this.keeper.forget(w.kernelId);
      },
    };
  }

  private envFiles(): EnvFileTracker {
    return { track: (f) => this.keeper.trackEnvFile(f), forget: (f) => this.keeper.forgetEnvFile(f) };
  }

  /** Stops `w` (when it still runs) and starts a fresh kernel in its place, launched as `how` says. */
  private async restartOne(w: Worker, how: Relaunch, sink: OutputSink): Promise<WorkerRecord> {
    // Until the fresh kernel has a handle (and a session), only this says the worker is starting.
    const { reason: _gone, executionState: _state, ...old } = w.record();
    this.restarting.set(w.name, { ...old, status: "starting" });
    try {
      // The fresh worker takes the old one's place: its record (same name) replaces the old one's,
      // so the old one's end is not announced (a table following the name would read it as final).
      this.replacing.add(w.kernelId);
      try {
        await w.stop();
      } finally {
        this.replacing.delete(w.kernelId);
      }
      this.forget(w);
      const fresh = await startWorker(this.site(this.backendFor(how.ctx)), { ctx: how.ctx, plan: how.plan, engine: how.engine, folder: how.folder, index: w.tag.index, sink, baseEnv: how.baseEnv });
      this.launchedWith.set(fresh.kernelId, { ...how, upSinceMs: this.now() });
      return fresh.record();
    } finally {
      this.restarting.delete(w.name);
    }
  }

  /**
   * `restart: "on-failure"`: a worker whose kernel died is restarted in place, in the background,
   * as long as it has crashed at most `maxRestarts` times in a row ({@link crashesInARow}: a
   * kernel that ran {@link HEALTHY_RUN_MS} or finished a request starts the count again); past
   * that (a crash loop) it stays `failed` with its reason.
   */
  private restartOnFailure(w: Worker): void {
    const how = this.launchedWith.get(w.kernelId);
    if (!how || how.plan.restart !== "on-failure" || w.status !== "failed" || !w.lossReason) return;
    const max = how.plan.maxRestarts ?? 3;
    const crashes = crashesInARow(how.crashes, { upMs: this.now() - how.upSinceMs, finishedWork: w.finishedWork });
    if (crashes > max) {
      const restarts = crashes - 1;
      how.sink.stderr(`Sense: worker ${w.name} failed again after ${restarts} restart${restarts === 1 ? "" : "s"} in a row (each kernel crashed within ${HEALTHY_RUN_MS / 1000} s, before finishing any request); it stays failed (maxRestarts: ${max}): ${w.lossReason}\n`);
      return;
    }
    how.sink.stderr(`Sense: restarting worker ${w.name} (restart ${crashes} in a row of at most ${max}); its state is lost.\n`);
    this.restartOne(w, { ...how, crashes }, how.sink).catch((e: unknown) => how.sink.stderr(`Sense: worker ${w.name} could not be restarted: ${(e as Error).message}\n`));
  }

  /** Drops an ended worker's handle, record and launch inputs (its place is taken by a restart). */
  private forget(w: Worker): void {
    this.workers.delete(w.kernelId);
    this.launchedWith.delete(w.kernelId);
    const i = this.retired.indexOf(w.kernelId);
    if (i >= 0) this.retired.splice(i, 1);
  }

  private emit(record: WorkerRecord): void {
    for (const l of this.statusListeners) bestEffortSync("worker status listener", () => l(record));
  }

  /**
   * An ended worker: its record stays, for the last {@link RETIRED_KEPT} ended workers, and its
   * output within the ended workers' budget (`SENSE_ENDED_OUTPUT_MIB`, see {@link limitEndedOutput}).
   */
  private retire(w: Worker): void {
    this.keeper.forget(w.kernelId);
    if (this.retired.includes(w.kernelId)) return;
    this.retired.push(w.kernelId);
    while (this.retired.length > RETIRED_KEPT) {
      const gone = this.retired.shift()!;
      this.workers.delete(gone);
      this.launchedWith.delete(gone);
    }
    let budget: number;
    try {
      budget = outputKeepBytes("SENSE_ENDED_OUTPUT_MIB");
    } catch {
      budget = DEFAULT_ENDED_OUTPUT_KEEP_MIB * 1024 * 1024; // a bad setting must not break a stop
    }
    limitEndedOutput(this.retired.map((id) => this.workers.get(id)?.output).filter((o): o is WorkerOutput => !!o), budget);
  }
}

/**
 * Ended workers' output, all together, is kept within `budget` bytes (`SENSE_ENDED_OUTPUT_MIB`,
 * 16 MiB by default): the newest ended workers keep theirs, older ones' is dropped (their records
 * stay, and `workerOutput` says the output went). `outputs` are oldest first.
 */
export function limitEndedOutput(outputs: WorkerOutput[], budget: number): void {
  let left = budget;
  for (let i = outputs.length - 1; i >= 0; i--) {
    const o = outputs[i];
    if (o.bytes <= left) left -= o.bytes;
    else if (left > 0) {
      o.limit(left);
      left = 0;
    } else if (o.bytes > 0) o.discard("the worker ended, and the output of newer ended workers is kept instead (SENSE_ENDED_OUTPUT_MIB)");
  }
}
