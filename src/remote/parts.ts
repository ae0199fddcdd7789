/**
 * Values as data-channel parts (channel.ts) and back, on the master: typed arrays and Buffers as
 * views of their own bytes (no copy, no base64), everything else as v8 data (JavaScript workers)
 * or exact JSON (Python workers).
 */
import * as v8 from "node:v8";
import { UsageError } from "../errors";
import { isShape, parseManifest, TYPED_ARRAYS, typedArrayName, type AnyTypedArray, type InPart, type OutPart } from "./channel";
import { jsonBytes } from "./values";

/**
 * An n-dimensional array (a numpy array of 0 or 2+ dimensions) on the TypeScript side: its
 * elements in C (row-major) order in one typed array of its dtype, and its shape. A plain object
 * (it survives v8 serialization to a JavaScript worker as is); a 1-d numpy array is its typed
 * array alone. `push` and `scatter` send one to a Python worker as a numpy array of that shape.
 */
export interface NdArray<T extends AnyTypedArray = AnyTypedArray> {
  shape: number[];
  data: T;
}

/** True when `v` is an {@link NdArray}: a plain object of exactly `shape` and `data`, with `shape`'s product equal to `data.length`. */
export function isNdArray(v: unknown): v is NdArray {
  if (v === null || typeof v !== "object" || Array.isArray(v)) return false;
  // any realm's Object.prototype: v8.deserialize builds objects in Node's realm, not a vm context's
  const proto = Object.getPrototypeOf(v) as { constructor?: { name?: unknown } } | null;
  if (proto !== null && (Object.getPrototypeOf(proto) !== null || proto.constructor?.name !== "Object")) return false;
  const keys = Reflect.ownKeys(v);
  if (keys.length !== 2 || !keys.includes("shape") || !keys.includes("data")) return false;
  const { shape, data } = v as { shape: unknown; data: unknown };
  return typedArrayName(data) !== undefined && isShape(shape, (data as AnyTypedArray).length);
}

/** The bytes of a typed array or Buffer, as a view (not a copy). */
function bytesOf(v: ArrayBufferView): Uint8Array {
  return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
}

/**
 * One named value as a part for a worker of `language`.
 * @throws UsageError `bad_option` naming the value when it cannot be sent to that language.
 */
export function partOf(name: string, value: unknown, language: "python" | "javascript", what: string): OutPart {
  if (Buffer.isBuffer(value)) return { name, kind: "buffer", bytes: value.byteLength, body: bytesOf(value) };
  const type = typedArrayName(value);
  if (type) {
    const v = value as ArrayBufferView;
    return { name, kind: "typed", type, bytes: v.byteLength, body: bytesOf(v) };
  }
  if (isNdArray(value)) {
    const { data } = value;
    return { name, kind: "typed", type: typedArrayName(data), shape: [...value.shape], bytes: data.byteLength, body: bytesOf(data) };
  }
  if (language === "python") {
    const body = jsonBytes(name, value, what);
    return { name, kind: "json", bytes: body.length, body };
  }
  let body: Buffer;
  try {
    body = v8.serialize(value);
  } catch (e) {
    throw new UsageError(`${what}: ${name} cannot be sent to a worker: ${(e as Error).message}`, { code: "bad_option", details: { name } });
  }
  return { name, kind: "v8", bytes: body.length, body };
}

/** The values of received parts, by name. @throws Error for a part that does not decode (a worker's bug). */
export function valuesOf(parts: readonly InPart[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const p of parts) {
    let v: unknown;
    const b = p.body;
    switch (p.kind) {
      case "typed": {
        const T = TYPED_ARRAYS[p.type!];
        const data = new T(b.buffer as ArrayBuffer, b.byteOffset, b.byteLength / T.BYTES_PER_ELEMENT);
        v = p.shape ? ({ shape: p.shape, data } satisfies NdArray) : data;
        break;
      }
      case "buffer":
        v = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
        break;
      case "v8":
        v = v8.deserialize(b);
        break;
      case "json":
      case "text":
        v = JSON.parse(Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("utf8"));
        break;
    }
    Object.defineProperty(out, p.name, { value: v, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

/**
 * A binary value a Python worker put in its reply because it had no data channel (`{ kind, type,
 * shape?, b64 }`: the bytes the channel would carry, as base64), as the value the channel gives;
 * `undefined` when `p` is not one.
 * @throws Error for one that does not decode (a worker's bug).
 */
export function inlineBinary(p: unknown): { value: unknown } | undefined {
  if (p === null || typeof p !== "object" || !("b64" in p) || !("kind" in p)) return undefined;
  const { kind, type, shape, b64 } = p as { kind: unknown; type?: unknown; shape?: unknown; b64: unknown };
  if (typeof b64 !== "string" || (kind !== "typed" && kind !== "buffer")) throw new Error("a malformed binary value in the reply");
  const bytes = Buffer.from(b64, "base64");
  // a fresh ArrayBuffer: base64 decoding may land at an offset a typed array cannot start at
  const body = new Uint8Array(new ArrayBuffer(bytes.length));
  body.set(bytes);
  const json = Buffer.from(JSON.stringify({ parts: [{ name: "v", kind, type, shape, bytes: bytes.length }] }), "utf8");
  const [h] = parseManifest(json);
  return { value: valuesOf([{ ...h, body }]).v };
}

/** Total bytes of `parts`. */
export function partBytes(parts: readonly { bytes: number }[]): number {
  return parts.reduce((s, p) => s + p.bytes, 0);
}
