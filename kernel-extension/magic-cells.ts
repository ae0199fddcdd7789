/**
 * What the protocol core needs of the magics registry (`dist/src/magics`): the registry's `runCell`
 * contract and the notebook's variables as a magic scope (which cells are magic: src/protocol/cell.ts).
 */
import * as vm from "node:vm";
import type { MagicCellIO, MagicScope } from "../src/protocol/cell";


/** The outcome of `runCell` (the registry's contract). */
export interface MagicCellResult {
  ok: boolean;
  /** What the last magic returned. */
  value?: unknown;
  /** True when the registry already displayed `value`. */
  displayed?: boolean;
  /** Why it failed; the registry has already reported it on the sink's stderr. */
  error?: unknown;
}

/** The part of `dist/src/magics` the kernel uses. */
export interface MagicsModule {
  runCell(source: string, ctx: MagicCellIO): Promise<MagicCellResult>;
  isMagicCell?(source: string): boolean;
}

const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/;
const RESERVED = new Set(
  ("break case catch class const continue debugger default delete do else enum export extends false finally for function if " +
    "import in instanceof new null return super switch this throw true try typeof var void while with yield let static " +
    "implements interface package private protected public await arguments eval").split(" "),
);

interface TslabGlobal {
  exports: Record<string, unknown>;
  require: NodeJS.Require;
}

function tslabGlobal(): TslabGlobal | undefined {
  return (globalThis as { __tslab__?: TslabGlobal }).__tslab__;
}

/**
 * The notebook's variables as a {@link MagicScope}. tslab keeps every top-level declaration of
 * every cell in `globalThis.__tslab__.exports`; `evaluate(expr)` compiles `expr` (JavaScript) into
 * a function whose parameters are those variables, so it sees them by name and nothing else of
 * the kernel's scope. It is only ever called on a magic's argument line, never on a cell body.
 */
export function notebookScope(locals: () => Record<string, unknown> | undefined = () => tslabGlobal()?.exports): MagicScope {
  return {
    lookup(name) {
      const ex = locals();
      if (ex && Object.prototype.hasOwnProperty.call(ex, name)) return { found: true, value: ex[name] };
      return { found: false };
    },
    evaluate(expr) {
      const ex = locals() ?? {};
      const names = Object.keys(ex).filter((n) => IDENT.test(n) && !RESERVED.has(n));
      const values = names.map((n) => ex[n]);
      const req = tslabGlobal()?.require;
      if (req && !names.includes("require")) {
        names.push("require");
        values.push(req);
      }
      // The newline keeps a trailing `// comment` in expr from swallowing the closing paren.
      const fn = vm.runInThisContext(`(function (${names.join(", ")}) { return (${expr}\n); })`, { filename: "magic-expression" }) as (
        ...args: unknown[]
      ) => unknown;
      return fn(...values);
    },
  };
}
