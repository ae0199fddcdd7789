/**
 * `scatter` and `gather` with ipyparallel's semantics: an array, typed array or Buffer split along
 * its first axis into contiguous, near-equal parts in target order (the first `n % k` workers get
 * one more item), and put back together into one value of the same kind. Each part goes as a
 * push to its worker, all in one call (typed arrays and Buffers as views of the value's own bytes:
 * no copies on the master).
 */
import { captureSink } from "../display/sink";
import { shown, UsageError } from "../errors";
import { typedArrayName, TYPED_ARRAYS, type AnyTypedArray } from "./channel";
import { checkOptions, pull, pushEach, targetsOf, type TransferOptions } from "./execute";
import { checkNames } from "./names";

/** What can be split: a dense array, a typed array or a Buffer. */
type Splittable = unknown[] | AnyTypedArray | Buffer;

function kindOf(v: unknown): "array" | "buffer" | "typed" | undefined {
  if (Array.isArray(v)) return "array";
  if (Buffer.isBuffer(v)) return "buffer";
  return typedArrayName(v) ? "typed" : undefined;
}

/** The bounds of part `p` of `k` over `n` items (ipyparallel's `Map.getPartition`). */
export function partition(n: number, p: number, k: number): [number, number] {
  const base = Math.floor(n / k);
  const extra = n % k;
  const low = p * base + Math.min(p, extra);
  return [low, low + base + (p < extra ? 1 : 0)];
}

/**
 * Splits `value` across the target workers and sets global `name` on each to its part, in target
 * order; with fewer items than workers the last ones get empty parts.
 * @throws UsageError `bad_option` for a bad name or a value that is not an array, typed array or
 *   Buffer (nothing is sent); WorkerError `unknown_worker`; RemoteError naming every worker that
 *   failed to set its part (the others keep theirs).
 */
export async function scatter(name: string, value: unknown, options: TransferOptions = {}): Promise<void> {
  // Captured before the first await: later the kernel's current cell may be another one.
  const sink = options.sink ?? captureSink();
  checkOptions(options, ["onProgress"], "scatter");
  const [n] = checkNames([name], "scatter", { set: true });
  const kind = kindOf(value);
  if (!kind) throw new UsageError(`scatter: ${n} must be an array, a typed array or a Buffer, not ${shown(value, 40)}`, { code: "bad_option" });
  const v = value as Splittable;
  const targets = await targetsOf(options);
  const parts = targets.map((_t, i) => {
    const [lo, hi] = partition(v.length, i, targets.length);
    return kind === "array" ? (v as unknown[]).slice(lo, hi) : (v as AnyTypedArray).subarray(lo, hi);
  });
  await pushEach((t) => ({ [n]: parts[targets.indexOf(t)] }), [n], targets, options, sink, "scatter");
}

/**
 * Reads global `name` from the target workers and puts the parts together in target order: arrays
 * (and Python lists) concatenated, typed arrays (and numpy arrays) into one typed array of their
 * class, Buffers (and Python bytes) into one Buffer.
 * @throws UsageError `bad_option` when the parts are not of one kind (naming the worker whose part
 *   differs); WorkerError `unknown_worker`; RemoteError when a worker has no such name.
 */
export async function gather(name: string, options: TransferOptions = {}): Promise<unknown> {
  checkOptions(options, ["onProgress"], "gather");
  const [n] = checkNames([name], "gather");
  const targets = await targetsOf(options);
  const parts = await pull(n, options);
  const kinds = parts.map(kindOf);
  const type = typedArrayName(parts[0]);
  const bad = parts.findIndex((p, i) => kinds[i] !== kinds[0] || !kinds[i] || (type !== undefined && typedArrayName(p) !== type));
  if (bad >= 0) {
    throw new UsageError(`gather: ${n} on worker ${targets[bad].name} is ${shown(parts[bad], 40)}, not a part of one value (arrays, typed arrays of one class, or Buffers)`, { code: "bad_option" });
  }
  if (kinds[0] === "array") return ([] as unknown[]).concat(...(parts as unknown[][]));
  if (kinds[0] === "buffer") return Buffer.concat(parts as Buffer[]);
  const T = TYPED_ARRAYS[type!];
  const total = (parts as AnyTypedArray[]).reduce((s, p) => s + p.length, 0);
  const out = new T(total);
  let at = 0;
  for (const p of parts as AnyTypedArray[]) {
    (out as { set(a: ArrayLike<number | bigint>, at: number): void }).set(p as ArrayLike<number | bigint>, at);
    at += p.length;
  }
  return out;
}
