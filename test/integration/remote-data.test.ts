/**
 * Data of any size between the master and its workers (issue #22), through real kernels: sense-fast
 * (JavaScript), sense-ts, sense-js and python3 (with numpy) workers behind a real Jupyter Server, and
 * sense-fast and python3 workers started directly (no server). Values of 0 B, 1 B, 9.99 MiB,
 * 10.01 MiB and 64 MiB round-trip exactly (typed arrays, Buffers, strings, objects) over the data
 * channel and over the staged-message fallback; typed arrays arrive in Python as numpy arrays of
 * the matching dtype and come back as the same typed arrays; an interrupted push leaves the old
 * value. After the suite: no session, kernel or process left.
 */
import { launchWorkers, type WorkerContextInput } from "../../src/workers";
import { execute, gather, map, pull, push, scatter } from "../../src/remote";
import type { WorkerRecord } from "../../src/jupyter/schemas";
import { captureSink } from "../helpers/util";
import { directMachine } from "../helpers/direct-machine";
import { serverMachine } from "../helpers/server-machine";

const MiB = 1 << 20;
const SIZES = [0, 1, Math.round(9.99 * MiB), Math.round(10.01 * MiB)];
const sink = captureSink();
/** The bytes a view covers (a deserialized typed array may sit inside a bigger ArrayBuffer). */
const bytesOf = (v: unknown) => {
  const a = v as ArrayBufferView;
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
};
jest.setTimeout(600_000);

/** A Float64Array of about `bytes` bytes whose every element differs. */
const floats = (bytes: number) => new Float64Array(Math.floor(bytes / 8)).map((_, i) => i * 1.5 - 7);
const buffer = (size: number) => {
  const bytes = Math.floor(size);
  const b = Buffer.allocUnsafe(bytes);
  for (let i = 0; i < bytes; i += 4096) b[i] = i % 251;
  return b.fill(7, 0, Math.min(bytes, 100));
};
const text = (bytes: number) => "é∑x".repeat(Math.floor(bytes / 6)) + "z".repeat(Math.floor(bytes) % 6);

/** JavaScript workers: every kind at every size, and 64 MiB of each. */
async function jsRoundTrips(targets: WorkerRecord[], context: WorkerContextInput): Promise<void> {
  for (const bytes of [...SIZES, 64 * MiB]) {
    const values = { f: floats(bytes), b: buffer(bytes), s: text(bytes), o: { rows: [floats(bytes / 4), { at: bytes }], m: new Map([["k", buffer(bytes / 4)]]) }, i: new BigInt64Array([1n, -(2n ** 63n)]) };
    await push(values, { targets, context, sink });
    const rows = await pull(["f", "b", "s", "o", "i"], { targets, context, sink });
    for (const row of rows) {
      expect(Object.prototype.toString.call(row.f)).toBe("[object Float64Array]");
      expect(Buffer.isBuffer(row.b)).toBe(true);
      expect(Buffer.compare(bytesOf(row.f), bytesOf(values.f))).toBe(0);
      expect(Buffer.compare(row.b as Buffer, values.b)).toBe(0);
      expect(row.s === values.s).toBe(true);
            const o = row.o as typeof values.o;
      expect(Buffer.compare(bytesOf(o.rows[0]), bytesOf(values.o.rows[0]))).toBe(0);
      expect(o.rows[1]).toEqual(values.o.rows[1]);
      expect(Buffer.compare(o.m.get("k")!, values.o.m.get("k")!)).toBe(0);
      expect(row.i).toEqual(values.i);
    }
    // on the worker they are the same kinds
    const [r] = await execute("[f.constructor.name, Buffer.isBuffer(b), typeof s, s.length, o.m.get('k').length]", { targets: targets[0], context, sink });
    expect(r.value).toEqual(["Float64Array", true, "string", values.s.length, values.o.m.get("k")!.length]);
  }
}

const DTYPES: [string, () => ArrayBufferView, string][] = [
  ["Float64Array", () => floats(10.01 * MiB), "float64"],
  ["Float32Array", () => new Float32Array([1.5, -2, NaN, Infinity]), "float32"],
  ["Int32Array", () => new Int32Array([1, -2, 2 ** 31 - 1]), "int32"],
  ["Uint32Array", () => new Uint32Array([0, 2 ** 32 - 1]), "uint32"],
  ["Int16Array", () => new Int16Array([-1, 300]), "int16"],
  ["Uint16Array", () => new Uint16Array([65535]), "uint16"],
  ["Int8Array", () => new Int8Array([-128, 127]), "int8"],
  ["Uint8Array", () => new Uint8Array([0, 255]), "uint8"],
  ["BigInt64Array", () => new BigInt64Array([-(2n ** 63n), 5n]), "int64"],
  ["BigUint64Array", () => new BigUint64Array([2n ** 64n - 1n]), "uint64"],
];

/** Python workers: typed arrays as numpy arrays of the matching dtype and back, Buffers as bytes, JSON values as before. */
async function pyRoundTrips(targets: WorkerRecord[], context: WorkerContextInput): Promise<void> {
  for (const [name, make, dtype] of DTYPES) {
    const v = make();
    await push({ a: v }, { targets, context, sink });
    const [r] = await execute("f'{type(a).__module__}.{type(a).__name__} {a.dtype} {a.size}'", { targets: targets[0], context, sink });
    expect(r.value).toBe(`numpy.ndarray ${dtype} ${(v as unknown as { length: number }).length}`);
    for (const back of await pull("a", { targets, context, sink })) {
      expect((back as object).constructor.name).toBe(name === "Uint8ClampedArray" ? "Uint8Array" : name);
      expect(Buffer.compare(bytesOf(back), bytesOf(v))).toBe(0);
    }
  }
  for (const bytes of [...SIZES, 64 * MiB]) {
    const values = { f: floats(bytes), b: buffer(bytes), s: text(bytes), o: { rows: [1, 2, 3], at: bytes } };
    await push(values, { targets, context, sink });
    const [r] = await execute("[type(b).__name__, len(b), len(s), f.dtype.name, f.size]", { targets: targets[0], context, sink });
    expect(r.value).toEqual(["bytes", bytes, values.s.length, "float64", values.f.length]);
    for (const row of await pull(["f", "b", "s", "o"], { targets, context, sink })) {
      expect(Buffer.compare(bytesOf(row.f), bytesOf(values.f))).toBe(0);
      expect(Buffer.compare(row.b as Buffer, values.b)).toBe(0);
      expect(row.s === values.s).toBe(true);
      expect(row.o).toEqual(values.o);
    }
  }
  // a numpy array made on the worker comes back as data of its dtype; 2-D as { shape, data } (elements in C order)
  const [made] = await pull("m", { targets: targets[0], context, sink }).catch(async () => {
    await execute("import numpy as np\nm = np.arange(6, dtype=np.int32).reshape(2, 3)", { targets: targets[0], context, sink });
    return pull("m", { targets: targets[0], context, sink });
  });
  expect(made).toEqual({ shape: [2, 3], data: new Int32Array([0, 1, 2, 3, 4, 5]) });
}

/** An interrupted push (the master aborts mid-transfer) leaves every worker's old value. */
async function interruptKeepsOld(targets: WorkerRecord[], context: WorkerContextInput): Promise<void> {
  await push({ keep: "old" }, { targets, context, sink });
  const abort = new AbortController();
  const big = floats(256 * MiB);
  // a small part first, then a big one: binding part by part would have set `keep` already
  const pushing = push({ keep: "new", other: big }, {
    targets,
    context,
    sink,
    signal: abort.signal,
    onProgress: (_w, done) => {
      if (done > 0) abort.abort();
    },
  });
  await expect(pushing).rejects.toMatchObject({ code: "remote_error" });
  for (const row of await pull(["keep"], { targets, context, sink })) expect(row.keep).toBe("old");
  // and no part of the new values was set
  await expect(pull("other", { targets, context })).rejects.toMatchObject({ code: "remote_error", failures: targets.map(() => expect.objectContaining({ ename: expect.stringMatching(/ReferenceError|NameError/) })) });
}

describe("through a Jupyter Server", () => {
  let context: WorkerContextInput;
  let py: WorkerRecord[];
  let fast: WorkerRecord[];
  let ts: WorkerRecord[];
  let js: WorkerRecord[];

  serverMachine(async (c) => {
    context = c;
    [py, fast, ts, js] = await Promise.all([
      launchWorkers({ n: 1, engine: "python3", keeper: false, context, sink }),
      launchWorkers({ n: 1, engine: "sense-fast", keeper: false, context, sink }),
      launchWorkers({ n: 1, engine: "sense-ts", keeper: false, context, sink }),
      launchWorkers({ n: 1, engine: "sense-js", keeper: false, context, sink }),
    ]);
  });

  it("sense-fast, sense-ts and sense-js workers: 0 B to 64 MiB typed arrays, Buffers, strings and objects round-trip exactly over the data channel", async () => {
    await jsRoundTrips([fast[0], ts[0], js[0]], context);
  });

  it("a python3 worker: typed arrays arrive as numpy arrays of the matching dtype and come back as the same typed arrays; bytes, strings and JSON values of every size round-trip", async () => {
    await pyRoundTrips(py, context);
  });

  it("with the channel off (SENSE_DATA_CHANNEL=messages), 10.01 MiB values go in staged pieces under the websocket limit and round-trip", async () => {
    process.env.SENSE_DATA_CHANNEL = "messages";
    try {
      const values = { f: floats(10.01 * MiB), b: buffer(10.01 * MiB), s: text(10.01 * MiB) };
      await push(values, { targets: [fast[0], ts[0], js[0], py[0]], context, sink });
      const [r] = await execute("f'{f.dtype} {len(b)} {len(s)}'", { targets: py[0], context, sink });
      expect(r.value).toBe(`float64 ${values.b.length} ${values.s.length}`);
      const rows = await pull(["f", "b", "s"], { targets: [fast[0], ts[0], js[0]], context, sink });
      for (const row of rows) {
        expect(Buffer.compare(bytesOf(row.f), bytesOf(values.f))).toBe(0);
        expect(Buffer.compare(row.b as Buffer, values.b)).toBe(0);
        expect(row.s === values.s).toBe(true);
      }
    } finally {
      delete process.env.SENSE_DATA_CHANNEL;
    }
  });

  it("scatter splits arrays, typed arrays and Buffers into contiguous near-equal parts in target order (odd lengths, fewer items than workers); gather puts them back", async () => {
    const js = [fast[0], ts[0]];
    const all = [fast[0], ts[0], py[0]];
    // 7 items over 3 workers: 3, 2, 2 (the first n % k get one more), as ipyparallel
    await scatter("part", [1, 2, 3, 4, 5, 6, 7], { targets: all, context, sink });
    expect(await pull("part", { targets: all, context, sink })).toEqual([[1, 2, 3], [4, 5], [6, 7]]);
    expect(await gather("part", { targets: all, context, sink })).toEqual([1, 2, 3, 4, 5, 6, 7]);
    // fewer items than workers: the last get empty parts
    await scatter("part", ["a", "b"], { targets: all, context, sink });
    expect(await pull("part", { targets: all, context, sink })).toEqual([["a"], ["b"], []]);
    expect(await gather("part", { targets: all, context, sink })).toEqual(["a", "b"]);
    // a big typed array (numpy on the Python worker), in target order, back into one
    const f = floats(24 * MiB + 8);
    await scatter("f", f, { targets: all, context, sink });
    const [r] = await execute("f'{f.dtype} {f.size}'", { targets: py[0], context, sink });
    expect(r.value).toBe(`float64 ${Math.floor(f.length / 3)}`);
    const back = (await gather("f", { targets: all, context, sink })) as Float64Array;
    expect(Object.prototype.toString.call(back)).toBe("[object Float64Array]");
    expect(Buffer.compare(bytesOf(back), bytesOf(f))).toBe(0);
    // Buffers, odd length
    const b = buffer(11 * MiB + 3);
    await scatter("b", b, { targets: js, context, sink });
    const g = (await gather("b", { targets: js, context, sink })) as Buffer;
    expect(Buffer.isBuffer(g)).toBe(true);
    expect(Buffer.compare(g, b)).toBe(0);
    // what cannot be split, or put together, is refused naming it
    await expect(scatter("x", { a: 1 }, { targets: js, context })).rejects.toMatchObject({ code: "bad_option", message: expect.stringContaining("x must be an array") });
    await push({ mixed: [1] }, { targets: fast[0], context, sink });
    await push({ mixed: new Int32Array(1) }, { targets: ts[0], context, sink });
    await expect(gather("mixed", { targets: js, context })).rejects.toMatchObject({ code: "bad_option", message: expect.stringContaining(`worker ${ts[0].name}`) });
  });

  it("map takes items and gives results bigger than a message (over the data channel), mixed with small ones, in order", async () => {
    const items: unknown[] = Array.from({ length: 6 }, (_, i) => (i % 2 ? i : new Float64Array(1.5 * MiB).fill(i)));
    items.push(buffer(11 * MiB), { nested: floats(12 * MiB) });
    const out = await map((x: unknown) => (typeof x === "number" ? x * 10 : x), items, { targets: [fast[0], ts[0]], context, sink, progress: false });
    expect(out.length).toBe(items.length);
    for (let i = 0; i < items.length; i++) {
      const want = items[i];
      if (typeof want === "number") expect(out[i]).toBe(want * 10);
      else if (ArrayBuffer.isView(want)) expect(Buffer.compare(bytesOf(out[i]), bytesOf(want))).toBe(0);
      else expect(Buffer.compare(bytesOf((out[i] as { nested: Float64Array }).nested), bytesOf((want as { nested: Float64Array }).nested))).toBe(0);
    }
    // a small result of a big item comes back in the reply
    expect(await map((a: Float64Array) => a.length, [floats(16 * MiB)], { targets: fast[0], context, sink, progress: false })).toEqual([2 * MiB]);
  });

  it("a typed array pushed to a Python worker without numpy is bad_option naming the worker, and nothing is sent", async () => {
    // numpy made unimportable on the worker (None in sys.modules makes `import numpy` raise ImportError)
    await execute("import sys\n_np_saved = sys.modules.get('numpy')\nsys.modules['numpy'] = None", { targets: py[0], context, sink });
    try {
      await push({ before: 1 }, { targets: [py[0], fast[0]], context, sink });
      await expect(push({ before: 2, a: new Float64Array(4) }, { targets: [py[0], fast[0]], context })).rejects.toMatchObject({ code: "bad_option", message: expect.stringContaining(`numpy is not installed on worker ${py[0].name}`) });
      expect(await pull("before", { targets: [py[0], fast[0]], context, sink })).toEqual([1, 1]);
    } finally {
      await execute("if _np_saved is None:\n    del sys.modules['numpy']\nelse:\n    sys.modules['numpy'] = _np_saved", { targets: py[0], context, sink });
    }
  });

  it("interrupting a push mid-transfer leaves the old value on every worker", async () => {
    await interruptKeepsOld([fast[0], py[0]], context);
  });
});

describe("direct (no server)", () => {
  const { context } = directMachine("remote-data");
  let py: WorkerRecord[];
  let fast: WorkerRecord[];

  beforeAll(async () => {
    [py, fast] = await Promise.all([launchWorkers({ n: 1, engine: "python3", keeper: false, context, sink }), launchWorkers({ n: 1, engine: "sense-fast", keeper: false, context, sink })]);
  });

  it("sense-fast and python3 workers started directly: every kind and size round-trips; an interrupted push keeps the old value", async () => {
    await jsRoundTrips(fast, context);
    await pyRoundTrips(py, context);
    await interruptKeepsOld([fast[0], py[0]], context);
  });
});
