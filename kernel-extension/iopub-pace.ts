/**
 * Keeps a kernel's iopub traffic under the Jupyter Server's IOPub rate limits, so a burst of
 * worker output is delayed instead of dropped. The server (jupyter_server
 * `ZMQChannelsWebsocketConnection._limit_rate`) counts, per client connection over a sliding
 * window of `rate_limit_window` seconds, every iopub message except status/comm_open/execute_input,
 * and the bytes of stream messages; past `iopub_msg_rate_limit` or `iopub_data_rate_limit` it
 * drops messages until the rate falls. Pacing by the same rule, with headroom, means nothing is
 * dropped, while occasional output goes out at once (the window is empty then).
 */

/** The server's limits (defaults: jupyter_server 2.x, 1 MB/s, 1000 msgs/s, 3 s window). */
export interface PaceLimits {
  /** Stream bytes per second; 0 = no limit. */
  bytesPerSec: number;
  /** Counted messages per second; 0 = no limit. */
  msgsPerSec: number;
  windowSec: number;
}

/** Message types the server does not count. */
const UNCOUNTED = new Set(["status", "comm_open", "execute_input"]);

/**
 * The limits to pace by: 80 % of the server defaults (headroom for clock skew between us and the
 * server), or `SENSE_IOPUB_DATA_RATE_LIMIT` / `SENSE_IOPUB_MSG_RATE_LIMIT` / `SENSE_IOPUB_WINDOW`
 * when the server was configured otherwise (0 turns a limit off).
 */
export function paceLimits(env: NodeJS.ProcessEnv = process.env): PaceLimits {
  const num = (name: string, dflt: number) => {
    const v = Number(env[name]);
    return env[name] !== undefined && env[name] !== "" && Number.isFinite(v) && v >= 0 ? v : dflt;
  };
  return {
    bytesPerSec: 0.8 * num("SENSE_IOPUB_DATA_RATE_LIMIT", 1_000_000),
    msgsPerSec: 0.8 * num("SENSE_IOPUB_MSG_RATE_LIMIT", 1_000),
    windowSec: num("SENSE_IOPUB_WINDOW", 3) || 3,
  };
}

/** Sends messages in order, each after the window has room for it. */
export class Pacer {
  private readonly sent: { at: number; bytes: number }[] = [];
  private windowBytes = 0;
  private chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly limits: PaceLimits,
    private readonly now: () => number = () => Date.now(),
    private readonly sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
  ) {}

  /**
   * Queues `send` for a message of `msgType` whose frames total `bytes`; resolves once sent.
   * Order is kept for every message, counted or not (an `idle` status must follow its output).
   */
  send(msgType: string, bytes: number, send: () => Promise<void>): Promise<void> {
    const counted = !UNCOUNTED.has(msgType);
    const size = msgType === "stream" ? bytes : 0;
    // Nothing queued and room in the window: send synchronously. A cell that prints and then
    // computes without yielding must still get its print out (a promise chain would wait for it).
    if (this.queued === 0 && this.inflight === 0 && (!counted || this.fits(size))) {
      if (counted) this.record(size);
      return this.track(send());
    }
    this.queued++;
    const step = async () => {
      try {
        if (counted) await this.admit(size);
        await this.track(send());
      } finally {
        this.queued--;
      }
    };
    this.chain = this.chain.then(step, step);
    return this.chain;
  }

  private queued = 0;
  // zeromq refuses a send while another is still in progress: only one at a time, ever.
  private inflight = 0;

  private track(p: Promise<void>): Promise<void> {
    this.inflight++;
    return p.finally(() => this.inflight--);
  }

  private expire(t: number): void {
    const windowMs = this.limits.windowSec * 1000;
    while (this.sent.length && this.sent[0].at + windowMs <= t) this.windowBytes -= this.sent.shift()!.bytes;
  }

  private fits(size: number): boolean {
    const { bytesPerSec, msgsPerSec, windowSec } = this.limits;
    this.expire(this.now());
    const maxBytes = bytesPerSec > 0 ? bytesPerSec * windowSec : Infinity;
    const maxMsgs = msgsPerSec > 0 ? msgsPerSec * windowSec : Infinity;
    return this.sent.length === 0 || (this.sent.length + 1 <= maxMsgs && this.windowBytes + size <= maxBytes);
  }

  private record(size: number): void {
    this.sent.push({ at: this.now(), bytes: size });
    this.windowBytes += size;
  }

  private async admit(size: number): Promise<void> {
    const windowMs = this.limits.windowSec * 1000;
    // An empty window always admits (a single message bigger than the window must still go).
    while (!this.fits(size)) await this.sleep(Math.max(1, this.sent[0].at + windowMs - this.now()));
    this.record(size);
  }
}

type Frame = Buffer | string;

/** The `msg_type` and total size of a signed Jupyter message's frames (identities, `<IDS|MSG>`, hmac, header, ...). */
export function describeFrames(frames: readonly Frame[]): { msgType: string; bytes: number } {
  let bytes = 0;
  for (const f of frames) bytes += typeof f === "string" ? Buffer.byteLength(f) : f.length;
  const delim = frames.findIndex((f) => f.toString() === "<IDS|MSG>");
  let msgType = "";
  try {
    msgType = (JSON.parse(frames[delim + 2].toString()) as { msg_type?: string }).msg_type ?? "";
  } catch {
    /* not a Jupyter message: counted like any other */
  }
  return { msgType, bytes };
}

/**
 * A ZeroMQ publisher whose `send` is serialised and paced. tslab fires iopub sends without
 * awaiting them; zeromq 6 refuses a send while another is in progress and a PUB socket drops
 * past its high-water mark, so a burst of prints lost most of its lines. Through this, every
 * message waits its turn (and the server's rate window) instead. zeromq sockets are sealed, so
 * this is a proxy that forwards everything else to the socket.
 */
export function pacedPublisher<S extends { send(frames: Frame[]): Promise<void> }>(socket: S, pacer = new Pacer(paceLimits())): S {
  const send = (frames: Frame[]) => {
    const { msgType, bytes } = describeFrames(frames);
    return pacer.send(msgType, bytes, () => socket.send(frames));
  };
  return new Proxy(socket, {
    get(target, prop) {
      if (prop === "send") return send;
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}
