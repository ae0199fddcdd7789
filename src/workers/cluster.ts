/**
 * Workers: launch, list, stop, await. A worker is a Jupyter session (`type: "sense-worker"`)
 * whose name tag carries its durable record (names.ts), so every process sees the same cluster.
 * The master keeps, per worker it launched, a websocket connection (opened before anything runs
 * in the worker, so no output is lost) and the worker's full output.
 */
import { randomBytes } from "node:crypto";
import * as os from "node:os";
import * as path from "node:path";
import type { Kernel, KernelMessage } from "@jupyterlab/services";
import { getContext, SenseContext } from "../context";
import { captureSink } from "../display/sink";
import type { OutputSink } from "../display/sink";
import { isSenseError, UsageError, WorkerError } from "../errors";
import { installProcessHooks, onShutdown } from "../lifecycle";
import { getNetwork } from "../network";
import { relativeInside } from "../paths";
import { isRestError, RestClient } from "../rest";
import type { SessionModel } from "../schemas";
import { WorkerRecord, WorkerSize, WorkerStatus } from "../schemas";
import { connectKernel } from "./connection";
import { ensureKeeper, keeperForget, keeperTrack, stopKeeper } from "./keeperClient";
import { decodeWorkerTag, encodeWorkerTag, WORKER_SESSION_TYPE, WorkerTag } from "./names";
import { checkTimeoutSeconds, defaultMaxWorkers, LaunchOptions, LaunchPlan, SIZES, validateLaunchOptions } from "./options";
import { preambleLanguage, PreambleLanguage } from "./preamble";
import { DEFAULT_ENDED_OUTPUT_KEEP_MIB, outputKeepBytes, WorkerOutput, WorkerOutputItem } from "./output";
import { PooledKernel, PoolInfo, WorkerPools } from "./pool";
import { loadEnvironment } from "./start";
import { checkAndTranspile } from "../transpile";
import { checkWireSize } from "../wire";
import { gatewayInfoFromSpecs, kernelSpecForSize } from "../gateway";

/** The lean JavaScript worker kernel; TypeScript startup code is checked and transpiled for it here. */
export const FAST_ENGINE = "sense-fast";

/**
 * Where an API call runs. Normally discovered (`getContext()`); tests and tools pass their own.
 * Only `endpoint` is required; the rest defaults as `discover()` would for a plain Node process.
 */
export type WorkerContextInput = Pick<SenseContext, "endpoint"> & Partial<Omit<SenseContext, "endpoint">>;

/** Resolved context (every field Sense needs). */
type Ctx = Pick<SenseContext, "endpoint" | "rest" | "dashboardId" | "masterId" | "isWorker" | "projectHome"> &
  Partial<Pick<SenseContext, "kernelId" | "serverRootDir" | "runtimeDir" | "serverPid">>;

const processDashboardId = `process-${process.pid}-${randomBytes(4).toString("hex")}`;

function resolveContext(input?: WorkerContextInput): Ctx {
  if (!input) return getContext();
  const dashboardId = input.dashboardId ?? input.kernelId ?? processDashboardId;
  const masterId = input.masterId ?? dashboardId;
  return {
    endpoint: input.endpoint,
    rest: input.rest ?? new RestClient(input.endpoint),
    dashboardId,
    masterId,
    isWorker: input.isWorker ?? masterId !== dashboardId,
    projectHome: path.resolve(input.projectHome ?? input.serverRootDir ?? process.cwd()),
    kernelId: input.kernelId,
    serverRootDir: input.serverRootDir,
    runtimeDir: input.runtimeDir,
    serverPid: input.serverPid,
  };
}

/** `launchWorkers` options plus an explicit context. */
export type LaunchWorkersOptions = LaunchOptions & { context?: WorkerContextInput };

/** One worker this process launched. */
interface LocalWorker {
  tag: WorkerTag;
  name: string;
  kernelId: string;
  sessionId: string;
  path: string;
  engine: string;
  reason?: string;
  rest: RestClient;
  conn?: Kernel.IKernelConnection;
  output: WorkerOutput;
  /** Parent msg ids whose output is not the user's (the preamble). */
  hidden: Set<string>;
  /** Serialises PATCHes so the server ends with the latest status. */
  patches: Promise<void>;
  stopping: boolean;
  executionState?: string;
}

const local = new Map<string, LocalWorker>();
let connector: typeof connectKernel = connectKernel;
const pools = new WorkerPools({ connect: (e, m) => connector(e, m), track: keeperTrack, forget: keeperForget });

/**
 * Test seam: replaces how kernel websocket connections are opened (unit tests pass a fake that
 * plays the kernel's side); `undefined` restores the real one. Not exported from the package.
 */
export function setKernelConnectorForTests(fake?: typeof connectKernel): void {
  connector = fake ?? connectKernel;
}
const indexFloor = new Map<string, number>();
let hooksFor: string | undefined;

function record(w: LocalWorker): WorkerRecord {
  return {
    id: w.kernelId,
    name: w.name,
    engine: w.engine,
    size: w.tag.size,
    status: w.tag.status,
    masterId: w.tag.masterId,
    startedAt: new Date(w.tag.startedAtMs).toISOString(),
    sessionId: w.sessionId,
    path: w.path,
    index: w.tag.index,
    ...(w.executionState ? { executionState: w.executionState } : {}),
    ...(w.reason ? { reason: w.reason } : {}),
  };
}

function recordFromSession(s: SessionModel, tag: WorkerTag): WorkerRecord {
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

const statusListeners = new Set<(record: WorkerRecord) => void>();

/**
 * Calls `listener` with a worker's new record each time a worker launched by this process
 * changes status (live tables use it instead of polling). Returns a function that unsubscribes.
 */
export function onWorkerStatus(listener: (record: WorkerRecord) => void): () => void {
  statusListeners.add(listener);
  return () => statusListeners.delete(listener);
}

/** Sets a local worker's status and PATCHes its session name (serialised; a gone session is fine). */
function setStatus(w: LocalWorker, status: WorkerStatus, reason?: string): Promise<void> {
  if (w.tag.status === "stopped" || (w.tag.status === "failed" && status !== "stopped")) return w.patches;
  w.tag = { ...w.tag, status };
  if (reason) w.reason = reason;
  const changed = record(w);
  for (const l of statusListeners) {
    try {
      l(changed);
    } catch {
      /* a broken listener must not break the worker's bookkeeping */
    }
  }
  const name = encodeWorkerTag(w.tag);
  w.patches = w.patches.then(async () => {
    if (status === "stopped") return;
    try {
      await w.rest.patchSession(w.sessionId, { name });
    } catch {
      /* the session is gone (stopped by someone else); the local record stays right */
    }
  });
  return w.patches;
}

/** The sink of the calling cell, captured now (tslab routes later writes to the latest cell otherwise). */
function captureDefaultSink(): OutputSink {
  return captureSink();
}

/** The folder (server API path) the master lives in: its notebook's folder, or the project home. */
function masterFolder(ctx: Ctx, sessions: SessionModel[]): string {
  if (ctx.kernelId) {
    const own = sessions.find((s) => s.kernel?.id === ctx.kernelId);
    if (own) return path.posix.dirname(own.path) === "." ? "" : path.posix.dirname(own.path);
  }
  const root = ctx.serverRootDir;
  if (root) {
    const rel = relativeInside(root, ctx.projectHome);
    if (rel) return rel.split(path.sep).join("/");
  }
  return "";
}

/**
 * The kernelspec to start and its preamble language. Behind a gateway, a worker of size `s` runs the
 * sized kernelspec `<engine>-<s>` when the server has one (its env carries `KERNEL_CPUS`/`KERNEL_MEMORY`,
 * which EG turns into the kernel's resources); elsewhere sizes stay advisory.
 */
async function resolveEngine(ctx: Ctx, plan: LaunchPlan): Promise<{ engine: string; kernelName: string; language: PreambleLanguage; masterEngine?: string }> {
  const specs = await ctx.rest.kernelspecs();
  let masterEngine: string | undefined;
  if (ctx.kernelId) {
    try {
      masterEngine = (await ctx.rest.getKernel(ctx.kernelId)).name;
    } catch (e) {
      if (!isRestError(e) || e.code !== "not_found") throw e;
    }
  }
  const engine = plan.engine ?? masterEngine ?? "sense-ts";
  const installed = Object.keys(specs.kernelspecs).sort();
  // Own keys only: an engine named `__proto__` is unknown, not Object.prototype.
  const spec = Object.hasOwn(specs.kernelspecs, engine) ? specs.kernelspecs[engine] : undefined;
  if (!spec) {
    throw new WorkerError("unknown_engine", `unknown engine ${JSON.stringify(engine)}; installed kernelspecs: ${installed.join(", ")}`, { engine, installed });
  }
  const language = preambleLanguage(spec.spec.language);
  if (!language) {
    throw new WorkerError(
      "unknown_engine",
      `engine ${JSON.stringify(engine)} runs ${spec.spec.language ?? "an unknown language"}; Sense workers need a Python or JavaScript/TypeScript kernel (installed: ${installed.join(", ")})`,
      { engine, installed },
    );
  }
  return { engine, kernelName: kernelSpecForSize(gatewayInfoFromSpecs(specs), engine, plan.size), language, masterEngine };
}

/**
 * For the fast engine, TypeScript startup code is type-checked and transpiled once, here in the
 * master, before anything launches (the workers then need no compiler). It is TypeScript when it
 * comes from a `.ts` script, or when the master is itself a TypeScript kernel.
 * @throws UsageError `compile_error` listing the errors with line and column.
 */
function prepareCode(plan: LaunchPlan, engine: string, masterEngine: string | undefined, checkIn: string): LaunchPlan {
  if (engine !== FAST_ENGINE || !plan.code.trim()) return plan;
  const typescript = plan.codeSource ? /\.(c|m)?tsx?$/.test(plan.codeSource) : masterEngine === "sense-ts";
  if (!typescript) return plan;
  const fileName = path.join(checkIn, plan.codeSource ? path.basename(plan.codeSource) : "__startup.ts");
  return { ...plan, code: checkAndTranspile(plan.code, { fileName }).js };
}

function projectIp(ctx: Ctx): string {
  try {
    return getNetwork({ baseUrl: ctx.endpoint.baseUrl }).projectIp;
  } catch {
    return "127.0.0.1";
  }
}

/** Routes a worker's iopub messages into its output; detects a restarted or dead kernel. */
function attach(w: LocalWorker, conn: Kernel.IKernelConnection): void {
  conn.iopubMessage.connect((_, msg: KernelMessage.IIOPubMessage) => {
    const parent = (msg.parent_header as Partial<KernelMessage.IHeader>).msg_id;
    const t = msg.header.msg_type;
    const c = msg.content as Record<string, unknown>;
    if (t === "status") {
      w.executionState = String(c.execution_state);
      if (c.execution_state === "idle") w.output.flushAll();
      if (c.execution_state === "restarting" || c.execution_state === "dead") void lost(w, String(c.execution_state));
      return;
    }
    if (parent && w.hidden.has(parent)) return;
    if (t === "stream") w.output.stream(c.name === "stderr" ? "stderr" : "stdout", String(c.text ?? ""));
    else if (t === "error") w.output.error(String(c.ename), String(c.evalue), Array.isArray(c.traceback) ? c.traceback.map(String) : []);
    else if (t === "display_data" || t === "execute_result" || t === "update_display_data") {
      const transient = (c.transient ?? {}) as { display_id?: string };
      w.output.display((c.data ?? {}) as Record<string, unknown>, { displayId: transient.display_id, update: t === "update_display_data" });
    }
  });
  conn.statusChanged.connect((_, status) => {
    if (status === "autorestarting" || status === "restarting" || status === "dead") void lost(w, status);
  });
}

/**
 * The worker's kernel restarted (its process exited: the server restarts it with the same id and
 * no state) or died. It is marked `failed` and deleted, so the server does not keep restarting a
 * worker whose code exits again; a session deleted by someone else is recorded as `stopped`.
 */
async function lost(w: LocalWorker, why: string): Promise<void> {
  if (w.stopping || w.tag.status === "stopped" || w.tag.status === "failed") return;
  w.stopping = true;
  let stillThere = true;
  try {
    await w.rest.getSession(w.sessionId);
  } catch {
    stillThere = false;
  }
  w.output.close();
  if (!stillThere && why === "dead") {
    await setStatus(w, "stopped");
  } else {
    const reason = why === "dead" ? "the worker's kernel died" : "the worker's kernel process exited and was restarted by the server, so its state is lost";
    // Said where the user looks (the launching cell), not only in the record: a silent failure reads as a hang.
    w.output.notice(`Sense: worker ${w.name} failed: ${reason}; it is being removed.`);
    await setStatus(w, "failed", reason);
    await deleteUntilGone(w);
  }
  retire(w);
}

/** Stopped and failed workers whose records and output this process keeps (oldest dropped first). */
export const RETIRED_KEPT = 256;
const retired: string[] = [];

/**
 * A worker that ended: its connection is disposed and dropped (a disposed KernelConnection still
 * holds ~200 KB), its record and output stay for `awaitWorkers`/`workerOutput`, for the last
 * {@link RETIRED_KEPT} ended workers: a long-lived master launching thousands must not grow without bound.
 */
function retire(w: LocalWorker): void {
  w.conn?.dispose();
  w.conn = undefined;
  w.hidden.clear();
  keeperForget(w.kernelId);
  if (retired.includes(w.kernelId)) return;
  retired.push(w.kernelId);
  while (retired.length > RETIRED_KEPT) local.delete(retired.shift()!);
  let budget: number;
  try {
    budget = outputKeepBytes("SENSE_ENDED_OUTPUT_MIB");
  } catch {
    budget = DEFAULT_ENDED_OUTPUT_KEEP_MIB * 1024 * 1024; // a bad setting must not break a stop
  }
  limitEndedOutput(retired.map((id) => local.get(id)?.output).filter((o): o is WorkerOutput => !!o), budget);
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

/**
 * Deletes a worker's session, and its kernel if the session delete fails (a kernel in the middle
 * of an auto-restart can refuse), retrying for up to `timeoutMs` until the server no longer has it.
 */
async function deleteUntilGone(w: LocalWorker, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await w.rest.deleteSession(w.sessionId);
    } catch {
      try {
        await w.rest.deleteKernel(w.kernelId);
      } catch {
        /* checked below */
      }
    }
    let gone = false;
    try {
      await w.rest.getKernel(w.kernelId);
    } catch (e) {
      gone = isRestError(e) && e.code === "not_found";
    }
    if (gone || Date.now() > deadline) return;
    await new Promise((r) => setTimeout(r, 200));
  }
}

interface StartArgs {
  ctx: Ctx;
  plan: LaunchPlan;
  engine: string;
  /** The kernelspec started: `engine`, or its sized variant behind a gateway. */
  kernelName: string;
  language: PreambleLanguage;
  folder: string;
  index: number;
  sink: OutputSink;
  baseEnv: Record<string, string>;
}

/** A fresh kernel for a worker: its own session, tagged, and a websocket opened before anything runs. */
async function createWorkerKernel(a: StartArgs, tag: WorkerTag, sessionPath: string): Promise<LocalWorker> {
  const session = await a.ctx.rest.createSession({ path: sessionPath, type: WORKER_SESSION_TYPE, name: encodeWorkerTag(tag), kernel: { name: a.kernelName } });
  if (!session.kernel) throw new WorkerError("launch_failed", `the server created session ${session.id} without a kernel`);
  const w = newLocal(a, tag, { kernelId: session.kernel.id, sessionId: session.id, path: session.path, engine: session.kernel.name });
  w.conn = connector(a.ctx.endpoint, { id: w.kernelId, name: w.engine });
  attach(w, w.conn);
  return w;
}

/**
 * A pooled kernel turned into a worker: its session becomes a worker session (tag, type, path)
 * and its open websocket is handed over. `undefined` when the pooled kernel failed meanwhile.
 */
async function adoptPooled(a: StartArgs, tag: WorkerTag, sessionPath: string, m: PooledKernel): Promise<LocalWorker | undefined> {
  m.release();
  await m.ready;
  if (m.state !== "ready" || !m.conn) return undefined;
  const w = newLocal(a, tag, { kernelId: m.kernelId, sessionId: m.sessionId, path: sessionPath, engine: m.engine });
  for (const id of m.hidden) w.hidden.add(id);
  w.conn = m.conn;
  attach(w, w.conn);
  try {
    await a.ctx.rest.patchSession(m.sessionId, { name: encodeWorkerTag(tag), type: WORKER_SESSION_TYPE, path: sessionPath });
  } catch (e) {
    await removeLocal(w);
    throw e;
  }
  return w;
}

function newLocal(a: StartArgs, tag: WorkerTag, k: { kernelId: string; sessionId: string; path: string; engine: string }): LocalWorker {
  const w: LocalWorker = {
    tag,
    name: `w${tag.index}`,
    ...k,
    rest: a.ctx.rest,
    output: new WorkerOutput({ label: `${a.plan.label}${tag.index}`, sink: a.sink, keepBytes: a.plan.outputKeepBytes }),
    hidden: new Set(),
    patches: Promise.resolve(),
    stopping: false,
  };
  local.set(w.kernelId, w);
  keeperTrack(w.kernelId);
  return w;
}

/** The execute_request content that runs a worker's startup code (sized by checkWireSize first). */
function startupContent(code: string): KernelMessage.IExecuteRequestMsg["content"] {
  return { code, stop_on_error: true };
}

async function startOne(a: StartArgs): Promise<WorkerRecord> {
  const { ctx, plan } = a;
  const tag: WorkerTag = { masterId: ctx.masterId, index: a.index, size: plan.size, startedAtMs: Date.now(), status: "starting" };
  const masterShort = ctx.masterId.replace(/^process-/, "").slice(0, 8);
  const leaf = `.sense-worker-${masterShort}-${a.index}-${randomBytes(3).toString("hex")}`;
  const sessionPath = a.folder ? `${a.folder}/${leaf}` : leaf;
  // Pooled kernels already run the watchdog; a launch that asked for none starts its own kernels.
  const pooled = plan.watchdog ? pools.take(a.kernelName, plan.size, a.folder) : undefined;
  const adopted = pooled ? await adoptPooled(a, tag, sessionPath, pooled) : undefined;
  const w = adopted ?? (await createWorkerKernel(a, tag, sessionPath));
  const conn = w.conn!;
  try {
    await loadEnvironment({
      rest: ctx.rest,
      conn,
      kernelId: w.kernelId,
      what: `worker ${w.name} (${a.engine})`,
      language: a.language,
      projectHome: ctx.projectHome,
      env: { ...plan.env, ...a.baseEnv, SENSE_DASHBOARD_ID: w.kernelId, SENSE_SESSION_ID: w.sessionId, SENSE_WORKER_NAME: w.name },
      // An adopted kernel's watchdog started when it was pooled (same session, same master).
      watchdog: plan.watchdog && !adopted,
      timeoutMs: plan.startTimeoutMs,
      hidden: w.hidden,
    });
    if (!plan.code.trim()) {
      await setStatus(w, "idle");
      return record(w);
    }
    await setStatus(w, "running");
    const future = conn.requestExecute(startupContent(plan.code), true);
    future.done.then(
      (reply) => {
        w.output.flushAll();
        if (reply.content.status === "ok") void setStatus(w, "idle");
        else {
          const c = reply.content as { ename?: string; evalue?: string };
          void setStatus(w, "failed", `startup code raised ${c.ename ?? "an error"}: ${c.evalue ?? ""}`.trim());
        }
      },
      () => {
        /* cancelled: the kernel restarted or was stopped; lost()/stopWorkers() record why */
      },
    );
    return record(w);
  } catch (e) {
    await removeLocal(w);
    if (isSenseError(e)) throw e;
    throw new WorkerError("launch_failed", `worker ${w.name} failed to start: ${(e as Error).message}`);
  }
}

async function removeLocal(w: LocalWorker): Promise<void> {
  w.stopping = true;
  w.output.close();
  w.conn?.dispose();
  try {
    await w.rest.deleteSession(w.sessionId);
  } catch {
    /* already gone */
  }
  local.delete(w.kernelId);
  keeperForget(w.kernelId);
}

function registerHooks(ctx: Ctx): void {
  if (hooksFor === ctx.masterId) return;
  hooksFor = ctx.masterId;
  // Layer 1: the master stops its workers when it shuts down or restarts.
  onShutdown(async () => {
    await Promise.all([stopLocalWorkers(), pools.drainAll()]);
    await stopKeeper(2_000);
  });
  if (!ctx.kernelId) installProcessHooks();
}

async function stopLocalWorkers(): Promise<void> {
  await Promise.all([...local.values()].filter((w) => w.tag.status !== "stopped").map((w) => stopOne(w)));
}

/**
 * Starts `n` workers. Accepts `launchWorkers(n, options)` and `launchWorkers({ n, ...options })`.
 * Every option is checked before anything starts; workers start concurrently and the records come
 * back in request order, each `running` (startup code sent) or `idle` (no startup code). Output of
 * the workers is republished, labelled, in the cell (or terminal) that called this.
 *
 * @throws UsageError `bad_option` (bad n, size, env, label, unknown option, script outside the
 *   project home); WorkerError `script_not_found`, `unknown_engine` (lists the installed
 *   kernelspecs) — nothing started in these cases; WorkerError `launch_failed`/`timeout` when a
 *   worker could not start (the workers of this call that did start are stopped); RestError from the server.
 */
export async function launchWorkers(n: number, options?: LaunchWorkersOptions): Promise<WorkerRecord[]>;
export async function launchWorkers(options: LaunchWorkersOptions): Promise<WorkerRecord[]>;
export async function launchWorkers(nOrOptions: number | LaunchWorkersOptions, maybeOptions: LaunchWorkersOptions = {}): Promise<WorkerRecord[]> {
  const opts: LaunchWorkersOptions = typeof nOrOptions === "number" ? { ...maybeOptions, n: nOrOptions } : { ...(nOrOptions ?? {}) };
  if (typeof nOrOptions !== "number" && (nOrOptions === null || typeof nOrOptions !== "object")) {
    throw new UsageError("launchWorkers takes a number of workers or an options object", { code: "bad_option" });
  }
  // Captured before the first await: later the kernel's current cell may be another one.
  const sink = opts.sink ?? captureDefaultSink();
  const ctx = resolveContext(opts.context);
  const { context: _ignored, ...rest } = opts;
  const validated = validateLaunchOptions(rest, ctx.projectHome);
  const { engine, kernelName, language, masterEngine } = await resolveEngine(ctx, validated);
  const sessions = await ctx.rest.listSessions();
  const folder = masterFolder(ctx, sessions);
  // Imports in the startup code resolve from the workers' folder, as they will at run time.
  const plan = prepareCode(validated, engine, masterEngine, path.join(ctx.serverRootDir ?? ctx.projectHome, folder));
  // Checked as it will be sent (after transpiling): over the server's websocket limit it would never run.
  checkWireSize(plan.codeSource ? `startup script ${plan.codeSource}` : "startup code", startupContent(plan.code));

  const usedOnServer = sessions.map((s) => decodeWorkerTag(s.name)).filter((t) => t?.masterId === ctx.masterId).map((t) => t!.index);
  const first = Math.max(0, ...usedOnServer, indexFloor.get(ctx.masterId) ?? 0) + 1;
  indexFloor.set(ctx.masterId, first + plan.n - 1);

  registerHooks(ctx);
  if (plan.keeper && !ctx.isWorker) {
    ensureKeeper({ baseUrl: ctx.endpoint.baseUrl, token: ctx.endpoint.token, masterId: ctx.masterId, masterPid: process.pid });
  }
  const baseEnv = masterEnv(ctx, plan.size, plan.watchdog);
  const results = await Promise.allSettled(
    Array.from({ length: plan.n }, (_, i) => startOne({ ctx, plan, engine, kernelName, language, folder, index: first + i, sink, baseEnv })),
  );
  // Pools this launch drew from start replacements now, in the background.
  pools.refill();
  const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed) {
    // All or nothing: a partial cluster would leave the caller's code waiting for peers that never come.
    // allSettled: with the server gone the stops fail too, and the launch's own failure is the one to report.
    await Promise.allSettled(
      results.filter((r): r is PromiseFulfilledResult<WorkerRecord> => r.status === "fulfilled").map((r) => {
        const w = local.get(r.value.id);
        return w ? stopOne(w) : Promise.resolve();
      }),
    );
    throw failed.reason;
  }
  return results.map((r) => (r as PromiseFulfilledResult<WorkerRecord>).value);
}

/** The master's part of every worker's environment (the same for pooled kernels and fresh ones). */
function masterEnv(ctx: Ctx, sizeName: WorkerSize, watchdog: boolean): Record<string, string> {
  const size = SIZES[sizeName];
  return {
    SENSE_MASTER_ID: ctx.masterId,
    SENSE_MASTER_KIND: ctx.kernelId && !ctx.isWorker ? "kernel" : "process",
    SENSE_MASTER_PID: String(process.pid),
    SENSE_MASTER_HOST: os.hostname(),
    SENSE_API_URL: ctx.endpoint.baseUrl,
    SENSE_API_TOKEN: ctx.endpoint.token,
    SENSE_PROJECT_HOME: ctx.projectHome,
    SENSE_PROJECT_IP: projectIp(ctx),
    SENSE_WORKER_SIZE: sizeName,
    SENSE_WORKER_CPUS: String(size.cpu),
    SENSE_WORKER_MEMORY_MB: String(size.memoryMiB),
    ...(watchdog ? {} : { SENSE_WATCHDOG: "0" }),
  };
}

/** Options of {@link setWorkerPool}. */
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

/**
 * Keeps `n` worker kernels of an engine and size warm for this master, so the next launches of
 * that kind only ship env and startup code (and the pool refills itself after each launch).
 * Resolves when the pool holds `n` ready kernels; `n: 0` stops them. Pooled kernels are not
 * workers (`listWorkers` does not list them) but are cleaned up like workers when the master ends.
 * @throws UsageError `bad_option` (bad n, size, engine, unknown option); WorkerError
 *   `unknown_engine`; RestError when the server cannot be asked. Nothing changes in these cases.
 */
export async function setWorkerPool(options: PoolOptions): Promise<PoolInfo> {
  if (options === null || typeof options !== "object" || Array.isArray(options)) throw new UsageError("setWorkerPool takes an options object", { code: "bad_option" });
  const { context: contextInput, n, ...rest } = options;
  const ctx = resolveContext(contextInput);
  const unknown = Object.keys(rest).filter((k) => !["engine", "size", "keeper", "startTimeoutSeconds"].includes(k));
  if (unknown.length) throw new UsageError(`unknown option${unknown.length > 1 ? "s" : ""} ${unknown.join(", ")}; known: n, engine, size, keeper, startTimeoutSeconds`, { code: "bad_option" });
  // The same limit as a launch: a pool of SENSE_MAX_WORKERS + 1 kernels is as many processes as that many workers.
  const maxWorkers = defaultMaxWorkers();
  if (typeof n !== "number" || !Number.isInteger(n) || n < 0 || n > maxWorkers) {
    throw new UsageError(`n must be an integer from 0 to ${maxWorkers} (SENSE_MAX_WORKERS), not ${JSON.stringify(n) ?? String(n)}`, { code: "bad_option", details: { n, maxWorkers } });
  }
  // The launch validator checks the shared options (n ≥ 1 there: a pool of 0 is checked as 1).
  const plan = validateLaunchOptions({ ...rest, n: Math.max(1, n), maxWorkers }, ctx.projectHome);
  const { kernelName: engine, language } = await resolveEngine(ctx, plan);
  const folder = masterFolder(ctx, await ctx.rest.listSessions());
  registerHooks(ctx);
  if (n > 0 && plan.keeper && !ctx.isWorker) {
    ensureKeeper({ baseUrl: ctx.endpoint.baseUrl, token: ctx.endpoint.token, masterId: ctx.masterId, masterPid: process.pid });
  }
  return pools.resize(
    { rest: ctx.rest, endpoint: ctx.endpoint, masterId: ctx.masterId, projectHome: ctx.projectHome, engine, language, size: plan.size, folder, baseEnv: masterEnv(ctx, plan.size, true), watchdog: true, startTimeoutMs: plan.startTimeoutMs },
    n,
  );
}

/** The warm pools of this master: engine, size, target and how many kernels are ready or starting. */
export function workerPools(): PoolInfo[] {
  return pools.info();
}

/** Records of every worker of `masterId`: the server's sessions, overlaid with what this process knows better. */
async function clusterRecords(ctx: Ctx, includeGone: boolean): Promise<WorkerRecord[]> {
  const sessions = await ctx.rest.listSessions();
  const out = new Map<string, WorkerRecord>();
  for (const s of sessions) {
    if (s.type !== WORKER_SESSION_TYPE) continue;
    const tag = decodeWorkerTag(s.name);
    if (!tag || tag.masterId !== ctx.masterId) continue;
    const lw = s.kernel ? local.get(s.kernel.id) : undefined;
    const rec = lw ? { ...record(lw), executionState: s.kernel?.execution_state ?? lw.executionState } : recordFromSession(s, tag);
    if (!rec.executionState) delete rec.executionState;
    out.set(rec.id || s.id, rec);
  }
  // Workers this process launched that the server no longer lists (stopped, failed and deleted).
  if (includeGone) {
    for (const w of local.values()) {
      if (w.tag.masterId === ctx.masterId && !out.has(w.kernelId)) out.set(w.kernelId, { ...record(w), status: w.tag.status === "failed" ? "failed" : "stopped" });
    }
  }
  return [...out.values()].sort((a, b) => a.index - b.index);
}

/**
 * Every live worker (one whose session exists) sharing this dashboard's master, in launch order;
 * callable from the master or from a worker (through its `SENSE_MASTER_ID`). Stopped workers and
 * workers deleted after their kernel restarted are not listed (the launching process still
 * knows their final records: `awaitWorkers`, `stopWorkers` and `workerOutput` accept their ids).
 * @throws RestError when the server cannot be asked.
 */
export async function listWorkers(options: { context?: WorkerContextInput } = {}): Promise<WorkerRecord[]> {
  return clusterRecords(resolveContext(options.context), false);
}

/**
 * The master's record: its kernel (for a kernel master) or this plain Node process.
 * @throws RestError when the server cannot be asked.
 */
export async function getMaster(options: { context?: WorkerContextInput } = {}): Promise<WorkerRecord> {
  const ctx = resolveContext(options.context);
  const sessions = await ctx.rest.listSessions();
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

async function stopOne(w: LocalWorker): Promise<void> {
  if (w.tag.status === "stopped") return;
  w.stopping = true;
  try {
    await w.rest.deleteSession(w.sessionId);
  } catch (e) {
    if (isRestError(e) && e.code === "unreachable") {
      // The server is gone (its kernels with it, or the keeper kills them): a websocket left
      // reconnecting to nothing would keep a plain Node master alive forever.
      w.output.close();
      w.conn?.dispose();
    }
    if (!isRestError(e) || e.code !== "not_found") throw e;
  }
  w.output.close();
  await setStatus(w, "stopped");
  retire(w);
}

type WorkerRef = string | Pick<WorkerRecord, "id"> | readonly (string | Pick<WorkerRecord, "id">)[];

function flattenRefs(refs: readonly WorkerRef[]): string[] {
  const ids: string[] = [];
  for (const r of refs) {
    if (Array.isArray(r)) ids.push(...flattenRefs(r as readonly WorkerRef[]));
    else if (typeof r === "string") ids.push(r);
    else if (r && typeof r === "object" && typeof (r as { id?: unknown }).id === "string") ids.push((r as { id: string }).id);
    else throw new UsageError(`not a worker id or record: ${JSON.stringify(r)}`, { code: "bad_option" });
  }
  return ids;
}

/** Matches refs (kernel id, session id or name like `w2`) against records; unknown ones → error, nothing done. */
function pick(records: WorkerRecord[], ids: string[]): WorkerRecord[] {
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

/**
 * Stops workers: `stopWorkers()` stops every worker of this cluster; `stopWorkers(id, ...)`,
 * `stopWorkers(record)` and `stopWorkers([ids])` stop those. Idempotent (stopping a stopped worker
 * is fine). Resolves with the records, status `stopped`, when their kernels are shut down.
 * @throws WorkerError `unknown_worker` naming the ids not in this cluster; then NOTHING is stopped.
 *   RestError when the server fails.
 */
export async function stopWorkers(...refs: (WorkerRef | { context?: WorkerContextInput })[]): Promise<WorkerRecord[]> {
  let contextInput: WorkerContextInput | undefined;
  const last = refs[refs.length - 1];
  if (last && typeof last === "object" && !Array.isArray(last) && !("id" in last)) {
    contextInput = (last as { context?: WorkerContextInput }).context;
    refs = refs.slice(0, -1);
  }
  const ctx = resolveContext(contextInput);
  const ids = flattenRefs(refs as WorkerRef[]);
  const records = await clusterRecords(ctx, ids.length > 0);
  const targets = ids.length ? pick(records, ids) : records;
  const stopped = await Promise.all(
    targets.map(async (r) => {
      const w = local.get(r.id);
      if (w) {
        await stopOne(w);
        return record(w);
      }
      if (r.status !== "stopped") {
        try {
          await ctx.rest.deleteSession(r.sessionId);
        } catch (e) {
          if (!isRestError(e) || e.code !== "not_found") throw e;
        }
      }
      const { executionState: _e, ...rest } = r;
      return { ...rest, status: "stopped" as const };
    }),
  );
  return stopped;
}

/** Options of {@link awaitWorkers}. */
export interface AwaitOptions {
  /** Wait until the startup code finished (`idle` or `failed`), not just until it runs. Default false. */
  waitForCompletion?: boolean;
  /** Give up after this many seconds (default 600); pending workers then come back in `failures` with reason `timeout`. */
  timeoutSeconds?: number;
  context?: WorkerContextInput;
  /** Poll interval for workers of other processes, ms (default 100). */
  pollMs?: number;
}

/** The result of {@link awaitWorkers}, shaped as Cloudera ML's `await_workers`. */
export interface AwaitResult {
  /** Workers that reached the state waited for. */
  workers: WorkerRecord[];
  /** Workers that failed, were stopped, vanished or timed out; `reason` says which. */
  failures: WorkerRecord[];
}

/**
 * Waits for workers to be `running` (or, with `waitForCompletion`, for their startup code to end).
 * `idsOrWorkers` takes ids, names, records, or nothing/empty (every worker of the cluster).
 * Never throws on timeout: pending workers are returned in `failures` with `reason: "timeout"`.
 * @throws WorkerError `unknown_worker` for ids not in the cluster; UsageError `bad_option` for a bad timeout.
 */
export async function awaitWorkers(idsOrWorkers?: WorkerRef | null, options: AwaitOptions = {}): Promise<AwaitResult> {
  const timeoutMs = checkTimeoutSeconds("timeoutSeconds", options.timeoutSeconds ?? 600, { allowZero: true });
  const poll = checkTimeoutSeconds("pollMs", (options.pollMs ?? 100) / 1000);
  const ctx = resolveContext(options.context);
  const ids = idsOrWorkers == null ? [] : flattenRefs([idsOrWorkers]);
  let records = await clusterRecords(ctx, true);
  const wanted = (ids.length ? pick(records, ids) : await clusterRecords(ctx, false)).map((r) => r.id);
  const reached = (s: WorkerStatus) => (options.waitForCompletion ? s === "idle" : s === "running" || s === "idle");
  const final = (s: WorkerStatus) => reached(s) || s === "failed" || s === "stopped";
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const byId = new Map(records.map((r) => [r.id, r]));
    const current = wanted.map((id) => byId.get(id));
    const done = current.every((r) => !r || final(r.status));
    if (done || Date.now() >= deadline) {
      const result: AwaitResult = { workers: [], failures: [] };
      wanted.forEach((id, i) => {
        const r = current[i];
        if (!r) result.failures.push({ ...(records.find((x) => x.id === id) ?? { id, name: id, engine: "", size: "small", masterId: ctx.masterId, startedAt: "", sessionId: "", path: "", index: 0 }), status: "stopped", reason: "gone" });
        else if (reached(r.status)) result.workers.push(r);
        else if (final(r.status)) result.failures.push({ ...r, reason: r.reason ?? r.status });
        else result.failures.push({ ...r, reason: "timeout" });
      });
      return result;
    }
    // Local workers change state on websocket events; a short poll covers both them and others'.
    await new Promise((r) => setTimeout(r, Math.min(poll, Math.max(0, deadline - Date.now()))));
    records = await clusterRecords(ctx, true);
  }
}

function localWorker(ref: string | Pick<WorkerRecord, "id">): LocalWorker {
  const id = typeof ref === "string" ? ref : ref.id;
  const w = local.get(id) ?? [...local.values()].find((x) => x.sessionId === id || x.name === id);
  if (!w) throw new WorkerError("unknown_worker", `worker ${JSON.stringify(id)} was not launched by this process, so its output is not here`, { unknown: [id] });
  return w;
}

/**
 * What a worker launched by this process has written so far (stdout, stderr, tracebacks), as text:
 * all of it, or the last `SENSE_WORKER_OUTPUT_MIB` (4 MiB by default), then starting with a line
 * `[Sense: output truncated: the first N MiB were dropped; ...]`.
 * @throws WorkerError `unknown_worker` for a worker this process did not launch.
 */
export function workerOutput(ref: string | Pick<WorkerRecord, "id">): string {
  return localWorker(ref).output.text();
}

/**
 * The structured output of a worker launched by this process (streams, displays, errors, in order).
 * @throws WorkerError `unknown_worker` for a worker this process did not launch.
 */
export function workerOutputItems(ref: string | Pick<WorkerRecord, "id">): WorkerOutputItem[] {
  return localWorker(ref).output.list();
}

