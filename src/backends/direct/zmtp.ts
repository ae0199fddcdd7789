/**
 * ZeroMQ's wire protocol (ZMTP 3.0, NULL mechanism: https://rfc.zeromq.org/spec/23/) over TCP, in
 * TypeScript, for the two client sockets a kernel client needs: DEALER (shell, control) and SUB
 * (iopub). The direct backend uses it where the native `zeromq` addon cannot be trusted: in Deno,
 * whose N-API/libuv shims crash the addon (SIGSEGV, seen in a Deno master about one run in eight
 * while it stopped workers). It behaves as libzmq's sockets do for a client: connecting never
 * fails, it retries until the kernel listens (and again after the kernel goes away), and what is
 * sent before the connection is up waits in order.
 */
import * as net from "node:net";

/** The part of zeromq 6's socket API that the kernel client uses: connect, read, close. */
export interface ClientSocket extends AsyncIterable<Buffer[]> {
  connect(address: string): void;
  close(): void;
}

/** A DEALER socket: a {@link ClientSocket} that sends multipart messages. */
export interface DealerSocket extends ClientSocket {
  send(frames: (Buffer | string)[]): Promise<void>;
}

/** A SUB socket: a {@link ClientSocket} that subscribes to topics. */
export interface SubscriberSocket extends ClientSocket {
  /** Subscribes to messages whose first frame starts with one of `prefixes` (none: every message). */
  subscribe(...prefixes: string[]): void;
}

/** A socket factory: zeromq 6's constructors have this shape too. */
export interface SocketKit {
  Dealer: new (options: { routingId: string; linger: number }) => DealerSocket;
  Subscriber: new (options: { linger: number }) => SubscriberSocket;
}

/** What went wrong on the wire (a peer that does not speak ZMTP 3). */
export class ZmtpError extends Error {
  override name = "ZmtpError";
}

const RECONNECT_MS = 100; // libzmq's ZMQ_RECONNECT_IVL default
const MAX_FRAME = 2 ** 31; // one frame above 2 GiB is not a Jupyter message

const FLAG_MORE = 0x01;
const FLAG_LONG = 0x02;
const FLAG_COMMAND = 0x04;

/** The 64-byte greeting: signature, version 3.0, mechanism NULL, as a client. */
function greeting(): Buffer {
  const g = Buffer.alloc(64);
  g[0] = 0xff;
  g[9] = 0x7f;
  g[10] = 3;
  g[11] = 0;
  g.write("NULL", 12, "ascii");
  return g;
}

/** One frame (message part or command) with its flags. */
function frame(body: Buffer, flags: number): Buffer {
  if (body.length > 255) {
    const head = Buffer.alloc(9);
    head[0] = flags | FLAG_LONG;
    head.writeBigUInt64BE(BigInt(body.length), 1);
    return Buffer.concat([head, body]);
  }
  return Buffer.concat([Buffer.from([flags, body.length]), body]);
}

/** The READY command with the socket's properties (name: 1-byte length; value: 4-byte length). */
function ready(props: Record<string, Buffer>): Buffer {
  const parts: Buffer[] = [Buffer.from([5]), Buffer.from("READY", "ascii")];
  for (const [name, value] of Object.entries(props)) {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(value.length);
    parts.push(Buffer.from([name.length]), Buffer.from(name, "ascii"), len, value);
  }
  return frame(Buffer.concat(parts), FLAG_COMMAND);
}

/** Parses `tcp://host:port`. @throws ZmtpError for any other transport. */
function tcpAddress(address: string): { host: string; port: number } {
  const m = /^tcp:\/\/(\[[^\]]+\]|[^:]+):(\d+)$/.exec(address);
  if (!m) throw new ZmtpError(`only tcp://host:port addresses are supported, not ${address}`);
  return { host: m[1].replace(/^\[|\]$/g, ""), port: Number(m[2]) };
}

/**
 * One client socket: one peer, reconnecting; incoming messages queue until read, outgoing ones
 * until a connection has finished its handshake.
 */
class ZmtpSocket implements DealerSocket {
  private address: { host: string; port: number } | undefined;
  private conn: net.Socket | undefined;
  /** The handshake is done on `conn`: frames may be written. */
  private live = false;
  private closed = false;
  private retry: NodeJS.Timeout | undefined;
  private readonly outbox: Buffer[] = [];
  private readonly inbox: Buffer[][] = [];
  private readonly readers: ((r: IteratorResult<Buffer[]>) => void)[] = [];
  /** Messages the socket sends first on every new connection (a SUB's subscriptions). */
  protected readonly onConnect: Buffer[] = [];

  constructor(private readonly props: Record<string, Buffer>) {}

  connect(address: string): void {
    if (this.address) throw new ZmtpError("this socket is already connected");
    this.address = tcpAddress(address);
    this.dial();
  }

  private dial(): void {
    if (this.closed || !this.address) return;
    const conn = net.connect({ host: this.address.host, port: this.address.port, noDelay: true });
    this.conn = conn;
    let buf: Buffer = Buffer.alloc(0);
    let stage: "greeting" | "ready" | "messages" = "greeting";
    let parts: Buffer[] = [];
    conn.on("connect", () => {
      // Dialling a loopback port nobody listens on yet can connect the socket to itself (TCP
      // simultaneous open, when the OS picked that port as the source): it would hold the very port
      // the kernel is about to bind. Let go of it at once and dial again.
      if (conn.localPort === conn.remotePort && conn.localAddress === conn.remoteAddress) {
        conn.destroy();
        return;
      }
      conn.write(greeting());
    });
    conn.on("data", (chunk: Buffer) => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      try {
        for (;;) {
          if (stage === "greeting") {
            if (buf.length < 64) return;
            if (buf[0] !== 0xff || buf[9] !== 0x7f || buf[10] < 3) throw new ZmtpError("the peer does not speak ZMTP 3");
            if (buf.subarray(12, 32).toString("ascii").replace(/\0+$/, "") !== "NULL") throw new ZmtpError("the peer asks for a security mechanism other than NULL");
            buf = buf.subarray(64);
            conn.write(ready(this.props));
            stage = "ready";
            continue;
          }
          if (buf.length < 2) return;
          const flags = buf[0];
          const long = (flags & FLAG_LONG) !== 0;
          const head = long ? 9 : 2;
          if (buf.length < head) return;
          const size = long ? Number(buf.readBigUInt64BE(1)) : buf[1];
          if (size > MAX_FRAME) throw new ZmtpError(`a frame of ${size} bytes`);
          if (buf.length < head + size) return;
          const body = Buffer.from(buf.subarray(head, head + size));
          buf = buf.subarray(head + size);
          if (flags & FLAG_COMMAND) {
            const nameLen = body[0];
            const name = body.subarray(1, 1 + nameLen).toString("ascii");
            if (stage === "ready") {
              if (name !== "READY") throw new ZmtpError(`expected READY, got ${name}`);
              stage = "messages";
              this.live = true;
              for (const m of this.onConnect) conn.write(m);
              for (const m of this.outbox.splice(0)) conn.write(m);
            } else if (name === "ERROR") {
              throw new ZmtpError(`the peer refused: ${body.subarray(2 + nameLen).toString("utf8")}`);
            }
            // PING/PONG and other commands need no answer from a client that never asks for them.
            continue;
          }
          if (stage !== "messages") throw new ZmtpError("a message before the handshake");
          parts.push(body);
          if (!(flags & FLAG_MORE)) {
            this.deliver(parts);
            parts = [];
          }
        }
      } catch {
        conn.destroy(); // a peer we cannot understand: drop it and dial again, as libzmq does
      }
    });
    conn.on("error", () => undefined); // "close" follows and redials
    conn.on("close", () => {
      if (this.conn === conn) {
        this.conn = undefined;
        this.live = false;
      }
      if (!this.closed) this.retry = setTimeout(() => this.dial(), RECONNECT_MS);
    });
  }

  private deliver(parts: Buffer[]): void {
    if (!this.accepts(parts)) return;
    const reader = this.readers.shift();
    if (reader) reader({ value: parts, done: false });
    else this.inbox.push(parts);
  }

  /** Whether an incoming message is for this socket (a SUB filters by topic). */
  protected accepts(_parts: Buffer[]): boolean {
    return true;
  }

  /** Queues raw bytes to go out once connected, after what is already queued. */
  protected write(bytes: Buffer): void {
    if (this.closed) return;
    if (this.live && this.conn) this.conn.write(bytes);
    else this.outbox.push(bytes);
  }

  /** Writes raw bytes now if the connection is up (else a new connection's {@link onConnect} will). */
  protected writeIfLive(bytes: Buffer): void {
    if (this.live && this.conn) this.conn.write(bytes);
  }

  send(frames: (Buffer | string)[]): Promise<void> {
    if (this.closed) return Promise.reject(new ZmtpError("the socket is closed"));
    const bytes = frames.map((f, i) => frame(typeof f === "string" ? Buffer.from(f, "utf8") : f, i < frames.length - 1 ? FLAG_MORE : 0));
    this.write(Buffer.concat(bytes));
    return Promise.resolve();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.retry);
    this.conn?.destroy();
    this.outbox.length = 0;
    for (const r of this.readers.splice(0)) r({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterator<Buffer[]> {
    return {
      next: () => {
        const m = this.inbox.shift();
        if (m) return Promise.resolve({ value: m, done: false });
        if (this.closed) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve) => this.readers.push(resolve));
      },
      return: () => {
        this.close();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}

/** A DEALER socket (one peer): messages go out as they are, replies come in as they are. */
class Dealer extends ZmtpSocket {
  constructor(options: { routingId: string; linger: number }) {
    super({ "Socket-Type": Buffer.from("DEALER"), Identity: Buffer.from(options.routingId, "utf8") });
  }
}

/** A SUB socket: subscriptions go out as ZMTP 3.0 subscribe messages (0x01 + topic), on every connection. */
class Subscriber extends ZmtpSocket implements SubscriberSocket {
  private readonly topics: Buffer[] = [];

  constructor(_options: { linger: number }) {
    super({ "Socket-Type": Buffer.from("SUB") });
  }

  subscribe(...prefixes: string[]): void {
    for (const prefix of prefixes.length ? prefixes : [""]) {
      const t = Buffer.from(prefix, "utf8");
      this.topics.push(t);
      const msg = frame(Buffer.concat([Buffer.from([1]), t]), 0);
      this.onConnect.push(msg);
      this.writeIfLive(msg);
    }
  }

  protected override accepts(parts: Buffer[]): boolean {
    // A publisher filters too; this holds if it does not (a PUB that got no subscription yet).
    return this.topics.some((t) => parts[0].subarray(0, t.length).equals(t));
  }
}

/** DEALER and SUB sockets in TypeScript, shaped as zeromq 6's. */
export const zmtpSockets: SocketKit = { Dealer, Subscriber };
