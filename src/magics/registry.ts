/**
 * The magics registry. Each magic is declared once with {@link defineMagic}; its argument
 * parser, usage line, `%name?` help and `%lsmagic` entry are all derived from that declaration.
 */
import type { MagicCellIO } from "../protocol/cell";
import { SenseError, UsageError } from "../errors";
import { displayableBundle } from "../display/bundle";
import { renderMagicList } from "../display/tables";
import { didYouMean } from "./suggest";
import { quoteToken } from "./tokenize";

/** Where a magic applies: `%name` (line) or `%%name` (cell, with a body). */
export type MagicKind = "line" | "cell";

/** The value types an option can have. */
export type OptionType = "string" | "integer" | "number" | "boolean" | "keyvalue" | "choice";

/** One option of a magic. */
export interface OptionSpec {
  /** Long name without dashes (`"size"` → `--size`); also the key in `args.options`. */
  readonly name: string;
  /** One-letter short name without the dash (`"n"` → `-n`). */
  readonly short?: string;
  readonly type: OptionType;
  /** Allowed values of a `choice` option. */
  readonly choices?: readonly string[];
  /** May be given several times: values are collected (an array; `keyvalue` always collects into a record). */
  readonly repeat?: boolean;
  /** Value when the option is absent (booleans default to `false`, `keyvalue` to `{}`, repeats to `[]`). */
  readonly default?: string | number | boolean;
  readonly description: string;
  /** Placeholder in usage text, e.g. `FILE`; defaults from the type and name. */
  readonly metavar?: string;
}

/** A positional argument. */
export interface PositionalSpec {
  readonly name: string;
  readonly description: string;
  /** Takes every remaining positional token. Only the last positional may be variadic. */
  readonly variadic?: boolean;
  readonly required?: boolean;
}

type Scalar<S extends OptionSpec> = S["type"] extends "integer" | "number"
  ? number
  : S["type"] extends "boolean"
    ? boolean
    : S["type"] extends "choice"
      ? S["choices"] extends readonly (infer C)[]
        ? C
        : string
      : string;
type ValueOf<S extends OptionSpec> = S["type"] extends "keyvalue"
  ? Record<string, string>
  : S["repeat"] extends true
    ? Scalar<S>[]
    : Scalar<S>;
type AlwaysPresent<S extends OptionSpec> = S["type"] extends "boolean" | "keyvalue"
  ? true
  : S["repeat"] extends true
    ? true
    : S extends { default: string | number | boolean }
      ? true
      : false;

/** The parsed option values of a magic, typed from its option declarations. */
export type OptionValues<O extends readonly OptionSpec[]> = {
  [S in O[number] as S["name"]]: AlwaysPresent<S> extends true ? ValueOf<S> : ValueOf<S> | undefined;
};

/** What a magic's `run` receives. */
export interface MagicArgs<O extends readonly OptionSpec[] = readonly OptionSpec[]> {
  /** The magic's name, without `%`. */
  readonly name: string;
  /** How it was called. */
  readonly kind: MagicKind;
  readonly options: OptionValues<O>;
  /** Positional tokens in order (also those after `--`). */
  readonly positionals: string[];
  /** The cell body (everything after the `%%name` line, never expanded); `""` for a line magic. */
  readonly body: string;
}

/** What a magic runs with: where its output goes and where `$name` is looked up. */
export interface MagicContext extends MagicCellIO {
  /** The registry the magic was found in (`%lsmagic` lists it); defaults to {@link defaultRegistry}. */
  registry?: MagicRegistry;
}

/** A magic's declaration, as passed to {@link defineMagic}. */
export interface MagicSpec<O extends readonly OptionSpec[] = readonly OptionSpec[]> {
  /** Name without `%`: letters, digits, `_`. */
  readonly name: string;
  readonly kinds: readonly MagicKind[];
  /** One line, shown by `%lsmagic` and at the top of `%name?`. */
  readonly summary: string;
  /** Longer help text, shown by `%name?`. */
  readonly description?: string;
  readonly options: O;
  readonly positionals?: readonly PositionalSpec[];
  /** Does the work; a returned {@link Displayable} is displayed by the runner. */
  run(args: MagicArgs<O>, ctx: MagicContext): unknown;
}

/** A declared magic: the declaration with its argument types erased, as the registry stores it. */
export type Magic = MagicSpec<readonly OptionSpec[]> & { readonly __magic: true };

const NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
const OPTION_RE = /^[A-Za-z0-9][A-Za-z0-9_-]*$/;

/**
 * Declares a magic once; the option types flow into `run`'s `args.options`.
 *
 * @throws {SenseError} code `bad_magic_spec` for an invalid name, an option declared twice, a
 * `choice` without choices, a default that does not fit its type, or a variadic positional
 * that is not the last one.
 */
export function defineMagic<const O extends readonly OptionSpec[]>(spec: MagicSpec<O>): Magic {
  const bad = (msg: string) => new SenseError("bad_magic_spec", `magic %${spec.name}: ${msg}`);
  if (!NAME_RE.test(spec.name)) throw bad("the name must be letters, digits and _");
  if (spec.kinds.length === 0) throw bad("kinds must name line, cell or both");
  const seen = new Set<string>();
  for (const o of spec.options) {
    if (!OPTION_RE.test(o.name) || (o.short !== undefined && !/^[A-Za-z0-9]$/.test(o.short))) {
      throw bad(`bad option name ${o.name}`);
    }
    for (const key of [`--${o.name}`, o.short ? `-${o.short}` : ""]) {
      if (key && seen.has(key)) throw bad(`option ${key} declared twice`);
      seen.add(key);
    }
    if (o.type === "choice" && !o.choices?.length) throw bad(`choice option --${o.name} needs choices`);
    if (o.default !== undefined) {
      try {
        convertValue(o, String(o.default), "");
      } catch {
        throw bad(`default of --${o.name} does not fit its type`);
      }
    }
  }
  const pos = spec.positionals ?? [];
  if (pos.slice(0, -1).some((p) => p.variadic)) throw bad("only the last positional may be variadic");
  return { ...spec, __magic: true } as unknown as Magic;
}

function optionLabel(o: OptionSpec): string {
  return o.short ? `-${o.short}/--${o.name}` : `--${o.name}`;
}

function metavar(o: OptionSpec): string {
  if (o.metavar) return o.metavar;
  if (o.type === "choice") return `{${(o.choices ?? []).join(",")}}`;
  if (o.type === "keyvalue") return "K=V";
  return o.name.toUpperCase().replace(/-/g, "_");
}

function parseBoolean(o: OptionSpec, raw: string, usage: string): boolean {
  if (/^(true|yes|1|on)$/i.test(raw)) return true;
  if (/^(false|no|0|off)$/i.test(raw)) return false;
  throw new UsageError(`option ${optionLabel(o)} is a flag and takes no value other than true/false, got '${raw}'`, {
    code: "bad_option",
    usage,
  });
}

function convertValue(o: OptionSpec, raw: string, usage: string): string | number | boolean {
  const fail = (what: string) =>
    new UsageError(`option ${optionLabel(o)} expects ${what}, got ${raw === "" ? "an empty value" : `'${raw}'`}`, {
      code: "bad_option",
      usage,
      details: { option: o.name },
    });
  switch (o.type) {
    case "integer": {
      if (!/^[+-]?\d+$/.test(raw)) throw fail("an integer");
      const n = Number(raw);
      if (!Number.isSafeInteger(n)) throw fail("an integer of a sensible size");
      return n;
    }
    case "number": {
      const n = raw.trim() === "" ? NaN : Number(raw);
      if (!Number.isFinite(n)) throw fail("a number");
      return n;
    }
    case "choice": {
      if (!o.choices?.includes(raw)) {
        const hint = didYouMean(raw, o.choices ?? []);
        throw new UsageError(
          `option ${optionLabel(o)}: invalid choice '${raw}' (choose from ${(o.choices ?? []).join(", ")})${hint}`,
          { code: "bad_option", usage, details: { option: o.name } },
        );
      }
      return raw;
    }
    case "boolean":
      return parseBoolean(o, raw, usage);
    default:
      return raw;
  }
}

/** The one-line usage of a magic, e.g. `usage: %%sense_worker [-n N] [--env K=V]... [ID...]`. */
export function formatUsage(magic: MagicSpec): string {
  const parts: string[] = [];
  for (const o of magic.options) {
    const flag = o.short ? `-${o.short}` : `--${o.name}`;
    const item = o.type === "boolean" ? flag : `${flag} ${metavar(o)}`;
    parts.push(`[${item}]${o.repeat || o.type === "keyvalue" ? "..." : ""}`);
  }
  for (const p of magic.positionals ?? []) {
    const n = p.name.toUpperCase() + (p.variadic ? "..." : "");
    parts.push(p.required ? n : `[${n}]`);
  }
  const tail = parts.length ? " " + parts.join(" ") : "";
  const lines = [...magic.kinds].sort().map((k) => `${k === "cell" ? "%%" : "%"}${magic.name}${tail}`);
  return "usage: " + lines.join("\n       ");
}

/** The full `%name?` help text: usage, summary, description, options and positionals. */
export function formatHelp(magic: MagicSpec): string {
  const out = [formatUsage(magic), "", magic.summary];
  if (magic.description) out.push("", magic.description.trim());
  const rows: [string, string][] = [];
  for (const p of magic.positionals ?? []) {
    rows.push([`${p.name.toUpperCase()}${p.variadic ? "..." : ""}`, p.description + (p.required ? "" : " (optional)")]);
  }
  const posRows = rows.length;
  for (const o of magic.options) {
    const mv = o.type === "boolean" ? "" : ` ${metavar(o)}`;
    const names = (o.short ? `-${o.short}${mv}, ` : "") + `--${o.name}${mv}`;
    let desc = o.description;
    if (o.default !== undefined) desc += ` (default: ${typeof o.default === "string" ? quoteToken(o.default) : String(o.default)})`;
    if (o.repeat || o.type === "keyvalue") desc += " (repeatable)";
    rows.push([names, desc]);
  }
  const width = Math.min(30, Math.max(0, ...rows.map(([n]) => n.length)));
  const fmt = ([n, d]: [string, string]) =>
    n.length > width ? `  ${n}\n  ${" ".repeat(width)}  ${d}` : `  ${n.padEnd(width)}  ${d}`;
  if (posRows) out.push("", "positional arguments:", ...rows.slice(0, posRows).map(fmt));
  if (rows.length > posRows) out.push("", "options:", ...rows.slice(posRows).map(fmt));
  return out.join("\n") + "\n";
}

/**
 * Parses a magic's tokens against its declaration: `--opt=value`, `--opt value`, `-n 3`, `-n3`,
 * clustered short flags (`-ab`), `--` ending options, `keyvalue` options collected into a record.
 *
 * @throws {UsageError} (with the magic's usage attached) code `bad_option` for an unknown option
 * (with a did-you-mean hint), a missing or ill-typed value (`-n abc`, `-n 1.5`, `-n ''`), an
 * invalid choice, a key=value without `=`; code `usage` for missing or extra positionals.
 */
export function parseArgs(
  magic: MagicSpec,
  tokens: readonly string[],
  kind: MagicKind = magic.kinds[0],
  body = "",
): MagicArgs {
  const usage = formatUsage(magic);
  const longs = new Map(magic.options.map((o) => [o.name, o]));
  const shorts = new Map(magic.options.filter((o) => o.short).map((o) => [o.short as string, o]));
  const values: Record<string, unknown> = {};
  for (const o of magic.options) {
    if (o.type === "keyvalue") values[o.name] = {};
    else if (o.repeat) values[o.name] = [];
    else if (o.default !== undefined) values[o.name] = convertValue(o, String(o.default), usage);
    else if (o.type === "boolean") values[o.name] = false;
  }
  const positionals: string[] = [];

  const store = (o: OptionSpec, raw: string) => {
    if (o.type === "keyvalue") {
      const eq = raw.indexOf("=");
      if (eq <= 0) {
        throw new UsageError(`option ${optionLabel(o)} expects KEY=VALUE, got ${raw === "" ? "an empty value" : `'${raw}'`}`, {
          code: "bad_option",
          usage,
          details: { option: o.name },
        });
      }
      (values[o.name] as Record<string, string>)[raw.slice(0, eq)] = raw.slice(eq + 1);
      return;
    }
    const v = convertValue(o, raw, usage);
    if (o.repeat) (values[o.name] as unknown[]).push(v);
    else values[o.name] = v;
  };
  const needValue = (o: OptionSpec, i: number): string => {
    if (i >= tokens.length) {
      throw new UsageError(`option ${optionLabel(o)} needs a value (${metavar(o)})`, {
        code: "bad_option",
        usage,
        details: { option: o.name },
      });
    }
    return tokens[i];
  };
  const unknown = (flag: string) => {
    const candidates = [...[...longs.keys()].map((n) => `--${n}`), ...[...shorts.keys()].map((s) => `-${s}`)];
    return new UsageError(`unknown option ${flag} for %${magic.name}${didYouMean(flag, candidates)}`, {
      code: "bad_option",
      usage,
      details: { option: flag },
    });
  };

  let i = 0;
  for (; i < tokens.length; i++) {
    const t = tokens[i];
    if (t === "--") {
      i++;
      break;
    }
    if (t.startsWith("--")) {
      const eq = t.indexOf("=");
      const name = eq < 0 ? t.slice(2) : t.slice(2, eq);
      const o = longs.get(name);
      if (!o) throw unknown(eq < 0 ? t : t.slice(0, eq));
      if (o.type === "boolean") values[o.name] = eq < 0 ? true : parseBoolean(o, t.slice(eq + 1), usage);
      else store(o, eq < 0 ? needValue(o, ++i) : t.slice(eq + 1));
    } else if (t.startsWith("-") && t.length > 1 && !/^-\d/.test(t)) {
      // A cluster like `-ab` or `-n3`: flags until one that takes a value, which eats the rest.
      for (let j = 1; j < t.length; j++) {
        const o = shorts.get(t[j]);
        if (!o) throw unknown(`-${t[j]}`);
        if (o.type === "boolean") {
          values[o.name] = true;
          continue;
        }
        store(o, j + 1 < t.length ? t.slice(j + 1) : needValue(o, ++i));
        break;
      }
    } else {
      positionals.push(t);
    }
  }
  positionals.push(...tokens.slice(i));

  const specs = magic.positionals ?? [];
  const variadic = specs.at(-1)?.variadic ?? false;
  if (!variadic && positionals.length > specs.length) {
    const extra = positionals[specs.length];
    throw new UsageError(`%${magic.name} takes ${specs.length === 0 ? "no" : `at most ${specs.length}`} positional argument${specs.length === 1 ? "" : "s"}, got extra '${extra}'`, {
      usage,
    });
  }
  specs.forEach((p, idx) => {
    if (p.required && positionals.length <= idx) throw new UsageError(`%${magic.name}: missing ${p.name.toUpperCase()}`, { usage });
  });
  return { name: magic.name, kind, options: values as MagicArgs["options"], positionals, body };
}

/**
 * A table of magics by kind. Lookup returns `undefined`; the runner turns that into a usage
 * error with hints.
 */
export class MagicRegistry {
  private readonly tables: Record<MagicKind, Map<string, Magic>> = { line: new Map(), cell: new Map() };

  /**
   * Adds a magic (a {@link defineMagic} result or a plain declaration) under each of its kinds.
   *
   * @throws {SenseError} code `duplicate_magic` when the name is taken for one of its kinds and
   * `replace` is not set (nothing is registered then); `bad_magic_spec` for an invalid declaration.
   */
  register(magic: Magic | MagicSpec, options: { replace?: boolean } = {}): Magic {
    const m = "__magic" in magic ? (magic as Magic) : defineMagic(magic);
    if (!options.replace) {
      for (const k of m.kinds) {
        if (this.tables[k].has(m.name)) {
          throw new SenseError("duplicate_magic", `${k === "cell" ? "%%" : "%"}${m.name} is already registered`, {
            details: { name: m.name, kind: k },
          });
        }
      }
    }
    for (const k of ["line", "cell"] as const) {
      // A replacement owns the name completely, even for a kind it no longer has.
      if (options.replace && this.tables[k].get(m.name)) this.tables[k].delete(m.name);
      if (m.kinds.includes(k)) this.tables[k].set(m.name, m);
    }
    return m;
  }

  /** Removes a magic of that name from every kind; returns whether one was there. */
  unregister(name: string): boolean {
    const had = this.tables.line.delete(name);
    return this.tables.cell.delete(name) || had;
  }

  /** The magic of that kind and name (without `%`), or `undefined`. */
  find(kind: MagicKind, name: string): Magic | undefined {
    return this.tables[kind].get(name);
  }

  /** Names registered for one kind, sorted. */
  names(kind: MagicKind): string[] {
    return [...this.tables[kind].keys()].sort();
  }

  /** Every registered magic once, sorted by name. */
  list(): Magic[] {
    const all = new Map<string, Magic>();
    for (const k of ["line", "cell"] as const) for (const [n, m] of this.tables[k]) all.set(n, m);
    return [...all.values()].sort((a, b) => a.name.localeCompare(b.name));
  }
}

/** Strips a leading `%`/`%%` and a trailing `?`/`??` from a magic name as a person types it. */
function bareName(name: string): string {
  return name.replace(/^%{1,2}/, "").replace(/\?{1,2}$/, "");
}

/** `%lsmagic`: lists every magic of the registry with its summary. */
export const lsmagicMagic = defineMagic({
  name: "lsmagic",
  kinds: ["line"],
  summary: "List every available magic with a one-line summary.",
  options: [],
  run: (_args, ctx) => displayableBundle(renderMagicList(ctx.registry ?? defaultRegistry)),
});

/** `%sense_help [name]`: the help of one magic, or of every magic. */
export const senseHelpMagic = defineMagic({
  name: "sense_help",
  kinds: ["line"],
  summary: "Show the help of one magic (%sense_help sense_worker), or of all of them.",
  options: [],
  positionals: [{ name: "name", description: "a magic name, with or without % / %%" }],
  run(args, ctx) {
    const registry = ctx.registry ?? defaultRegistry;
    const [raw] = args.positionals;
    if (raw === undefined) {
      ctx.sink.stdout(registry.list().map(formatHelp).join("\n"));
      return undefined;
    }
    const name = bareName(raw);
    const kind: MagicKind | undefined = raw.startsWith("%%") ? "cell" : raw.startsWith("%") ? "line" : undefined;
    const m = kind ? registry.find(kind, name) : (registry.find("line", name) ?? registry.find("cell", name));
    if (!m) {
      const all = registry.list().map((x) => x.name);
      throw new UsageError(`no magic named ${raw}${didYouMean(name, all)}`, { code: "unknown_magic", usage: formatUsage(senseHelpMagic) });
    }
    ctx.sink.stdout(formatHelp(m));
    return undefined;
  },
});

/** The registry the Sense kernels and `sense.magic` use; `%lsmagic` and `%sense_help` are built in. */
export const defaultRegistry = new MagicRegistry();
defaultRegistry.register(lsmagicMagic);
defaultRegistry.register(senseHelpMagic);
