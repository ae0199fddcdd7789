/**
 * The one entry point that runs a cell of magics: the Sense kernels call {@link runCell}, the
 * tagged template and {@link runCell}'s callers share its grammar and error reporting.
 *
 * Grammar (IPython's): a first line `%%name args` makes a cell magic whose body is the rest of
 * the cell; otherwise every non-empty line is a line magic `%name args` (`//` comment lines are
 * skipped); a name ending in `?` or `??` asks for help.
 */
import { SenseError, isRemoteError, isSenseError, isUsageError, redact, UsageError } from "../errors";
import { presentValue } from "../display/present";
import { isMagicSource } from "../protocol/cell";
import { expandArgs } from "./expand";
import { type Magic, type MagicArgs, type MagicContext, type MagicKind, defaultRegistry, formatHelp, formatUsage, parseArgs } from "./registry";
import { didYouMean } from "./suggest";
import { type Segment, literal, segmentsText, tokenize } from "./tokenize";

/** The result of running a cell of magics. */
export interface MagicOutcome {
  /** False when a magic failed; the kernel then marks the cell failed. */
  ok: boolean;
  /** What the last magic returned. */
  value?: unknown;
  /** True when `value` was displayed (it has a rich form: a Displayable, or a display hook's). */
  displayed?: boolean;
  /** The error, when `ok` is false (already reported on the sink's stderr). */
  error?: unknown;
}

/** One magic invocation found in a cell. */
export interface ParsedInvocation {
  kind: MagicKind;
  name: string;
  /** 0: run it; 1: `name?`; 2: `name??`. */
  help: 0 | 1 | 2;
  /** The argument line, still unexpanded. */
  args: Segment[];
  /** Cell magics: everything after the first line, verbatim. */
  body: string;
  /** 1-based line number in the cell. */
  line: number;
}

/** True when the first non-empty line of `source` starts with `%` (leading spaces allowed): {@link isMagicSource}. */
export const isMagicCell: (source: string) => boolean = isMagicSource;

function splitLines(segments: readonly Segment[]): Segment[][] {
  const lines: Segment[][] = [[]];
  for (const seg of segments) {
    if (seg.atom) {
      lines[lines.length - 1].push(seg);
      continue;
    }
    seg.text.split("\n").forEach((part, i) => {
      if (i > 0) lines.push([]);
      const text = part.endsWith("\r") ? part.slice(0, -1) : part;
      if (text) lines[lines.length - 1].push({ text });
    });
  }
  return lines;
}

function trimStart(line: Segment[]): Segment[] {
  const out = [...line];
  while (out.length && !out[0].atom && out[0].text.trim() === "") out.shift();
  if (out.length && !out[0].atom) out[0] = { text: out[0].text.trimStart() };
  return out;
}

const HEAD_RE = /^(%%?)([A-Za-z_][A-Za-z0-9_]*)?(\?{1,2})?(?=\s|$)/;

function parseHead(line: Segment[], lineNo: number): ParsedInvocation {
  const first = line[0];
  const m = first && !first.atom ? HEAD_RE.exec(first.text) : null;
  if (!m || !m[2]) {
    const shown = segmentsText(line).split(/\s/)[0];
    throw new UsageError(`line ${lineNo}: '${shown}' is not a magic name (expected %name or %%name, letters, digits and _)`);
  }
  const rest: Segment[] = [{ text: first.text.slice(m[0].length) }, ...line.slice(1)].filter((s) => s.atom || s.text);
  const help = (m[3]?.length ?? 0) as 0 | 1 | 2;
  if (help && segmentsText(rest).trim() !== "") {
    throw new UsageError(`line ${lineNo}: write ${m[1]}${m[2]}${m[3]} alone for help, without arguments`);
  }
  return { kind: m[1] === "%%" ? "cell" : "line", name: m[2], help, args: rest, body: "", line: lineNo };
}

/**
 * Splits a cell into magic invocations without running anything.
 *
 * @throws {UsageError} for a cell that is not all magics, a `%%` magic not on the first line,
 * or a malformed magic name.
 */
export function parseCell(source: string | readonly Segment[]): ParsedInvocation[] {
  const lines = splitLines(typeof source === "string" ? literal(source) : source);
  const firstIdx = lines.findIndex((l) => segmentsText(l).trim() !== "");
  if (firstIdx < 0) throw new UsageError("the cell is empty: expected %name or %%name");
  const head = trimStart(lines[firstIdx]);
  if (!head[0]?.atom && head[0]?.text.startsWith("%%")) {
    const inv = parseHead(head, firstIdx + 1);
    inv.body = lines
      .slice(firstIdx + 1)
      .map(segmentsText)
      .join("\n");
    return [inv];
  }
  const out: ParsedInvocation[] = [];
  lines.forEach((raw, idx) => {
    const line = trimStart(raw);
    const text = segmentsText(line);
    if (text.trim() === "" || (!line[0].atom && text.startsWith("//"))) return;
    if (line[0].atom || !text.startsWith("%")) {
      throw new UsageError(
        `line ${idx + 1} is not a magic: a cell of line magics holds only %name lines; put code in a cell of its own`,
      );
    }
    if (text.startsWith("%%")) throw new UsageError(`line ${idx + 1}: cell magic %%... must be on the first line of the cell`);
    out.push(parseHead(line, idx + 1));
  });
  return out;
}

const PREFIX: Record<MagicKind, string> = { line: "%", cell: "%%" };

function findOrThrow(kind: MagicKind, name: string, ctx: MagicContext): Magic {
  const registry = ctx.registry ?? defaultRegistry;
  const m = registry.find(kind, name);
  if (m) return m;
  const other: MagicKind = kind === "line" ? "cell" : "line";
  const label = kind === "line" ? "Line" : "Cell";
  const otherLabel = other === "line" ? "line" : "cell";
  if (registry.find(other, name)) {
    throw new UsageError(
      `${label} magic \`${PREFIX[kind]}${name}\` not found (But ${otherLabel} magic \`${PREFIX[other]}${name}\` exists, did you mean that instead?).`,
      { code: "unknown_magic", details: { name, kind } },
    );
  }
  const candidates = [...registry.names(kind).map((n) => PREFIX[kind] + n), ...registry.names(other).map((n) => PREFIX[other] + n)];
  throw new UsageError(`${label} magic \`${PREFIX[kind]}${name}\` not found.${didYouMean(PREFIX[kind] + name, candidates)} %lsmagic lists them all.`, {
    code: "unknown_magic",
    details: { name, kind },
  });
}

type Prepared = { magic: Magic; help: true } | { magic: Magic; help: false; args: MagicArgs };

function prepare(inv: ParsedInvocation, ctx: MagicContext): Prepared {
  const magic = findOrThrow(inv.kind, inv.name, ctx);
  if (inv.help) return { magic, help: true };
  if (inv.kind === "cell" && inv.body.trim() === "") {
    const alt = (ctx.registry ?? defaultRegistry).find("line", inv.name) ? ` Did you mean the line magic %${inv.name} (single %)?` : "";
    throw new UsageError(`%%${inv.name} is a cell magic, but the cell body is empty.${alt}`, { usage: formatUsage(magic) });
  }
  let tokens: string[];
  try {
    tokens = tokenize(expandArgs(inv.args, ctx.scope));
  } catch (e) {
    // Attach the magic's usage to tokenizer/expansion errors too, so every usage error reads alike.
    if (isUsageError(e) && !e.usage) throw new UsageError(e.message, { code: e.code, usage: formatUsage(magic), details: { ...e.details } });
    throw e;
  }
  return { magic, help: false, args: parseArgs(magic, tokens, inv.kind, inv.body) };
}

/**
 * Parses, checks and runs a cell of magics, throwing on the first error. Every invocation is
 * resolved and its arguments parsed before any runs, so bad input in any line changes nothing.
 * A result with a rich form (display/present.ts) is displayed through `ctx.sink`.
 *
 * @throws {UsageError} for grammar, unknown magics (code `unknown_magic`), empty cell bodies,
 * expansion and argument errors; whatever a magic throws; the signal's reason when aborted.
 */
export async function executeCell(source: string | readonly Segment[], ctx: MagicContext): Promise<{ value: unknown; displayed: boolean }> {
  const prepared = parseCell(source).map((inv) => prepare(inv, ctx));
  let value: unknown;
  let displayed = false;
  for (const p of prepared) {
    ctx.signal?.throwIfAborted();
    if (p.help) {
      ctx.sink.stdout(formatHelp(p.magic));
      value = undefined;
      displayed = false;
      continue;
    }
    value = await p.magic.run(p.args, ctx);
    // Shown here when it has a rich form; a plain value is left to the caller (the kernel shows it as text).
    const shown = value == null ? undefined : presentValue(value);
    displayed = shown !== undefined && "rich" in shown;
    if (shown && "rich" in shown) ctx.sink.display(shown.rich);
  }
  return { value, displayed };
}

/** The short form a usage error is reported in: `UsageError: <message>\n<usage>\n`, no stack. */
export function formatUsageError(error: UsageError): string {
  return `UsageError: ${error.message}\n${error.usage ? error.usage + "\n" : ""}`;
}

/** How a failure is reported on stderr: usage errors short, anything else with its stack. */
export function formatFailure(error: unknown): string {
  if (isUsageError(error)) return redact(formatUsageError(error));
  // Remote failures read like ipyparallel's CompositeError: the first remote traceback, one line per other.
  if (isRemoteError(error)) return redact(error.render()) + "\n";
  // Sense's own errors are expected failures with a message meant for a person: one line and
  // its code, no stack. A stack is for anything else (a bug).
  if (isSenseError(error)) return redact(`${error.name}: ${error.message} [${error.code}]`) + "\n";
  if (error instanceof Error) {
    const code = error instanceof SenseError ? ` [${error.code}]` : "";
    const text = error.stack ?? `${error.name}: ${error.message}`;
    return redact(code ? text.replace(/^([^\n]*)/, `$1${code}`) : text) + "\n";
  }
  return redact(`Error: ${String(error)}`) + "\n";
}

/**
 * Runs a cell of magics and reports failures on `ctx.sink.stderr` (see {@link formatFailure});
 * never throws. `ok: false` tells the kernel to mark the cell failed.
 */
export async function runCell(source: string | readonly Segment[], ctx: MagicContext): Promise<MagicOutcome> {
  try {
    const { value, displayed } = await executeCell(source, ctx);
    return { ok: true, value, displayed };
  } catch (error) {
    ctx.sink.stderr(formatFailure(error));
    return { ok: false, error };
  }
}
