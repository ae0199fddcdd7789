/**
 * numpy arrays of any shape between the master and real workers (issue #22): an n-d array travels
 * as `{ shape, data }` (src/remote/parts.ts#NdArray) and keeps its shape through push, pull, scatter
 * (split along the first axis) and gather (concatenated along it), to python3 (numpy) and
 * sense-fast workers, over the data channel and over the message fallback
 * (SENSE_DATA_CHANNEL=messages), where a pulled numpy array or bytes value comes back as data, not
 * its repr. Through a Jupyter Server and with no server; after each: no session, kernel or process left.
 */
import { launchWorkers, type WorkerContextInput } from "../../src/workers";
import { execute, gather, pull, push, scatter } from "../../src/remote";
import type { NdArray } from "../../src/remote/parts";
import type { WorkerRecord } from "../../src/jupyter/schemas";
import { captureSink } from "../helpers/util";
import { directMachine } from "../helpers/direct-machine";
import { serverMachine } from "../helpers/server-machine";

const sink = captureSink();
jest.setTimeout(300_000);

/** A row-major n-d array of `shape` whose every element differs. */
const nd = (shape: number[]): NdArray => ({ shape, data: new Float64Array(shape.reduce((a, d) => a * d, 1)).map((_, i) => i * 0.5 - 3) });
const tag = (v: unknown) => Object.prototype.toString.call(v);

/** Pulls from a Python worker with the channel on and off: numpy arrays of every shape, bytes. */
async function pyPulls(py: WorkerRecord, context: WorkerContextInput): Promise<void> {
  await execute("import numpy as np\nv1 = np.arange(5, dtype=np.float32) / 4\nv2 = np.arange(6, dtype=np.int32).reshape(2, 3)\nv3 = np.arange(24, dtype=np.int16).reshape(2, 3, 4).T\nv0 = np.array(2.5)\nby = bytes(range(7))", { targets: py, context, sink });
  for (const mode of ["channel", "messages"]) {
    if (mode === "messages") process.env.SENSE_DATA_CHANNEL = "messages";
    try {
      const [row] = await pull(["v1", "v2", "v3", "v0", "by"], { targets: py, context, sink });
      // 1-d: the typed array of its dtype, as before
      expect(tag(row.v1)).toBe("[object Float32Array]");
      expect(Array.from(row.v1 as Float32Array)).toEqual([0, 0.25, 0.5, 0.75, 1]);
      // n-d: its shape and its elements in C order (v3 is a transposed, non-contiguous view)
      const v2 = row.v2 as NdArray;
      expect(v2.shape).toEqual([2, 3]);
      expect(tag(v2.data)).toBe("[object Int32Array]");
      expect(Array.from(v2.data as Int32Array)).toEqual([0, 1, 2, 3, 4, 5]);
      const v3 = row.v3 as NdArray;
      expect(v3.shape).toEqual([4, 3, 2]);
      const want3: number[] = [];
      for (let i = 0; i < 4; i++) for (let j = 0; j < 3; j++) for (let k = 0; k < 2; k++) want3.push(k * 12 + j * 4 + i);
      expect(Array.from(v3.data as Int16Array)).toEqual(want3);
      // 0-d: shape [] and one element
      expect(row.v0).toEqual({ shape: [], data: new Float64Array([2.5]) });
      expect(Buffer.isBuffer(row.by) && (row.by as Buffer).equals(Buffer.from([0, 1, 2, 3, 4, 5, 6]))).toBe(true);
    } finally {
      delete process.env.SENSE_DATA_CHANNEL;
    }
  }
}

/** Push, pull, scatter and gather of n-d arrays to a Python and a JavaScript worker keep the shape. */
async function shapes(py: WorkerRecord, js: WorkerRecord, context: WorkerContextInput): Promise<void> {
  for (const mode of ["channel", "messages"]) {
    if (mode === "messages") process.env.SENSE_DATA_CHANNEL = "messages";
    try {
      const m = nd([3, 4]);
      await push({ m }, { targets: [py, js], context, sink });
      const [onPy] = await execute("[list(m.shape), str(m.dtype), float(m[2, 1])]", { targets: py, context, sink });
      expect(onPy.value).toEqual([[3, 4], "float64", (m.data as Float64Array)[2 * 4 + 1]]);
      for (const back of await pull("m", { targets: [py, js], context, sink })) expect(back).toEqual(m);
      // 7 rows over 2 workers: 4 and 3 rows of 2 x 5, in target order, then back into one
      const cube = nd([7, 2, 5]);
      await scatter("cube", cube, { targets: [py, js], context, sink });
      const [part] = await execute("[list(cube.shape), float(cube[0, 0, 0]), float(cube[3, 1, 4])]", { targets: py, context, sink });
      expect(part.value).toEqual([[4, 2, 5], (cube.data as Float64Array)[0], (cube.data as Float64Array)[3 * 10 + 9]]);
      const [[, jsPart]] = [await pull("cube", { targets: [py, js], context, sink })];
      expect((jsPart as NdArray).shape).toEqual([3, 2, 5]);
      expect(await gather("cube", { targets: [py, js], context, sink })).toEqual(cube);
      // fewer rows than workers: an empty part of the same trailing shape, and gather still gives the value
      const one = nd([1, 3]);
      await scatter("one", one, { targets: [py, js], context, sink });
      const [empty] = await execute("f'{one.shape}'", { targets: py, context, sink });
      expect(empty.value).toBe("(1, 3)");
      await scatter("one", one, { targets: [js, py], context, sink });
      const [empty2] = await execute("f'{one.shape}'", { targets: py, context, sink });
      expect(empty2.value).toBe("(0, 3)");
      expect(await gather("one", { targets: [js, py], context, sink })).toEqual(one);
      // parts of different trailing shapes are refused naming the worker
      await execute("odd = np.zeros((2, 4))", { targets: py, context, sink });
      await push({ odd: nd([2, 3]) }, { targets: js, context, sink });
      await expect(gather("odd", { targets: [js, py], context })).rejects.toMatchObject({ code: "bad_option", message: expect.stringContaining(`worker ${py.name}`) });
    } finally {
      delete process.env.SENSE_DATA_CHANNEL;
    }
  }
}

describe("through a Jupyter Server", () => {
  let context: WorkerContextInput;
  let py: WorkerRecord[];
  let fast: WorkerRecord[];

  serverMachine(async (c) => {
    context = c;
    [py, fast] = await Promise.all([launchWorkers({ n: 1, engine: "python3", keeper: false, context, sink }), launchWorkers({ n: 1, engine: "sense-fast", keeper: false, context, sink })]);
  });

  it("numpy arrays of 0, 1, 2 and 3 dimensions and bytes pulled from python3 come back as data (typed array, { shape, data }, Buffer) over the channel and over messages", async () => {
    await pyPulls(py[0], context);
  });

  it("n-d arrays keep their shape through push, pull, scatter (first axis) and gather, on python3 and sense-fast workers", async () => {
    await shapes(py[0], fast[0], context);
  });
});

describe("direct (no server)", () => {
  const { context } = directMachine("remote-ndarray");
  let py: WorkerRecord[];
  let fast: WorkerRecord[];

  beforeAll(async () => {
    [py, fast] = await Promise.all([launchWorkers({ n: 1, engine: "python3", keeper: false, context, sink }), launchWorkers({ n: 1, engine: "sense-fast", keeper: false, context, sink })]);
  });

  it("numpy arrays and bytes pulled come back as data, and n-d arrays keep their shape through push, pull, scatter and gather", async () => {
    await pyPulls(py[0], context);
    await shapes(py[0], fast[0], context);
  });
});
