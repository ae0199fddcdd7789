/**
 * POSIX-style splitting of a magic's argument line into tokens.
 *
 * The input is a list of {@link Segment}s rather than a string so that text that came from
 * outside the line (a `$name` expansion, a `${value}` in a tagged template) can be glued into
 * a token verbatim: it is never split on spaces and quotes inside it mean nothing.
 */
import { UsageError } from "../errors";

/** A piece of an argument line: literal text (`atom` false) or an inserted value (`atom` true). */
export interface Segment {
  readonly text: string;
  /** True for an inserted value: it becomes part of exactly one token, taken verbatim. */
  readonly atom?: boolean;
}

/** Wraps a plain string as a one-segment list. */
export function literal(text: string): Segment[] {
  return [{ text }];
}

/** Joins segments back into plain text (atoms as their text). */
export function segmentsText(segments: readonly Segment[]): string {
  return segments.map((s) => s.text).join("");
}

// Inside double quotes POSIX lets a backslash escape only these; any other backslash stays,
// so Windows-ish paths and regexes survive being double-quoted.
const DQ_ESCAPABLE = new Set(['"', "\\", "$", "`", "\n"]);

/**
 * Splits an argument line into tokens the way a POSIX shell does (without any expansion or
 * globbing): whitespace separates tokens; `'...'` is literal; `"..."` allows the escapes
 * `\"`, `\\`, `\$`, `` \` ``; outside quotes a backslash escapes the next character; quotes
 * are removed; `''` gives an empty token. Atom segments are appended to the current token as is.
 *
 * @throws {UsageError} code `usage` for an unterminated quote or a trailing backslash.
 */
export function tokenize(input: string | readonly Segment[]): string[] {
  const segments = typeof input === "string" ? literal(input) : input;
  const tokens: string[] = [];
  let current: string | null = null;
  let quote: "'" | '"' | null = null;

  for (const seg of segments) {
    if (seg.atom) {
      current = (current ?? "") + seg.text;
      continue;
    }
    const text = seg.text;
    for (let i = 0; i < text.length; i++) {
      const ch = text[i];
      if (quote === "'") {
        if (ch === "'") quote = null;
        else current += ch;
      } else if (quote === '"') {
        if (ch === '"') quote = null;
        else if (ch === "\\" && i + 1 < text.length && DQ_ESCAPABLE.has(text[i + 1])) current += text[++i];
        else current += ch;
      } else if (ch === "'" || ch === '"') {
        quote = ch;
        current = current ?? "";
      } else if (ch === "\\") {
        if (i + 1 >= text.length) throw new UsageError("the argument line ends with a lone backslash");
        current = (current ?? "") + text[++i];
      } else if (/\s/.test(ch)) {
        if (current !== null) tokens.push(current);
        current = null;
      } else {
        current = (current ?? "") + ch;
      }
    }
  }
  if (quote) throw new UsageError(`unbalanced quotes: a ${quote === "'" ? "single" : "double"} quote (${quote}) is never closed`);
  if (current !== null) tokens.push(current);
  return tokens;
}

/** Quotes `value` so that {@link tokenize} gives it back as one token (for help texts and logs). */
export function quoteToken(value: string): string {
  if (value !== "" && /^[\w@%+=:,./-]+$/.test(value)) return value;
  return `'${value.replace(/'/g, `'\\''`)}'`;
}
