/**
 * Push and pull over the data channel (channel.ts), the requests that start them on each worker,
 * the message fallback (the same bytes in staged pieces under the websocket limit) and the
 * progress display. execute.ts decides when to use them and runs the requests.
 */
import type { OutputSink } from "../display/sink";
import { liveDisplay, type LiveDisplay } from "../display/live";
import { UsageError } from "../errors";
import type { RequestSpec } from "../workers/request";
import type { Target } from "../workers/targets";
import { dataChannel, encodeManifest, type Destination, type OutPart, type Transfer } from "./channel";
import { partBytes, partOf, valuesOf } from "./parts";
import { INLINE_BYTES, JS_TAKE, jsAwaitRuntime, jsRuntimeCall, PY_HAS_NUMPY, pyPull, pyRecv, pyStage, readReply, STAGE_PIECE_BYTES, wireArg } from "./runtime";
import { jsonBase64, toWire } from "./values";

type Family = "python" | "javascript";
const family = (t: Target): Family => (t.language === "python" ? "python" : "javascript");

/** The parts of one push, built once per language family (views of typed arrays and Buffers, not copies). */
export class PushParts {
  private readonly built = new Map<string, OutPart[]>();

  /** `shared`: every target gets the same values (built once per language), else each its own. */
  constructor(
    private readonly valuesFor: (t: Target) => Readonly<Record<string, unknown>>,
    private readonly names: readonly string[],
    private readonly what: string,
    private readonly shared = true,
  ) {}

  /** The parts for `t`. @throws UsageError `bad_option` naming a value that cannot go there. */
  for(t: Target): OutPart[] {
    const f = family(t);
    const key = `${this.shared ? "" : t.id}:${f}`;
    let parts = this.built.get(key);
    if (!parts) {
      const values = this.valuesFor(t);
      parts = this.names.map((n) => partOf(n, values[n], f, f === "python" ? `${this.what} to a Python worker` : this.what));
      this.built.set(key, parts);
    }
    return parts;
  }

  /**
   * Whether `t` gets them over the data channel: when they are bigger than one message should
   * carry, or binary for a Python worker (JSON carries no typed array).
   */
  channel(t: Target): boolean {
    const parts = this.for(t);
    return partBytes(parts) > INLINE_BYTES || (family(t) === "python" && parts.some((p) => p.kind === "typed" || p.kind === "buffer"));
  }

  /** Whether `t` is a Python worker that needs numpy for them. */
  needsNumpy(t: Target): boolean {
    return family(t) === "python" && this.for(t).some((p) => p.kind === "typed");
  }
}

/** The code that installs the JavaScript runtime (if needed), then awaits one of its calls. */
export function jsAwait(t: Target, call: string): Pick<RequestSpec, "code" | "precompiled"> {
  return { code: `${jsRuntimeCall("exact", t.language === "typescript")};\n${jsAwaitRuntime(call)}`, precompiled: t.precompiled };
}

const base = { silent: true, storeHistory: false, stopOnError: false };

/** The request that makes `t` receive `transfer` (a push). */
export function recvSpec(t: Target, transfer: Transfer): RequestSpec {
  const what = "the pushed values";
  if (t.language === "python") return { ...base, what, code: "", reply: pyRecv(jsonBase64(transfer.offer)) };
  return { ...base, what, ...jsAwait(t, `recv(${wireArg(toWire(transfer.offer, "an offer"))})`), reply: JS_TAKE };
}

/** The request asking `t` for globals `names`, offering `transfer` for big or binary ones. */
export function pullSpec(t: Target, names: readonly string[], transfer: Transfer | undefined): RequestSpec {
  const what = "pull";
  const arg = { names, ...(transfer ? { offer: transfer.offer } : {}) };
  if (t.language === "python") return { ...base, what, code: "", reply: pyPull(jsonBase64(arg)) };
  return { ...base, what, ...jsAwait(t, `pullTo(${wireArg(toWire(arg, "pull: names"))})`), reply: JS_TAKE };
}

/** The request asking a Python worker whether it has numpy. */
export function numpySpec(): RequestSpec {
  return { ...base, what: "a numpy check", code: "", reply: PY_HAS_NUMPY };
}

/** True when a {@link numpySpec} answer says numpy is there. */
export function hasNumpy(answer: unknown): boolean {
  const a = readReply(answer);
  return !!a && "value" in a && a.value === true;
}

/**
 * What a channel request's answer says: `unreachable` (the worker could not connect: use
 * messages), `channel` (the values went over it) or `inline` (they came in the reply).
 */
export function channelAnswer(answer: unknown): "unreachable" | "channel" | "inline" {
  const a = readReply(answer);
  if (a && "unreachable" in a) return "unreachable";
  if (a && "channel" in a) return "channel";
  return "inline";
}

/** The values a pull transfer received. @throws Error when none arrived (the worker said they went). */
export function pulledValues(t: Target, transfer: Transfer | undefined): Record<string, unknown> {
  if (!transfer?.result) throw new Error(`worker ${t.name} said it sent its values over the data channel, but none arrived`);
  return valuesOf(transfer.result);
}

/** Calls a caller's progress callback (if any) with `worker`'s bytes; a callback that throws is ignored. Never throws. */
export function tell(onProgress: ((worker: string, done: number, total: number) => void) | undefined, worker: string, done: number, total: number): void {
  try {
    onProgress?.(worker, done, total);
  } catch {
    /* a broken callback must not break the transfer */
  }
}

/** Offers one transfer per target (`send(t)` parts to send, or `undefined` to receive), on the channel at `host`. */
export async function offer(host: string, targets: readonly Target[], send: (t: Target) => OutPart[] | undefined, onProgress?: (worker: string, done: number, total: number) => void, into?: (i: number) => Destination | undefined): Promise<Transfer[]> {
  const ch = dataChannel(host);
  const out: Transfer[] = [];
  for (const [i, t] of targets.entries()) {
    const tr = await ch.transfer(send(t), into?.(i));
    if (onProgress) tr.onProgress = (p) => tell(onProgress, t.name, p.done, p.total);
    out.push(tr);
  }
  return out;
}

/** The number of staged pieces `parts` take (the message fallback). */
export function pieceCount(parts: readonly OutPart[]): number {
  return Math.max(1, Math.ceil(stagedBytes(parts) / STAGE_PIECE_BYTES));
}

/** The bytes of the stream staged pieces carry for `parts`: the manifest, then every body. */
export function stagedBytes(parts: readonly OutPart[]): number {
  return encodeManifest(parts).length + partBytes(parts);
}

/** Piece `k` of the channel's byte stream for `parts` (manifest, then every body), base64. Built on demand: one piece in memory at a time. */
function piece(parts: readonly OutPart[], k: number): string {
  const manifest = encodeManifest(parts);
  const start = k * STAGE_PIECE_BYTES;
  const end = start + STAGE_PIECE_BYTES;
  const out: Uint8Array[] = [];
  let at = 0;
  for (const b of [manifest, ...parts.map((p) => p.body)]) {
    const s = Math.max(start, at);
    const e = Math.min(end, at + b.length);
    if (s < e) out.push(b.subarray(s - at, e - at));
    at += b.length;
  }
  return Buffer.concat(out).toString("base64");
}

/** The request carrying staged piece `k` of `parts` to `t` (the last one binds every value). */
export function stageSpec(t: Target, id: string, parts: readonly OutPart[], k: number, count: number): RequestSpec {
  const what = `piece ${k + 1} of ${count} of the pushed values`;
  const last = k === count - 1;
  if (t.language === "python") return { ...base, what, code: "", reply: pyStage(jsonBase64({ id, piece: piece(parts, k), last })) };
  return { ...base, what, ...jsAwait(t, `stage(${wireArg(id)}, ${wireArg(piece(parts, k))}, ${last})`) };
}

/** A numpy check that failed: the error naming the workers (nothing was sent). */
export function noNumpy(call: string, workers: readonly string[]): UsageError {
  return new UsageError(
    `${call}: a typed array reaches a Python worker as a numpy array, and numpy is not installed on worker${workers.length > 1 ? "s" : ""} ${workers.join(", ")} (pip install numpy there); nothing was sent`,
    { code: "bad_option", details: { workers } },
  );
}

const MiB = (b: number) => (b / (1 << 20)).toFixed(1);

/**
 * Shows `transfers`' progress in place (bytes done / total per worker) once they have run for
 * `afterMs`; the returned function stops it (showing the final state if anything was shown). A
 * transfer of total 0 (its size not known yet: an answer not staged, a manifest not read) has no
 * row, and nothing shows while none has one. Never throws.
 */
export function showProgress(sink: OutputSink | undefined, targets: readonly Target[], transfers: readonly (Pick<Transfer, "progress"> | undefined)[], afterMs = 1000): () => void {
  if (!sink) return () => undefined;
  let shown: LiveDisplay | undefined;
  const text = () =>
    targets
      .flatMap((t, i) => {
        const tr = transfers[i];
        // a transfer whose size is not known yet (nothing staged, no manifest) has no row yet
        return tr && tr.progress.total > 0 ? [`[${t.name}] ${MiB(tr.progress.done)} / ${MiB(tr.progress.total)} MiB`] : [];
      })
      .join("\n");
  const tick = () => {
    const rows = text();
    if (!rows && !shown) return;
    const bundle = { "text/plain": `sense data transfer\n${rows}` };
    if (shown) shown.update(bundle);
    else shown = liveDisplay(sink, bundle);
  };
  let timer: NodeJS.Timeout | undefined;
  const first = setTimeout(() => {
    tick();
    timer = setInterval(tick, 500);
    timer.unref();
  }, afterMs);
  first.unref();
  return () => {
    clearTimeout(first);
    if (timer) clearInterval(timer);
    if (shown) tick();
  };
}

/**
 * Progress of answers (or values) that come in staged pieces, one row per target in `sink` after
 * ~1 s ({@link showProgress}) and each report told to `onProgress`: `report(i)` is the progress
 * callback for target `i`'s request; `stop()` ends the display with its final state. Never throws.
 */
export function stagedProgress(sink: OutputSink | undefined, targets: readonly Target[], onProgress?: (worker: string, done: number, total: number) => void): { report(i: number): (done: number, total: number) => void; stop(): void } {
  const staged = targets.map(() => ({ progress: { done: 0, total: 0 } }));
  const stop = showProgress(sink, targets, staged);
  return {
    report: (i) => (done, total) => {
      staged[i].progress = { done, total };
      tell(onProgress, targets[i].name, done, total);
    },
    stop,
  };
}

/**
 * A `map` chunk of one item too big for a message: the item goes over the data channel (a typed
 * array or Buffer as its own bytes), and the results come back over it when they are big too.
 * `call` runs the chunk; `answer` reads its reply as a `{ b64 }` chunk answer; `close` ends both
 * transfers (always call it).
 */
export async function bigChunk(host: string, t: Target, fnId: string, item: unknown, start: number, interrupted: Promise<unknown>): Promise<{ call: string; answer: (raw: unknown) => { b64: string } | undefined; close: () => void }> {
  const [send, back] = [...(await offer(host, [t], () => [partOf("item", item, "javascript", `map: item ${start}`)])), ...(await offer(host, [t], () => undefined))];
  const close = () => {
    send.cancel();
    back.cancel();
  };
  void interrupted.then(() => close());
  const arg = wireArg(toWire({ offer: send.offer, back: back.offer }, "an offer"));
  return {
    call: jsAwait(t, `runFrom("${fnId}", ${arg}, ${start})`).code,
    answer: (raw) => {
      const a = readReply(raw);
      if (a && "b64" in a) return a;
      if (a && "channel" in a && back.result) return { b64: Buffer.from((back.result[0]?.body ?? new Uint8Array())).toString("base64") };
      return undefined;
    },
    close,
  };
}
