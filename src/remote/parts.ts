/**
 * Values as data-channel parts (channel.ts) and back, on the master: typed arrays and Buffers as
 * views of their own bytes (no copy, no base64), everything else as v8 data (JavaScript workers)
 * or exact JSON (Python workers).
 */
import * as v8 from "node:v8";
import { UsageError } from "../errors";
import { TYPED_ARRAYS, typedArrayName, type InPart, type OutPart } from "./channel";
import { jsonBytes } from "./values";

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
        v = new T(b.buffer as ArrayBuffer, b.byteOffset, b.byteLength / T.BYTES_PER_ELEMENT);
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

/** Total bytes of `parts`. */
export function partBytes(parts: readonly { bytes: number }[]): number {
  return parts.reduce((s, p) => s + p.bytes, 0);
}
