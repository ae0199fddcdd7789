/**
 * Values between master and workers, always as data a worker's runtime decodes, never as source:
 * v8 structured serialization (Map, Set, Date, BigInt, typed arrays, Buffer) for JavaScript
 * workers, JSON for Python workers, both as base64 (names: names.ts).
 */
import * as v8 from "node:v8";
import { UsageError, shown } from "../errors";

/** Not JSON-exact: thrown by {@link exactCopy}, with the path to the first offending part. */
class NotExact extends Error {}

/**
 * A copy of `v` made of plain data, reading every property once (so a getter runs once and a
 * `toJSON` method is data like any other function: refused), or NotExact. The rule is the one the
 * workers apply to what they send back (runtime.ts): plain objects, dense arrays, finite numbers
 * except -0, strings, booleans, null; no cycles.
 */
function exactCopy(v: unknown, at: string, seen: Set<object>): unknown {
  if (v === null || typeof v === "string" || typeof v === "boolean") return v;
  if (typeof v === "number") {
    if (Number.isFinite(v) && !Object.is(v, -0)) return v;
    throw new NotExact(`${at} is ${shown(v)}, which JSON does not carry`);
  }
  if (typeof v !== "object") throw new NotExact(`${at} is ${typeof v === "function" ? "a function" : shown(v)}`);
  if (seen.has(v)) throw new NotExact(`${at} is a cycle`);
  seen.add(v);
  let copy: unknown;
  if (Array.isArray(v)) {
    if (Object.getPrototypeOf(v) !== Array.prototype || Object.keys(v).length !== v.length) throw new NotExact(`${at} is an array with holes or extra properties`);
    const items: unknown[] = [];
    // by index, not through the array's (overridable) iterator
    for (let i = 0; i < v.length; i++) items.push(exactCopy((v as unknown[])[i], `${at}[${i}]`, seen));
    copy = items;
  } else {
    const p: unknown = Object.getPrototypeOf(v);
    if ((p !== Object.prototype && p !== null) || Object.getOwnPropertySymbols(v).length) throw new NotExact(`${at} is ${shown(v, 40)}, not a plain object`);
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v)) {
      // defineProperty: a "__proto__" key stays a key, as in the JSON the worker parses
      Object.defineProperty(out, k, { value: exactCopy((v as Record<string, unknown>)[k], `${at}.${k}`, seen), enumerable: true, writable: true, configurable: true });
    }
    copy = out;
  }
  seen.delete(v);
  return copy;
}

/** True when JSON carries `v` without change (see {@link exactCopy}). Rethrows what reading `v` threw. */
export function jsonExact(v: unknown): boolean {
  try {
    exactCopy(v, "value", new Set());
    return true;
  } catch (e) {
    if (e instanceof NotExact) return false;
    throw e;
  }
}

/**
 * `values` as a Python worker receives them: base64 of their UTF-8 JSON, so the request carries
 * only base64's alphabet (no character of a value can end a literal or a line) and the worker's
 * runtime decodes it as data (`json.loads(base64.b64decode(...))`, runtime.ts). Lone surrogates
 * travel as JSON escapes, which Python keeps.
 * @throws UsageError `bad_option` naming the value that JSON does not carry exactly, or whose
 *   reading threw (a getter, a proxy); nothing is sent then.
 */
export function toJsonWire(values: Readonly<Record<string, unknown>>, what: string): string {
  const copy: Record<string, unknown> = {};
  for (const name of Object.keys(values)) {
    Object.defineProperty(copy, name, { value: checkedCopy(name, values[name], what), enumerable: true, writable: true, configurable: true });
  }
  return jsonBase64(copy);
}

/** {@link exactCopy} of one named value, its failure as the UsageError {@link toJsonWire} documents. */
function checkedCopy(name: string, value: unknown, what: string): unknown {
  try {
    return exactCopy(value, name, new Set());
  } catch (e) {
    const why = e instanceof NotExact ? `${e.message}; only values JSON carries exactly go (null, booleans, finite numbers, strings, arrays, plain objects)` : `reading it threw ${(e as Error)?.name ?? "an error"}: ${(e as Error)?.message ?? shown(e)}`;
    throw new UsageError(`${what}: ${name} cannot be sent: ${why}`, { code: "bad_option", details: { name } });
  }
}

/**
 * One value as the UTF-8 JSON a Python worker reads from the data channel (what {@link toJsonWire}
 * sends, without base64).
 * @throws UsageError `bad_option` as {@link toJsonWire}.
 */
export function jsonBytes(name: string, value: unknown, what: string): Buffer {
  return Buffer.from(JSON.stringify(checkedCopy(name, value, what)), "utf8");
}

/** Base64 of `value`'s UTF-8 JSON (plain data only: what {@link toJsonWire} checked, or names). */
export function jsonBase64(value: unknown): string {
  return Buffer.from(JSON.stringify(value), "utf8").toString("base64");
}

/** Decodes what {@link toJsonWire} encodes (a Python worker's answers travel the same way). */
export function fromJsonWire(b64: string): unknown {
  return JSON.parse(Buffer.from(b64, "base64").toString("utf8"));
}

/** Serializes for a JavaScript worker, base64. @throws UsageError `bad_option` for a value v8 cannot clone. */
export function toWire(value: unknown, what: string): string {
  try {
    return v8.serialize(value).toString("base64");
  } catch (e) {
    throw new UsageError(`${what} cannot be sent to a worker: ${(e as Error).message}`, { code: "bad_option" });
  }
}

/** Deserializes what a JavaScript worker sent (base64 v8 data). */
export function fromWire(b64: string): unknown {
  return v8.deserialize(Buffer.from(b64, "base64"));
}

