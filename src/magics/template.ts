/**
 * Magics from valid TypeScript, for stock tslab (and plain Node), where `%` lines cannot be
 * typed into a cell: ``await sense.magic`%sense_workers` `` or `await sense.runMagic("...")`.
 */
import { isUsageError } from "../errors";
import { captureSink, type OutputSink } from "../display/sink";
import { INSPECT_CUSTOM } from "../display/bundle";
import { type MagicScope, stringifyValue, varsScope } from "./expand";
import { type MagicRegistry } from "./registry";
import { executeCell, formatUsageError } from "./run";
import type { Segment } from "./tokenize";
import { checkOptionKeys } from "../util/check-options";

/** Options of {@link runMagic} and {@link createMagicTag}. */
export interface MagicOptions {
  /** Variables `$name` resolves against (stock tslab gives a library no access to cell variables). */
  vars?: Readonly<Record<string, unknown>>;
  /** Evaluator for `{expr}`; without one, `{expr}` is a usage error. */
  evaluate?: (expr: string) => unknown;
  /** A full scope; overrides `vars` and `evaluate`. */
  scope?: MagicScope;
  /** Where output goes; by default {@link captureSink} at the time of the call. */
  sink?: OutputSink;
  registry?: MagicRegistry;
  signal?: AbortSignal;
}

/** The keys of {@link MagicOptions}. */
const MAGIC_OPTION_KEYS = ["vars", "evaluate", "scope", "sink", "registry", "signal"];

const NO_VARS_HINT = "in this host pass variables as runMagic(src, { vars: { name } }), or interpolate ${name} in sense.magic`...`";

function scopeOf(options: MagicOptions): MagicScope {
  if (options.scope) return options.scope;
  const scope = varsScope(options.vars ?? {}, options.evaluate);
  return options.vars ? scope : { ...scope, missingHint: NO_VARS_HINT };
}

// tslab prints a failed cell's error with util.inspect, which shows the stack and every own
// property; a usage error should read as one short line plus usage, as in the Sense kernels.
function shortenForInspect(error: unknown): unknown {
  if (isUsageError(error)) {
    Object.defineProperty(error, INSPECT_CUSTOM, { value: () => formatUsageError(error).trimEnd(), enumerable: false, configurable: true });
  }
  return error;
}

async function run(source: readonly Segment[], options: MagicOptions, sink: OutputSink): Promise<unknown> {
  try {
    const { value, displayed } = await executeCell(source, {
      sink,
      scope: scopeOf(options),
      registry: options.registry,
      signal: options.signal,
    });
    // The result was already shown in full; returning it too would make tslab print it again.
    return displayed ? undefined : value;
  } catch (e) {
    throw shortenForInspect(e);
  }
}

/**
 * Runs a cell of magics given as a string, with the grammar of the Sense kernels.
 * Resolves to the last magic's value, or `undefined` when that value was displayed.
 *
 * @throws {UsageError} for bad input (its `util.inspect` form is `UsageError: <message>` plus
 * usage, no stack); whatever the magic throws.
 */
export function runMagic(source: string, options: MagicOptions = {}): Promise<unknown> {
  try {
    checkOptionKeys(options, MAGIC_OPTION_KEYS, "runMagic");
  } catch (e) {
    return Promise.reject(e);
  }
  const sink = options.sink ?? captureSink();
  return run([{ text: source }], options, sink);
}

/** A tagged template running magics; see {@link magic}. */
export type MagicTag = (strings: TemplateStringsArray, ...values: unknown[]) => Promise<unknown>;

/**
 * Makes a magic tag with fixed options, e.g. ``const m = createMagicTag({ vars: { msg } })``.
 * Each `${value}` becomes exactly ONE token (never re-split on spaces, quotes in it mean
 * nothing); in a cell body it is inserted as text. The template's raw text is used, so
 * backslashes reach the magic as typed; only `` \` `` and `\${` are unescaped.
 */
export function createMagicTag(options: MagicOptions = {}): MagicTag {
  checkOptionKeys(options, MAGIC_OPTION_KEYS, "createMagicTag");
  return (strings, ...values) => {
    // Capture the sink now, synchronously, while the calling cell is still the current one.
    const sink = options.sink ?? captureSink();
    const segments: Segment[] = [];
    try {
      strings.raw.forEach((raw, i) => {
        segments.push({ text: raw.replace(/\\(`|\$\{)/g, "$1") });
        if (i < values.length) segments.push({ text: stringifyValue(values[i], `\${…} #${i + 1}`), atom: true });
      });
    } catch (e) {
      return Promise.reject(shortenForInspect(e));
    }
    return run(segments, options, sink);
  };
}

/**
 * Runs magics from valid TypeScript: ``await sense.magic`%sense_install lodash` ``,
 * ``await sense.magic`%%sense_worker -n ${n} --env MSG=${msg}\nconsole.log(1)` ``.
 * Output goes to the cell that called it; the result is displayed, so the promise then resolves
 * to `undefined` (use the API functions for data).
 *
 * @throws {UsageError} for bad input; whatever the magic throws.
 */
export const magic: MagicTag = createMagicTag();
