/**
 * Staged answers in the JavaScript worker runtime (src/remote/runtime.ts, fetched by
 * src/remote/answer.ts): an answer over a piece is kept under an id and answered as
 * `{ staged }`; its pieces put back together are the answer that would have come inline; the
 * worker keeps nothing after the last piece, after a failed or freeing piece call, and no more
 * than a few when new ones come. The runtime runs in a Node child, as in a worker's kernel; the
 * Python helper in a real IPython shell (the project's .venv).
 */
import { spawnSync } from "node:child_process";
import * as path from "node:path";
import { REMOTE_MIME } from "../../src/protocol/marks";
import { JS_TAKE, jsRuntimeCall, pyPiece, pyValuesOf, readReply, STAGE_PIECE_BYTES, wireArg } from "../../src/remote/runtime";
import { REPO } from "../helpers/util";
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

/**
 * Runs the Python helper's user expressions in a real IPython shell (the project's `.venv`, no
 * kernel): `body` is Python with `ev(expr)` (an expression's JSON display, as a reply carries it)
 * and `out(x)`; the `out` values, in order.
 */
function inPython(body: string): unknown[] {
  const script = `
import json, sys
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
outs = []
out = outs.append
def ev(expr):
    return eval(expr, {})._repr_json_()
${body}
sys.stdout.write(json.dumps(outs))
`;
  const r = spawnSync(path.join(REPO, ".venv", "bin", "python"), ["-"], { input: script, encoding: "utf8", maxBuffer: 1 << 30 });
  if (r.status !== 0) throw new Error(`python failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as unknown[];
}

test("the Python helper stages an answer over a piece, its pieces are the inline answer, and it frees it after the last piece, on a failed call and when asked", () => {
  const many = JSON.stringify(pyValuesOf(["big", "small"]));
  const [staged, pieces, keptAfter, failed, keptAfterFail, keptAfterFree] = inPython(`
shell.user_ns["big"] = list(range(${STAGE_PIECE_BYTES / 4}))
shell.user_ns["small"] = "é"
import base64
def arg(o): return base64.b64encode(json.dumps(o).encode()).decode()
PIECE = ${JSON.stringify(pyPiece("ARG"))}
def piece(i, k): return ev(PIECE.replace('"ARG"', '"' + arg({"id": i, "k": k}) + '"'))
w = ev(${many})
s = json.loads(base64.b64decode(w["json64"]))
out(s)
i = s["staged"]["id"]
out([piece(i, k)["piece"] for k in range(s["staged"]["pieces"])])
kept = lambda: list(shell.__dict__.get("_sense_answers", {}))
out(kept())
j = json.loads(base64.b64decode(ev(${many})["json64"]))["staged"]["id"]
try:
    piece(j, 99); out("no error")
except ValueError as e:
    out(str(e))
out(kept())
j = json.loads(base64.b64decode(ev(${many})["json64"]))["staged"]["id"]
piece(j, -1)
out(kept())
`) as [{ staged: { id: string; bytes: number; pieces: number } }, string[], string[], string, string[], string[]];
  expect(staged.staged.pieces).toBe(Math.ceil(staged.staged.bytes / STAGE_PIECE_BYTES));
  expect(staged.staged.pieces).toBeGreaterThan(1);
  const answer = readReply(JSON.parse(pieces.join("")));
  expect(answer).toEqual({ values: { big: { value: Array.from({ length: STAGE_PIECE_BYTES / 4 }, (_, i) => i) }, small: { value: "é" } } });
  expect(pieces.every((p) => p.length <= STAGE_PIECE_BYTES)).toBe(true);
  expect(keptAfter).toEqual([]);
  expect(failed).toMatch(/no piece 99 of a staged answer of/);
  expect(keptAfterFail).toEqual([]);
  expect(keptAfterFree).toEqual([]);
});
