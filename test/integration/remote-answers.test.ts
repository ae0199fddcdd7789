/**
 * Answers of any size when the data channel cannot be used (#22; SENSE_DATA_CHANNEL=messages, as
 * for a worker behind NAT): through a real Jupyter Server, a pull's values, a gather's parts, an
 * execute's value and a map chunk's results of ~24 MiB from sense-ts and python3 (numpy) workers
 * come back exact, and no websocket message the master receives is over the server's 10 MiB
 * limit (through Enterprise Gateway a bigger reply is dropped: the call never answered). The
 * worker keeps each big answer (staged) and the master fetches it in pieces (src/remote/answer.ts);
 * a staged answer the worker no longer has ends that worker's part as `StagedAnswerLost`.
 */
import WebSocket from "ws";
import { launchWorkers, type WorkerContextInput } from "../../src/workers";
import { execute, gather, map, pull, push, scatter } from "../../src/remote";
import type { WorkerRecord } from "../../src/jupyter/schemas";
import { JUPYTER_WS_MESSAGE_LIMIT_BYTES } from "../../src/protocol/limits";
import { captureSink } from "../helpers/util";
import { runRemote } from "../../src/remote/answer";
import { REMOTE_MIME } from "../../src/protocol/marks";
import { jsRuntimeCall, STAGE_PIECE_BYTES } from "../../src/remote/runtime";
import { defaultCluster } from "../../src/workers/api";
import { resolveTargets } from "../../src/workers/targets";
import { serverMachine } from "../helpers/server-machine";

const MiB = 1 << 20;
const sink = captureSink();
const bytesOf = (v: unknown) => {
  const a = v as ArrayBufferView;
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
};
/** A Float64Array of `bytes` bytes whose every element differs. */
const floats = (bytes: number) => new Float64Array(Math.floor(bytes / 8)).map((_, i) => i * 1.5 - 7);

// The biggest websocket message the master received (every kernel connection here is a `ws` client).
let biggest = 0;
const emit = WebSocket.prototype.emit;
const sizeOf = (data: unknown): number => (Array.isArray(data) ? data.reduce((n: number, d: unknown) => n + sizeOf(d), 0) : data instanceof ArrayBuffer || ArrayBuffer.isView(data) ? data.byteLength : typeof data === "string" ? Buffer.byteLength(data) : 0);
beforeAll(() => {
  WebSocket.prototype.emit = function (this: WebSocket, event: string | symbol, ...args: unknown[]): boolean {
    if (event === "message") biggest = Math.max(biggest, sizeOf(args[0]));
    return emit.call(this, event, ...args);
  };
});
afterAll(() => {
  WebSocket.prototype.emit = emit;
});

let context: WorkerContextInput;
let ts: WorkerRecord[];
let py: WorkerRecord[];
serverMachine(async (c) => {
  context = c;
  [ts, py] = await Promise.all([launchWorkers({ n: 1, engine: "sense-ts", keeper: false, context, sink }), launchWorkers({ n: 1, engine: "python3", keeper: false, context, sink })]);
});

beforeEach(() => {
  process.env.SENSE_DATA_CHANNEL = "messages";
  biggest = 0;
});
afterEach(() => {
  delete process.env.SENSE_DATA_CHANNEL;
});

// A timeout of its own: a reply that does not come fails the test instead of hanging the run.
test("with the channel off, 24 MiB pulled and gathered from sense-ts and python3 (numpy) workers come back exact, in messages under the limit", async () => {
  const value = floats(24 * MiB);
  await push({ big: value }, { targets: [ts[0], py[0]], context, sink });
  const [r] = await execute("f'{big.dtype} {big.size}'", { targets: py[0], context, sink });
  expect(r.value).toBe(`float64 ${value.length}`);
  biggest = 0;
  const back = await pull("big", { targets: [ts[0], py[0]], context, sink });
  for (const b of back) {
    expect(Object.prototype.toString.call(b)).toBe("[object Float64Array]");
    expect(bytesOf(b).equals(bytesOf(value))).toBe(true);
  }
  // an odd length over both (numpy on the Python worker), back into one
  const odd = value.subarray(0, value.length - 1);
  await scatter("part", odd, { targets: [ts[0], py[0]], context, sink });
  const joined = (await gather("part", { targets: [ts[0], py[0]], context, sink })) as Float64Array;
  expect(Object.prototype.toString.call(joined)).toBe("[object Float64Array]");
  expect(bytesOf(joined).equals(bytesOf(odd))).toBe(true);
  expect(biggest).toBeGreaterThan(0);
  expect(biggest).toBeLessThan(JUPYTER_WS_MESSAGE_LIMIT_BYTES);
}, 300_000);

test("with the channel off, an execute value and map results of ~24 MiB come back exact, in messages under the limit", async () => {
  // text with characters of every width (its JSON is escaped to ASCII on the worker: any slice is valid UTF-8)
  const unit = "é∑x\u{1F600}";
  const n = Math.floor((24 * MiB) / 12);
  const [fromTs] = await execute(`${JSON.stringify(unit)}.repeat(${n})`, { targets: ts[0], context, sink });
  expect(fromTs.status).toBe("ok");
  expect(fromTs.value === unit.repeat(n)).toBe(true);
  // (a list: IPython's own display of it, the execute_result, shows its first 1000 items; a str's would be whole, over the limit)
  const [fromPy] = await execute(`[${JSON.stringify(unit)} + str(i) for i in range(2**20)] + list(range(2 * 2**20))`, { targets: py[0], context, sink });
  const list = fromPy.value as unknown[];
  expect(list.length).toBe(3 * MiB);
  expect([list[0], list[MiB - 1], list[MiB], list[3 * MiB - 1]]).toEqual([`${unit}0`, `${unit}${MiB - 1}`, 0, 2 * MiB - 1]);
  // a map chunk of small items whose results are 24 MiB
  const out = await map((k: number) => new Float64Array((24 * 2 ** 20) / 8).map((_, i) => i * 1.5 - k), [7, 8], { targets: ts[0], context, sink, progress: false });
  expect(bytesOf(out[0]).equals(bytesOf(floats(24 * MiB)))).toBe(true);
  expect((out[1] as Float64Array)[3]).toBe(3 * 1.5 - 8);
  expect(biggest).toBeGreaterThan(0);
  expect(biggest).toBeLessThan(JUPYTER_WS_MESSAGE_LIMIT_BYTES);
}, 300_000);

test("a staged answer the worker no longer has ends as StagedAnswerLost naming the piece, not a wrong value; the worker answers the next call", async () => {
  const [t] = await resolveTargets(defaultCluster(), ts, context);
  // an answer that says it was staged under an id the worker never kept
  const forged = { [REMOTE_MIME]: { staged: { id: "AAAAAAAAAAAAAAAA", bytes: STAGE_PIECE_BYTES + 1, pieces: 2 } } };
  const o = await runRemote(t, { code: jsRuntimeCall("exact", true), silent: true, storeHistory: false, stopOnError: false, what: "a forged answer", reply: `(${JSON.stringify(forged)})` }, { sink });
  expect(o.status).toBe("error");
  expect(o.answer).toBeUndefined();
  expect(o.error).toMatchObject({ ename: "StagedAnswerLost", evalue: expect.stringMatching(/could not be fetched: piece 1 of 2: sense: no staged answer AAAAAAAAAAAAAAAA on this worker/) });
  const [r] = await execute("6 * 7", { targets: ts[0], context, sink });
  expect(r.value).toBe(42);
}, 120_000);

test("with the channel off, the staged pieces report progress both ways: a push's and a pull's bytes per worker, rising to their total", async () => {
  const value = floats(12 * MiB);
  const seen = (calls: [string, number, number][], worker: string) => calls.filter(([w]) => w === worker).map(([, done, total]) => [done, total] as const);
  const pushed: [string, number, number][] = [];
  await push({ big: value }, { targets: ts[0], context, sink, onProgress: (w, done, total) => pushed.push([w, done, total]) });
  const up = seen(pushed, ts[0].name);
  // the stream (manifest + 12 MiB) in pieces: more than one report, each no less than the last
  expect(up.length).toBeGreaterThan(1);
  expect(up[up.length - 1][0]).toBe(up[up.length - 1][1]);
  expect(up[up.length - 1][1]).toBeGreaterThan(value.byteLength);
  for (let i = 1; i < up.length; i++) expect(up[i][0]).toBeGreaterThanOrEqual(up[i - 1][0]);
  const pulled: [string, number, number][] = [];
  const [back] = await pull("big", { targets: ts[0], context, sink, onProgress: (w, done, total) => pulled.push([w, done, total]) });
  expect(bytesOf(back).equals(bytesOf(value))).toBe(true);
  const down = seen(pulled, ts[0].name);
  // told when the worker staged its answer (0 done), then after each piece, to the whole answer
  expect(down[0][0]).toBe(0);
  expect(down.length).toBe(Math.ceil(down[0][1] / STAGE_PIECE_BYTES) + 1);
  expect(down[down.length - 1]).toEqual([down[0][1], down[0][1]]);
});
