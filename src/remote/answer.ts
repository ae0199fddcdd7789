/**
 * Every runtime answer, whatever its size: the one place the remote calls run a request whose
 * reply carries an answer. An answer too big for one websocket message (more than
 * {@link STAGE_PIECE_BYTES} as JSON: a pull's values, an execute's value, a map chunk's results,
 * a gather's parts when the data channel cannot be used) is kept on the worker, which answers
 * `{ staged: { id, bytes, pieces } }` instead; {@link runRemote} then fetches its pieces, each a
 * request of its own under the limit, and hands the caller the answer as if it had come inline.
 * Through Enterprise Gateway a reply over 10 MiB is dropped on the way (the Jupyter Server's
 * websocket client to EG takes no more), so without this such a call never answered.
 */
import { z } from "zod";
import { runRequest, type RequestControl, type RequestOutcome, type RequestSpec } from "../workers/request";
import type { Target } from "../workers/targets";
import { JS_TAKE, pyPiece, readReply, STAGE_PIECE_BYTES, wireArg } from "./runtime";
import { jsAwait } from "./transfer";
import { jsonBase64 } from "./values";

const Piece = z.object({ piece: z.string().max(STAGE_PIECE_BYTES) });

const base = { silent: true, storeHistory: false, stopOnError: false };

/** The request for piece `k` of staged answer `id` on `t` (`k` -1 frees it). */
export function pieceSpec(t: Target, id: string, k: number, count: number): RequestSpec {
  const what = k < 0 ? "freeing a staged answer" : `piece ${k + 1} of ${count} of an answer`;
  if (t.language === "python") return { ...base, what, code: "", reply: pyPiece(jsonBase64({ id, k })) };
  return { ...base, what, ...jsAwait(t, `piece(${wireArg(id)}, ${Math.trunc(k)})`), reply: JS_TAKE };
}

const MiB = (b: number) => (b / (1 << 20)).toFixed(1);

/**
 * Runs `spec` on `t` (as {@link runRequest}) and, when the worker staged its answer, fetches the
 * pieces and puts the whole answer in the outcome's `answer`, as an inline reply would have.
 * A piece that cannot be fetched (the worker failed, was lost or interrupted, or freed it) makes
 * the outcome's status that request's (`error` with ename `StagedAnswerLost` when the worker
 * answered without it), and the worker is asked to free what it kept.
 * `progress` (when given) is told the staged answer's bytes done and total: once when the worker
 * says it staged one (0 done), then after each piece; never for an answer that came whole.
 * Never rejects for a failure of the worker (as {@link runRequest}).
 * @throws UsageError `too_large` when `spec` cannot fit through the server's websocket (nothing is sent).
 */
export async function runRemote(t: Target, spec: RequestSpec, control: RequestControl, progress?: (done: number, total: number) => void): Promise<RequestOutcome> {
  const o = await runRequest(t.worker, spec, control);
  // No answer (code without a value): nothing to read; a failed parse is zod's slow path.
  const a = o.status === "ok" && !o.answerError && o.answer !== undefined ? readReply(o.answer) : undefined;
  if (!a || !("staged" in a)) return o;
  const { id, bytes, pieces } = a.staged;
  const lost = (k: number, why: Pick<RequestOutcome, "status" | "error">): RequestOutcome => ({
    ...o,
    answer: undefined,
    status: why.status === "ok" ? "error" : why.status,
    error: {
      ename: why.status === "ok" || why.status === "error" ? "StagedAnswerLost" : (why.error?.ename ?? "Error"),
      evalue: `the worker's answer (${MiB(bytes)} MiB, too big for one message) could not be fetched: piece ${k + 1} of ${pieces}: ${why.error?.evalue ?? why.status}`,
      traceback: [],
    },
  });
  if (pieces !== Math.ceil(bytes / STAGE_PIECE_BYTES)) return lost(0, { status: "error", error: { ename: "Error", evalue: `a staged answer of ${bytes} bytes cannot be in ${pieces} pieces`, traceback: [] } });
  const started = performance.now();
  const chunks: string[] = [];
  let done = 0;
  progress?.(done, bytes);
  for (let k = 0; k < pieces; k++) {
    const p = await runRequest(t.worker, pieceSpec(t, id, k, pieces), { sink: control.sink, interrupted: control.interrupted });
    const got = p.status === "ok" && !p.answerError ? Piece.safeParse(p.answer) : undefined;
    if (!got?.success) {
      // The worker frees it itself on a failed piece call; after an interrupt or a bad answer, ask.
      if (p.status !== "lost" && !p.answerError) await runRequest(t.worker, pieceSpec(t, id, -1, pieces), { sink: null }).catch(() => undefined);
      return lost(k, p.status !== "ok" ? p : { status: "error", error: p.answerError ?? { ename: "Error", evalue: "the worker gave no piece", traceback: [] } });
    }
    chunks.push(got.data.piece);
    done += got.data.piece.length;
    progress?.(done, bytes);
  }
  const text = chunks.join("");
  const durationMs = o.durationMs + (performance.now() - started);
  let answer: unknown;
  try {
    if (text.length !== bytes) throw new Error(`${text.length} bytes arrived of ${bytes}`);
    answer = JSON.parse(text);
  } catch (e) {
    return { ...lost(pieces - 1, { status: "error", error: { ename: "Error", evalue: (e as Error).message, traceback: [] } }), durationMs };
  }
  return { ...o, answer, durationMs };
}
