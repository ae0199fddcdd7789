/**
 * The one allowlist check of a public call's options object: every public function that takes
 * options refuses a key it does not know (a typo like `{ timeout: 5 }` or `{ ids: [...] }` would
 * otherwise be ignored and the call would do something else than asked).
 */
import { UsageError } from "../errors";

/**
 * Checks that `options` is a plain options object (not null, not an array) whose keys are all in
 * `known`. `undefined` values count like any other: the key itself must be known.
 * @param call the function's name, for the message (`"stopWorkers"`)
 * @throws UsageError `bad_option` naming the call, the unknown keys (`details.unknown`) and the known ones.
 */
export function checkOptionKeys(options: unknown, known: readonly string[], call: string): void {
  if (options === null || typeof options !== "object" || Array.isArray(options)) {
    throw new UsageError(`${call} takes an options object, not ${describe(options)}`, { code: "bad_option" });
  }
  const unknown = Object.keys(options).filter((k) => !known.includes(k));
  if (unknown.length) {
    throw new UsageError(`${call}: unknown option${unknown.length > 1 ? "s" : ""} ${unknown.join(", ")}; known: ${known.join(", ") || "none"}`, {
      code: "bad_option",
      details: { unknown, known: [...known] },
    });
  }
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  return `a ${typeof v}`;
}
