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
]);
export type RuntimeReply = z.infer<typeof RuntimeReply>;

/** A Python worker's answer as it travels: a {@link RuntimeReply} as base64 of ASCII JSON. */
const PyWireReply = z.object({ json64: z.string() });

/**
 * The runtime's answer in a `user_expressions` bundle's data (JavaScript: the reply itself;
 * Python: it as base64 JSON), or `undefined` when it is not one.
 */
export function readReply(raw: unknown): RuntimeReply | undefined {
  const py = PyWireReply.safeParse(raw);
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
const RUNTIME_KEY = "sense.remote.v2";

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
  const box = (r) => ({ ${JSON.stringify(REMOTE_MIME)}: r });
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
    take() { const a = answer; answer = null; return box(a ?? { none: true }); },
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
    async run(id, data, start) {
      const fn = fns.get(id);
      if (!fn) throw new Error("map: the function was not shipped to this worker");
      const items = unb64(data);
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
    push(data) {
      const values = unb64(data);
      // The value reaches the assignment as an argument: the global code evaluated is the
      // (validated) name only, and it reads no global of the user's (names starting __ are never set).
      for (const name of Object.keys(values)) geval("(__sense_value) => { " + checkName(name, true) + " = __sense_value; }")(values[name]);
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

/** JavaScript user expression: what the last runtime call left (`map` chunk results, `pull` values). */
export const JS_TAKE = jsRuntimeCall("take()");

/**
 * The Python helper, executed in a fresh dict inside each user expression: its names are its own,
 * and it reaches the user's namespace through IPython's shell, so no global a user sets can change
 * it. Arguments arrive as base64 of UTF-8 JSON (`unwire`), answers leave as base64 of ASCII JSON.
 */
const PY_HELPER = String.raw`
import base64, builtins, json, math, re
from IPython import get_ipython
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
def unwire(s):
    return json.loads(base64.b64decode(s, validate=True).decode("utf-8"))
class Box:
    def __init__(self, payload): self.payload = payload
    def _repr_json_(self):
        return {"json64": base64.b64encode(json.dumps(self.payload, ensure_ascii=True, allow_nan=False).encode("ascii")).decode("ascii")}
    def __repr__(self): return "<sense remote value>"
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
`;

const PY_HELPER_WIRE = Buffer.from(PY_HELPER, "utf8").toString("base64");

/**
 * A user expression calling the helper's `fn` (with one base64 argument): it reads no global a
 * user can set (`__import__` is a builtin; names starting __ are never set), and its source holds
 * only this template and base64.
 */
function pyHelperCall(fn: "last" | "many" | "push", arg?: string): string {
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
