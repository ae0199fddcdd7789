/**
 * The direct data channel between the master and its workers (issue #22): values of any size as
 * binary, outside the Jupyter Server's 10 MiB websocket messages and without base64.
 *
 * The master listens on demand (TCP, on the address its workers reach it at, loopback for local
 * workers) while at least one transfer is pending. A transfer is offered to one worker in a small
 * runtime call on its shell channel: a random transfer id, a one-time 256-bit token and the
 * master's address ({@link ChannelOffer}). The worker's runtime connects; both sides prove they
 * know the token (challenge–response, HMAC-SHA256 over both nonces, so neither side ever sends
 * it), then the sender writes a length-prefixed manifest ({@link PartHeader}s) and each part's
 * raw bytes, and the receiver answers one ack byte once it holds every byte. The receiver builds
 * and binds values only after that, so a transfer cut anywhere changes nothing. Anything that is
 * not the protocol (an unknown id, a wrong proof, a malformed or oversized manifest, a stall)
 * closes the connection; nothing it sent is used.
 *
 * The worker side of the same protocol is in runtime.ts (JavaScript and Python).
 */
import * as crypto from "node:crypto";
import * as net from "node:net";

/** First bytes a worker sends: protocol name and version. */
export const CHANNEL_MAGIC = Buffer.from("SNSD\x01", "latin1");
const ID_BYTES = 16;
const NONCE_BYTES = 16;
const MAC_BYTES = 32;
/** A manifest bigger than this is not one (names and a few numbers per part). */
export const MAX_MANIFEST_BYTES = 1 << 20;
/**
 * Limits on connections that have not proven a token (half-open), so that a flood of them (idle
 * sockets, a port scan) holds no more than a few file descriptors and timers and cannot keep a
 * real worker out: a worker sends its hello as soon as it connects and finishes the handshake in
 * one round trip.
 */
export interface ChannelLimits {
  /** Connections that have not yet named a pending transfer, at most; over it the oldest is closed. */
  maxUnidentified: number;
  /** A connection that has not named a pending transfer (its hello) after this long is closed. */
  helloMs: number;
  /** A connection that has not proven the token after this long is closed. */
  handshakeMs: number;
}

/** The defaults: a worker's hello takes a loopback or LAN round trip, not seconds. */
export const CHANNEL_LIMITS: Readonly<ChannelLimits> = { maxUnidentified: 32, helloMs: 2_000, handshakeMs: 10_000 };

/** How a part's bytes are to be read. */
export type PartKind = "typed" | "buffer" | "v8" | "json" | "text";
const KINDS: readonly string[] = ["typed", "buffer", "v8", "json", "text"];

/** The typed arrays that travel as their raw bytes (little-endian, as on every platform Node and numpy run on here). */
export const TYPED_ARRAYS = {
  Int8Array,
  Uint8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  Float32Array,
  Float64Array,
  BigInt64Array,
  BigUint64Array,
} as const;
export type TypedArrayName = keyof typeof TYPED_ARRAYS;
export type AnyTypedArray = InstanceType<(typeof TYPED_ARRAYS)[TypedArrayName]>;

/** The name of `v`'s typed array class when it is exactly one of {@link TYPED_ARRAYS} (not a subclass, not a Buffer), else undefined. */
export function typedArrayName(v: unknown): TypedArrayName | undefined {
  if (!ArrayBuffer.isView(v) || Buffer.isBuffer(v)) return undefined;
  // By tag and constructor name, not identity: v8.deserialize builds them in Node's own realm,
  // which differs from a vm context's (a test runner's) while being the same class.
  const tag = Object.prototype.toString.call(v).slice(8, -1);
  if (!Object.prototype.hasOwnProperty.call(TYPED_ARRAYS, tag)) return undefined;
  const ctor = (Object.getPrototypeOf(v) as { constructor?: { name?: unknown } } | null)?.constructor;
  return ctor?.name === tag ? (tag as TypedArrayName) : undefined;
}

/** One value in a transfer, as the manifest describes it. */
export interface PartHeader {
  name: string;
  kind: PartKind;
  /** The typed array's class (kind `typed`). */
  type?: TypedArrayName;
  /** An n-d array's shape (kind `typed`; absent for a flat typed array): its product is the element count. */
  shape?: number[];
  bytes: number;
}

/** A part to send: its header and a view of its bytes (not a copy). */
export interface OutPart extends PartHeader {
  body: Uint8Array;
}

/** A part received: its header and its bytes in memory of its own (an ArrayBuffer of exactly `bytes` for kind `typed`). */
export interface InPart extends PartHeader {
  body: Uint8Array;
}

/**
 * Where a receive puts the parts a manifest announces: one buffer per part of exactly its byte
 * count, or `undefined` for memory of the part's own. May wait (gather lays out its output once
 * every worker's manifest is known).
 */
export type Destination = (headers: readonly PartHeader[]) => Promise<readonly (Uint8Array | undefined)[]>;

/** What a worker needs to reach one transfer: it travels inside the runtime call, as data. */
export interface ChannelOffer {
  host: string;
  port: number;
  /** Base64 of the transfer id. */
  id: string;
  /** Base64 of the one-time token (never leaves the master otherwise, never logged). */
  token: string;
}

/** Bytes moved so far by one transfer. */
export interface TransferProgress {
  done: number;
  total: number;
}

/** A pending transfer to or from one worker. */
export interface Transfer {
  readonly offer: ChannelOffer;
  /** Settles when the other side holds every byte (send) or when every byte arrived (receive). */
  readonly done: Promise<InPart[]>;
  /** Set synchronously when `done` resolves: the parts received (`[]` for a send). */
  readonly result: InPart[] | undefined;
  /** True once a worker proved the token. */
  readonly connected: boolean;
  readonly progress: TransferProgress;
  /** Called as bytes move (each piece written, or each chunk read). */
  onProgress?: (p: TransferProgress) => void;
  /** Ends the transfer (closing its connection); `done` rejects with `reason` unless it settled. */
  cancel(reason?: Error): void;
}

/** Manifest bytes: little-endian u32 length, then UTF-8 JSON of the headers. */
export function encodeManifest(parts: readonly PartHeader[]): Buffer {
  const json = Buffer.from(JSON.stringify({ parts: parts.map(({ name, kind, type, shape, bytes }) => ({ name, kind, ...(type ? { type } : {}), ...(shape ? { shape } : {}), bytes })) }), "utf8");
  const head = Buffer.alloc(4);
  head.writeUInt32LE(json.length, 0);
  return Buffer.concat([head, json]);
}

/**
 * The headers in a manifest's JSON, checked: every field of a known kind and type, byte counts
 * that are whole, non-negative, safe and a multiple of the element size.
 * @throws Error describing the first thing wrong.
 */
export function parseManifest(json: Buffer): PartHeader[] {
  const m: unknown = JSON.parse(json.toString("utf8"));
  const parts = (m as { parts?: unknown })?.parts;
  if (!Array.isArray(parts)) throw new Error("manifest has no parts");
  return parts.map((p: unknown) => {
    const h = p as Partial<Record<keyof PartHeader, unknown>>;
    if (typeof h?.name !== "string" || typeof h.kind !== "string" || !KINDS.includes(h.kind)) throw new Error("bad part header");
    if (typeof h.bytes !== "number" || !Number.isSafeInteger(h.bytes) || h.bytes < 0) throw new Error("bad part size");
    if (h.kind === "typed") {
      if (typeof h.type !== "string" || !Object.prototype.hasOwnProperty.call(TYPED_ARRAYS, h.type)) throw new Error("bad typed array type");
      const size = TYPED_ARRAYS[h.type as TypedArrayName].BYTES_PER_ELEMENT;
      if (h.bytes % size) throw new Error("typed array size is not a whole number of elements");
      if (h.shape === undefined) return { name: h.name, kind: "typed", type: h.type as TypedArrayName, bytes: h.bytes };
      if (!isShape(h.shape, h.bytes / size)) throw new Error("bad shape");
      return { name: h.name, kind: "typed", type: h.type as TypedArrayName, shape: h.shape, bytes: h.bytes };
    }
    return { name: h.name, kind: h.kind as PartKind, bytes: h.bytes };
  });
}

/** Most dimensions an n-d array may have (numpy's own limit is 64). */
export const MAX_DIMENSIONS = 64;

/** True when `shape` is a list of at most {@link MAX_DIMENSIONS} whole, non-negative sizes whose product is `count`. */
export function isShape(shape: unknown, count: number): shape is number[] {
  if (!Array.isArray(shape) || shape.length > MAX_DIMENSIONS) return false;
  let n = 1;
  for (const d of shape as unknown[]) {
    if (typeof d !== "number" || !Number.isSafeInteger(d) || d < 0) return false;
    n *= d;
  }
  return n === count;
}

/** A destination being filled: its bytes, how many are in, and who hears of them. */
interface Fill {
  dst: Uint8Array;
  off: number;
  onBytes?: (n: number) => void;
}

/**
 * Reads exact byte counts from a socket as they arrive. Attached {@link direct}ly (Node's onread:
 * the kernel reads into the buffer {@link next} gives), the bytes of the destination being filled
 * land in it with no copy and no allocation per read; bytes read while nothing is being filled
 * (the handshake, a manifest) go to a scratch buffer and are copied out. Attached through "data"
 * events, each chunk is copied once, into its destination.
 */
class SocketReader {
  private readonly queue: Buffer[] = [];
  private failed: Error | undefined;
  private wake: (() => void) | undefined;
  private target: Fill | undefined;
  private readonly scratch = Buffer.allocUnsafe(64 << 10);

  /** Starts reading `socket`: `direct` when its reads come through {@link next} and {@link got}. */
  attach(socket: net.Socket, direct: boolean): void {
    if (!direct) {
      socket.on("data", (c: Buffer) => {
        this.queue.push(c);
        this.poke();
      });
    }
    const end = (e?: Error) => {
      this.failed ??= e ?? new Error("the connection ended early");
      this.poke();
    };
    socket.on("error", end);
    socket.on("close", () => end());
  }

  /** The buffer the socket's next read goes into. */
  next = (): Uint8Array => {
    const t = this.target;
    return t && !this.queue.length && t.off < t.dst.length ? t.dst.subarray(t.off) : this.scratch;
  };

  /** `n` bytes were read into `buf` (a buffer {@link next} gave). */
  got = (n: number, buf: Uint8Array): void => {
    const t = this.target;
    if (buf !== this.scratch) {
      if (t) {
        t.off += n;
        t.onBytes?.(n);
      }
    } else {
      let c = this.scratch.subarray(0, n);
      if (t && !this.queue.length) {
        const k = Math.min(n, t.dst.length - t.off);
        t.dst.set(c.subarray(0, k), t.off);
        t.off += k;
        t.onBytes?.(k);
        c = c.subarray(k);
      }
      if (c.length) this.queue.push(Buffer.from(c));
    }
    this.poke();
  };

  private poke(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  /** Fills `dst`, calling `onBytes` with each count that arrived. @throws the connection's error when it ends first. */
  async into(dst: Uint8Array, onBytes?: (n: number) => void): Promise<Uint8Array> {
    const t: Fill = { dst, off: 0, onBytes };
    try {
      while (t.off < dst.length) {
        const c = this.queue[0];
        if (!c) {
          if (this.failed) throw this.failed;
          this.target = t;
          await new Promise<void>((r) => (this.wake = r));
          continue;
        }
        const n = Math.min(c.length, dst.length - t.off);
        dst.set(n === c.length ? c : c.subarray(0, n), t.off);
        t.off += n;
        if (n === c.length) this.queue.shift();
        else this.queue[0] = c.subarray(n);
        onBytes?.(n);
      }
    } finally {
      if (this.target === t) this.target = undefined;
    }
    return dst;
  }

  read(n: number): Promise<Buffer> {
    return this.into(Buffer.allocUnsafe(n)) as Promise<Buffer>;
  }
}

/**
 * `raw`'s connection (accepted paused) as a socket whose reads land where `reader` says (Node's
 * onread, which net.Server does not offer for the sockets it accepts), or `undefined` where that
 * cannot be done (Deno; a socket without a handle): then `raw` stays, read through "data" events.
 */
function adopt(raw: net.Socket, reader: SocketReader): net.Socket | undefined {
  const r = raw as unknown as { _handle?: object | null };
  if (!r._handle || "Deno" in globalThis) return undefined;
  const handle = r._handle;
  r._handle = null;
  // the server forgets the connection (its count), which now belongs to the new socket
  raw.destroy();
  const opts = { handle, onread: { buffer: () => reader.next(), callback: (n: number, b: Uint8Array) => reader.got(n, b) } };
  return new net.Socket(opts as unknown as net.SocketConstructorOpts);
}

/** HMAC-SHA256 proof of the token for one side (`m` master, `w` worker) over the id and both nonces. */
export function proof(token: Buffer, side: "m" | "w", id: Buffer, workerNonce: Buffer, masterNonce: Buffer): Buffer {
  return crypto.createHmac("sha256", token).update(side).update(id).update(workerNonce).update(masterNonce).digest();
}

interface Pending {
  id: Buffer;
  token: Buffer;
  send: readonly OutPart[] | undefined;
  into: Destination | undefined;
  settle: (e: Error | undefined, parts?: InPart[]) => void;
  transfer: TransferImpl;
  socket?: net.Socket;
}

interface TransferImpl extends Transfer {
  result: InPart[] | undefined;
  connected: boolean;
}

/**
 * The master's listener. One per address, listening only while transfers are pending (and never
 * keeping the process alive).
 */
export class DataChannel {
  private server: net.Server | undefined;
  private listening: Promise<number> | undefined;
  private readonly pending = new Map<string, Pending>();
  /** Connections that have not named a pending transfer yet, oldest first (a Set keeps insertion order). */
  private readonly unidentified = new Set<net.Socket>();
  private readonly limits: ChannelLimits;

  /** `limits` overrides {@link CHANNEL_LIMITS} (tests). */
  constructor(
    readonly host: string,
    limits: Partial<ChannelLimits> = {},
  ) {
    this.limits = { ...CHANNEL_LIMITS, ...limits };
  }

  /** How many connections have not yet named a pending transfer (at most `maxUnidentified`). */
  get unidentifiedCount(): number {
    return this.unidentified.size;
  }

  /**
   * Offers a transfer: `send` parts to the worker that connects with it, or (no `send`) receives
   * the parts it sends, into memory `into` gives (else their own).
   */
  async transfer(send?: readonly OutPart[], into?: Destination): Promise<Transfer> {
    const port = await this.listen();
    const id = crypto.randomBytes(ID_BYTES);
    const token = crypto.randomBytes(32);
    const key = id.toString("hex");
    let settle!: Pending["settle"];
    const total = send ? send.reduce((s, p) => s + p.bytes, 0) : 0;
    const transfer: TransferImpl = {
      offer: { host: this.host, port, id: id.toString("base64"), token: token.toString("base64") },
      done: undefined as unknown as Promise<InPart[]>,
      result: undefined,
      connected: false,
      progress: { done: 0, total },
      cancel: (reason) => settle(reason ?? new Error("transfer cancelled")),
    };
    let settled = false;
    (transfer as { done: Promise<InPart[]> }).done = new Promise<InPart[]>((resolve, reject) => {
      settle = (e, parts) => {
        if (settled) return;
        settled = true;
        const p = this.pending.get(key);
        this.pending.delete(key);
        if (e) {
          p?.socket?.destroy();
          reject(e);
        } else {
          transfer.result = parts ?? [];
          resolve(transfer.result);
        }
        this.idle();
      };
    });
    // an unobserved cancel is not an unhandled rejection: callers read `done` when they need it
    transfer.done.catch(() => undefined);
    this.pending.set(key, { id, token, send, into, settle, transfer });
    return transfer;
  }

  private listen(): Promise<number> {
    if (this.listening) return this.listening;
    const server = net.createServer({ pauseOnConnect: true }, (s) => this.accept(s));
    this.server = server;
    this.listening = new Promise<number>((resolve, reject) => {
      server.once("error", reject);
      server.listen({ host: this.host, port: 0 }, () => {
        server.off("error", reject);
        server.unref();
        resolve((server.address() as net.AddressInfo).port);
      });
    });
    this.listening.catch(() => {
      this.server = undefined;
      this.listening = undefined;
    });
    return this.listening;
  }

  private idle(): void {
    if (this.pending.size || !this.server) return;
    this.server.close();
    this.server = undefined;
    this.listening = undefined;
  }

  /** One connection: never throws, never lets a malformed peer affect a transfer it did not prove. */
  private accept(raw: net.Socket): void {
    raw.on("error", () => undefined);
    const reader = new SocketReader();
    const adopted = adopt(raw, reader);
    const socket = adopted ?? raw;
    reader.attach(socket, adopted !== undefined);
    if (!adopted) raw.resume();
    socket.setNoDelay(true);
    socket.on("error", () => undefined);
    // Bounded: over the cap the oldest silent connection goes (a worker's hello arrives at once,
    // so the ones that go are idle), and none stays past helloMs without naming a transfer.
    this.unidentified.add(socket);
    socket.once("close", () => this.unidentified.delete(socket));
    while (this.unidentified.size > this.limits.maxUnidentified) {
      const oldest = this.unidentified.values().next().value as net.Socket;
      this.unidentified.delete(oldest);
      oldest.destroy();
    }
    const timer = setTimeout(() => socket.destroy(), this.limits.helloMs);
    timer.unref();
    void this.serve(socket, reader, timer).catch(() => socket.destroy());
  }

  private async serve(socket: net.Socket, reader: SocketReader, helloTimer: NodeJS.Timeout): Promise<void> {
    const hello = await reader.read(CHANNEL_MAGIC.length + ID_BYTES + NONCE_BYTES);
    if (!hello.subarray(0, CHANNEL_MAGIC.length).equals(CHANNEL_MAGIC)) throw new Error("not the protocol");
    const id = hello.subarray(CHANNEL_MAGIC.length, CHANNEL_MAGIC.length + ID_BYTES);
    const p = this.pending.get(id.toString("hex"));
    if (!p || p.socket) throw new Error("no such transfer");
    // It knows a pending transfer's random id (which only its offer carries): out of the capped
    // pool, with the rest of the handshake's time to prove the token.
    this.unidentified.delete(socket);
    clearTimeout(helloTimer);
    const timer = setTimeout(() => socket.destroy(), this.limits.handshakeMs);
    timer.unref();
    const nw = hello.subarray(CHANNEL_MAGIC.length + ID_BYTES);
    const nm = crypto.randomBytes(NONCE_BYTES);
    socket.write(Buffer.concat([nm, proof(p.token, "m", p.id, nw, nm)]));
    const theirs = await reader.read(MAC_BYTES);
    if (!crypto.timingSafeEqual(theirs, proof(p.token, "w", p.id, nw, nm))) throw new Error("wrong proof");
    // proven: this connection owns the transfer (one-time), and its failures are the transfer's
    if (p.socket || !this.pending.has(id.toString("hex"))) throw new Error("already taken");
    clearTimeout(timer);
    p.socket = socket;
    p.transfer.connected = true;
    try {
      if (p.send) {
        await sendParts(socket, p.send, (n) => {
          p.transfer.progress.done += n;
          p.transfer.onProgress?.(p.transfer.progress);
        });
        const ack = await reader.read(1);
        if (ack[0] !== 1) throw new Error("the worker did not acknowledge the transfer");
        p.settle(undefined, []);
      } else {
        const parts = await receiveParts(socket, reader, p.transfer.progress, () => p.transfer.onProgress?.(p.transfer.progress), p.into);
        p.settle(undefined, parts);
        socket.write(Buffer.from([1]));
      }
      socket.end();
    } catch (e) {
      p.settle(new Error(`data channel: ${(e as Error).message}`));
    }
  }
}

/**
 * Writes a manifest and the parts' bytes, all queued at once: the pieces are views of the parts
 * (no copies, so queueing them costs no memory) and the socket never waits on a callback between
 * two of them. Resolves when the last is handed to the kernel.
 */
function sendParts(socket: net.Socket, parts: readonly OutPart[], onBytes: (n: number) => void): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (socket.destroyed) return reject(new Error("the connection ended early"));
    const onClose = () => reject(new Error("the connection ended early"));
    socket.once("close", onClose);
    const done = (e?: Error | null) => {
      socket.off("close", onClose);
      if (e) reject(e);
      else resolve();
    };
    // pieces of 8 MiB: progress is known as each is written
    const PIECE = 8 << 20;
    const pieces: Uint8Array[] = [encodeManifest(parts)];
    for (const p of parts) for (let off = 0; off < p.body.length; off += PIECE) pieces.push(p.body.subarray(off, Math.min(off + PIECE, p.body.length)));
    pieces.forEach((piece, i) => {
      const last = i === pieces.length - 1;
      socket.write(piece, (e) => {
        if (!e && i > 0) onBytes(piece.length);
        if (e || last) done(e);
      });
    });
  });
}

/** Reads a manifest and every part into the memory `into` gives, else into memory of its own. @throws Error for a malformed manifest or an early end. */
async function receiveParts(socket: net.Socket, reader: SocketReader, progress: TransferProgress, moved: () => void, into?: Destination): Promise<InPart[]> {
  const len = (await reader.read(4)).readUInt32LE(0);
  if (len > MAX_MANIFEST_BYTES) throw new Error("manifest too large");
  const headers = parseManifest(await reader.read(len));
  progress.total = headers.reduce((s, h) => s + h.bytes, 0);
  // paused while the destination is decided: the worker's bytes wait in its socket, not in our memory
  if (into) socket.pause();
  const given = into ? await into(headers) : [];
  if (into) socket.resume();
  const parts: InPart[] = [];
  for (const [i, h] of headers.entries()) {
    const mine = given[i];
    const body = mine && mine.length === h.bytes ? mine : h.kind === "typed" ? new Uint8Array(new ArrayBuffer(h.bytes)) : Buffer.allocUnsafeSlow(h.bytes);
    await reader.into(body, (n) => {
      progress.done += n;
      moved();
    });
    parts.push({ ...h, body });
  }
  return parts;
}

const channels = new Map<string, DataChannel>();

/** The process's channel on `host` (created on first use; it listens only while transfers are pending). */
export function dataChannel(host: string): DataChannel {
  let c = channels.get(host);
  if (!c) channels.set(host, (c = new DataChannel(host)));
  return c;
}
