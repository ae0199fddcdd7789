/**
 * The worker side of remote execution, as code the master sends: no worker needs anything
 * installed. Values come back in the execute reply's `user_expressions` (Jupyter messaging:
 * expressions the kernel evaluates after the code and returns as MIME bundles), under one private
 * MIME type, {@link REMOTE_MIME}; the shell reply is neither paced nor rate-limited like iopub.
 *
 * - JavaScript/TypeScript: a small runtime (v8 serialization for `map`, `push`, `pull`) installs
 *   itself on first use under a registered symbol; `execute` needs none (see `prepareRemoteCode`).
 * - Python: a helper executed inside each user expression (stateless: nothing is left in the
 *   worker's namespace), returning an object whose `_repr_json_` IPython's formatter turns into JSON.
 *
 * Values are data, never source: every argument a call carries is base64 ({@link wireArg}: v8 data
 * for JavaScript, UTF-8 JSON for Python) that the runtime decodes, so no character of a value can
 * end a literal or a line (IPython splits lines on U+2028 before it parses a cell, so a JSON string
 * literal pasted into Python ran the rest of a pushed string as code). Python requests go as user
 * expressions, which IPython evaluates without its input transforms; its answers come back as
 * base64 of ASCII JSON ({@link readReply}), so lone surrogates survive Jupyter's UTF-8 messages.
 */
import { z } from "zod";
import { REMOTE_MIME } from "../protocol/marks";
import { LAST_VALUE_KEY } from "../transpile";
import { fromJsonWire, jsonBase64 } from "./values";

/**
 * What the runtime answers, by kind: `value` (JSON-exact), `text` (anything else, as its text),
 * `none` (no value), `b64` (v8-serialized data, base64) and `error` (raised inside the runtime).
 */
export const RuntimeReply = z.union([
  z.object({ value: z.unknown() }).refine((r) => "value" in r),
  z.object({ inexact: z.literal(true), text: z.string().optional() }),
  z.object({ none: z.literal(true) }),
  z.object({ b64: z.string() }),
  z.object({ values: z.record(z.string(), z.unknown()) }),
  // data channel (channel.ts): the worker could not connect (use messages), or the values went over it
  z.object({ unreachable: z.literal(true) }),
  z.object({ channel: z.literal(true) }),
  // an answer too big for one message, kept on the worker: the master fetches its pieces (answer.ts)
  z.object({ staged: z.object({ id: z.string().regex(/^[A-Za-z0-9+/]{16}$/), bytes: z.number().int().positive(), pieces: z.number().int().positive() }) }),
]);
export type RuntimeReply = z.infer<typeof RuntimeReply>;

/** A Python worker's answer as it travels: a {@link RuntimeReply} as base64 of ASCII JSON. */
const PyWireReply = z.object({ json64: z.string() });

/**
 * The runtime's answer in a `user_expressions` bundle's data (JavaScript: the reply itself;
 * Python: it as base64 JSON), or `undefined` when it is not one.
 */
export function readReply(raw: unknown): RuntimeReply | undefined {
  // Only what has the Python wire's key is tried as one: a failed parse builds zod's issues, and
  // most answers (every JavaScript worker's) are not that shape.
  const py = raw !== null && typeof raw === "object" && "json64" in raw ? PyWireReply.safeParse(raw) : { success: false as const };
  let reply: unknown = raw;
  if (py.success) {
    try {
      reply = fromJsonWire(py.data.json64);
    } catch {
      return undefined;
    }
  }
  const parsed = RuntimeReply.safeParse(reply);
  return parsed.success ? parsed.data : undefined;
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * A base64 string as a literal for a runtime call's source (valid in JavaScript and Python):
 * only base64's alphabet ever appears in it.
 * @throws Error when `b64` is not base64 (a bug: every caller encodes its value first).
 */
export function wireArg(b64: string): string {
  if (!BASE64.test(b64)) throw new Error("internal error: a runtime argument must be base64");
  return `"${b64}"`;
}

// v2: arguments became base64 (pull names, map source); a worker may still hold a v1 runtime from another copy of this package.
// v3: the data channel (recv, stage, pullTo). v4: n-d arrays ({ shape, data }) in the channel's manifest.
// v5: staged answers (an answer over STAGE_PIECE_BYTES is kept and fetched in pieces: piece()).
const RUNTIME_KEY = "sense.remote.v5";

/**
 * Values whose parts (serialized) are at most this many bytes go inside the request or reply
 * (one message, no connection); bigger ones over the data channel (channel.ts).
 */
export const INLINE_BYTES = 1 << 20;

/**
 * Pieces of a staged transfer (the message fallback), both ways: a push's bytes (base64) and an
 * answer's ASCII JSON; each well under a websocket message.
 */
export const STAGE_PIECE_BYTES = 4 << 20;

/**
 * The JavaScript runtime, evaluated once per worker (indirect eval, global scope). `exact` says
 * whether JSON carries a value without change (plain objects, dense arrays, finite numbers except
 * -0, strings, booleans, null; no cycles).
 */
const JS_RUNTIME = String.raw`(() => {
  // Deno's kernel has neither require nor process.mainModule: its built-ins come from getBuiltinModule.
  const req = typeof require === "function" ? require : process.mainModule ? process.mainModule.require.bind(process.mainModule) : process.getBuiltinModule;
  const v8 = req("node:v8");
  const vm = req("node:vm");
  const util = req("node:util");
  const path = req("node:path");
  // Captured once: a user's global of the same name cannot change what the runtime calls.
  const geval = eval;
  const net = req("node:net");
  const crypto = req("node:crypto");
  // The data channel (src/remote/channel.ts is the master's side and says the protocol).
  const TYPED = { Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array, Float32Array, Float64Array, BigInt64Array, BigUint64Array };
  const typedName = (v) => {
    if (!ArrayBuffer.isView(v) || Buffer.isBuffer(v)) return undefined;
    const p = Object.getPrototypeOf(v);
    return Object.keys(TYPED).find((k) => TYPED[k].prototype === p);
  };
  // An n-d array ({ shape, data }, parts.ts#NdArray): a shape of whole sizes whose product is the count.
  const isShape = (shape, count) => Array.isArray(shape) && shape.length <= 64 && shape.every((d) => Number.isSafeInteger(d) && d >= 0) && shape.reduce((a, d) => a * d, 1) === count;
  const ndName = (v) => {
    if (v === null || typeof v !== "object" || Array.isArray(v) || Object.getPrototypeOf(v) !== Object.prototype) return undefined;
    const k = Reflect.ownKeys(v);
    const t = k.length === 2 && k.includes("shape") && k.includes("data") ? typedName(v.data) : undefined;
    return t && isShape(v.shape, v.data.length) ? t : undefined;
  };
  const MAGIC = Buffer.from("SNSD\x01", "latin1");
  const fail = (why) => new Error("sense data channel: " + why);
  // Reads exact byte counts from a socket (or, with no socket, from staged chunks). With "direct"
  // (Node's onread option: the kernel reads into the buffer its generator gives) the bytes of a
  // destination being filled land in it straight away, with no copy: a value's bytes in its own
  // ArrayBuffer. Bytes read while nothing waits (the handshake, a manifest) go to a scratch buffer
  // and are copied out.
  const directRead = () => {
    if (globalThis.Deno) return null; // Deno's node:net has no onread: "data" events
    const d = { q: [], target: null, scratch: Buffer.allocUnsafe(65536), poke: () => undefined };
    d.next = () => (d.target && !d.q.length && d.target.off < d.target.dst.length ? d.target.dst.subarray(d.target.off) : d.scratch);
    d.got = (n, buf) => {
      const t = d.target;
      if (buf !== d.scratch) { if (t) t.off += n; }
      else {
        let c = d.scratch.subarray(0, n);
        if (t && !d.q.length) {
          const k = Math.min(n, t.dst.length - t.off);
          t.dst.set(c.subarray(0, k), t.off);
          t.off += k;
          c = c.subarray(k);
        }
        if (c.length) d.q.push(Buffer.from(c));
      }
      d.poke();
    };
    return d;
  };
  const reader = (s, chunks, direct) => {
    const q = direct ? direct.q : chunks || [];
    let err = s ? null : fail("the staged data ended early");
    let wake = null;
    const poke = () => { const w = wake; wake = null; if (w) w(); };
    if (direct) direct.poke = poke;
    else if (s) s.on("data", (c) => { q.push(c); poke(); });
    if (s) {
      s.on("error", (e) => { err = err || e; poke(); });
      s.on("close", () => { err = err || fail("the connection ended early"); poke(); });
    }
    const into = async (dst) => {
      const t = { dst, off: 0 };
      try {
        while (t.off < dst.length) {
          if (!q.length) {
            if (err) throw err;
            if (direct) direct.target = t;
            await new Promise((r) => (wake = r));
            continue;
          }
          const c = q[0];
          const n = Math.min(c.length, dst.length - t.off);
          dst.set(n === c.length ? c : c.subarray(0, n), t.off);
          t.off += n;
          if (n === c.length) q.shift(); else q[0] = c.subarray(n);
        }
      } finally {
        if (direct && direct.target === t) direct.target = null;
      }
      return dst;
    };
    return { into, read: (n) => into(Buffer.allocUnsafe(n)) };
  };
  const open = async (o) => {
    const d = directRead();
    const s = await new Promise((resolve, reject) => {
      const c = net.connect(d ? { host: o.host, port: o.port, onread: { buffer: () => d.next(), callback: (n, b) => d.got(n, b) } } : { host: o.host, port: o.port });
      const no = (e) => { clearTimeout(t); c.destroy(); reject(Object.assign(fail("the master is unreachable: " + (e ? e.message : "timeout")), { senseUnreachable: true })); };
      const t = setTimeout(no, 5000);
      c.once("error", no);
      c.once("connect", () => { clearTimeout(t); c.off("error", no); c.setNoDelay(true); resolve(c); });
    });
    const r = reader(s, null, d);
    try {
      const id = Buffer.from(o.id, "base64");
      const key = Buffer.from(o.token, "base64");
      const nw = crypto.randomBytes(16);
      s.write(Buffer.concat([MAGIC, id, nw]));
      const m = await r.read(48);
      const nm = m.subarray(0, 16);
      const mac = (side) => crypto.createHmac("sha256", key).update(side).update(id).update(nw).update(nm).digest();
      if (!crypto.timingSafeEqual(m.subarray(16), mac("m"))) throw fail("the master did not prove the transfer token");
      s.write(mac("w"));
    } catch (e) {
      s.destroy();
      throw e;
    }
    return { s, r };
  };
  // Every part is read before any is used: the caller binds them all at the end, or none.
  const readParts = async (r) => {
    const len = (await r.read(4)).readUInt32LE(0);
    if (len > 1048576) throw fail("malformed manifest");
    const man = JSON.parse((await r.read(len)).toString("utf8"));
    if (!man || !Array.isArray(man.parts)) throw fail("malformed manifest");
    const vals = new Map();
    for (const p of man.parts) {
      const n = checkName(p.name, true);
      if (!Number.isSafeInteger(p.bytes) || p.bytes < 0) throw fail("malformed manifest");
      if (p.kind === "typed") {
        const T = Object.prototype.hasOwnProperty.call(TYPED, p.type) ? TYPED[p.type] : null;
        if (!T || p.bytes % T.BYTES_PER_ELEMENT) throw fail("malformed manifest");
        if (p.shape !== undefined && !isShape(p.shape, p.bytes / T.BYTES_PER_ELEMENT)) throw fail("malformed manifest");
        const ab = new ArrayBuffer(p.bytes);
        await r.into(new Uint8Array(ab));
        vals.set(n, p.shape === undefined ? new T(ab) : { shape: p.shape, data: new T(ab) });
      } else if (p.kind === "buffer") {
        vals.set(n, await r.into(Buffer.allocUnsafeSlow(p.bytes)));
      } else if (p.kind === "v8") {
        vals.set(n, v8.deserialize(await r.read(p.bytes)));
      } else {
        throw fail("malformed manifest");
      }
    }
    return vals;
  };
  // Reads every part of a connection, then acknowledges with one byte; a failure closes it.
  const receiveAll = async (c) => {
    try {
      const vals = await readParts(c.r);
      await new Promise((resolve) => c.s.end(Buffer.from([1]), resolve));
      return vals;
    } catch (e) {
      c.s.destroy();
      throw e;
    }
  };
  const writeParts = async (s, parts) => {
    const w = (b) => new Promise((resolve, reject) => s.write(b, (e) => (e ? reject(e) : resolve())));
    const man = Buffer.from(JSON.stringify({ parts: parts.map((p) => ({ name: p.name, kind: p.kind, type: p.type, shape: p.shape, bytes: p.body.length })) }), "utf8");
    const head = Buffer.alloc(4);
    head.writeUInt32LE(man.length, 0);
    await w(Buffer.concat([head, man]));
    for (const p of parts) if (p.body.length) await w(p.body);
  };
  const staged = new Map();
  const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
  const checkName = (n, settable) => {
    if (typeof n !== "string" || !NAME.test(n) || (settable && n.startsWith("__"))) throw new TypeError("not a name the sense runtime " + (settable ? "sets" : "reads") + ": " + String(n).slice(0, 80));
    return n;
  };
  const exact = (v, seen = new Set()) => {
    if (v === null || typeof v === "string" || typeof v === "boolean") return true;
    if (typeof v === "number") return Number.isFinite(v) && !Object.is(v, -0);
    if (typeof v !== "object" || seen.has(v)) return false;
    seen.add(v);
    let ok;
    if (Array.isArray(v)) {
      ok = Object.getPrototypeOf(v) === Array.prototype && Object.keys(v).length === v.length && v.every((x) => exact(x, seen));
    } else {
      const p = Object.getPrototypeOf(v);
      ok = (p === Object.prototype || p === null) && Object.getOwnPropertySymbols(v).length === 0 && Object.keys(v).every((k) => exact(v[k], seen));
    }
    seen.delete(v);
    return ok;
  };
  const raw = (r) => ({ ${JSON.stringify(REMOTE_MIME)}: r });
  // Staged answers (the reverse of stage): an answer whose JSON is over a piece is kept here, as
  // ASCII JSON (so that any slice of it is valid UTF-8), under a random id, and the reply says
  // only { staged: { id, bytes, pieces } }; the master fetches it with piece() (src/remote/answer.ts).
  // Freed after its last piece, on a failed piece call, and oldest first beyond KEEP (a map has
  // chunks in flight, each may leave one before the master asks for its pieces).
  const answers = new Map();
  const KEEP = 4;
  const toAscii = (s) => s.replace(/[\u0080-\uffff]/g, (c) => "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0"));
  const box = (r) => {
    let text;
    try { text = JSON.stringify(r); } catch { return raw(r); }
    if (text === undefined || text.length <= ${STAGE_PIECE_BYTES} / 6) return raw(r);
    text = toAscii(text);
    if (text.length <= ${STAGE_PIECE_BYTES}) return raw(r);
    const id = crypto.randomBytes(12).toString("base64");
    answers.set(id, text);
    while (answers.size > KEEP) answers.delete(answers.keys().next().value);
    return raw({ staged: { id, bytes: text.length, pieces: Math.ceil(text.length / ${STAGE_PIECE_BYTES}) } });
  };
  const describe = (e) => ({
    ename: e instanceof Error ? e.name : "Error",
    evalue: e instanceof Error ? e.message : util.inspect(e),
    traceback: e instanceof Error && e.stack ? e.stack.split("\n").filter((l) => !/sense-remote-runtime|node:vm|node:internal/.test(l)) : [],
  });
  const b64 = (x) => v8.serialize(x).toString("base64");
  const unb64 = (s) => v8.deserialize(Buffer.from(s, "base64"));
  const fns = new Map();
  let answer = null;
  const rt = {
    exact,
    // Deno's kernel answers through an execute_result that replaces the value's own (no user_expressions): its text comes along.
    value(v) { return box(v === undefined ? { none: true } : exact(v) ? { value: v } : globalThis.Deno ? { inexact: true, text: util.inspect(v) } : { inexact: true }); },
    last() {
      const k = Symbol.for(${JSON.stringify(LAST_VALUE_KEY)});
      const b = globalThis[k];
      delete globalThis[k];
      return b ? rt.value(b[0]) : box({ none: true });
    },
    take() { const a = answer; answer = null; return a && "piece" in a ? raw(a) : box(a ?? { none: true }); },
    // Piece k of staged answer id (k = -1 frees it); the last piece frees it, and so does any failure.
    piece(id, k) {
      const text = answers.get(id);
      const n = text === undefined ? 0 : Math.ceil(text.length / ${STAGE_PIECE_BYTES});
      if (k === -1 || !Number.isSafeInteger(k) || k < 0 || k >= n) {
        answers.delete(id);
        if (k === -1) { answer = { piece: "" }; return; }
        throw new Error(text === undefined ? "sense: no staged answer " + String(id).slice(0, 40) + " on this worker (it was freed: fetched already, failed, or replaced by newer ones)" : "sense: no piece " + k + " of a staged answer of " + n);
      }
      if (k === n - 1) answers.delete(id);
      answer = { piece: text.slice(k * ${STAGE_PIECE_BYTES}, (k + 1) * ${STAGE_PIECE_BYTES}) };
    },
    // For tests: the ids of the staged answers kept.
    stagedAnswers() { return [...answers.keys()]; },
    def(id, data) {
      const src = unb64(data);
      const opts = { filename: path.join(process.cwd(), "sense-map-fn.js") };
      if (vm.constants && vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER) opts.importModuleDynamically = vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER;
      const fn = new vm.Script("(" + src + "\n)", opts).runInThisContext();
      if (typeof fn !== "function") throw new TypeError("map: fn is not a function on this worker");
      fns.delete(id);
      fns.set(id, fn);
      while (fns.size > 64) fns.delete(fns.keys().next().value);
    },
    // A map chunk of one big item over the data channel (items from "offer", results to "back" when big).
    async runFrom(id, data, start) {
      const o = unb64(data);
      const c = await open(o.offer);
      const vals = await receiveAll(c);
      await rt.run(id, null, start, [vals.get("item")]);
      const payload = Buffer.from(answer.b64, "base64");
      if (payload.length <= ${INLINE_BYTES}) return;
      const b = await open(o.back);
      try {
        await writeParts(b.s, [{ name: "results", kind: "v8", body: payload }]);
        const ack = await b.r.read(1);
        if (ack[0] !== 1) throw fail("the master did not acknowledge the transfer");
      } finally {
        b.s.destroy();
      }
      answer = { channel: true };
    },
    async run(id, data, start, given) {
      const fn = fns.get(id);
      if (!fn) throw new Error("map: the function was not shipped to this worker");
      const items = given || unb64(data);
      const results = [];
      let error;
      for (let i = 0; i < items.length; i++) {
        try {
          let r = fn(items[i], start + i);
          if (r !== null && (typeof r === "object" || typeof r === "function") && typeof r.then === "function") r = await r;
          results.push(r);
        } catch (e) {
          error = { index: start + i, ...describe(e) };
          break;
        }
      }
      let payload;
      try {
        payload = b64({ results, error });
      } catch (e) {
        const bad = results.findIndex((r) => { try { v8.serialize(r); return false; } catch { return true; } });
        const d = describe(e);
        payload = b64({ results: results.slice(0, bad), error: { index: start + bad, ename: d.ename, evalue: "the result cannot be sent back to the master: " + d.evalue, traceback: [] } });
      }
      answer = { b64: payload };
    },
    set(name, value) {
      // The value reaches the assignment as an argument: the global code evaluated is the
      // (validated) name only, and it reads no global of the user's (names starting __ are never set).
      geval("(__sense_value) => { " + checkName(name, true) + " = __sense_value; }")(value);
    },
    push(data) {
      const values = unb64(data);
      for (const name of Object.keys(values)) rt.set(name, values[name]);
    },
    // A push over the data channel: every value is bound only once all of them arrived.
    async recv(data) {
      const o = unb64(data);
      let c;
      try {
        c = await open(o);
      } catch (e) {
        if (e && e.senseUnreachable) { answer = { unreachable: true }; return; }
        throw e;
      }
      const vals = await receiveAll(c);
      for (const [n, v] of vals) rt.set(n, v);
      answer = { none: true };
    },
    // The message fallback: the channel's bytes in pieces (base64), bound by the last call.
    stage(id, data, last) {
      if (typeof id !== "string") throw fail("bad stage id");
      const chunks = staged.get(id) || [];
      staged.delete(id);
      chunks.push(Buffer.from(data, "base64"));
      if (!last) { staged.set(id, chunks); while (staged.size > 16) staged.delete(staged.keys().next().value); return; }
      return readParts(reader(null, chunks)).then((vals) => { for (const [n, v] of vals) rt.set(n, v); });
    },
    async pullTo(data) {
      const o = unb64(data);
      const vals = o.names.map((n) => [n, geval(checkName(n, false))]);
      const parts = [];
      let total = 0;
      for (const [n, v] of vals) {
        const t = typedName(v);
        const nt = t ? undefined : ndName(v);
        let p;
        if (Buffer.isBuffer(v)) p = { name: n, kind: "buffer", body: new Uint8Array(v.buffer, v.byteOffset, v.byteLength) };
        else if (nt) p = { name: n, kind: "typed", type: nt, shape: v.shape, body: new Uint8Array(v.data.buffer, v.data.byteOffset, v.data.byteLength) };
        else if (t) p = { name: n, kind: "typed", type: t, body: new Uint8Array(v.buffer, v.byteOffset, v.byteLength) };
        else {
          try { p = { name: n, kind: "v8", body: v8.serialize(v) }; } catch { p = { name: n, kind: "text", body: Buffer.from(JSON.stringify(util.inspect(v)), "utf8") }; }
        }
        total += p.body.length;
        parts.push(p);
      }
      let c = null;
      if (total > ${INLINE_BYTES} && o.offer) {
        try {
          c = await open(o.offer);
        } catch (e) {
          if (!(e && e.senseUnreachable)) throw e;
        }
      }
      if (!c) {
        const sendable = {};
        for (const [n, v] of vals) {
          try { v8.serialize(v); sendable[n] = { v }; } catch { sendable[n] = { text: util.inspect(v) }; }
        }
        answer = { b64: b64(sendable) };
        return;
      }
      try {
        await writeParts(c.s, parts);
        const ack = await c.r.read(1);
        if (ack[0] !== 1) throw fail("the master did not acknowledge the transfer");
      } finally {
        c.s.destroy();
      }
      answer = { channel: true };
    },
    pull(data) {
      const names = unb64(data);
      const out = {};
      for (const name of names) out[name] = geval(checkName(name, false));
      const sendable = {};
      for (const name of names) {
        try { v8.serialize(out[name]); sendable[name] = { v: out[name] }; } catch { sendable[name] = { text: util.inspect(out[name]) }; }
      }
      answer = { b64: b64(sendable) };
    },
  };
  return rt;
})()
//# sourceURL=sense-remote-runtime.js`;

/**
 * A call on the runtime (`globalThis[Symbol.for(key)]`, installed first if this worker has none),
 * as code or as a user expression; `typescript` for code a TypeScript kernel type-checks.
 */
export function jsRuntimeCall(call: string, typescript = false): string {
  return `((globalThis${typescript ? " as any" : ""})[Symbol.for(${JSON.stringify(RUNTIME_KEY)})] ??= (0, eval)(${JSON.stringify(JS_RUNTIME)})).${call}`;
}

/**
 * An `await`ed call on the installed runtime (`map` chunks: `def` ran first on the same worker).
 * Written `await Reflect.get(...)` because `await (x)` parses as a call of a function named
 * `await` in a script, and a kernel would then not run the cell as top-level-await code.
 */
export function jsAwaitRuntime(call: string): string {
  return `await Reflect.get(globalThis, Symbol.for(${JSON.stringify(RUNTIME_KEY)})).${call}`;
}

/** JavaScript user expression: the last expression's value kept by `prepareRemoteCode`'s wrap. */
export const JS_LAST_VALUE = jsRuntimeCall("last()");

/**
 * A call on the runtime a worker already has, as a user expression: without the runtime's source
 * (~16 KB per request otherwise). Throws a TypeError on a worker without the runtime, before the
 * call runs.
 */
export function jsInstalledCall(call: string): string {
  return `Reflect.get(globalThis, Symbol.for(${JSON.stringify(RUNTIME_KEY)})).${call}`;
}

/** {@link JS_LAST_VALUE} for a worker whose runtime is installed (the value is still there to ask for with JS_LAST_VALUE if it was not). */
export const JS_LAST_VALUE_INSTALLED = jsInstalledCall("last()");

/** {@link JS_TAKE} after code that called the installed runtime ({@link jsAwaitRuntime}: it failed already if there was none). */
export const JS_TAKE_INSTALLED = jsInstalledCall("take()");

/** JavaScript user expression: what the last runtime call left (`map` chunk results, `pull` values). */
export const JS_TAKE = jsRuntimeCall("take()");

/**
 * The Python helper, executed in a fresh dict inside each user expression: its names are its own,
 * and it reaches the user's namespace through IPython's shell, so no global a user sets can change
 * it. Arguments arrive as base64 of UTF-8 JSON (`unwire`), answers leave as base64 of ASCII JSON.
 */
const PY_HELPER = String.raw`
INLINE = ${INLINE_BYTES}
import base64, builtins, json, math, re
from IPython import get_ipython
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
def unwire(s):
    return json.loads(base64.b64decode(s, validate=True).decode("utf-8"))
STAGE = ${STAGE_PIECE_BYTES}
KEEP = 4
def wire(payload):
    return {"json64": base64.b64encode(json.dumps(payload, ensure_ascii=True, allow_nan=False).encode("ascii")).decode("ascii")}
def answers():
    return get_ipython().__dict__.setdefault("_sense_answers", {})
class Box:
    # An answer whose JSON is over a piece is kept (staged) under a random id and fetched with piece();
    # freed after its last piece, on a failed piece call, and oldest first beyond KEEP.
    def __init__(self, payload): self.payload = payload
    def _repr_json_(self):
        w = wire(self.payload)
        text = json.dumps(w)
        if len(text) <= STAGE: return w
        st = answers(); sid = base64.b64encode(__import__("os").urandom(12)).decode("ascii")
        st[sid] = text
        while len(st) > KEEP: st.pop(next(iter(st)))
        return wire({"staged": {"id": sid, "bytes": len(text), "pieces": -(-len(text) // STAGE)}})
    def __repr__(self): return "<sense remote value>"
class Piece:
    def __init__(self, text): self.text = text
    def _repr_json_(self): return {"piece": self.text}
    def __repr__(self): return "<sense remote value>"
def piece(data):
    o = unwire(data); st = answers(); k = o["k"]
    text = st.get(o["id"]); n = 0 if text is None else -(-len(text) // STAGE)
    if k == -1 or type(k) is not int or k < 0 or k >= n:
        st.pop(o["id"], None)
        if k == -1: return Piece("")
        raise ValueError("sense: no staged answer %r on this worker (it was freed: fetched already, failed, or replaced by newer ones)" % o["id"][:40] if text is None else "sense: no piece %r of a staged answer of %d" % (k, n))
    if k == n - 1: st.pop(o["id"], None)
    return Piece(text[k * STAGE:(k + 1) * STAGE])
def exact(v):
    if v is None or type(v) in (bool, str): return True
    if type(v) is int: return abs(v) <= 2 ** 53
    if type(v) is float: return math.isfinite(v)
    if type(v) is list: return all(exact(x) for x in v)
    if type(v) is dict: return all(type(k) is str and exact(x) for k, x in v.items())
    return False
def payload(v):
    try:
        ok = exact(v)
    except RecursionError:
        ok = False
    return {"value": v} if ok else {"inexact": True, "text": repr(v)}
def name(n, settable):
    if type(n) is not str or not NAME.match(n) or (settable and n.startswith("__")):
        raise ValueError("not a name the sense runtime %s: %r" % ("sets" if settable else "reads", n))
    return n
def last():
    ip = get_ipython()
    out = ip.history_manager.output_hist
    n = ip.execution_count - 1
    return Box(payload(out[n])) if n in out else Box({"none": True})
def many(data):
    ns = get_ipython().user_ns
    got = {}
    for n in unwire(data):
        if name(n, False) in ns:
            got[n] = payload(ns[n])
        elif hasattr(builtins, n):
            got[n] = payload(getattr(builtins, n))
        else:
            raise NameError("name %r is not defined" % n)
    return Box({"values": got})
def push(data):
    values = unwire(data)
    for n in values:
        name(n, True)
    get_ipython().user_ns.update(values)
    return Box({"none": True})
# The data channel (src/remote/channel.ts is the master's side and says the protocol).
import hashlib, hmac, os, socket, struct, sys
MAGIC = b"SNSD\x01"
DTYPES = {"Int8Array": "|i1", "Uint8Array": "|u1", "Uint8ClampedArray": "|u1", "Int16Array": "<i2", "Uint16Array": "<u2", "Int32Array": "<i4", "Uint32Array": "<u4", "Float32Array": "<f4", "Float64Array": "<f8", "BigInt64Array": "<i8", "BigUint64Array": "<u8"}
TYPES = {"|i1": "Int8Array", "|u1": "Uint8Array", "<i2": "Int16Array", "<u2": "Uint16Array", "<i4": "Int32Array", "<u4": "Uint32Array", "<f4": "Float32Array", "<f8": "Float64Array", "<i8": "BigInt64Array", "<u8": "BigUint64Array"}
class Unreachable(Exception): pass
def fill_from(s):
    def fill(mv):
        off = 0
        while off < len(mv):
            k = s.recv_into(mv[off:])
            if not k: raise ConnectionError("sense data channel: the connection ended early")
            off += k
    return fill
def take(fill, n):
    b = bytearray(n)
    fill(memoryview(b))
    return b
def connect(o):
    tid = base64.b64decode(o["id"]); key = base64.b64decode(o["token"])
    try:
        s = socket.create_connection((o["host"], o["port"]), timeout=5)
    except OSError:
        raise Unreachable()
    try:
        s.settimeout(None)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        nw = os.urandom(16)
        s.sendall(MAGIC + tid + nw)
        m = bytes(take(fill_from(s), 48)); nm = m[:16]
        mac = lambda side: hmac.new(key, side + tid + nw + nm, hashlib.sha256).digest()
        if not hmac.compare_digest(m[16:], mac(b"m")): raise ConnectionError("sense data channel: the master did not prove the transfer token")
        s.sendall(mac(b"w"))
    except BaseException:
        s.close(); raise
    return s
def is_shape(shape, count):
    if type(shape) is not list or len(shape) > 64 or not all(type(d) is int and d >= 0 for d in shape): return False
    n = 1
    for d in shape: n *= d
    return n == count
def binary_part(np, v):
    # a numpy array of a dtype the master has a typed array for (C order; its shape unless 1-d), or bytes; else None
    if np is not None and isinstance(v, np.ndarray) and v.dtype.str in TYPES:
        a = v if v.flags.c_contiguous else np.ascontiguousarray(v).reshape(v.shape)
        h = {"kind": "typed", "type": TYPES[v.dtype.str], "bytes": a.nbytes}
        if v.ndim != 1: h["shape"] = list(v.shape)
        return h, memoryview(a.reshape(-1)).cast("B")
    if type(v) in (bytes, bytearray): return {"kind": "buffer", "bytes": len(v)}, memoryview(v)
    return None
def read_parts(fill):
    n = struct.unpack("<I", take(fill, 4))[0]
    if n > 1 << 20: raise ValueError("sense data channel: malformed manifest")
    man = json.loads(take(fill, n).decode("utf-8"))
    vals = {}
    for p in man["parts"]:
        k = name(p["name"], True); size = p["bytes"]
        if type(size) is not int or size < 0: raise ValueError("sense data channel: malformed manifest")
        if p["kind"] == "typed" and p.get("type") in DTYPES:
            import numpy
            a = numpy.empty(size // numpy.dtype(DTYPES[p["type"]]).itemsize, dtype=DTYPES[p["type"]])
            if a.nbytes != size: raise ValueError("sense data channel: malformed manifest")
            shape = p.get("shape")
            if shape is not None and not is_shape(shape, a.size): raise ValueError("sense data channel: malformed manifest")
            if size: fill(memoryview(a).cast("B"))
            vals[k] = a if shape is None else a.reshape(shape)
        elif p["kind"] == "buffer": vals[k] = bytes(take(fill, size))
        elif p["kind"] == "json": vals[k] = json.loads(take(fill, size).decode("utf-8"))
        else: raise ValueError("sense data channel: malformed manifest")
    return vals
def has_numpy():
    try:
        import numpy
        return Box({"value": True})
    except ImportError:
        return Box({"value": False})
def recv(data):
    o = unwire(data)
    try: s = connect(o)
    except Unreachable: return Box({"unreachable": True})
    try:
        vals = read_parts(fill_from(s))
        s.sendall(b"\x01")
    finally: s.close()
    get_ipython().user_ns.update(vals)
    return Box({"none": True})
def stage(data):
    o = unwire(data)
    st = get_ipython().__dict__.setdefault("_sense_staged", {})
    chunks = st.pop(o["id"], [])
    chunks.append(base64.b64decode(o["piece"], validate=True))
    if not o["last"]:
        st[o["id"]] = chunks
        while len(st) > 16: st.pop(next(iter(st)))
        return Box({"none": True})
    buf = memoryview(b"".join(chunks)); del chunks[:]; pos = [0]
    def fill(mv):
        n = len(mv)
        if pos[0] + n > len(buf): raise ValueError("sense data channel: the staged data ended early")
        mv[:] = buf[pos[0]:pos[0] + n]; pos[0] += n
    vals = read_parts(fill)
    get_ipython().user_ns.update(vals)
    return Box({"none": True})
def pull(data):
    o = unwire(data); ns = get_ipython().user_ns
    vals = []
    for n in o["names"]:
        if name(n, False) in ns: vals.append((n, ns[n]))
        elif hasattr(builtins, n): vals.append((n, getattr(builtins, n)))
        else: raise NameError("name %r is not defined" % n)
    np = sys.modules.get("numpy"); parts = []; binary = False
    for n, v in vals:
        b = binary_part(np, v)
        if b is not None:
            b[0]["name"] = n; parts.append(b); binary = True
        else:
            p = payload(v)
            body = json.dumps(p["value"] if "value" in p else p["text"], ensure_ascii=True, allow_nan=False).encode("ascii")
            parts.append(({"name": n, "kind": "json" if "value" in p else "text", "bytes": len(body)}, body))
    s = None
    if (binary or sum(h["bytes"] for h, _ in parts) > INLINE) and o.get("offer"):
        try: s = connect(o["offer"])
        except Unreachable: s = None
    if s is None:
        # no channel: binary values travel in the reply as base64 of the same bytes, data not their repr
        got = {}
        for n, v in vals:
            b = binary_part(np, v)
            if b is None: got[n] = payload(v); continue
            h, body = b; del h["bytes"]; h["b64"] = base64.b64encode(body).decode("ascii"); got[n] = h
        return Box({"values": got})
    try:
        man = json.dumps({"parts": [h for h, _ in parts]}).encode("utf-8")
        s.sendall(struct.pack("<I", len(man)) + man)
        for _, b in parts:
            if len(b): s.sendall(b)
        if bytes(take(fill_from(s), 1)) != b"\x01": raise ConnectionError("sense data channel: the master did not acknowledge the transfer")
    finally: s.close()
    return Box({"channel": True})
`;

const PY_HELPER_WIRE = Buffer.from(PY_HELPER, "utf8").toString("base64");

/**
 * A user expression calling the helper's `fn` (with one base64 argument): it reads no global a
 * user can set (`__import__` is a builtin; names starting __ are never set), and its source holds
 * only this template and base64.
 */
function pyHelperCall(fn: "last" | "many" | "push" | "recv" | "stage" | "pull" | "has_numpy" | "piece", arg?: string): string {
  return `(lambda d: (__import__("builtins").exec(__import__("base64").b64decode(${wireArg(PY_HELPER_WIRE)}), d), d["${fn}"](${arg === undefined ? "" : wireArg(arg)}))[1])({})`;
}

/** Python user expression: the value of the cell's last expression (IPython's `Out` for this execution). */
export const PY_LAST_VALUE = pyHelperCall("last");

/** Python user expression: the values of globals `names` (the names travel as data; checked again on the worker). */
export function pyValuesOf(names: readonly string[]): string {
  return pyHelperCall("many", jsonBase64(names));
}

/** Python user expression setting globals from {@link toJsonWire}'s base64 (names checked again on the worker). */
export function pyPush(json64: string): string {
  return pyHelperCall("push", json64);
}

/** Python user expression: receive a push over the data channel (`offer64`: base64 JSON of a {@link ChannelOffer}). */
export function pyRecv(offer64: string): string {
  return pyHelperCall("recv", offer64);
}

/** Python user expression: one piece of a staged transfer (base64 JSON of `{ id, piece, last }`); the last binds. */
export function pyStage(piece64: string): string {
  return pyHelperCall("stage", piece64);
}

/** Python user expression: globals `names`, over the data channel when an offer is given and they are big or binary. */
export function pyPull(arg64: string): string {
  return pyHelperCall("pull", arg64);
}

/**
 * Python user expression: piece `k` of a staged answer (base64 JSON of `{ id, k }`; `k` -1 frees
 * it), as `{ piece: string }` (not a {@link RuntimeReply}: a slice of one, read by answer.ts).
 */
export function pyPiece(arg64: string): string {
  return pyHelperCall("piece", arg64);
}

/** Python user expression: whether numpy can be imported (`{ value: boolean }`). */
export const PY_HAS_NUMPY = pyHelperCall("has_numpy");
