/**
 * Which names `push` may set and `pull` may read on a worker, per runtime, in one place.
 *
 * A name is an allowlisted shape first: an ASCII identifier, valid in JavaScript and Python alike,
 * not a reserved word of either (it is the one thing a worker's runtime looks up as a name rather
 * than decodes as data; see runtime.ts). A name to *set* must moreover not be one the worker's
 * runtime, or the kernel running it, relies on: shadowing one of those broke every later call on
 * that worker (`push({ Symbol: 1 })` on a JavaScript worker, `push({ __builtins__: 1 })` on a
 * Python one), and `__proto__` replaced the prototype of a JavaScript worker's global object.
 */
import { UsageError, shown } from "../errors";
import type { TargetLanguage } from "../workers/targets";

/** The shape of every name: an ASCII identifier. */
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

const words = (s: string): ReadonlySet<string> => new Set(s.trim().split(/\s+/));

/** JavaScript's reserved words, and the names that cannot be bound or assigned in sloppy code. */
const JS_KEYWORDS = words(`
  break case catch class const continue debugger default delete do else enum export extends false finally for function if import in
  instanceof new null return super switch this throw true try typeof var void while with yield let static implements interface package
  private protected public await arguments eval undefined NaN Infinity globalThis`);

/** Python's keywords (its soft keywords, `match`, `case`, `type`, `_`, are names too). */
const PY_KEYWORDS = words(`
  False None True and as assert async await break class continue def del elif else except finally for from global if import in is lambda
  nonlocal not or pass raise return try while with yield`);

/**
 * Globals of a JavaScript worker that its runtime and kernel rely on: the runtime's calls go
 * through `globalThis`, `Symbol.for`, `Reflect` and indirect `eval`; the runtime itself uses
 * `require`, `process`, `Buffer`, `Map`, `Set`, `Array`, `Object`, `Number`, `JSON`, `Error`; the
 * kernel (tslab, sense-fast) uses Node's globals (timers, `Promise`, `console`, ...) as it runs.
 * Every ECMAScript and Node.js global is here, so no pushed value shadows one.
 */
const JS_RUNTIME_NAMES = words(`
  Object Function Array Number parseFloat parseInt Boolean String Symbol Date Promise RegExp Error AggregateError EvalError RangeError
  ReferenceError SyntaxError TypeError URIError JSON Math Intl ArrayBuffer SharedArrayBuffer Atomics DataView Uint8Array Int8Array
  Uint16Array Int16Array Uint32Array Int32Array Float16Array Float32Array Float64Array Uint8ClampedArray BigUint64Array BigInt64Array Map
  BigInt Set WeakMap WeakSet Proxy Reflect FinalizationRegistry WeakRef Iterator decodeURI decodeURIComponent encodeURI
  encodeURIComponent escape unescape isFinite isNaN WebAssembly
  require module exports global process Buffer console setTimeout setInterval setImmediate clearTimeout clearInterval clearImmediate
  queueMicrotask structuredClone atob btoa URL URLSearchParams DOMException AbortController AbortSignal Event EventTarget CustomEvent
  TextEncoder TextDecoder TextEncoderStream TextDecoderStream CompressionStream DecompressionStream ReadableStream
  ReadableStreamDefaultReader ReadableStreamBYOBReader ReadableStreamBYOBRequest ReadableByteStreamController
  ReadableStreamDefaultController TransformStream TransformStreamDefaultController WritableStream WritableStreamDefaultController
  WritableStreamDefaultWriter ByteLengthQueuingStrategy CountQueuingStrategy BroadcastChannel MessageChannel MessagePort MessageEvent
  Blob File Performance PerformanceEntry PerformanceMark PerformanceMeasure PerformanceObserver PerformanceObserverEntryList
  PerformanceResourceTiming performance fetch FormData Headers Request Response WebSocket EventSource CloseEvent crypto Crypto CryptoKey
  SubtleCrypto navigator Navigator localStorage sessionStorage Storage`);

/**
 * Globals of a Python worker that IPython relies on: its hidden namespace (`_oh`/`Out` hold every
 * result and IPython fails each later result without them, `get_ipython` runs magics). The runtime
 * itself needs none: its helper runs in a namespace of its own and reaches the shell through
 * `__import__` (runtime.ts); dunders are refused for every language.
 */
const PY_RUNTIME_NAMES = words(`In Out _ih _oh _dh get_ipython exit quit open`);

/** The names each runtime relies on, refused as names to set (see the module comment). */
export const RESERVED_NAMES: Readonly<Record<"javascript" | "python", ReadonlySet<string>>> = {
  javascript: JS_RUNTIME_NAMES,
  python: PY_RUNTIME_NAMES,
};

function refuse(what: string, name: unknown, why: string): never {
  throw new UsageError(`${what}: ${shown(name)} ${why}`, { code: "bad_option", details: { name: typeof name === "string" ? name : shown(name) } });
}

/**
 * Checks names to set or read on workers: ASCII identifiers (letters, digits, `_`; not starting
 * with a digit), not a reserved word of JavaScript or Python; with `set`, not starting with `__`
 * either (Python's dunders such as `__builtins__`, JavaScript's `__proto__`, and the runtimes' own
 * names: reading one is harmless, setting one breaks the worker).
 * @throws UsageError `bad_option` naming the first bad name and why; nothing is sent.
 */
export function checkNames(names: readonly unknown[], what: string, options: { set?: boolean } = {}): string[] {
  for (const n of names) {
    if (typeof n !== "string") refuse(what, n, "is not a name: names are strings");
    if (!IDENTIFIER.test(n)) refuse(what, n, "is not a name that can be set or read on a worker: use ASCII letters, digits and _, not starting with a digit");
    if (JS_KEYWORDS.has(n) || PY_KEYWORDS.has(n)) refuse(what, n, "is a reserved word in JavaScript or Python");
    if (options.set && n.startsWith("__")) refuse(what, n, "starts with __: such names (Python's dunders, JavaScript's __proto__) belong to the runtimes and cannot be set");
  }
  return names as string[];
}

/**
 * Checks names to set on a worker of `language` (after {@link checkNames} with `set`): none the
 * worker's runtime or kernel relies on ({@link RESERVED_NAMES}).
 * @throws UsageError `bad_option` naming the name, the worker and why; nothing is sent.
 */
export function checkSettable(names: readonly string[], language: TargetLanguage, what: string, worker: string): void {
  const lang = language === "python" ? "python" : "javascript";
  const bad = names.find((n) => RESERVED_NAMES[lang].has(n));
  if (bad !== undefined) {
    const who = lang === "python" ? "Python worker's IPython kernel relies" : "JavaScript worker's runtime and kernel rely";
    refuse(what, bad, `cannot be set on ${lang === "python" ? "Python" : "JavaScript"} worker ${worker}: it is a global the ${who} on; pick another name`);
  }
}
