/**
 * `map(fn, items)`: a function over items on JavaScript/TypeScript workers, results in input
 * order. The function's source is shipped once per worker; items and results travel as v8
 * structured data in chunks; each worker takes the next chunk when it finishes one (two in flight
 * per worker, so a worker never waits for a round trip between chunks). Progress shows live in the
 * calling cell. Chunk requests are silent: their answers come in the shell reply, so no iopub
 * traffic counts against the server's rate limits.
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
import { runRequest } from "../workers/request";
import { JS_TAKE, jsAwaitRuntime, jsRuntimeCall, readReply, wireArg } from "./runtime";
import type { Target } from "../workers/targets";
import { fromWire, toWire } from "./values";
import { bigChunk } from "./transfer";
import { defaultCluster } from "../workers/api";

/** Options of {@link map}. */
export interface MapOptions extends RemoteOptions {
  /** Items per chunk (default: enough for about 8 chunks per worker). */
  chunkSize?: number;
  /** Show live progress in the calling cell (default true). */
  progress?: boolean;
}

/** A chunk's serialized items stay under this (base64), far below one websocket message. */
const CHUNK_BYTES = Math.min(4 * 1024 * 1024, MAX_MESSAGE_CONTENT_BYTES / 2);
const IN_FLIGHT = 2;
const PROGRESS_MS = 250;

interface Chunk {
  start: number;
  count: number;
  /** The items, base64 v8 data; empty for an item bigger than a message (`big`). */
  data: string;
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

/**
 * Calls `fn(item, index)` for every item on the target workers (JavaScript/TypeScript only) and
 * resolves with the results in input order. `fn` must be self-contained: its source is shipped, so
 * it may `require` (or `import()`) packages installed in the project, but closures do not travel.
 * Items and results are structured data (v8 serialization: Map, Set, Date, BigInt, typed arrays,
 * Buffer); a promise returned by `fn` is awaited on the worker.
 *
 * @throws UsageError `bad_option` (fn, items or options), `unsupported_worker` (a Python target),
 *   `too_large` (an item bigger than a message may be); WorkerError `unknown_worker` — nothing is
 *   sent in these cases. RemoteError `remote_error` when an item threw: its `failures` name the
 *   item's index, the worker and the error; `results` holds the results computed so far.
 */
export async function map<T, R>(fn: (item: T, index: number) => R | Promise<R>, items: Iterable<T> | ArrayLike<T>, options: MapOptions = {}): Promise<Awaited<R>[]> {
  const sink = options.sink ?? captureSink();
  checkOptions(options, ["chunkSize", "progress"], "map");
  const src = functionSource(fn);
  if (items === null || typeof items !== "object") throw new UsageError("map: items must be an array or an iterable", { code: "bad_option" });
  const list = Array.from(items as Iterable<T>);
  const { chunkSize } = options;
  if (chunkSize !== undefined && (!Number.isInteger(chunkSize) || chunkSize < 1)) throw new UsageError(`map: chunkSize must be a positive integer, not ${shown(chunkSize)}`, { code: "bad_option" });
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
  const live: LiveDisplay | undefined = options.progress === false ? undefined : liveDisplay(sink, progressBundle("running"));
  let lastShown = performance.now();
  function progressBundle(state: "running" | "done" | "failed" | "interrupted") {
    return renderMapProgress({ done, total: list.length, perWorker: targets.map((t) => ({ worker: t.name, done: perWorker.get(t.id) ?? 0 })), elapsedMs: performance.now() - started, state });
  }
  const showProgress = () => {
    if (!live || performance.now() - lastShown < PROGRESS_MS) return;
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

  const defs = targets.map((t) =>
    runRequest(t.worker, { code: jsRuntimeCall(`def("${id}", ${wireArg(srcWire)})`, t.language === "typescript"), silent: true, storeHistory: false, stopOnError: true, what: "map's function", precompiled: t.precompiled }, control),
  );
  const slot = async (t: Target, def: ReturnType<typeof runRequest>, prefetch: boolean): Promise<void> => {
    for (;;) {
      if (stop()) return;
      // A prefetched chunk waits behind the worker's running one: near the end, where some worker
      // would sit idle meanwhile, leave the last chunks to whichever worker frees up first.
      if (prefetch && queue.length < targets.length) return;
      const chunk = queue.shift();
      if (!chunk) return;
      const big = chunk.big ? await bigChunk(host(), t, id, list[chunk.start], chunk.start, watch.interrupted) : undefined;
      const call = big ? big.call : jsAwaitRuntime(`run("${id}", ${wireArg(chunk.data)}, ${chunk.start})`);
      const o = await runRequest(t.worker, { code: call, silent: true, storeHistory: false, stopOnError: false, reply: JS_TAKE, what: `map chunk at item ${chunk.start}`, precompiled: t.precompiled }, control).finally(() => big?.close());
      const answer = big && o.status === "ok" ? big.answer(o.answer) : readReply(o.answer);
      if (o.status !== "ok" || o.answerError || !answer || !("b64" in answer)) {
        const d = await def;
        // A function that failed to load explains every chunk after it.
        const f = d.status !== "ok" ? failureOf(t, d) : failureOf(t, o.status !== "ok" ? o : { status: "error", error: o.answerError ?? { ename: "Error", evalue: "the worker gave no results (its kernel does not return user_expressions)", traceback: [] } });
        if (!failures.some((x) => x.id === f.id && x.index === undefined)) failures.push(f);
        return;
      }
      const a = fromWire(answer.b64) as ChunkAnswer;
      for (let k = 0; k < a.results.length; k++) results[chunk.start + k] = a.results[k];
      done += a.results.length;
      perWorker.set(t.id, (perWorker.get(t.id) ?? 0) + a.results.length);
      if (a.error) {
        failures.push({ worker: t.name, id: t.id, index: a.error.index, ename: a.error.ename, evalue: explain(a.error), traceback: a.error.traceback });
        return;
      }
      showProgress();
    }
  };
  try {
    await Promise.all(targets.flatMap((t, i) => Array.from({ length: IN_FLIGHT }, (_, k) => slot(t, defs[i], k > 0))));
    const defOutcomes = await Promise.all(defs);
    defOutcomes.forEach((d, i) => {
      if (d.status !== "ok" && !failures.some((f) => f.id === targets[i].id)) failures.push(failureOf(targets[i], d));
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
