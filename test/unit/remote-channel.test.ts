/**
 * The master's data channel (src/remote/channel.ts) over real loopback sockets: a peer that proves
 * the token gets (or gives) the parts; garbage, truncated frames, unknown ids and wrong proofs are
 * dropped without settling the transfer or stopping the listener, and a transfer cut mid-stream
 * fails instead of returning part of a value.
 */
import * as crypto from "node:crypto";
import * as net from "node:net";
import { CHANNEL_LIMITS, CHANNEL_MAGIC, DataChannel, encodeManifest, proof, type ChannelOffer, type OutPart } from "../../src/remote/channel";
import { partOf, valuesOf } from "../../src/remote/parts";

/** A client speaking the worker's side of the protocol; `wrong` sends a bad proof. */
async function connect(o: ChannelOffer, opts: { wrong?: boolean } = {}): Promise<{ s: net.Socket; read: (n: number) => Promise<Buffer> }> {
  const s = net.connect({ host: o.host, port: o.port });
  await new Promise((r) => s.once("connect", r));
  const q: Buffer[] = [];
  let ended = false;
  let wake: (() => void) | undefined;
  s.on("data", (c: Buffer) => {
    q.push(c);
    wake?.();
  });
  s.on("close", () => {
    ended = true;
    wake?.();
  });
  s.on("error", () => undefined);
  const read = async (n: number): Promise<Buffer> => {
    for (;;) {
      const have = Buffer.concat(q);
      if (have.length >= n) {
        q.length = 0;
        if (have.length > n) q.push(have.subarray(n));
        return have.subarray(0, n);
      }
      if (ended) throw new Error("closed");
      await new Promise<void>((r) => (wake = r));
    }
  };
  const id = Buffer.from(o.id, "base64");
  const token = Buffer.from(o.token, "base64");
  const nw = crypto.randomBytes(16);
  s.write(Buffer.concat([CHANNEL_MAGIC, id, nw]));
  const m = await read(48);
  expect(m.subarray(16).equals(proof(token, "m", id, nw, m.subarray(0, 16)))).toBe(true);
  s.write(opts.wrong ? crypto.randomBytes(32) : proof(token, "w", id, nw, m.subarray(0, 16)));
  return { s, read };
}

/** Resolves when `s` is closed by the other side. */
const closed = (s: net.Socket) => new Promise<void>((r) => (s.destroyed ? r() : s.once("close", () => r())));

function raw(host: string, port: number, bytes: Buffer): Promise<void> {
  return new Promise((resolve) => {
    const s: net.Socket = net.connect({ host, port }, () => s.end(bytes));
    s.on("error", () => resolve());
    s.on("close", () => resolve());
  });
}

test("a proven peer receives a push's parts exactly; garbage, unknown ids and wrong proofs are dropped and the transfer still works", async () => {
  const ch = new DataChannel("127.0.0.1");
  const value = new Float64Array(100_000).map((_, i) => i / 3);
  const parts: OutPart[] = [partOf("x", value, "javascript", "t"), partOf("o", { a: [1, 2], m: new Map([[1, 2]]) }, "javascript", "t"), partOf("e", Buffer.alloc(0), "javascript", "t")];
  const tr = await ch.transfer(parts);
  const { host, port } = tr.offer;
  // another pending transfer keeps the listener up after this one ends
  const keep = await ch.transfer();
  expect(keep.offer.port).toBe(port);
  // garbage, a truncated hello, the right magic with an unknown id, a hello then silence cut short
  await raw(host, port, crypto.randomBytes(1000));
  await raw(host, port, CHANNEL_MAGIC.subarray(0, 3));
  await raw(host, port, Buffer.concat([CHANNEL_MAGIC, crypto.randomBytes(32)]));
  await raw(host, port, Buffer.concat([CHANNEL_MAGIC, Buffer.from(tr.offer.id, "base64")]));
  // a peer with the id but not the token: dropped before any data
  const bad = await connect(tr.offer, { wrong: true });
  await closed(bad.s);
  expect(tr.connected).toBe(false);
  // the real peer
  const good = await connect(tr.offer);
  const len = (await good.read(4)).readUInt32LE(0);
  const manifest = JSON.parse((await good.read(len)).toString()) as { parts: { name: string; kind: string; bytes: number; type?: string }[] };
  expect(manifest.parts.map((p) => p.name)).toEqual(["x", "o", "e"]);
  const got = [];
  for (const p of manifest.parts) {
    const body = new Uint8Array(new ArrayBuffer(p.bytes));
    body.set(await good.read(p.bytes));
    got.push({ ...p, body } as Parameters<typeof valuesOf>[0][number]);
  }
  good.s.write(Buffer.from([1]));
  await expect(tr.done).resolves.toEqual([]);
  const values = valuesOf(got);
  expect(values.x).toEqual(value);
  expect(values.o).toEqual({ a: [1, 2], m: new Map([[1, 2]]) });
  expect(values.e).toEqual(Buffer.alloc(0));
  // one-time: the id is gone once used
  const again = net.connect({ host, port });
  await new Promise((r) => again.once("connect", r));
  again.on("error", () => undefined);
  again.write(Buffer.concat([CHANNEL_MAGIC, Buffer.from(tr.offer.id, "base64"), crypto.randomBytes(16)]));
  await closed(again);
  keep.cancel();
  // with nothing pending the listener is closed
  await expect(raw(host, port, Buffer.from("x"))).resolves.toBeUndefined();
  expect(keep.connected).toBe(false);
});

test("a receive refuses malformed manifests and truncated bodies: the transfer fails, nothing is returned", async () => {
  const ch = new DataChannel("127.0.0.1");
  const cases: Buffer[] = [
    Buffer.from([0, 0, 0x20, 0]), // a manifest length (2 MiB) over the limit
    Buffer.concat([Buffer.from([5, 0, 0, 0]), Buffer.from("{not ")]), // not JSON
    encodeManifest([{ name: "x", kind: "typed", type: "Float64Array", bytes: 7 }]), // not whole elements
    encodeManifest([{ name: "x", kind: "weird" as "v8", bytes: 1 }]), // unknown kind
    encodeManifest([{ name: "x", kind: "typed", type: "Float64Array", shape: [3, 1], bytes: 16 }]), // a shape of 3 elements for 2
    encodeManifest([{ name: "x", kind: "typed", type: "Float64Array", shape: [2.5] as number[], bytes: 16 }]), // not whole sizes
    Buffer.concat([encodeManifest([{ name: "x", kind: "typed", type: "Float64Array", bytes: 80 }]), Buffer.alloc(40)]), // body cut short
  ];
  for (const [i, bytes] of cases.entries()) {
    const tr = await ch.transfer();
    const peer = await connect(tr.offer);
    // the oversized manifest is refused as soon as its length is read, with the connection still open
    if (i === 0) peer.s.write(bytes);
    else peer.s.end(bytes);
    await expect(tr.done).rejects.toThrow(/data channel/);
    expect(tr.result).toBeUndefined();
  }
  // and the listener still serves a good one
  const tr = await ch.transfer();
  const peer = await connect(tr.offer);
  const body = Buffer.from(new Float64Array([1.5, -0, NaN]).buffer);
  peer.s.write(Buffer.concat([encodeManifest([{ name: "x", kind: "typed", type: "Float64Array", bytes: body.length }]), body]));
  const parts = await tr.done;
  expect(await peer.read(1)).toEqual(Buffer.from([1]));
  peer.s.destroy();
  expect(valuesOf(parts).x).toEqual(new Float64Array([1.5, -0, NaN]));
  // an n-d array comes as { shape, data }
  const nd = await ch.transfer();
  const peer2 = await connect(nd.offer);
  const six = Buffer.from(new Int16Array([1, 2, 3, 4, 5, 6]).buffer);
  peer2.s.write(Buffer.concat([encodeManifest([{ name: "m", kind: "typed", type: "Int16Array", shape: [3, 2], bytes: six.length }]), six]));
  const ndParts = await nd.done;
  peer2.s.destroy();
  expect(valuesOf(ndParts).m).toEqual({ shape: [3, 2], data: new Int16Array([1, 2, 3, 4, 5, 6]) });
});

test("cancelling a transfer mid-stream closes its connection and rejects it", async () => {
  const ch = new DataChannel("127.0.0.1");
  const tr = await ch.transfer([partOf("x", new Uint8Array(64 << 20), "javascript", "t")]);
  const peer = await connect(tr.offer);
  await peer.read(1 << 20);
  tr.cancel(new Error("interrupted"));
  await expect(tr.done).rejects.toThrow("interrupted");
  await closed(peer.s);
});

/** Opens `n` connections to `port` that send nothing; resolves once all are connected, with a count of those the master closed. */
async function idleFlood(host: string, port: number, n: number): Promise<{ sockets: net.Socket[]; closedBy: (k: number) => Promise<void> }> {
  let closedCount = 0;
  let waiter: { k: number; resolve: () => void } | undefined;
  const sockets = await Promise.all(
    Array.from({ length: n }, () => {
      const s = net.connect({ host, port });
      s.on("error", () => undefined);
      s.on("close", () => {
        closedCount++;
        if (waiter && closedCount >= waiter.k) waiter.resolve();
      });
      return new Promise<net.Socket>((r) => {
        s.once("connect", () => r(s));
        s.once("close", () => r(s));
      });
    }),
  );
  const closedBy = (k: number) => new Promise<void>((resolve) => (closedCount >= k ? resolve() : (waiter = { k, resolve })));
  return { sockets, closedBy };
}

test("a flood of idle connections is bounded (the oldest closed over the cap, every one after the hello deadline) and a real transfer still goes through", async () => {
  const ch = new DataChannel("127.0.0.1");
  const value = new Uint8Array(4 << 20).map((_, i) => i % 251);
  const tr = await ch.transfer([partOf("x", value, "javascript", "t")]);
  // another pending transfer keeps the listener (and its port) up after the first ends
  const keep = await ch.transfer();
  const { host, port } = tr.offer;
  const flood: net.Socket[] = [];
  try {
    const first = await idleFlood(host, port, 200);
    flood.push(...first.sockets);
    // over the cap the oldest silent ones are closed at once, not after the handshake's 10 s
    await first.closedBy(200 - CHANNEL_LIMITS.maxUnidentified);
    expect(ch.unidentifiedCount).toBeLessThanOrEqual(CHANNEL_LIMITS.maxUnidentified);
    // a worker connecting now completes its handshake and gets every byte, though more idle ones arrive meanwhile
    const good = await connect(tr.offer);
    const second = idleFlood(host, port, 100);
    const len = (await good.read(4)).readUInt32LE(0);
    await good.read(len);
    const got = await good.read(value.length);
    good.s.write(Buffer.from([1]));
    await expect(tr.done).resolves.toEqual([]);
    expect(got.equals(value)).toBe(true);
    const more = await second;
    flood.push(...more.sockets);
    expect(ch.unidentifiedCount).toBeLessThanOrEqual(CHANNEL_LIMITS.maxUnidentified);
    // and none stays past the hello deadline (well before the handshake's 10 s)
    const t0 = Date.now();
    await Promise.all(flood.map(closed));
    expect(Date.now() - t0).toBeLessThan(CHANNEL_LIMITS.handshakeMs);
  } finally {
    for (const s of flood) s.destroy();
    tr.cancel();
    keep.cancel();
  }
}, 15_000);

test("a receive with a destination puts each part's bytes straight into the memory it gives (gather's one output), after it decides", async () => {
  const ch = new DataChannel("127.0.0.1");
  const out = new Float64Array(6);
  let asked!: (decide: () => void) => void;
  const wasAsked = new Promise<() => void>((r) => (asked = r));
  const seen: string[] = [];
  const tr = await ch.transfer(undefined, async (headers) => {
    seen.push(...headers.map((h) => `${h.name}:${h.bytes}`));
    // the destination may wait (for other workers' manifests); the bytes wait in the socket meanwhile
    await new Promise<void>((r) => asked(r));
    return [new Uint8Array(out.buffer, 8, 32), new Uint8Array(3)];
  });
  const peer = await connect(tr.offer);
  const body = Buffer.from(new Float64Array([1, 2, 3, 4]).buffer);
  const small = Buffer.from("hey");
  // the manifest and both bodies in one write, as a worker's kernel may deliver them
  peer.s.write(Buffer.concat([encodeManifest([{ name: "x", kind: "typed", type: "Float64Array", bytes: 32 }, { name: "b", kind: "buffer", bytes: 2 }]), body, small.subarray(0, 2)]));
  const decide = await wasAsked;
  expect(seen).toEqual(["x:32", "b:2"]);
  decide();
  const parts = await tr.done;
  expect(await peer.read(1)).toEqual(Buffer.from([1]));
  peer.s.destroy();
  // the first landed in `out` itself; the second's given memory had the wrong size, so it got its own
  expect(parts[0].body.buffer).toBe(out.buffer);
  expect(Array.from(out)).toEqual([0, 1, 2, 3, 4, 0]);
  expect(Buffer.from(parts[1].body).toString()).toBe("he");
});
