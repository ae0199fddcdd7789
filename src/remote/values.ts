/**
 * Values between master and workers: which values JSON carries exactly, identifiers that may be
 * set or read on a worker, and v8 structured serialization (Map, Set, Date, BigInt, typed arrays,
 * Buffer) for JavaScript workers.
 */
import * as v8 from "node:v8";
import { UsageError } from "../errors";

/** True when JSON carries `v` without change (the same rule the workers apply; see runtime.ts). */
export function jsonExact(v: unknown, seen = new Set<object>()): boolean {
  if (v === null || typeof v === "string" || typeof v === "boolean") return true;
  if (typeof v === "number") return Number.isFinite(v) && !Object.is(v, -0);
  if (typeof v !== "object" || seen.has(v)) return false;
  seen.add(v);
  let ok: boolean;
  if (Array.isArray(v)) {
    ok = Object.getPrototypeOf(v) === Array.prototype && Object.keys(v).length === v.length && v.every((x) => jsonExact(x, seen));
  } else {
    const p: unknown = Object.getPrototypeOf(v);
    const o = v as Record<string, unknown>;
    ok = (p === Object.prototype || p === null) && Object.getOwnPropertySymbols(v).length === 0 && Object.keys(o).every((k) => jsonExact(o[k], seen));
  }
  seen.delete(v);
  return ok;
}

const JS_RESERVED = new Set(
  ("break case catch class const continue debugger default delete do else enum export extends false finally for function if import in " +
    "instanceof new null return super switch this throw true try typeof var void while with yield let static implements interface package " +
    "private protected public await arguments eval undefined NaN Infinity globalThis").split(" "),
);
const PY_RESERVED = new Set(
  ("False None True and as assert async await break class continue def del elif else except finally for from global if import in is lambda " +
    "nonlocal not or pass raise return try while with yield").split(" "),
);

/**
 * Checks names to set or read on workers: ASCII identifiers valid in JavaScript and Python, not
 * reserved words (an allowlist: each name is pasted into code, so nothing else may get through).
 * @throws UsageError `bad_option` naming the first bad name; nothing is sent.
 */
export function checkNames(names: readonly unknown[], what: string): string[] {
  for (const n of names) {
    if (typeof n !== "string" || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(n) || JS_RESERVED.has(n) || PY_RESERVED.has(n)) {
      throw new UsageError(`${what}: ${JSON.stringify(n) ?? String(n)} is not a name that can be set or read on a worker (letters, digits and _, not a reserved word)`, {
        code: "bad_option",
      });
    }
  }
  return names as string[];
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
