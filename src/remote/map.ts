/**
 * `map(fn, items)`: a function over items on JavaScript/TypeScript workers, results in input
 * order. The function's source is shipped once per worker; items and results travel as v8
 * structured data in chunks; each worker takes the next chunk when it finishes one (two in flight
 * per worker, so a worker never waits for a round trip between chunks). Progress shows live in the
 * calling cell. Chunk requests are silent: their answers come in the shell reply, so no iopub
 * traffic counts against the server's rate limits.
 *
 * A worker lost mid-map (its kernel died, was restarted or stopped) gives its chunks back to the
 * queue and the remaining workers run them: at-least-once, so an item may run twice. The chunk a
 * lost worker was known to be running is a suspect; one that keeps taking workers is a poison
 * chunk (see {@link MapOptions.retries}). A killed kernel's last messages die with it (a reply
 * still in its socket's queue), so a worker lost with two chunks unanswered may have been running
 * either: both are in doubt, and run again alone, where a loss is certain.
 */
import { createHash } from "node:crypto";
import * as acorn from "acorn";
import { liveDisplay, type LiveDisplay } from "../display/live";
import { captureSink } from "../display/sink";
import { renderMapProgress } from "../display/tables";
import { RemoteError, shown, UsageError, type RemoteFailure } from "../errors";
import { MAX_MESSAGE_CONTENT_BYTES } from "../protocol/limits";
import { checkOptions, failureOf, targetsOf, type RemoteOptions } from "./execute";
import { watchInterrupts } from "./interrupt";
import { runRequest, type RequestOutcome } from "../workers/request";
import { JS_TAKE_INSTALLED, jsAwaitRuntime, jsRuntimeCall, readReply, wireArg } from "./runtime";
import type { Target } from "../workers/targets";
import { fromWire, toWire } from "./values";
import { bigChunk } from "./transfer";
import { runRemote } from "./answer";
import { defaultCluster } from "../workers/api";

/** Options of {@link map}. */
export interface MapOptions extends RemoteOptions {
  /** Items per chunk (default: enough for about 8 chunks per worker). */
  chunkSize?: number;
  /** Show live progress in the calling cell (default true). */
  progress?: boolean;
  /**
   * How many times a chunk whose worker was lost while running it is run again on another worker
   * (default 2). Before its last run it is split into single items, so an item that keeps killing
   * its workers (a poison item) is named when the map fails. Chunks a lost worker only held
   * (queued behind the running one) go back to the queue without counting. When which of its
   * chunks a lost worker ran is not known (the reply of the older one may have died with its
   * kernel), neither counts yet: each runs again alone on a worker, and the one that then takes
   * that worker is charged with the earlier loss too.
   */
  retries?: number;
}

/** Default of {@link MapOptions.retries}. */
export const DEFAULT_MAP_RETRIES = 2;

/** A chunk's serialized items stay under this (base64), far below one websocket message. */
const CHUNK_BYTES = Math.min(4 * 1024 * 1024, MAX_MESSAGE_CONTENT_BYTES / 2);
const IN_FLIGHT = 2;
const PROGRESS_MS = 250;

interface Chunk {
  start: number;
  count: number;
  /** The items, base64 v8 data; empty for an item bigger than a message (`big`). */
  data: string;
  /** Runs of this chunk (or the chunk it was split from) whose worker was lost while running it. */
  losses?: number;
  /** The workers those runs took, by name. */
  took?: string[];
  /**
   * Workers lost while this chunk or another of theirs ran, which one unknown (its reply may have
   * died with the kernel): charged to this chunk (as `losses` and `took`) if it takes a worker again.
   */
  doubt?: string[];
  /** One item too big for a message: it goes over the data channel (bigItems.ts). */
  big?: boolean;
}

/**
 * The function's source as an expression the workers can evaluate.
 * @throws UsageError `bad_option` for something that is not a function written in source (a native or bound function, a method shorthand).
 */
export function functionSource(fn: unknown): string {
  if (typeof fn !== "function") throw new UsageError("map: fn must be a function", { code: "bad_option" });
  const src = Function.prototype.toString.call(fn);
  try {
    const node = acorn.parseExpressionAt(src, 0, { ecmaVersion: "latest" });
    if (node.end === src.length && /Function|Arrow|Class/.test(node.type)) return src;
  } catch {
    /* reported below */
  }
  throw new UsageError(
    `map: fn must be a self-contained function written as a function or arrow expression (its source is shipped to the workers); got ${JSON.stringify(src.slice(0, 80))}`,
    { code: "bad_option" },
  );
}

/** Serializes items into chunks of at most `size` items and {@link CHUNK_BYTES}. @throws UsageError `bad_option` / `too_large`. */
function makeChunks(items: readonly unknown[], size: number): Chunk[] {
  const out: Chunk[] = [];
  const add = (start: number, count: number): void => {
    let data: string;
    try {
      data = toWire(items.slice(start, start + count), "map: items");
    } catch (e) {
      if (count === 1) throw new UsageError(`map: item ${start} cannot be sent to a worker: ${(e as Error).message.replace(/^map: items cannot be sent to a worker: /, "")}`, { code: "bad_option" });
      const half = Math.ceil(count / 2);
      add(start, half);
      add(start + half, count - half);
      return;
    }
    if (data.length > CHUNK_BYTES) {
      if (count === 1) {
        out.push({ start, count, data: "", big: true });
        return;
      }
      const half = Math.ceil(count / 2);
      add(start, half);
      add(start + half, count - half);
      return;
    }
    out.push({ start, count, data });
  };
  for (let s = 0; s < items.length; s += size) add(s, Math.min(size, items.length - s));
  return out;
}

/** Items and results of one chunk as the worker runtime returns them. */
interface ChunkAnswer {
  results: unknown[];
  error?: { index: number; ename: string; evalue: string; traceback: string[] };
}

/** A ReferenceError inside fn is most often a closure that did not travel: say so. */
function explain(e: { ename: string; evalue: string }): string {
  if (e.ename === "ReferenceError" && /is not defined/.test(e.evalue)) {
    return `${e.evalue} on the worker (map ships fn's source only: closures do not travel; pass the value as an item, push() it, or require() it inside fn)`;
  }
  return e.evalue;
}

/** Whether a request ended because its worker was lost (not because the code failed). */
function lostOutcome(t: Target, o: RequestOutcome): boolean {
  // A worker being stopped answers what it ran with an interrupt (its kernel shuts down): a loss too.
  return o.status === "lost" || (o.status !== "ok" && t.worker.leaving);
}

/** Why `t` was lost, as its record says (or what the request saw). */
function lossReason(t: Target, o?: RequestOutcome): string {
  if (t.worker.lossReason) return t.worker.lossReason;
  if (t.worker.leaving) return "it was stopped (stopWorkers)";
  return t.worker.record().reason ?? o?.error?.evalue ?? `its status is ${t.worker.status}`;
}

/**
 * Whether `c` must run with nothing else sent to its worker: a chunk suspected or in doubt, so a
 * loss while it runs is known to be its (no reply of an earlier chunk can have died with the kernel).
 */
function alone(c: Chunk): boolean {
  return (c.losses ?? 0) > 0 || (c.doubt?.length ?? 0) > 0;
}

/** `items 3–7` or `item 3`. */
function itemsText(c: Chunk): string {
  return c.count === 1 ? `item ${c.start}` : `items ${c.start}–${c.start + c.count - 1}`;
}

/**
 * Calls `fn(item, index)` for every item on the target workers (JavaScript/TypeScript only) and
 * resolves with the results in input order. `fn` must be self-contained: its source is shipped, so
 * it may `require` (or `import()`) packages installed in the project, but closures do not travel.
 * Items and results are structured data (v8 serialization: Map, Set, Date, BigInt, typed arrays,
 * Buffer); a promise returned by `fn` is awaited on the worker.
 *
 * A worker lost meanwhile gives its chunks back to the others (at-least-once: an item may run
 * twice, so `fn` should be free of side effects or idempotent); see {@link MapOptions.retries}.
 *
 * @throws UsageError `bad_option` (fn, items or options), `unsupported_worker` (a Python target),
 *   `too_large` (an item bigger than a message may be); WorkerError `unknown_worker` — nothing is
 *   sent in these cases. RemoteError `remote_error` when an item threw: its `failures` name the
 *   item's index, the worker and the error; `results` holds the results computed so far. The same
 *   RemoteError (failure `WorkerLost`) when a poison item took `retries + 1` workers (its index and
 *   the workers named) or when no worker is left (how many items finished said).
 */
export async function map<T, R>(fn: (item: T, index: number) => R | Promise<R>, items: Iterable<T> | ArrayLike<T>, options: MapOptions = {}): Promise<Awaited<R>[]> {
  const sink = options.sink ?? captureSink();
  checkOptions(options, ["chunkSize", "progress", "retries"], "map");
  const src = functionSource(fn);
  if (items === null || typeof items !== "object") throw new UsageError("map: items must be an array or an iterable", { code: "bad_option" });
  const list = Array.from(items as Iterable<T>);
  const { chunkSize } = options;
  if (chunkSize !== undefined && (!Number.isInteger(chunkSize) || chunkSize < 1)) throw new UsageError(`map: chunkSize must be a positive integer, not ${shown(chunkSize)}`, { code: "bad_option" });
  const retries = options.retries ?? DEFAULT_MAP_RETRIES;
  if (!Number.isInteger(retries) || retries < 0 || retries > 100) throw new UsageError(`map: retries must be an integer from 0 to 100, not ${shown(options.retries)}`, { code: "bad_option" });
  const targets = await targetsOf(options);
  const py = targets.find((t) => t.language === "python");
  if (py) {
    throw new UsageError(`map runs JavaScript/TypeScript functions; worker ${py.name} is a Python worker (use execute there, or pick JavaScript/TypeScript targets)`, { code: "unsupported_worker" });
  }
  const results: unknown[] = new Array<unknown>(list.length);
  if (list.length === 0) return results as Awaited<R>[];
  const size = chunkSize ?? Math.max(1, Math.ceil(list.length / (targets.length * 8)));
  const queue = makeChunks(list, size);
  // Hex, and the source itself travels as v8 data: nothing of the caller's is pasted into code.
  const id = createHash("sha256").update(src).digest("hex").slice(0, 16);
  const srcWire = toWire(src, "map: fn's source");

  const started = performance.now();
  const perWorker = new Map(targets.map((t) => [t.id, 0]));
  let done = 0;
  /** Workers still taking chunks, by id; a lost one leaves with its reason kept in `lost`. */
  const working = new Set(targets.map((t) => t.id));
  const lost = new Map<string, string>();
  let reruns = 0;
  const live: LiveDisplay | undefined = options.progress === false ? undefined : liveDisplay(sink, progressBundle("running"));
  let lastShown = performance.now();
  function progressBundle(state: "running" | "done" | "failed" | "interrupted") {
    return renderMapProgress({
      done,
      total: list.length,
      perWorker: targets.map((t) => ({ worker: t.name, done: perWorker.get(t.id) ?? 0, ...(lost.has(t.id) ? { lost: lost.get(t.id) } : {}) })),
      elapsedMs: performance.now() - started,
      state,
      reruns,
    });
  }
  const showProgress = (now = false) => {
    if (!live || (!now && performance.now() - lastShown < PROGRESS_MS)) return;
    lastShown = performance.now();
    live.update(progressBundle("running"));
  };
  const ticker = live ? setInterval(() => live.update(progressBundle("running")), 1_000) : undefined;
  ticker?.unref();

  const failures: RemoteFailure[] = [];
  const host = () => (options.cluster ?? defaultCluster()).projectIp(options.context);
  const watch = watchInterrupts(options.signal);
  const control = { sink, interrupted: watch.interrupted };
  const stop = () => failures.length > 0 || watch.fired;
  // Slots with nothing to take wait here until a chunk comes back, the map ends or fails.
  let wake: () => void = () => undefined;
  let woken = new Promise<void>((resolve) => (wake = resolve));
  const notify = () => {
    const w = wake;
    woken = new Promise<void>((resolve) => (wake = resolve));
    w();
  };
  const changed = () => Promise.race([woken, watch.interrupted]);
  const finished = () => done >= list.length;

  // Chunks sent to each worker and not yet answered, oldest first.
  const inFlight = new Map<string, Chunk[]>(targets.map((t) => [t.id, []]));
  /**
   * What each lost worker is blamed for, fixed at the first loss seen: the chunk it was known to
   * run (`sure`), or the chunks it may have been running (`doubtful`).
   */
  const blame = new Map<string, { sure?: Chunk; doubtful: Chunk[] }>();
  /** `answered`: a chunk whose answer came as the loss was seen (cut short by it, not known to have caused it). */
  const workerLost = (t: Target, o?: RequestOutcome, answered?: Chunk): void => {
    if (!working.has(t.id)) return;
    working.delete(t.id);
    lost.set(t.id, lossReason(t, o));
    // A worker stopped on purpose blames no chunk. One whose kernel died was running the oldest
    // chunk not answered, unless that one's reply died with the kernel (a SIGKILL leaves what is
    // still in its sockets' queues unsent): then it ran the next. With one chunk unanswered that
    // one is sure; with more, all of them are in doubt.
    const stopped = t.worker.leaving && !t.worker.lossReason;
    const open = [...(answered ? [answered] : []), ...(inFlight.get(t.id) ?? [])];
    blame.set(t.id, stopped ? { doubtful: [] } : open.length === 1 && !answered ? { sure: open[0], doubtful: [] } : { doubtful: open });
    showProgress(true);
    notify();
  };
  /** After a loss was handled (its chunk given back, or found poison): no worker left fails the map. */
  const noneLeft = (t: Target): void => {
    if (working.size > 0 || finished() || stop()) return;
    const names = targets.map((x) => x.name).join(", ");
    failures.push({
      worker: t.name,
      id: t.id,
      ename: "WorkerLost",
      evalue: `every worker was lost (${names}; the last, ${t.name}: ${lost.get(t.id)}); ${done} of ${list.length} items finished, their results are in this error's results`,
      traceback: [],
    });
    notify();
  };
  /** Puts back a chunk whose worker was lost: counting the loss when it was the one running, in doubt when it may have been. */
  const giveBack = (t: Target, chunk: Chunk): void => {
    const b = blame.get(t.id);
    if (b?.sure !== chunk) {
      reruns++;
      queue.unshift(b?.doubtful.includes(chunk) ? { ...chunk, doubt: [...(chunk.doubt ?? []), t.name] } : chunk);
      notify();
      return;
    }
    // It took this worker for sure: the losses it was in doubt for were its too.
    const doubt = chunk.doubt ?? [];
    const losses = (chunk.losses ?? 0) + doubt.length + 1;
    const took = [...(chunk.took ?? []), ...doubt, t.name];
    if (losses > retries) {
      failures.push({
        worker: t.name,
        id: t.id,
        ...(chunk.count === 1 ? { index: chunk.start } : {}),
        ename: "WorkerLost",
        evalue: `${itemsText(chunk)} took ${took.length} worker${took.length === 1 ? "" : "s"} (${took.join(", ")}): each was lost while running it (the last: ${lost.get(t.id) ?? "lost"}); it was run ${losses} times (retries: ${retries}); ${done} of ${list.length} items finished`,
        traceback: [],
      });
      notify();
      return;
    }
    reruns++;
    // Before its last run a chunk goes one item at a time: a poison item is then named, not its chunk.
    const parts = losses === retries && chunk.count > 1 ? Array.from({ length: chunk.count }, (_, k) => ({ start: chunk.start + k, count: 1, data: toWire(list.slice(chunk.start + k, chunk.start + k + 1), "map: items") })) : [chunk];
    queue.unshift(...parts.map((c) => ({ ...c, losses, took, doubt: undefined })));
    notify();
  };

  /**
   * The next chunk for a worker whose unanswered chunks are `mine`: a chunk to run alone only when
   * it has none, and nothing behind one; otherwise the first that may share.
   */
  const take = (mine: Chunk[]): Chunk | undefined => {
    if (mine.some(alone)) return undefined;
    const i = mine.length === 0 ? 0 : queue.findIndex((c) => !alone(c));
    return i < 0 ? undefined : queue.splice(i, 1)[0];
  };

  const defs = targets.map((t) =>
    runRequest(t.worker, { code: jsRuntimeCall(`def("${id}", ${wireArg(srcWire)})`, t.language === "typescript"), silent: true, storeHistory: false, stopOnError: true, what: "map's function", precompiled: t.precompiled }, control),
  );
  const slot = async (t: Target, def: ReturnType<typeof runRequest>, prefetch: boolean): Promise<void> => {
    const mine = inFlight.get(t.id)!;
    for (;;) {
      if (stop() || finished() || !working.has(t.id)) return;
      if (t.worker.ended) {
        workerLost(t);
        noneLeft(t);
        return;
      }
      // A prefetched chunk waits behind the worker's running one: near the end, where some worker
      // would sit idle meanwhile, leave the last chunks to whichever worker frees up first.
      const chunk = prefetch && queue.length < working.size ? undefined : take(mine);
      if (!chunk) {
        await changed();
        continue;
      }
      // In the worker's list before any await: the other slot must see it (a chunk to run alone).
      mine.push(chunk);
      let big: Awaited<ReturnType<typeof bigChunk>> | undefined;
      let o: RequestOutcome;
      try {
        big = chunk.big ? await bigChunk(host(), t, id, list[chunk.start], chunk.start, watch.interrupted) : undefined;
        const call = big ? big.call : jsAwaitRuntime(`run("${id}", ${wireArg(chunk.data)}, ${chunk.start})`);
        o = await runRemote(t, { code: call, silent: true, storeHistory: false, stopOnError: false, reply: JS_TAKE_INSTALLED, what: `map chunk at item ${chunk.start}`, precompiled: t.precompiled }, control).finally(() => big?.close());
      } catch (e) {
        mine.splice(mine.indexOf(chunk), 1);
        queue.unshift(chunk);
        throw e;
      }
      if (lostOutcome(t, o)) {
        workerLost(t, o);
        mine.splice(mine.indexOf(chunk), 1);
        giveBack(t, chunk);
        noneLeft(t);
        return;
      }
      mine.splice(mine.indexOf(chunk), 1);
      // The worker's other slot may wait for this one to end: it sends nothing beside a chunk to run
      // alone, and takes none to run alone beside this one (a chunk that waits in the queue for a
      // worker with nothing in flight; this slot itself, when it prefetches, may not take it next).
      // Chunks to run alone exist only once a worker was lost: until then nothing waits on this.
      if (alone(chunk) || blame.size > 0) notify();
      const answer = big && o.status === "ok" ? big.answer(o.answer) : readReply(o.answer);
      if (o.status !== "ok" || o.answerError || !answer || !("b64" in answer)) {
        const d = await def;
        // A function that failed to load explains every chunk after it.
        const f = d.status !== "ok" ? failureOf(t, d) : failureOf(t, o.status !== "ok" ? o : { status: "error", error: o.answerError ?? { ename: "Error", evalue: "the worker gave no results (its kernel does not return user_expressions)", traceback: [] } });
        if (!failures.some((x) => x.id === f.id && x.index === undefined)) failures.push(f);
        notify();
        return;
      }
      const a = fromWire(answer.b64) as ChunkAnswer;
      if (a.error && t.worker.leaving) {
        // An item cut short by the worker's stop: the chunk runs again elsewhere, whole.
        workerLost(t, o, chunk);
        giveBack(t, chunk);
        noneLeft(t);
        return;
      }
      for (let k = 0; k < a.results.length; k++) results[chunk.start + k] = a.results[k];
      done += a.results.length;
      perWorker.set(t.id, (perWorker.get(t.id) ?? 0) + a.results.length);
      if (a.error) {
        failures.push({ worker: t.name, id: t.id, index: a.error.index, ename: a.error.ename, evalue: explain(a.error), traceback: a.error.traceback });
        notify();
        return;
      }
      if (finished()) notify();
      showProgress();
    }
  };
  try {
    await Promise.all(targets.flatMap((t, i) => Array.from({ length: IN_FLIGHT }, (_, k) => slot(t, defs[i], k > 0))));
    const defOutcomes = await Promise.all(defs);
    defOutcomes.forEach((d, i) => {
      // A lost worker's function request says only that: its chunks ran elsewhere.
      if (d.status !== "ok" && !lost.has(targets[i].id) && !lostOutcome(targets[i], d) && !failures.some((f) => f.id === targets[i].id)) failures.push(failureOf(targets[i], d));
    });
  } finally {
    watch.dispose();
    if (ticker) clearInterval(ticker);
  }
  live?.update(progressBundle(failures.length ? "failed" : watch.fired ? "interrupted" : "done"));
  if (failures.length || watch.fired) {
    const all = failures.length ? failures : [{ worker: targets[0].name, id: targets[0].id, ename: "KeyboardInterrupt", evalue: "map interrupted", traceback: [] }];
    all.sort((a, b) => (a.index ?? -1) - (b.index ?? -1));
    throw new RemoteError("map", all, results);
  }
  return results as Awaited<R>[];
}
