/**
 * Keeps a kernel's iopub traffic under the Jupyter Server's IOPub rate limits, so a burst of
 * worker output is delayed instead of dropped. The server (jupyter_server
 * `ZMQChannelsWebsocketConnection._limit_rate`) counts, per client connection over a sliding
 * window of `rate_limit_window` seconds, every iopub message except status/comm_open/execute_input,
 * and the bytes of stream messages; past `iopub_msg_rate_limit` or `iopub_data_rate_limit` it
 * drops messages until the rate falls. Pacing by the same rule, with headroom, means nothing is
 * dropped, while occasional output goes out at once (the window is empty then).
 */
import { sleep as wait } from "../src/util/timing";

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

/** One message waiting for the window. */
interface Waiting {
  counted: boolean;
  size: number;
  send: () => Promise<void>;
  resolve: () => void;
  reject: (e: unknown) => void;
}

/**
 * Sends messages each after the window has room for it. Messages are kept in order per parent
 * request (an `idle` status must follow its cell's output); between parents the newest request goes
 * first, so a new cell's busy/result/idle never waits behind a backlog of an older cell's relayed
 * worker output (measured: a master's cells took ~2.8 s while a worker flooded, ~0.2 s with this).
 */
export class Pacer {
  private readonly sent: { at: number; bytes: number }[] = [];
  private windowBytes = 0;
  /** Waiting messages per parent msg id. */
  private readonly lanes = new Map<string, Waiting[]>();
  /** When each recent parent was first seen (a lane that empties and refills keeps its age). */
  private readonly firstSeen = new Map<string, number>();
  private seq = 0;
  private pumping = false;

  constructor(
    private readonly limits: PaceLimits,
    private readonly now: () => number = () => Date.now(),
    private readonly sleep: (ms: number) => Promise<void> = wait,
  ) {}

  /**
   * Queues `send` for a message of `msgType` whose frames total `bytes`, answering the request
   * `parent` (its msg id; "" for none); resolves once sent.
   */
  send(msgType: string, bytes: number, send: () => Promise<void>, parent = ""): Promise<void> {
    const counted = !UNCOUNTED.has(msgType);
    const size = msgType === "stream" ? bytes : 0;
    // Nothing queued and room in the window: send synchronously. A cell that prints and then
    // computes without yielding must still get its print out (a promise chain would wait for it).
    if (this.queued === 0 && this.inflight === 0 && (!counted || this.fits(size))) {
      if (counted) this.record(size);
      return this.track(send());
    }
    this.queued++;
    if (!this.firstSeen.has(parent)) {
      this.firstSeen.set(parent, ++this.seq);
      // Bounded: forget the oldest parents that have nothing waiting.
      for (const k of this.firstSeen.keys()) {
        if (this.firstSeen.size <= 256) break;
        if (!this.lanes.has(k)) this.firstSeen.delete(k);
      }
    }
    return new Promise<void>((resolve, reject) => {
      const lane = this.lanes.get(parent);
      const item: Waiting = { counted, size, send, resolve, reject };
      if (lane) lane.push(item);
      else this.lanes.set(parent, [item]);
      void this.pump();
    });
  }

  private queued = 0;
  // zeromq refuses a send while another is still in progress: only one at a time, ever.
  private inflight = 0;

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      // Let a send already in progress (the synchronous fast path) finish first.
      while (this.inflight > 0) await this.lastSend.catch(() => undefined);
      while (this.lanes.size > 0) {
        let key = "";
        let newest = -1;
        for (const k of this.lanes.keys()) {
          const age = this.firstSeen.get(k) ?? 0;
          if (age > newest) [key, newest] = [k, age];
        }
        const lane = this.lanes.get(key)!;
        const item = lane.shift()!;
        if (lane.length === 0) this.lanes.delete(key);
        try {
          if (item.counted) await this.admit(item.size);
          await this.track(item.send());
          item.resolve();
        } catch (e) {
          item.reject(e);
        } finally {
          this.queued--;
        }
      }
    } finally {
      this.pumping = false;
    }
  }

  private lastSend: Promise<void> = Promise.resolve();

  private track(p: Promise<void>): Promise<void> {
    this.inflight++;
    this.lastSend = p.finally(() => this.inflight--);
    return this.lastSend;
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

/** Total size of a message's frames, in bytes (what the server's data rate limit counts). */
export function frameBytes(frames: readonly Frame[]): number {
  let bytes = 0;
  for (const f of frames) bytes += typeof f === "string" ? Buffer.byteLength(f) : f.length;
  return bytes;
}

/** The `msg_type`, parent msg id and total size of a signed Jupyter message's frames (identities, `<IDS|MSG>`, hmac, header, parent header, ...). */
export function describeFrames(frames: readonly Frame[]): { msgType: string; bytes: number; parent: string } {
  const bytes = frameBytes(frames);
  const delim = frames.findIndex((f) => f.toString() === "<IDS|MSG>");
  let msgType = "";
  let parent = "";
  try {
    msgType = (JSON.parse(frames[delim + 2].toString()) as { msg_type?: string }).msg_type ?? "";
    parent = (JSON.parse(frames[delim + 3].toString()) as { msg_id?: string }).msg_id ?? "";
  } catch {
    /* not a Jupyter message: counted like any other */
  }
  return { msgType, bytes, parent };
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
    const { msgType, bytes, parent } = describeFrames(frames);
    return pacer.send(msgType, bytes, () => socket.send(frames), parent);
  };
  return new Proxy(socket, {
    get(target, prop) {
      if (prop === "send") return send;
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}
