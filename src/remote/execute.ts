/**
 * Running code on workers: `execute` (the last expression's value back as data, output live in
 * the calling cell, failures as one {@link RemoteError}), `push` and `pull` of named values.
 * One request per target, sent concurrently; results always in target order.
 */
import { z } from "zod";
import { captureSink, type OutputSink } from "../display/sink";
import { displayableInDeno } from "../display/deno-display";
import { RemoteError, shown, UsageError, type RemoteFailure } from "../errors";
import { prepareRemoteCode, type RemoteCode } from "../transpile";
import type { WorkerContextInput } from "../jupyter/context-input";
import { checkOptionKeys } from "../util/check-options";
import { checkWireSize } from "../protocol/limits";
import { watchInterrupts } from "./interrupt";
import type { RequestControl, RequestOutcome, RequestSpec, RequestStatus } from "../workers/request";
import { runRemote } from "./answer";
import { checkNames, checkSettable } from "./names";
import { JS_LAST_VALUE, JS_LAST_VALUE_INSTALLED, jsRuntimeCall, PY_LAST_VALUE, pyPush, readReply, STAGE_PIECE_BYTES, wireArg } from "./runtime";
import { defaultCluster } from "../workers/api";
import { Cluster } from "../workers/cluster";
import { resolveTargets, type Target, type Targets } from "../workers/targets";
import { fromWire, toJsonWire, toWire } from "./values";
import { randomBytes } from "node:crypto";
import { channelAnswer, hasNumpy, noNumpy, numpySpec, offer, pieceCount, pulledValues, pullSpec, PushParts, recvSpec, showProgress, stageSpec, stagedBytes, stagedProgress, tell } from "./transfer";
import { inlineBinary } from "./parts";
import type { Destination } from "./channel";
import type { Worker } from "../workers/worker";

/** How one worker's part of a remote call ended. */
export const ExecuteStatus = z.enum(["ok", "error", "timeout", "aborted", "lost"]);
export type ExecuteStatus = z.infer<typeof ExecuteStatus> & RequestStatus;

/** One worker's result of {@link execute}. */
export interface ExecuteResult {
  /** The worker's name (`w1`). */
  worker: string;
  /** The worker's kernel id. */
  id: string;
  status: ExecuteStatus;
  /**
   * The last expression's value: as data when JSON carries it exactly (from JavaScript,
   * TypeScript and Python workers alike), else its `text/plain`; `undefined` when there is none.
   */
  value: unknown;
  /** The last expression's full MIME bundle (`{}` when there is none). */
  data: Record<string, unknown>;
  stdout: string;
  stderr: string;
  error?: { ename: string; evalue: string; traceback: string[] };
  /** Send → reply, ms. */
  durationMs: number;
  /** The worker's execution count for this code, when it keeps one. */
  executionCount?: number;
}

/** Options shared by every remote call. */
export interface RemoteOptions {
  /** Workers to run on: ids, names (`w2`), records or handles; default every running or idle worker of this master. */
  targets?: Targets;
  /** Where worker output is shown, labelled; default the calling cell (or the terminal). */
  sink?: OutputSink;
  /** Aborting it interrupts the workers still running (as interrupting the master's kernel does). */
  signal?: AbortSignal;
  context?: WorkerContextInput;
  /** The cluster whose workers run the call; default the process's ({@link defaultCluster}). */
  cluster?: Cluster;
}

/** Options of {@link push} and {@link pull}. */
export interface TransferOptions extends RemoteOptions {
  /**
   * Called as a transfer over the data channel moves bytes (values bigger than a message): the
   * worker's name, bytes done and total. A progress display appears in the cell after ~1 s anyway.
   */
  onProgress?: (worker: string, done: number, total: number) => void;
}

/** Options of {@link execute}. */
export interface ExecuteOptions extends RemoteOptions {
  /** Interrupt workers still running after this many seconds; their status is then `timeout` and their state is kept. */
  timeoutSeconds?: number;
  /** Reject with {@link RemoteError} when any worker failed (default); `false` resolves with the results instead. */
  raiseOnError?: boolean;
  /** Called with each worker's result as it arrives (before the call settles). */
  onResult?: (result: ExecuteResult) => void;
}

const REMOTE_KEYS = ["targets", "sink", "signal", "context", "cluster"];
const MAX_TIMEOUT_S = 2_000_000; // under setTimeout's 2^31 ms

/** Rejects unknown option names (the remote calls' keys are known to all) and a bad `signal`. @throws UsageError `bad_option`. */
export function checkOptions(options: unknown, known: readonly string[], call: string): void {
  checkOptionKeys(options, [...known, ...REMOTE_KEYS], call);
  const o = options as RemoteOptions;
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) throw new UsageError(`${call}: signal must be an AbortSignal`, { code: "bad_option" });
  if (o.cluster !== undefined && !(o.cluster instanceof Cluster)) throw new UsageError(`${call}: cluster must be a Cluster`, { code: "bad_option" });
}

/** The workers a remote call runs on, among its cluster's (the process default unless given). */
export function targetsOf(options: RemoteOptions): Promise<Target[]> {
  return resolveTargets(options.cluster ?? defaultCluster(), options.targets, options.context);
}

/** The value of a worker's answer: data when exact, else the text it came with. */
function valueOf(o: RequestOutcome): unknown {
  // No answer (code without a value): not parsed. A failed parse builds zod's issues, ~1 ms each
  // while cold: 64 workers' results arriving together blocked the master's loop for ~90 ms.
  const a = o.answer === undefined ? undefined : readReply(o.answer);
  if (a && "value" in a) return a.value;
  if (a && "inexact" in a && a.text !== undefined) return a.text;
  const plain = o.data["text/plain"];
  return typeof plain === "string" ? plain : undefined;
}

/** A failure entry for a target whose request did not end `ok`. */
export function failureOf(t: Target, o: Pick<RequestOutcome, "error" | "status">): RemoteFailure {
  const e = o.error ?? { ename: o.status === "aborted" ? "Aborted" : "Error", evalue: o.status, traceback: [] };
  return { worker: t.name, id: t.id, ename: e.ename, evalue: e.evalue, traceback: e.traceback };
}

/**
 * JavaScript workers known to have the remote runtime installed (a value came back through it):
 * their requests carry its short call ({@link JS_LAST_VALUE_INSTALLED}), not its ~16 KB source,
 * which every one of 64 workers' requests carried, for the master to encode, the server to
 * forward and each kernel to parse. A worker object is one kernel process: a restarted one is new.
 */
const withRuntime = new WeakSet<Worker>();

/** The request to send to `t` for code prepared once for all targets. */
function executeSpec(t: Target, code: string, prepared: () => RemoteCode): RequestSpec {
  const base = { silent: false, storeHistory: true, stopOnError: true, what: "the code" };
  if (t.language === "python") return { ...base, code, reply: PY_LAST_VALUE };
  const p = prepared();
  const reply = withRuntime.has(t.worker) ? JS_LAST_VALUE_INSTALLED : JS_LAST_VALUE;
  return { ...base, code: t.language === "typescript" ? p.ts : p.js, reply: p.hasValue ? reply : undefined, precompiled: t.precompiled };
}

/**
 * Runs `spec` (from {@link executeSpec}) on `t`, and notes whether its runtime is installed. A
 * worker whose runtime went after all (its code deleted it) answers the short call with an error
 * while its value is still kept: asked for again with the runtime's source, in a silent request.
 */
async function runExecute(t: Target, spec: RequestSpec, control: RequestControl, progress?: (done: number, total: number) => void): Promise<RequestOutcome> {
  const o = await runRemote(t, spec, control, progress);
  if (spec.reply === undefined || t.language === "python" || o.status !== "ok") return o;
  if (spec.reply === JS_LAST_VALUE_INSTALLED && !readReply(o.answer)) {
    withRuntime.delete(t.worker);
    const again = await runRemote(t, { code: "", silent: true, storeHistory: false, stopOnError: false, reply: JS_LAST_VALUE, what: "the value", precompiled: t.precompiled }, { ...control, sink: null }, progress);
    o.answer = again.answer;
    o.answerError = again.answerError;
    if (readReply(o.answer)) withRuntime.add(t.worker);
  } else if (spec.reply === JS_LAST_VALUE && readReply(o.answer)) {
    withRuntime.add(t.worker);
  }
  return o;
}

/**
 * Runs `code` on the target workers, concurrently, and resolves with one result per worker in
 * target order. For JavaScript/TypeScript workers the code is parsed (and TypeScript transpiled)
 * once here, so a syntax error fails before anything is sent; it is not type-checked (it may use
 * names that exist only on the workers). Python code goes as written. Output streams into the
 * calling cell, labelled `[w1]`; the last expression's value comes back as data.
 *
 * @throws UsageError `compile_error` (syntax), `bad_option` (options), `too_large` (bigger than a
 *   websocket message may be), `unsupported_worker`; WorkerError `unknown_worker` — nothing is sent
 *   in these cases. RemoteError `remote_error` when any worker failed, timed out or was lost (unless
 *   `raiseOnError: false`), with every result in `.results` and each failure in `.failures`.
 */
export async function execute(code: string, options: ExecuteOptions = {}): Promise<ExecuteResult[]> {
  // Captured before the first await: later the kernel's current cell may be another one.
  const sink = options.sink ?? captureSink();
  checkOptions(options, ["timeoutSeconds", "raiseOnError", "onResult"], "execute");
  if (typeof code !== "string") throw new UsageError("execute: code must be a string", { code: "bad_option" });
  const { timeoutSeconds, raiseOnError = true, onResult } = options;
  if (timeoutSeconds !== undefined && (typeof timeoutSeconds !== "number" || !(timeoutSeconds > 0) || timeoutSeconds > MAX_TIMEOUT_S)) {
    throw new UsageError(`execute: timeoutSeconds must be a number of seconds between 0 and ${MAX_TIMEOUT_S}, not ${shown(timeoutSeconds)}`, { code: "bad_option" });
  }
  if (onResult !== undefined && typeof onResult !== "function") throw new UsageError("execute: onResult must be a function", { code: "bad_option" });
  const targets = await targetsOf(options);
  let prepared: RemoteCode | undefined;
  const prepare = () => (prepared ??= prepareRemoteCode(code));
  const specs = targets.map((t) => executeSpec(t, code, prepare));
  for (const s of specs) checkWireSize("the code", { code: s.code });

  const watch = watchInterrupts(options.signal);
  // A value too big for one message comes in pieces (answer.ts): its bytes show as a transfer's.
  const progress = stagedProgress(sink, targets);
  let results: ExecuteResult[];
  try {
    results = await Promise.all(
      targets.map(async (t, i) => {
        const o = await runExecute(t, specs[i], { sink, timeoutMs: timeoutSeconds === undefined ? undefined : timeoutSeconds * 1000, interrupted: watch.interrupted }, progress.report(i));
        const r: ExecuteResult = {
          worker: t.name,
          id: t.id,
          status: o.status,
          value: o.status === "ok" ? valueOf(o) : undefined,
          data: o.data,
          stdout: o.stdout,
          stderr: o.stderr,
          ...(o.error && o.status !== "ok" ? { error: o.error } : {}),
          durationMs: o.durationMs,
          ...(o.executionCount !== undefined ? { executionCount: o.executionCount } : {}),
        };
        try {
          onResult?.(r);
        } catch {
          /* a broken callback must not lose the other results */
        }
        return r;
      }),
    );
  } finally {
    progress.stop();
    watch.dispose();
  }
  const failures = results.flatMap((r, i) => (r.status === "ok" ? [] : [failureOf(targets[i], r)]));
  if (failures.length && raiseOnError) throw new RemoteError("execute", failures, results, { of: results.length });
  return displayableInDeno(results);
}

/** Runs one internal request per target (no execution count, no execute_result); failures → RemoteError. */
async function onEach<T>(method: string, targets: Target[], spec: (t: Target) => RequestSpec, read: (t: Target, o: RequestOutcome) => T, options: RemoteOptions, sink: OutputSink, answered?: (i: number) => void): Promise<T[]> {
  const specs = targets.map(spec);
  for (const s of specs) checkWireSize(s.what, { code: s.code });
  const watch = watchInterrupts(options.signal);
  // An answer too big for one message comes in pieces (answer.ts): its bytes show as a transfer's.
  const progress = stagedProgress(sink, targets, (options as TransferOptions).onProgress);
  try {
    const outcomes = await Promise.all(
      targets.map(async (t, i) => {
        const o = await runRemote(t, specs[i], { sink, interrupted: watch.interrupted }, progress.report(i));
        answered?.(i);
        return o;
      }),
    );
    const failures: RemoteFailure[] = [];
    const values = outcomes.map((o, i) => {
      if (o.status !== "ok") failures.push(failureOf(targets[i], o));
      else if (o.answerError) failures.push(failureOf(targets[i], { status: "error", error: o.answerError }));
      else {
        try {
          return read(targets[i], o);
        } catch (e) {
          failures.push(failureOf(targets[i], { status: "error", error: { ename: (e as Error).name, evalue: (e as Error).message, traceback: [] } }));
        }
      }
      return undefined as T;
    });
    if (failures.length) throw new RemoteError(method, failures, values, { of: targets.length });
    return values;
  } finally {
    progress.stop();
    watch.dispose();
  }
}

/**
 * Sets globals on the target workers: `push({ a: 1, table })`. JavaScript/TypeScript workers get
 * structured copies (v8 serialization: Map, Set, Date, BigInt, typed arrays, Buffer); Python
 * workers get values JSON carries exactly. Values travel as data the worker decodes (base64),
 * never as code.
 * @throws UsageError `bad_option` for a name that is not an identifier, starts with `__` or is a
 *   global the target's runtime relies on (names.ts), or a value that cannot be sent (or whose
 *   reading threw); nothing is sent then. WorkerError `unknown_worker`; RemoteError when a worker
 *   failed to set it.
 */
export async function push(values: Record<string, unknown>, options: TransferOptions = {}): Promise<void> {
  const sink = options.sink ?? captureSink();
  checkOptions(options, ["onProgress"], "push");
  if (options.onProgress !== undefined && typeof options.onProgress !== "function") throw new UsageError("push: onProgress must be a function", { code: "bad_option" });
  if (values === null || typeof values !== "object" || Array.isArray(values)) throw new UsageError("push takes an object of name: value", { code: "bad_option" });
  let keys: string[];
  try {
    keys = Object.keys(values);
  } catch (e) {
    throw new UsageError(`push: its names cannot be listed: ${(e as Error)?.message ?? shown(e)}`, { code: "bad_option" });
  }
  const names = checkNames(keys, "push", { set: true });
  const targets = await targetsOf(options);
  await pushEach(() => values, names, targets, options, sink, "push");
}

/**
 * Sets globals `names` on each target to `valuesFor(target)` (the same object for a push, a
 * part each for a scatter): small values in one request each, big (or, for Python, binary) ones
 * over the data channel. Options and names are checked by the caller.
 * @throws as {@link push}; `call` names the public call in errors.
 */
export async function pushEach(valuesFor: (t: Target) => Readonly<Record<string, unknown>>, names: readonly string[], targets: Target[], options: TransferOptions, sink: OutputSink, call: string): Promise<void> {
  for (const t of targets) checkSettable(names, t.language, call, t.name);
  const shared = targets.every((t) => valuesFor(t) === valuesFor(targets[0]));
  const parts = new PushParts(valuesFor, names, call, shared);
  const big = targets.filter((t) => parts.channel(t));
  const small = targets.filter((t) => !parts.channel(t));
  const wires = new Map<string, string>();
  const spec = (t: Target): RequestSpec => {
    const base = { silent: true, storeHistory: false, stopOnError: false, what: "the pushed values" };
    const key = `${shared ? "" : t.id}:${t.language === "python" ? "py" : "js"}`;
    const values = valuesFor(t);
    if (t.language === "python") {
      const json = wires.get(key) ?? toJsonWire(values, `${call} to Python worker ${t.name}`);
      wires.set(key, json);
      return { ...base, code: "", reply: pyPush(json) };
    }
    const wire = wires.get(key) ?? pushWire(values, names);
    wires.set(key, wire);
    return { ...base, code: jsRuntimeCall(`push(${wireArg(wire)})`, t.language === "typescript"), precompiled: t.precompiled };
  };
  // Every spec is built (and checked) before anything is sent.
  small.forEach(spec);
  if (big.length) await pushOverChannel(parts, big, small, spec, options, sink, call);
  else await onEach(call, targets, spec, () => undefined, options, sink);
}

/**
 * A push whose values are big (or binary, for Python) to `big` targets: over the data channel,
 * else (a worker that cannot reach the master) in staged pieces; `small` targets get the usual
 * request (`spec`) at the same time. Every value is bound on a worker only once all of them arrived.
 */
async function pushOverChannel(parts: PushParts, big: Target[], small: Target[], spec: (t: Target) => RequestSpec, options: TransferOptions, sink: OutputSink, call: string): Promise<void> {
  for (const t of big) parts.for(t);
  const python = big.filter((t) => parts.needsNumpy(t));
  if (python.length) {
    const ok = await onEach(call, python, () => numpySpec(), (_t, o) => hasNumpy(o.answer), options, sink);
    const missing = python.filter((_t, i) => !ok[i]);
    if (missing.length) throw noNumpy(call, missing.map((t) => t.name));
  }
  const cluster = options.cluster ?? defaultCluster();
  // SENSE_DATA_CHANNEL=messages: every worker gets the staged pieces (workers that cannot reach the master).
  const direct = process.env.SENSE_DATA_CHANNEL !== "messages";
  const transfers = direct ? await offer(cluster.projectIp(options.context), big, (t) => parts.for(t), options.onProgress) : [];
  const watch = watchInterrupts(options.signal);
  void watch.interrupted.then(() => transfers.forEach((tr) => tr?.cancel(new Error("interrupted"))));
  const stop = showProgress(sink, big, transfers);
  const unreachable: Target[] = [];
  try {
    if (!direct) unreachable.push(...big);
    // one onEach (one interrupt watch) for the whole call: big targets' channel requests and small targets' messages
    const all = direct ? [...big, ...small] : small;
    if (all.length) {
      await onEach(call, all, (t) => (big.includes(t) ? recvSpec(t, transfers[big.indexOf(t)]) : spec(t)), (t, o) => (big.includes(t) && channelAnswer(o.answer) === "unreachable" ? unreachable.push(t) : undefined), options, sink);
    }
  } finally {
    stop();
    watch.dispose();
    for (const tr of transfers) tr?.cancel();
  }
  // The message fallback: the same bytes, in pieces under the websocket limit, bound by the last.
  if (unreachable.length) {
    const id = randomBytes(12).toString("base64");
    const count = Math.max(...unreachable.map((t) => pieceCount(parts.for(t))));
    // Progress as the channel's would show it: the stream's bytes (manifest and bodies) per worker.
    const sent = unreachable.map((t) => ({ progress: { done: 0, total: stagedBytes(parts.for(t)) } }));
    const stopStaged = showProgress(sink, unreachable, sent);
    try {
      for (let k = 0; k < count; k++) {
        const now = unreachable.filter((t) => k < pieceCount(parts.for(t)));
        await onEach(call, now, (t) => stageSpec(t, id, parts.for(t), k, pieceCount(parts.for(t))), () => undefined, options, sink);
        for (const t of now) {
          const p = sent[unreachable.indexOf(t)].progress;
          p.done = Math.min(p.total, (k + 1) * STAGE_PIECE_BYTES);
          tell(options.onProgress, t.name, p.done, p.total);
        }
      }
    } finally {
      stopStaged();
    }
  }
}

/** `values` for a JavaScript worker; when they cannot go, the error names the first that cannot. */
function pushWire(values: Record<string, unknown>, names: readonly string[]): string {
  try {
    return toWire(values, "push: a value");
  } catch (e) {
    for (const n of names) toWire({ [n]: values[n] }, `push: ${n}`);
    throw e;
  }
}

/**
 * Reads globals from the target workers: `pull("x")` → one value per worker, in target order;
 * `pull(["x", "y"])` → one `{ x, y }` per worker. Values come as structured data from
 * JavaScript/TypeScript workers (as their `util.inspect` text when v8 cannot clone them) and as
 * JSON-exact data from Python workers (else their `repr`).
 * @throws UsageError `bad_option` for a bad name; WorkerError `unknown_worker`; RemoteError when a
 *   worker has no such name (its ReferenceError/NameError is in `.failures`).
 */
export async function pull(names: string, options?: TransferOptions): Promise<unknown[]>;
export async function pull(names: readonly string[], options?: TransferOptions): Promise<Record<string, unknown>[]>;
export async function pull(names: string | readonly string[], options: TransferOptions = {}): Promise<unknown[] | Record<string, unknown>[]> {
  const sink = options.sink ?? captureSink();
  checkOptions(options, ["onProgress"], "pull");
  if (options.onProgress !== undefined && typeof options.onProgress !== "function") throw new UsageError("pull: onProgress must be a function", { code: "bad_option" });
  const single = typeof names === "string";
  const list = checkNames(single ? [names] : Array.isArray(names) ? names : [names], "pull");
  if (list.length === 0) throw new UsageError("pull: no names given", { code: "bad_option" });
  const targets = await targetsOf(options);
  const rows = await pullFrom(targets, list, options, sink);
  return single ? rows.map((r) => r[list[0]]) : rows;
}

/** Where a pull's channel parts go, per target (`gather`'s one output), and a call as each target answers. */
export interface PullInto {
  into: (i: number) => Destination | undefined;
  answered: (i: number) => void;
}

/**
 * Globals `list` from `targets` (checked by the caller), one row per target in order; big or
 * binary values over the data channel, into `dest`'s memory when given.
 * @throws as {@link pull}.
 */
export async function pullFrom(targets: Target[], list: readonly string[], options: TransferOptions, sink: OutputSink, dest?: PullInto): Promise<Record<string, unknown>[]> {
  // Big or binary values come over the data channel, offered to every worker (each decides).
  const direct = process.env.SENSE_DATA_CHANNEL !== "messages";
  const transfers = direct ? await offer((options.cluster ?? defaultCluster()).projectIp(options.context), targets, () => undefined, options.onProgress, dest?.into) : [];
  const spec = (t: Target): RequestSpec => pullSpec(t, list, transfers[targets.indexOf(t)]);
  const read = (t: Target, o: RequestOutcome): Record<string, unknown> => {
    const a = readReply(o.answer);
    const out: Record<string, unknown> = {};
    if (a && "channel" in a) {
      const got = pulledValues(t, transfers[targets.indexOf(t)]);
      for (const n of list) out[n] = got[n];
    } else if (a && "values" in a) {
      for (const n of list) {
        const p = a.values[n] as { value?: unknown; text?: string } | undefined;
        out[n] = p && "value" in p ? p.value : (inlineBinary(p)?.value ?? p?.text);
      }
    } else if (a && "b64" in a) {
      const got = fromWire(a.b64) as Record<string, { v?: unknown; text?: string }>;
      for (const n of list) out[n] = got[n] && "v" in got[n] ? got[n].v : got[n]?.text;
    } else {
      throw new Error(`worker ${t.name} gave no values (its kernel does not return user_expressions)`);
    }
    return out;
  };
  const watch = watchInterrupts(options.signal);
  void watch.interrupted.then(() => transfers.forEach((tr) => tr?.cancel(new Error("interrupted"))));
  const stop = showProgress(sink, targets, transfers);
  try {
    return await onEach("pull", targets, spec, read, options, sink, dest?.answered);
  } finally {
    stop();
    watch.dispose();
    for (const tr of transfers) tr?.cancel();
  }
}
