/**
 * Staged answers in the JavaScript worker runtime (src/remote/runtime.ts, fetched by
 * src/remote/answer.ts): an answer over a piece is kept under an id and answered as
 * `{ staged }`; its pieces put back together are the answer that would have come inline; the
 * worker keeps nothing after the last piece, after a failed or freeing piece call, and no more
 * than a few when new ones come. The runtime runs in a Node child, as in a worker's kernel.
 */
import { spawnSync } from "node:child_process";
import { REMOTE_MIME } from "../../src/protocol/marks";
import { JS_TAKE, jsRuntimeCall, readReply, STAGE_PIECE_BYTES, wireArg } from "../../src/remote/runtime";
import { LAST_VALUE_KEY } from "../../src/transpile";
import { fromWire, toWire } from "../../src/remote/values";

/** Runs `body` (JavaScript with `call(c)`: the runtime's call `c`, and `take()`: its answer) in a Node child; its `out(x)` values, in order. */
function inWorker(body: string): unknown[] {
  const script = `
globalThis.require = require; // as in a JavaScript kernel
const outs = [];
const out = (x) => outs.push(x);
const call = (c) => (0, eval)(${JSON.stringify(jsRuntimeCall("CALL"))}.replace("CALL", c));
const take = () => (0, eval)(${JSON.stringify(JS_TAKE)})[${JSON.stringify(REMOTE_MIME)}];
const kept = () => call("stagedAnswers()");
const arg = (s) => JSON.stringify(s);
(async () => {
${body}
})().then(() => process.stdout.write(JSON.stringify(outs)), (e) => { process.stderr.write(String(e && e.stack)); process.exit(1); });
`;
  const r = spawnSync(process.execPath, ["-"], { input: script, encoding: "utf8", maxBuffer: 1 << 30 });
  if (r.status !== 0) throw new Error(`worker child failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as unknown[];
}

const pullOf = (names: string[]) => `pull(${wireArg(toWire(names, "names"))})`;

test("a pull's answer over a piece is staged; its pieces, fetched in order, are the inline answer; nothing is kept after the last", () => {
  const [staged, keptBefore, pieces, keptAfter] = inWorker(`
    globalThis.big = new Float64Array(${(6 * STAGE_PIECE_BYTES) / 8 / 4}).map((_, i) => i * 0.5);
    call(${JSON.stringify(pullOf(["big"]))});
    const s = take();
    out(s);
    out(kept());
    const pieces = [];
    for (let k = 0; k < s.staged.pieces; k++) { call("piece(" + arg(s.staged.id) + ", " + k + ")"); pieces.push(take().piece); }
    out(pieces);
    out(kept());
  `) as [{ staged: { id: string; bytes: number; pieces: number } }, string[], string[], string[]];
  expect(staged.staged.pieces).toBe(Math.ceil(staged.staged.bytes / STAGE_PIECE_BYTES));
  expect(staged.staged.pieces).toBeGreaterThan(1);
  expect(keptBefore).toEqual([staged.staged.id]);
  expect(pieces.every((p) => p.length <= STAGE_PIECE_BYTES && /^[\x20-\x7e]*$/.test(p))).toBe(true);
  const joined = pieces.join("");
  expect(joined.length).toBe(staged.staged.bytes);
  const answer = readReply(JSON.parse(joined));
  expect(answer && "b64" in answer).toBe(true);
  const got = fromWire((answer as { b64: string }).b64) as { big: { v: Float64Array } };
  expect(got.big.v).toEqual(new Float64Array((6 * STAGE_PIECE_BYTES) / 8 / 4).map((_, i) => i * 0.5));
  expect(keptAfter).toEqual([]);
});

test("a small answer is not staged; text of any characters (non-ASCII, a lone surrogate) comes back exact through the pieces", () => {
  const text = "é∑x\u{1F600}\ud800".repeat(STAGE_PIECE_BYTES / 8) + "end";
  const [small, staged, joined, kept] = inWorker(`
    globalThis.small = 1;
    call(${JSON.stringify(pullOf(["small"]))});
    out(take());
    globalThis[Symbol.for(${JSON.stringify(LAST_VALUE_KEY)})] = [${JSON.stringify(text)}];
    const s = call("last()")[${JSON.stringify(REMOTE_MIME)}];
    out(s);
    let all = "";
    for (let k = 0; k < s.staged.pieces; k++) { call("piece(" + arg(s.staged.id) + ", " + k + ")"); all += take().piece; }
    out(all);
    out(kept());
  `) as [unknown, { staged: { pieces: number } }, string, string[]];
  expect(small).toMatchObject({ b64: expect.any(String) });
  expect(staged.staged.pieces).toBeGreaterThan(1);
  expect(JSON.parse(joined)).toEqual({ value: text });
  expect(kept).toEqual([]);
});

test("the worker frees a staged answer on a failed piece call, when asked (piece -1), and keeps at most 4 as new ones come", () => {
  const [failed, keptAfterFail, keptAfterFree, ids, kept] = inWorker(`
    globalThis.big = "x".repeat(${STAGE_PIECE_BYTES + 10});
    const stage = () => { call(${JSON.stringify(pullOf(["big"]))}); return take().staged.id; };
    const a = stage();
    try { call("piece(" + arg(a) + ", 99)"); out("no error"); } catch (e) { out(e.message); }
    out(kept());
    const b = stage();
    call("piece(" + arg(b) + ", -1)"); take();
    out(kept());
    const ids = [];
    for (let i = 0; i < 6; i++) ids.push(stage());
    out(ids);
    out(kept());
  `) as [string, string[], string[], string[], string[]];
  expect(failed).toMatch(/no piece 99 of a staged answer of 2/);
  expect(keptAfterFail).toEqual([]);
  expect(keptAfterFree).toEqual([]);
  expect(kept).toEqual(ids.slice(2));
});
