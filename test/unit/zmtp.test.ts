/**
 * The TypeScript ZMTP sockets (src/backends/direct/zmtp.ts) against libzmq's own (the `zeromq`
 * addon): the handshake, multipart messages both ways with the DEALER's identity, long frames,
 * a SUB's subscription, connecting before the peer listens.
 */
import * as net from "node:net";
import * as zmq from "zeromq";
import { SocketKit, zmtpSockets, ZmtpError } from "../../src/backends/direct/zmtp";

// libzmq's sockets have the shape the kernel client asks for (checked by the compiler).
const libzmq: SocketKit = zmq;
void libzmq;

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function next(it: AsyncIterator<Buffer[]>): Promise<string[]> {
  const r = await it.next();
  if (r.done) throw new Error("the socket closed");
  return r.value.map((b) => b.toString("utf8"));
}

describe("ZMTP sockets in TypeScript, against libzmq", () => {
  const closers: (() => void)[] = [];
  afterEach(() => {
    for (const c of closers.splice(0)) c();
  });

  it("a DEALER talks to a ROUTER both ways: multipart, its identity, frames over 255 bytes", async () => {
    const port = await freePort();
    const router = new zmq.Router({ linger: 0 });
    closers.push(() => router.close());
    await router.bind(`tcp://127.0.0.1:${port}`);
    const dealer = new zmtpSockets.Dealer({ routingId: "client-7", linger: 0 });
    closers.push(() => dealer.close());
    dealer.connect(`tcp://127.0.0.1:${port}`);
    const big = "x".repeat(70_000);
    await dealer.send(["<IDS|MSG>", "sig", big]);
    const [identity, ...parts] = await router.receive();
    expect(identity.toString()).toBe("client-7");
    expect(parts.map((p) => p.toString())).toEqual(["<IDS|MSG>", "sig", big]);
    await router.send([identity, "reply", big]);
    expect(await next(dealer[Symbol.asyncIterator]())).toEqual(["reply", big]);
  });

  it("a SUB gets what a PUB publishes once subscribed, and nothing for a topic it did not ask for", async () => {
    const port = await freePort();
    const pub = new zmq.XPublisher({ linger: 0 });
    closers.push(() => pub.close());
    await pub.bind(`tcp://127.0.0.1:${port}`);
    const sub = new zmtpSockets.Subscriber({ linger: 0 });
    closers.push(() => sub.close());
    sub.subscribe("kernel.");
    sub.connect(`tcp://127.0.0.1:${port}`);
    // The publisher hears the subscription (the event to wait for), then publishes.
    const [subscription] = await pub.receive();
    expect(subscription[0]).toBe(1);
    expect(subscription.subarray(1).toString()).toBe("kernel.");
    await pub.send(["other.topic", "dropped"]);
    await pub.send(["kernel.status", "idle"]);
    expect(await next(sub[Symbol.asyncIterator]())).toEqual(["kernel.status", "idle"]);
  });

  it("connects before the peer listens and sends what was queued, in order", async () => {
    const port = await freePort();
    const dealer = new zmtpSockets.Dealer({ routingId: "early", linger: 0 });
    closers.push(() => dealer.close());
    dealer.connect(`tcp://127.0.0.1:${port}`);
    await dealer.send(["one"]);
    await dealer.send(["two"]);
    const router = new zmq.Router({ linger: 0 });
    closers.push(() => router.close());
    await router.bind(`tcp://127.0.0.1:${port}`);
    expect((await router.receive()).map((b) => b.toString())).toEqual(["early", "one"]);
    expect((await router.receive()).map((b) => b.toString())).toEqual(["early", "two"]);
    await dealer.send(["three"]);
    expect((await router.receive()).map((b) => b.toString())).toEqual(["early", "three"]);
  });

  it("close() ends a pending read and refuses sends; a non-TCP address is refused", async () => {
    const dealer = new zmtpSockets.Dealer({ routingId: "x", linger: 0 });
    dealer.connect(`tcp://127.0.0.1:${await freePort()}`);
    const reading = dealer[Symbol.asyncIterator]().next();
    dealer.close();
    await expect(reading).resolves.toEqual({ value: undefined, done: true });
    await expect(dealer.send(["late"])).rejects.toBeInstanceOf(ZmtpError);
    expect(() => new zmtpSockets.Dealer({ routingId: "y", linger: 0 }).connect("ipc:///tmp/k")).toThrow(ZmtpError);
  });
});

describe("ZMTP sockets against a hostile peer", () => {
  /** A TCP server whose every connection gets `answer`; resolves each connection's close in order. */
  async function hostile(answer: (c: net.Socket) => void) {
    const closes: Promise<void>[] = [];
    let connected: () => void = () => undefined;
    const second = new Promise<void>((r) => (connected = r));
    let n = 0;
    const server = net.createServer((c) => {
      closes.push(new Promise((r) => c.once("close", () => r())));
      c.on("error", () => undefined);
      c.resume(); // read what the client sends, so its going away is seen
      if (++n === 2) connected();
      answer(c);
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    return { server, port: (server.address() as net.AddressInfo).port, closes, second };
  }

  it.each([
    ["bytes that are not ZMTP", (c: net.Socket) => c.write(Buffer.alloc(64, 0x41))],
    ["a security mechanism other than NULL", (c: net.Socket) => c.write(Buffer.concat([Buffer.from([0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0x7f, 3, 0]), Buffer.from("CURVE".padEnd(20, "\0")), Buffer.alloc(32)]))],
    [
      "a frame that claims 2^40 bytes",
      (c: net.Socket) => {
        const g = Buffer.alloc(64);
        g[0] = 0xff;
        g[9] = 0x7f;
        g[10] = 3;
        g.write("NULL", 12);
        const huge = Buffer.alloc(9);
        huge[0] = 0x02;
        huge.writeBigUInt64BE(2n ** 40n, 1);
        c.write(Buffer.concat([g, huge]));
      },
    ],
  ])("drops a peer that sends %s, without throwing, and dials again", async (_what, answer) => {
    const h = await hostile(answer);
    const dealer = new zmtpSockets.Dealer({ routingId: "x", linger: 0 });
    try {
      dealer.connect(`tcp://127.0.0.1:${h.port}`);
      await h.second; // the first connection was dropped and the socket dialled again
      await h.closes[0];
      await expect(dealer.send(["still usable"])).resolves.toBeUndefined();
    } finally {
      dealer.close();
      await new Promise<void>((r) => h.server.close(() => r()));
    }
  });
});
