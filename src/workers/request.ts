/**
 * One execute request on one worker, end to end: sent on the worker's kernel connection, its
 * output routed to the calling cell (labelled, as worker output always is), its reply and
 * execute_result collected, interrupted at a deadline or when the master is interrupted.
 * See the messaging spec: https://jupyter-client.readthedocs.io/en/stable/messaging.html#execute
 */
import type { OutputSink } from "../protocol/cell";
import type { ExecuteRequest } from "../backends/backend";
import type { Worker } from "./worker";
import { checkWireSize } from "../protocol/limits";
import { isSenseKernel, REMOTE_MIME, REPLY_KEY, RESULT_IN_REPLY_KEY } from "../protocol/marks";
import { denoAnswerCode, isDenoKernel } from "../platform/deno";
import { isMimeBundle } from "../display/bundle";

/** What to send. */
export interface RequestSpec {
  code: string;
  silent: boolean;
  storeHistory: boolean;
  stopOnError: boolean;
  /** A user expression whose value is the runtime's answer ({@link REPLY_KEY}). */
  reply?: string;
  /** Shown in a size error: `the code`, `map chunk 3`. */
  what: string;
  /** JavaScript the master prepared for a Sense kernel (the target's `precompiled`). */
  precompiled?: boolean;
}

/** How a request ended; `lost`: its worker was lost (its kernel died, restarted or was stopped) before it answered. */
export type RequestStatus = "ok" | "error" | "timeout" | "aborted" | "lost";

/** The error of a request, as the kernel reported it (or as Sense describes a lost worker). */
export interface RequestErrorInfo {
  ename: string;
  evalue: string;
  traceback: string[];
}

/** What came back. */
export interface RequestOutcome {
  status: RequestStatus;
  /** The execute_result's MIME bundle, `{}` when there was none. */
  data: Record<string, unknown>;
  executionCount?: number;
  stdout: string;
  stderr: string;
  error?: RequestErrorInfo;
  /**
   * The runtime's answer from `user_expressions` as it came (its MIME data), when asked for and
   * given: the caller reads it (src/remote/runtime.ts `readReply`), this layer does not know its shape.
   */
  answer?: unknown;
  /** An error raised by the reply expression itself. */
  answerError?: RequestErrorInfo;
  durationMs: number;
}

/** When to stop waiting, and where output goes. */
export interface RequestControl {
  /** Where the worker's output is shown (labelled); `null` only keeps it. */
  sink: OutputSink | null;
  /** Interrupt the worker after this many ms (its status is then `timeout`). */
  timeoutMs?: number;
  /** Settles when the master was interrupted: the worker is interrupted too. */
  interrupted?: Promise<unknown>;
  /** How long to wait for the reply after an interrupt, ms (default 10 000). */
  graceMs?: number;
  /** How long to wait for the reply once the kernel went idle after the request, ms (default {@link REPLY_AFTER_IDLE_MS}). */
  replyAfterIdleMs?: number;
}

/**
 * How long a reply may lag its kernel's `idle` (ms) before the request ends as `ReplyLost`. A
 * kernel publishes `idle` right after its reply; a reply that never follows was dropped on the
 * way: through Enterprise Gateway, the Jupyter Server's websocket client to EG takes at most
 * 10 MiB a message (tornado's default), drops the connection on a bigger one and reconnects,
 * and the reply is gone with no error anywhere. Generous: a big reply through a loaded server
 * may arrive seconds after the idle.
 */
export const REPLY_AFTER_IDLE_MS = 30_000;

const wait = (ms: number) => new Promise<"late">((resolve) => setTimeout(() => resolve("late"), ms).unref());

/**
 * Runs `spec` on `channel`. Never rejects for a failure of the code or the worker: those come back
 * as the outcome's `status` and `error`.
 * @throws UsageError `too_large` when the request cannot fit through the server's websocket (nothing is sent).
 */
export async function runRequest(worker: Worker, spec: RequestSpec, control: RequestControl): Promise<RequestOutcome> {
  const info = await worker.kernelInfo().catch(() => undefined);
  if (!isDenoKernel(info?.implementation)) return runOne(worker, spec, control, false, isSenseKernel(info?.implementation));
  // Deno's kernel returns no user_expressions: its answer comes as the execute_result, which a
  // silent request would not send (it stays out of the history: store_history is false). It
  // parents an execute_result to the last request it received, not to the one that made it: a
  // second request in flight would take the first one's answer. So one request at a time.
  const previous = denoQueues.get(worker) ?? Promise.resolve();
  const mine = previous.then(() => runOne(worker, spec, control, spec.reply !== undefined, false));
  denoQueues.set(
    worker,
    mine.then(
      () => undefined,
      () => undefined,
    ),
  );
  return mine;
}

/** The last request queued on each Deno worker (see {@link runRequest}). */
const denoQueues = new WeakMap<Worker, Promise<void>>();

async function runOne(worker: Worker, spec: RequestSpec, control: RequestControl, viaResult: boolean, sense: boolean): Promise<RequestOutcome> {
  const request: ExecuteRequest = {
    code: viaResult && spec.reply !== undefined ? denoAnswerCode(spec.code, spec.reply) : spec.code,
    ...(spec.precompiled ? { precompiled: true } : {}),
    // A Sense kernel then sends the result in its reply, not as execute_input + execute_result:
    // what the server handles per request drops from 5 messages to 3 (marks.ts wantsResultInReply).
    ...(sense && !spec.silent ? { resultInReply: true } : {}),
    silent: viaResult ? false : spec.silent,
    storeHistory: spec.storeHistory,
    stopOnError: spec.stopOnError,
    userExpressions: spec.reply && !viaResult ? { [REPLY_KEY]: spec.reply } : {},
  };
  checkWireSize(spec.what, request);
  const label = worker.output.label;
  const out: RequestOutcome = { status: "ok", data: {}, stdout: "", stderr: "", durationMs: 0 };
  let answer: unknown;
  let idle: () => void = () => undefined;
  const wentIdle = new Promise<void>((resolve) => (idle = resolve));
  let answered: () => void = () => undefined;
  const gotAnswer = new Promise<void>((resolve) => (answered = resolve));
  const started = performance.now();
  // The worker shows the request's output in the calling cell; what it returns is gathered here.
  const sent = worker.send(request, control.sink, (msg) => {
    if (msg.type === "status") idle();
    else if (msg.type === "stream") out[msg.content.name] += msg.content.text;
    else if (msg.type === "execute_result" && viaResult) {
      answer = msg.content.data[REMOTE_MIME];
      answered();
    }
    else if (msg.type === "execute_result") out.data = msg.content.data;
    else if (msg.type === "error") out.error = { ...msg.content };
  });
  if (!sent) return { ...out, status: "lost", error: { ename: "WorkerLost", evalue: `worker ${label} has ended${worker.lossReason ? `: ${worker.lossReason}` : ` (${worker.status})`}`, traceback: [] } };
  const done = sent.future.done.then(
    (reply) => ({ reply }),
    (e: unknown) => ({ lost: e }),
  );
  type Settled = Awaited<typeof done> | "late";
  let stopped: RequestStatus | undefined;
  const interrupt = async (why: RequestStatus): Promise<Settled> => {
    stopped = why;
    try {
      await worker.interrupt();
    } catch {
      /* the kernel is gone: `done` says so */
    }
    return Promise.race([done, wait(control.graceMs ?? 10_000)]);
  };
  let timer: NodeJS.Timeout | undefined;
  const deadline = control.timeoutMs === undefined ? undefined : new Promise<"deadline">((resolve) => (timer = setTimeout(() => resolve("deadline"), control.timeoutMs)));
  const master = control.interrupted?.then(() => "master" as const);
  const afterIdleMs = control.replyAfterIdleMs ?? REPLY_AFTER_IDLE_MS;
  let idleTimer: NodeJS.Timeout | undefined;
  let raced = false;
  // (an idle after the race settled starts no timer)
  const dropped = wentIdle.then(() => new Promise<"dropped">((resolve) => (idleTimer = raced ? undefined : setTimeout(() => resolve("dropped"), afterIdleMs).unref())));
  let settled: Settled | "deadline" | "master" | "dropped" = await Promise.race([done, dropped, ...(deadline ? [deadline] : []), ...(master ? [master] : [])]);
  raced = true;
  if (timer) clearTimeout(timer);
  if (idleTimer) clearTimeout(idleTimer);
  if (settled === "dropped") {
    sent.close();
    out.durationMs = performance.now() - started;
    out.status = "error";
    out.error = {
      ename: "ReplyLost",
      evalue:
        `${label} finished (its kernel went idle) but its reply did not come within ${Math.round(afterIdleMs / 1000)} s: it was lost on the way. ` +
        `The usual cause is a reply bigger than a websocket message (through Enterprise Gateway the Jupyter Server's websocket client to EG takes at most 10 MiB); the worker's state is kept`,
      traceback: [],
    };
    return out;
  }
  if (settled === "deadline") settled = await interrupt("timeout");
  else if (settled === "master") settled = await interrupt("error");
  // Deno's kernel may publish its execute_result after its idle status (seen through a server):
  // an ok reply there is only complete with it.
  if (viaResult && typeof settled === "object" && "reply" in settled && settled.reply.status === "ok" && answer === undefined) {
    await Promise.race([gotAnswer, wait(control.graceMs ?? 10_000)]);
  }
  out.durationMs = performance.now() - started;
  sent.close();
  if (settled === "late") {
    out.status = stopped === "timeout" ? "timeout" : "aborted";
    out.error = { ename: stopped === "timeout" ? "TimeoutError" : "KeyboardInterrupt", evalue: `${label} did not answer within ${Math.round((control.graceMs ?? 10_000) / 1000)} s of being interrupted`, traceback: [] };
    return out;
  }
  if ("lost" in settled) {
    out.status = "lost";
    const why = worker.lossReason ?? "its kernel died, restarted or was stopped";
    out.error = { ename: "WorkerLost", evalue: `worker ${label} was lost while running this: ${why}`, traceback: [] };
    return out;
  }
  const reply = settled.reply as unknown as Record<string, unknown>;
  if (typeof reply.execution_count === "number") out.executionCount = reply.execution_count;
  if (reply.status === "ok") {
    out.status = "ok";
    const result = reply[RESULT_IN_REPLY_KEY] as { data?: unknown } | undefined;
    if (typeof result === "object" && result !== null && isMimeBundle(result.data, { partial: true })) out.data = result.data;
    const entry = ((reply.user_expressions ?? {}) as Record<string, unknown>)[REPLY_KEY] as Record<string, unknown> | undefined;
    if (viaResult) {
      out.answer = answer;
    } else if (entry?.status === "ok") {
      const data = (entry.data ?? {}) as Record<string, unknown>;
      // Python's helper answers through IPython's JSON formatter (`_repr_json_` → application/json).
      out.answer = data[REMOTE_MIME] ?? data["application/json"];
    } else if (entry?.status === "error") {
      out.answerError = errorInfo(entry);
    }
  } else {
    out.status = reply.status === "aborted" ? "aborted" : "error";
    if (reply.status === "error") out.error = errorInfo(reply);
    else out.error ??= { ename: "Aborted", evalue: "not run: an earlier request on this worker failed (stop_on_error)", traceback: [] };
  }
  if (stopped === "timeout") {
    out.status = "timeout";
    const evalue = `interrupted after ${((control.timeoutMs ?? 0) / 1000).toFixed(1)} s; the worker's state is kept`;
    out.error = { ename: "TimeoutError", evalue, traceback: [`TimeoutError: ${evalue}`] };
  }
  return out;
}

function errorInfo(c: Record<string, unknown>): RequestErrorInfo {
  return {
    ename: String(c.ename ?? "Error"),
    evalue: String(c.evalue ?? ""),
    traceback: Array.isArray(c.traceback) ? c.traceback.map(String) : [],
  };
}
