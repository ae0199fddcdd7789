/**
 * `scatter` and `gather` with ipyparallel's semantics: an array, typed array or Buffer split along
 * its first axis into contiguous, near-equal parts in target order (the first `n % k` workers get
 * one more item), and put back together into one value of the same kind. Each part goes as a
 * push to its worker, all in one call (typed arrays and Buffers as views of the value's own bytes:
 * no copies on the master).
 */
import { captureSink } from "../display/sink";
import { shown, UsageError } from "../errors";
import { typedArrayName, TYPED_ARRAYS, type AnyTypedArray, type Destination, type PartHeader } from "./channel";
import { checkOptions, pullFrom, pushEach, targetsOf, type PullInto, type TransferOptions } from "./execute";
import { checkNames } from "./names";
import { isNdArray, type NdArray } from "./parts";

/** What can be split: a dense array, a typed array, a Buffer or an n-d array (along its first axis). */
type Splittable = unknown[] | AnyTypedArray | Buffer | NdArray;

function kindOf(v: unknown): "array" | "buffer" | "typed" | "nd" | undefined {
  if (Array.isArray(v)) return "array";
  if (Buffer.isBuffer(v)) return "buffer";
  if (typedArrayName(v)) return "typed";
  return isNdArray(v) && v.shape.length > 0 ? "nd" : undefined;
}

/** The product of `dims` (elements per row of an n-d array, for its trailing dimensions). */
const product = (dims: readonly number[]) => dims.reduce((a, d) => a * d, 1);

/** Rows `lo` to `hi` of `v` along its first axis, as a view of its data (no copy). */
function rows(v: NdArray, lo: number, hi: number): NdArray {
  const row = product(v.shape.slice(1));
  return { shape: [hi - lo, ...v.shape.slice(1)], data: v.data.subarray(lo * row, hi * row) };
}

/** One typed array of class `T` holding `parts` one after the other. */
function concatTyped(parts: readonly AnyTypedArray[]): AnyTypedArray {
  const T = TYPED_ARRAYS[typedArrayName(parts[0])!];
  const out = new T(parts.reduce((s, p) => s + p.length, 0));
  let at = 0;
  for (const p of parts) {
    (out as { set(a: ArrayLike<number | bigint>, at: number): void }).set(p as ArrayLike<number | bigint>, at);
    at += p.length;
  }
  return out;
}

/**
 * gather's output laid out before its parts arrive: once every worker has either announced its
 * part (the channel's manifest) or answered without the channel, and the announced parts are all
 * typed arrays of one class (n-d of one trailing shape) or all Buffers, one output is allocated
 * and each part is received straight into its place in it (no concatenation copy). Otherwise
 * every part gets memory of its own and gather concatenates as before.
 */
class Layout implements PullInto {
  /** The whole value, when one was laid out. */
  output: AnyTypedArray | Buffer | NdArray | undefined;
  private readonly heads: (PartHeader | null | undefined)[];
  private readonly places: (Uint8Array | undefined)[];
  private readonly waiting: (() => void)[] = [];
  private done = false;

  constructor(count: number) {
    this.heads = new Array<PartHeader | null | undefined>(count).fill(undefined);
    this.places = new Array<Uint8Array | undefined>(count).fill(undefined);
  }

  into = (i: number): Destination => async (headers) => {
    this.heads[i] = headers.length === 1 ? headers[0] : null;
    this.check();
    if (!this.done) await new Promise<void>((r) => this.waiting.push(r));
    return [this.places[i]];
  };

  answered = (i: number): void => {
    if (this.heads[i] === undefined) this.heads[i] = null;
    this.check();
  };

  /** Ends any wait (a pull that failed or was interrupted: the parts' own memory is used). */
  release(): void {
    this.finish();
  }

  /** True when each of `parts` is a view of the output at its place. */
  filled(parts: readonly unknown[]): boolean {
    return parts.every((p, i) => {
      const place = this.places[i];
      const v = isNdArray(p) ? p.data : p;
      return place !== undefined && ArrayBuffer.isView(v) && v.buffer === place.buffer && v.byteOffset === place.byteOffset && v.byteLength === place.byteLength;
    });
  }

  private check(): void {
    if (this.done || this.heads.some((h) => h === undefined)) return;
    const heads = this.heads as (PartHeader | null)[];
    const [first] = heads;
    const trail = (h: PartHeader) => (h.shape ? h.shape.slice(1).join(",") : undefined);
    const same = first !== null && heads.every((h) => h !== null && h.kind === first.kind && h.type === first.type && (h.shape === undefined) === (first.shape === undefined) && trail(h) === trail(first) && (h.shape === undefined || h.shape.length > 0));
    if (same && (first.kind === "typed" || first.kind === "buffer")) {
      const total = heads.reduce((s, h) => s + h!.bytes, 0);
      let bytes: Uint8Array;
      if (first.kind === "buffer") {
        const b = Buffer.allocUnsafeSlow(total);
        this.output = b;
        bytes = b;
      } else {
        const T = TYPED_ARRAYS[first.type!];
        const data = new T(total / T.BYTES_PER_ELEMENT);
        this.output = first.shape ? { shape: [heads.reduce((s, h) => s + h!.shape![0], 0), ...first.shape.slice(1)], data } : data;
        bytes = new Uint8Array(data.buffer, 0, total);
      }
      let at = 0;
      heads.forEach((h, i) => {
        this.places[i] = bytes.subarray(at, at + h!.bytes);
        at += h!.bytes;
      });
    }
    this.finish();
  }

  private finish(): void {
    this.done = true;
    for (const w of this.waiting.splice(0)) w();
  }
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
 * order; with fewer items than workers the last ones get empty parts. An n-d array ({@link NdArray})
 * is split along its first axis into n-d arrays of the same trailing shape (numpy arrays on
 * Python workers).
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
  if (!kind) throw new UsageError(`scatter: ${n} must be an array, a typed array, a Buffer or an n-d array ({ shape, data }), not ${shown(value, 40)}`, { code: "bad_option" });
  const v = value as Splittable;
  const targets = await targetsOf(options);
  const length = kind === "nd" ? (v as NdArray).shape[0] : (v as unknown[]).length;
  const parts = targets.map((_t, i) => {
    const [lo, hi] = partition(length, i, targets.length);
    if (kind === "nd") return rows(v as NdArray, lo, hi);
    return kind === "array" ? (v as unknown[]).slice(lo, hi) : (v as AnyTypedArray).subarray(lo, hi);
  });
  await pushEach((t) => ({ [n]: parts[targets.indexOf(t)] }), [n], targets, options, sink, "scatter");
}

/**
 * Reads global `name` from the target workers and puts the parts together in target order: arrays
 * (and Python lists) concatenated, typed arrays (and 1-d numpy arrays) into one typed array of
 * their class, Buffers (and Python bytes) into one Buffer, n-d arrays (and numpy arrays of 2+
 * dimensions) of one class and trailing shape into one n-d array along the first axis.
 * @throws UsageError `bad_option` when the parts are not of one kind (naming the worker whose part
 *   differs); WorkerError `unknown_worker`; RemoteError when a worker has no such name.
 */
export async function gather(name: string, options: TransferOptions = {}): Promise<unknown> {
  const sink = options.sink ?? captureSink();
  checkOptions(options, ["onProgress"], "gather");
  const [n] = checkNames([name], "gather");
  const targets = await targetsOf(options);
  const layout = new Layout(targets.length);
  let parts: unknown[];
  try {
    parts = (await pullFrom(targets, [n], options, sink, layout)).map((r) => r[n]);
  } finally {
    layout.release();
  }
  const kinds = parts.map(kindOf);
  const type = typedArrayName(parts[0]);
  // n-d parts: one class, one trailing shape (they differ only along the first axis)
  const first = parts[0];
  const trail = isNdArray(first) ? first.shape.slice(1).join(",") : undefined;
  const differs = (p: unknown, i: number) =>
    kinds[i] !== kinds[0] || !kinds[i] || (type !== undefined && typedArrayName(p) !== type) || (isNdArray(p) && (typedArrayName(p.data) !== typedArrayName((first as NdArray).data) || p.shape.slice(1).join(",") !== trail));
  const bad = parts.findIndex(differs);
  if (bad >= 0) {
    throw new UsageError(`gather: ${n} on worker ${targets[bad].name} is ${shown(parts[bad], 40)}, not a part of one value (arrays, typed arrays of one class, Buffers, or n-d arrays of one class and trailing shape)`, { code: "bad_option" });
  }
  // every part already sits in its place in one output (received there): no copy
  if (layout.output !== undefined && layout.filled(parts)) return layout.output;
  if (kinds[0] === "array") return ([] as unknown[]).concat(...(parts as unknown[][]));
  if (kinds[0] === "buffer") return Buffer.concat(parts as Buffer[]);
  if (kinds[0] === "nd") {
    const nd = parts as NdArray[];
    return { shape: [nd.reduce((s, p) => s + p.shape[0], 0), ...nd[0].shape.slice(1)], data: concatTyped(nd.map((p) => p.data)) } satisfies NdArray;
  }
  return concatTyped(parts as AnyTypedArray[]);
}
