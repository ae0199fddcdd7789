/**
 * The functional API (`launchWorkers`, `listWorkers`, ...): one default {@link Cluster} per
 * process behind it, made on first use. Tests and tools that want their own state construct a
 * `Cluster` instead.
 */
import { displayableInDeno } from "../display/deno-display";
import { UsageError } from "../errors";
import type { WorkerRecord } from "../jupyter/schemas";
import type { AwaitOptions, AwaitResult } from "./await";
import { Cluster, LaunchWorkersOptions, PoolOptions, RestartOptions } from "./cluster";
import type { WorkerContextInput } from "../jupyter/context-input";
import type { WorkerOutputItem } from "./output";
import type { PoolInfo } from "./pool";
import type { WorkerRef } from "./records";
import type { Worker } from "./worker";
import { processDefault } from "../util/process-default";
import { checkOptionKeys } from "../util/check-options";
import { LAUNCH_OPTION_KEYS } from "./options";
import { usageOf, type WorkerUsage } from "./usage";

/** The process's default cluster (the one the functional API uses). */
export const defaultCluster: () => Cluster = processDefault(() => new Cluster());

/**
 * Starts `n` workers. Accepts `launchWorkers(n, options)` and `launchWorkers({ n, ...options })`.
 * See {@link Cluster.launch}.
 * @throws UsageError `bad_option`; WorkerError `script_not_found`, `unknown_engine`,
 *   `launch_failed`, `timeout`; RestError (see {@link Cluster.launch}).
 */
export async function launchWorkers(n: number, options?: LaunchWorkersOptions): Promise<WorkerRecord[]>;
export async function launchWorkers(options: LaunchWorkersOptions): Promise<WorkerRecord[]>;
export async function launchWorkers(nOrOptions: number | LaunchWorkersOptions, maybeOptions: LaunchWorkersOptions = {}): Promise<WorkerRecord[]> {
  if (typeof nOrOptions !== "number" && (nOrOptions === null || typeof nOrOptions !== "object")) {
    throw new UsageError("launchWorkers takes a number of workers or an options object", { code: "bad_option" });
  }
  if (typeof nOrOptions === "number") {
    checkOptionKeys(maybeOptions, LAUNCH_OPTION_KEYS, "launchWorkers");
    if (maybeOptions.n !== undefined) throw new UsageError("launchWorkers(n, options): n is given twice; leave it out of the options", { code: "bad_option" });
  }
  const opts: LaunchWorkersOptions = typeof nOrOptions === "number" ? { ...maybeOptions, n: nOrOptions } : { ...nOrOptions };
  return defaultCluster().launch(opts).then(displayableInDeno);
}

/**
 * Every live worker (one whose session exists) sharing this dashboard's master, in launch order;
 * callable from the master or from a worker (through its `SENSE_MASTER_ID`). In the launching
 * process, a worker whose kernel died stays listed as `failed` with its `reason` until it is
 * restarted or stopped. Stopped workers are not listed (the launching process still knows their
 * final records: `awaitWorkers`, `stopWorkers` and `workerOutput` accept their ids).
 * @throws RestError when the server cannot be asked.
 */
export function listWorkers(options: { context?: WorkerContextInput } = {}): Promise<WorkerRecord[]> {
  return defaultCluster().list(options).then(displayableInDeno);
}

/**
 * The master's record: its kernel (for a kernel master) or this plain Node process.
 * @throws RestError when the server cannot be asked.
 */
export function getMaster(options: { context?: WorkerContextInput } = {}): Promise<WorkerRecord> {
  return defaultCluster().master(options).then(displayableInDeno);
}

/** The keys a last options argument of {@link stopWorkers} may have. */
const STOP_OPTION_KEYS = ["context"];
/** The keys a last options argument of {@link restartWorkers} may have. */
const RESTART_OPTION_KEYS = ["context", "sink"];

/**
 * Splits the arguments of `stopWorkers` (`call`) or `restartWorkers` into refs and options. A
 * last argument that is a plain object is a record when it has an `id`, options when it has only
 * `known` option keys, and refused otherwise: `{ name: "w1" }`, `{ ids: [...] }` or `{}` used to be
 * read as empty options, which stopped every worker.
 * @throws UsageError `bad_option` for any other object, naming its keys.
 */
export function splitWorkerArguments<O extends object>(args: readonly unknown[], call = "stopWorkers", known: readonly string[] = STOP_OPTION_KEYS): { refs: WorkerRef[]; options: O } {
  const last = args[args.length - 1];
  if (last === null || typeof last !== "object" || Array.isArray(last) || "id" in last) return { refs: args as WorkerRef[], options: {} as O };
  const keys = Object.keys(last);
  if (keys.length === 0) {
    throw new UsageError(`${call}({}) names no worker and no option; call ${call}() to ${call === "stopWorkers" ? "stop every worker" : "restart every failed worker"}, or pass ids, names or records`, { code: "bad_option" });
  }
  if (keys.some((k) => !known.includes(k))) {
    throw new UsageError(`${call}: { ${keys.join(", ")} } is neither a worker record (it has no id) nor options (known: ${known.join(", ")}); nothing was done`, { code: "bad_option", details: { keys } });
  }
  return { refs: args.slice(0, -1) as WorkerRef[], options: last as O };
}

/**
 * Stops workers: `stopWorkers()` stops every worker of this cluster; `stopWorkers(id, ...)`,
 * `stopWorkers(record)` and `stopWorkers([ids])` stop those; a last `{ context }` argument says
 * where. Idempotent. Resolves with the records, status `stopped`, when their kernels are shut down.
 * @throws WorkerError `unknown_worker` naming the ids not in this cluster; UsageError `bad_option`
 *   for an argument that is no id, record or `{ context }` options (`stopWorkers({})` included:
 *   call `stopWorkers()` to stop all); then NOTHING is stopped. RestError when the server fails.
 */
export async function stopWorkers(...refs: (WorkerRef | { context?: WorkerContextInput })[]): Promise<WorkerRecord[]> {
  const split = splitWorkerArguments<{ context?: WorkerContextInput }>(refs);
  return defaultCluster().stop(split.refs, split.options).then(displayableInDeno);
}

/**
 * Starts a fresh kernel in place of workers (same name, engine, size, env and startup code; their
 * state is lost): `restartWorkers()` restarts every failed worker, `restartWorkers("w2", ...)`
 * those named; a last `{ context, sink }` argument says where. See {@link Cluster.restart}.
 * @throws WorkerError `unknown_worker`, `launch_failed`, `timeout`; UsageError `bad_option`; RestError.
 */
export async function restartWorkers(...refs: (WorkerRef | RestartOptions)[]): Promise<WorkerRecord[]> {
  const split = splitWorkerArguments<RestartOptions>(refs, "restartWorkers", RESTART_OPTION_KEYS);
  return defaultCluster().restart(split.refs, split.options).then(displayableInDeno);
}

/**
 * Waits for workers to be `running` (or, with `waitForCompletion`, for their startup code to end).
 * `idsOrWorkers` takes ids, names, records, or nothing/empty (every worker of the cluster).
 * Never throws on timeout: pending workers are returned in `failures` with `reason: "timeout"`.
 * @throws WorkerError `unknown_worker` for ids not in the cluster; UsageError `bad_option` for a bad timeout.
 */
export function awaitWorkers(idsOrWorkers?: WorkerRef | null, options: AwaitOptions = {}): Promise<AwaitResult> {
  return defaultCluster().await(idsOrWorkers == null ? [] : [idsOrWorkers], options).then(displayableInDeno);
}

/**
 * Everything a worker launched by this process has written so far (stdout, stderr, tracebacks), as text.
 * @throws WorkerError `unknown_worker` for a worker this process did not launch.
 */
export function workerOutput(ref: string | Pick<WorkerRecord, "id">): string {
  return defaultCluster().output(ref);
}

/**
 * The structured output of a worker launched by this process (streams, displays, errors, in order).
 * @throws WorkerError `unknown_worker` for a worker this process did not launch.
 */
export function workerOutputItems(ref: string | Pick<WorkerRecord, "id">): WorkerOutputItem[] {
  return defaultCluster().outputItems(ref);
}

/**
 * The handle of a worker launched by this process (its channel, output, status, stop).
 * @throws WorkerError `unknown_worker` for a worker this process did not launch.
 */
export function getWorker(ref: string | Pick<WorkerRecord, "id">): Worker {
  return defaultCluster().worker(ref);
}

/**
 * Calls `listener` with a worker's new record each time a worker launched by this process
 * changes status (live tables use it instead of polling). Returns a function that unsubscribes.
 */
export function onWorkerStatus(listener: (record: WorkerRecord) => void): () => void {
  return defaultCluster().onStatus(listener);
}

/**
 * Keeps `n` worker kernels of an engine and size warm for this master (see {@link Cluster.setPool}).
 * Pooled kernels are not workers (`listWorkers` does not list them) but are cleaned up like
 * workers when the master ends.
 * @throws UsageError `bad_option`; WorkerError `unknown_engine`; RestError. Nothing changes then.
 */
export function setWorkerPool(options: PoolOptions): Promise<PoolInfo> {
  return defaultCluster().setPool(options);
}

/** The warm pools of this master: engine, size, target and how many kernels are ready or starting. */
export function workerPools(): PoolInfo[] {
  return defaultCluster().pools();
}

/** The running keeper's pid, if any. */
export function keeperPid(): number | undefined {
  return defaultCluster().keeperPid();
}

/**
 * Ends the keeper the way a clean master exit does (closing its pipe: it deletes any session
 * still tagged with the master, then exits) and resolves when it has exited, at most `timeoutMs`.
 */
export function stopKeeper(timeoutMs?: number): Promise<void> {
  return defaultCluster().stopKeeper(timeoutMs);
}

/**
 * Handles of the workers this process launched for its master that can run code (running or
 * idle), in launch order: the default targets of remote execution.
 */
export function runnableWorkers(options: { context?: WorkerContextInput } = {}): Worker[] {
  return defaultCluster().runnable(options);
}

/**
 * CPU % and memory of every live worker of this cluster ({@link listWorkers}'s records), asked of
 * each worker's kernel at once (`usage_request`, answered by Sense kernels and ipykernel ≥ 6.11).
 * A worker whose kernel does not answer within `timeoutMs` (default 1.5 s), or that this process
 * did not launch, comes without `usage`.
 * @throws RestError when the server cannot be asked for the list.
 */
export async function workerUsage(options: { context?: WorkerContextInput; timeoutMs?: number } = {}): Promise<WorkerUsage[]> {
  const cluster = defaultCluster();
  const records = await cluster.list(options.context ? { context: options.context } : {});
  const channelOf = (id: string) => {
    try {
      return cluster.worker(id).channel;
    } catch {
      return undefined; // launched by another process: no channel here
    }
  };
  return usageOf(records, channelOf, options.timeoutMs);
}
