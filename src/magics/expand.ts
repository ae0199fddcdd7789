/**
 * `$name` / `{expr}` expansion of a magic's argument line (never of a cell body), IPython style
 * but strict: an unknown name is an error that names it, never silently left in place.
 *
 * Expansion runs before tokenizing and emits every expanded value as an atom segment, so a
 * value with spaces stays inside one token (`--env MSG=$msg` with `msg = "a b"` gives the single
 * token `MSG=a b`) and quotes inside a value are never interpreted.
 */
import { UsageError } from "../errors";
import type { MagicScope } from "../protocol/cell";
import { type Segment, literal } from "./tokenize";

export type { MagicScope };


/** A scope with no variables at all (plain Node, stock tslab without `vars`). */
export const emptyScope: MagicScope = { lookup: () => ({ found: false }) };

/**
 * A scope over a plain object: `$name` reads `vars[name]` (own properties only).
 * `{expr}` is available only if `evaluate` is given.
 */
export function varsScope(vars: Readonly<Record<string, unknown>>, evaluate?: (expr: string) => unknown): MagicScope {
  return {
    lookup: (name) =>
      Object.prototype.hasOwnProperty.call(vars, name) ? { found: true, value: vars[name] } : { found: false },
    evaluate,
  };
}

/**
 * Turns a value into the text of one token: strings as they are, numbers/booleans/bigints via
 * `String`, dates as ISO-8601, other objects as JSON.
 *
 * @throws {UsageError} for `undefined`, symbols and functions, which have no sensible text form.
 */
export function stringifyValue(value: unknown, what: string): string {
  switch (typeof value) {
    case "string":
      return value;
    case "number":
    case "boolean":
    case "bigint":
      return String(value);
    case "undefined":
      throw new UsageError(`${what} is undefined`);
    case "symbol":
    case "function":
      throw new UsageError(`${what} is a ${typeof value} and cannot be used as an argument`);
    default:
      if (value === null) return "null";
      if (value instanceof Date) return value.toISOString();
      try {
        return JSON.stringify(value) ?? String(value);
      } catch {
        return String(value);
      }
  }
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*/;

/** Resolves `$a.b.c` starting at `text[start]` (just after the `$`); returns the value and length consumed. */
function resolveDollar(text: string, start: number, scope: MagicScope): { value: string; length: number } | null {
  const head = IDENT.exec(text.slice(start));
  if (!head) return null;
  let path = head[0];
  let length = head[0].length;
  const found = scope.lookup(path);
  if (!found.found) {
    const hint = scope.missingHint ? ` (${scope.missingHint})` : "";
    throw new UsageError(`$${path}: no variable named '${path}' is defined${hint}`, { details: { name: path } });
  }
  let value = found.value;
  // Follow `.prop` only into objects: on a primitive the dot is ordinary text, so `$file.txt`
  // with a string `file` reads as the file name plus `.txt`, as a shell user expects.
  for (;;) {
    if (text[start + length] !== ".") break;
    const prop = IDENT.exec(text.slice(start + length + 1));
    if (!prop || value === null || (typeof value !== "object" && typeof value !== "function")) break;
    path += "." + prop[0];
    if (!(prop[0] in (value as object))) {
      throw new UsageError(`$${path}: '${path}' is not defined`, { details: { name: path } });
    }
    value = (value as Record<string, unknown>)[prop[0]];
    length += 1 + prop[0].length;
  }
  return { value: stringifyValue(value, `$${path}`), length };
}

/** Index of the `}` closing the `{` at `open`, skipping nested braces and JS string literals; -1 if none. */
function findClosingBrace(text: string, open: number): number {
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    const ch = text[i];
    if (ch === "'" || ch === '"' || ch === "`") {
      for (i++; i < text.length && text[i] !== ch; i++) if (text[i] === "\\") i++;
      continue;
    }
    if (ch === "{") depth++;
    else if (ch === "}" && --depth === 0) return i;
  }
  return -1;
}

function evaluateBraces(expr: string, scope: MagicScope): string {
  if (!scope.evaluate) {
    throw new UsageError(`{${expr}}: expressions cannot be evaluated here; write {{ and }} for literal braces`, {
      details: { expr },
    });
  }
  let value: unknown;
  try {
    value = scope.evaluate(expr);
  } catch (e) {
    throw new UsageError(`{${expr}} failed: ${e instanceof Error ? e.message : String(e)}`, { details: { expr } });
  }
  if (value instanceof Promise) throw new UsageError(`{${expr}} is a Promise; await it into a variable first`);
  return stringifyValue(value, `{${expr}}`);
}

/**
 * Expands `$name`, `$a.b`, `$$` (a literal `$`), `{expr}`, `{{` and `}}` (literal braces) in an
 * argument line. Nothing is expanded inside single quotes or after a backslash. Existing atom
 * segments (e.g. tagged-template values) pass through untouched.
 *
 * @throws {UsageError} naming the variable for an undefined `$name` or `$a.b`; for `{expr}`
 * without an evaluator, a throwing or unterminated `{expr}`, or a value with no text form.
 */
export function expandArgs(input: string | readonly Segment[], scope: MagicScope): Segment[] {
  const segments = typeof input === "string" ? literal(input) : input;
  const out: Segment[] = [];
  let quote: "'" | '"' | null = null;
  for (const seg of segments) {
    if (seg.atom) {
      out.push(seg);
      continue;
    }
    const text = seg.text;
    let plain = "";
    const flush = () => {
      if (plain) out.push({ text: plain });
      plain = "";
    };
    const atom = (value: string) => {
      flush();
      out.push({ text: value, atom: true });
    };
    for (let i = 0; i < text.length; i++) {
      const ch = text[i];
      if (quote === "'") {
        if (ch === "'") quote = null;
        plain += ch;
        continue;
      }
      if (ch === "\\") {
        plain += text.slice(i, i + 2);
        i++;
        continue;
      }
      if (ch === "'" && quote === null) quote = "'";
      else if (ch === '"') quote = quote === '"' ? null : '"';
      if (ch === "$") {
        if (text[i + 1] === "$") {
          atom("$");
          i++;
          continue;
        }
        const r = resolveDollar(text, i + 1, scope);
        if (r) {
          atom(r.value);
          i += r.length;
          continue;
        }
      } else if (ch === "{") {
        if (text[i + 1] === "{") {
          atom("{");
          i++;
          continue;
        }
        const close = findClosingBrace(text, i);
        if (close < 0) throw new UsageError(`unterminated {expression} in the argument line; write {{ for a literal brace`);
        atom(evaluateBraces(text.slice(i + 1, close), scope));
        i = close;
        continue;
      } else if (ch === "}" && text[i + 1] === "}") {
        atom("}");
        i++;
        continue;
      }
      plain += ch;
    }
    flush();
  }
  return out;
}
