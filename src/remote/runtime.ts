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
 */
import { REMOTE_MIME } from "../protocol/marks";
import { LAST_VALUE_KEY } from "../transpile";

const RUNTIME_KEY = "sense.remote.v1";

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
    def(id, src) {
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
      for (const name of Object.keys(values)) {
        rt.pushed = values[name];
        (0, eval)(name + " = globalThis[Symbol.for(" + JSON.stringify(${JSON.stringify(RUNTIME_KEY)}) + ")].pushed");
      }
      delete rt.pushed;
    },
    pull(names) {
      const out = {};
      for (const name of names) out[name] = (0, eval)(name);
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

/** The Python helper, executed in a fresh dict inside each user expression. */
const PY_HELPER = String.raw`
import json, math
class Box:
    def __init__(self, payload): self.payload = payload
    def _repr_json_(self): return self.payload
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
def box(v):
    return Box(payload(v))
def many(d):
    return Box({"values": {k: payload(v) for k, v in d.items()}})
def last(out, ip):
    n = ip.execution_count - 1
    return box(out[n]) if n in out else Box({"none": True})
`;

function pyHelperCall(call: string): string {
  return `(lambda d: (exec(${JSON.stringify(PY_HELPER)}, d), d[${JSON.stringify(call.slice(0, call.indexOf("(")))}]${call.slice(call.indexOf("("))})[1])({})`;
}

/** Python user expression: the value of the cell's last expression (IPython's `Out` for this execution). */
export const PY_LAST_VALUE = pyHelperCall("last(Out, get_ipython())");

/** Python user expression: the values of globals `names` (validated by the caller as identifiers). */
export function pyValuesOf(names: readonly string[]): string {
  return pyHelperCall(`many({${names.map((n) => `${JSON.stringify(n)}: ${n}`).join(", ")}})`);
}

/** Python code setting globals from JSON text (a JSON string literal is a valid Python literal). */
export function pyPush(json: string): string {
  return `globals().update(__import__("json").loads(${JSON.stringify(json)}))`;
}
