/**
 * tslab's converters (TypeScript watch programs) made to survive `npm install` during a session.
 *
 * tslab's converter replaces the compiler host's timer with a single slot and throws
 * "Unexpected pending rebuildTimer" once TypeScript's watchers saw `node_modules` change; from
 * then on every cell fails. Its cached failed lookups also keep a freshly installed package
 * "not found" (TS2307). A converter is cheap to replace (a few hundred ms) and the executor keeps
 * the earlier cells' declarations (`prevDecl`), so this set replaces a converter that is stale:
 * proactively when a watcher under `node_modules` fired or an install was announced, and as a
 * retry (once) when a call throws the timer error or reports TS2307 after `node_modules` changed.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { CompletionInfo, ConvertResult, Converter, ConverterOptions, Diagnostic } from "tslab/dist/converter";
import type { ConverterSet } from "tslab/dist/executor";

/** Creates one tslab converter (`createConverter` from `tslab/dist/converter`). */
export type ConverterFactory = (options: ConverterOptions) => Converter;

/** A {@link ConverterSet} whose converters can be thrown away and rebuilt. */
export interface HealingConverterSet extends ConverterSet {
  /** Marks both converters stale: the next call builds fresh ones. */
  invalidate(reason: string): void;
  /** Builds the node converter now (tslab does this at startup; it takes ~1-2 s). */
  warm(): void;
  /** How many converters were replaced so far, and why (for logs and tests). */
  readonly resets: { reason: string; at: number }[];
}

const CANNOT_FIND_MODULE = 2307;

/** True for tslab's "Unexpected pending rebuildTimer" (and its sibling "clearing unexpected tiemr"). */
export function isTimerSlotError(e: unknown): boolean {
  return e instanceof Error && /pending rebuildTimer|clearing unexpected ti(me|em)r/.test(e.message);
}

/**
 * A cheap fingerprint of every `node_modules` folder from `dir` up to the file-system root:
 * the folder's mtime (an entry added/removed) and npm's hidden lockfile's mtime (any install).
 */
export function nodeModulesStamp(dir: string): string {
  const parts: string[] = [];
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    for (const f of [path.join(d, "node_modules"), path.join(d, "node_modules", ".package-lock.json")]) {
      try {
        parts.push(`${f}:${fs.statSync(f).mtimeMs}`);
      } catch {
        /* absent: part of the fingerprint too */
      }
    }
    if (path.dirname(d) === d) break;
  }
  return parts.join("|");
}

type WatchCallback = (fileName: string, ...rest: unknown[]) => void;
interface WatchableSys {
  watchFile?: (p: string, cb: WatchCallback, ...rest: unknown[]) => unknown;
  watchDirectory?: (p: string, cb: WatchCallback, ...rest: unknown[]) => unknown;
}
/** Changes under `node_modules` that TypeScript's watchers saw, for converter sets to subscribe to. */
export interface NodeModulesWatch {
  /** Calls `listener` with the changed path each time; returns a function that unsubscribes. */
  subscribe(listener: (path: string) => void): () => void;
}

// Under Symbol.for, so a second copy of this module wrapping the same `sys` finds the first wrap.
const WRAPPED = Symbol.for("sense-tslab.watch-wrapped");

/**
 * Wraps TypeScript's `sys.watchFile`/`sys.watchDirectory` (of tslab's TypeScript, before any
 * converter exists) so that (1) a change under `node_modules` is announced to the converter sets
 * subscribed to the returned {@link NodeModulesWatch}, which then rebuild before the next cell
 * instead of failing it, and (2) the timer-slot error a watcher callback throws is swallowed
 * instead of surfacing as an uncaught exception in some unrelated cell. Idempotent: the watch is
 * kept on `sys` itself (the object whose watchers it reports), and a second call returns it.
 */
export function wrapTypeScriptWatchers(sys: WatchableSys): NodeModulesWatch {
  const marked = sys as WatchableSys & { [WRAPPED]?: NodeModulesWatch | true };
  const existing = marked[WRAPPED];
  // `true` is an older copy's mark: its wrap announces to its own listeners, so wrap again for ours.
  if (typeof existing === "object") return existing;
  const watchListeners = new Set<(path: string) => void>();
  const watch: NodeModulesWatch = {
    subscribe(listener) {
      watchListeners.add(listener);
      return () => void watchListeners.delete(listener);
    },
  };
  marked[WRAPPED] = watch;
  for (const key of ["watchFile", "watchDirectory"] as const) {
    const original = sys[key];
    if (typeof original !== "function") continue;
    sys[key] = function (this: unknown, p: string, cb: WatchCallback, ...rest: unknown[]) {
      const guarded: WatchCallback = (fileName, ...args) => {
        const changed = typeof fileName === "string" ? fileName : p;
        if (/[\\/]node_modules([\\/]|$)/.test(changed) || /[\\/]node_modules([\\/]|$)/.test(p)) {
          for (const l of watchListeners) l(changed);
        }
        try {
          cb(fileName, ...args);
        } catch (e) {
          if (!isTimerSlotError(e)) throw e;
          // The converter is stale now; the listeners above already scheduled its replacement.
        }
      };
      return original.call(this, p, guarded, ...rest);
    };
  }
  return watch;
}

function hasMissingModule(diagnostics: readonly Diagnostic[] | undefined): boolean {
  return !!diagnostics?.some((d) => d.code === CANNOT_FIND_MODULE);
}

/** Options of {@link createHealingConverterSet}. */
export interface HealingConverterOptions {
  isJS: boolean;
  /** The notebook folder, whose `node_modules` chain is fingerprinted. */
  cwd: string;
  create: ConverterFactory;
  log?: (msg: string) => void;
  /** Watcher events to rebuild on (from {@link wrapTypeScriptWatchers}); none: rebuild on errors and `invalidate` only. */
  watch?: NodeModulesWatch;
}

/** Builds a converter set over `create`. Converters are built lazily, as tslab does. */
export function createHealingConverterSet(options: HealingConverterOptions): HealingConverterSet {
  const resets: { reason: string; at: number }[] = [];

  function healing(isBrowser: boolean): Converter & { invalidate(reason: string): void; closeInner(): void; warm(): void } {
    let inner: Converter | null = null;
    let stamp = "";
    let staleReason: string | null = null;

    function drop(reason: string): void {
      if (inner) {
        resets.push({ reason, at: Date.now() });
        // Closing at the end of a session is no event worth a log line.
        if (reason !== "closed") options.log?.(`sense: rebuilding the ${isBrowser ? "browser" : "node"} converter (${reason})`);
        try {
          inner.close();
        } catch {
          /* a broken watch program may fail to close; it is dropped either way */
        }
      }
      inner = null;
      staleReason = null;
    }

    function current(): Converter {
      if (staleReason) drop(staleReason);
      if (!inner) {
        stamp = nodeModulesStamp(options.cwd);
        inner = options.create({ isJS: options.isJS, isBrowser });
      }
      return inner;
    }

    // Runs `call` on the current converter; on the timer error, or on `missing(result)` after
    // node_modules changed, rebuilds once and runs it again.
    function withRetry<T>(call: (c: Converter) => T, missing?: (r: T) => boolean): T {
      let result: T;
      try {
        result = call(current());
      } catch (e) {
        if (!isTimerSlotError(e)) throw e;
        drop("pending rebuildTimer");
        return call(current());
      }
      if (missing?.(result) && nodeModulesStamp(options.cwd) !== stamp) {
        drop("node_modules changed (TS2307)");
        return call(current());
      }
      return result;
    }

    return {
      convert: (prevDecl: string, src: string): ConvertResult => withRetry((c) => c.convert(prevDecl, src), (r) => hasMissingModule(r.diagnostics)),
      inspect: (prevDecl: string, src: string, position: number) => withRetry((c) => c.inspect(prevDecl, src, position)),
      complete: (prevDecl: string, src: string, position: number): CompletionInfo => withRetry((c) => c.complete(prevDecl, src, position)),
      addModule: (...args: Parameters<Converter["addModule"]>) => withRetry((c) => c.addModule(...args), (d) => hasMissingModule(d)),
      close: () => drop("closed"),
      closeInner: () => drop("closed"),
      warm: () => void current(),
      // Only when node_modules changed since this converter was built: an install is announced
      // and then seen by the watchers too, and one rebuild is enough for both.
      invalidate(reason: string) {
        if (inner && !staleReason && nodeModulesStamp(options.cwd) !== stamp) staleReason = reason;
      },
    };
  }

  const node = healing(false);
  const browser = healing(true);
  const onWatch = (p: string) => {
    node.invalidate(`watcher: ${p}`);
    browser.invalidate(`watcher: ${p}`);
  };
  const unsubscribe = options.watch?.subscribe(onWatch);
  return {
    node,
    browser,
    resets,
    invalidate(reason: string) {
      node.invalidate(reason);
      browser.invalidate(reason);
    },
    warm: () => node.warm(),
    close() {
      unsubscribe?.();
      node.closeInner();
      browser.closeInner();
    },
  };
}
