/**
 * The JavaScript engine: cells run as plain scripts in the kernel's own context (top-level
 * `await` included, see fast-exec.ts). Never loads a compiler. It is the whole engine of
 * `sense-fast`, and the precompiled path of the TypeScript engine (a worker's startup code).
 */
import Module from "node:module";
import * as path from "node:path";
import * as vm from "node:vm";
import type { CellIO, MagicScope } from "../src/protocol/cell";
import { KeyboardInterrupt } from "./cell-errors";
import type { CellOutcome, Completeness, Completion, Engine, EngineInfo } from "./engine";
import { complete, inspect, isComplete, runCell } from "./js-exec";
import { distPath, PACKAGE_NAME } from "../src/protocol/marks";

const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** A promise that rejects with the signal's reason once it is aborted. */
export function abortPromise(signal: AbortSignal): Promise<never> {
  const p = new Promise<never>((_, reject) => {
    if (signal.aborted) reject(signal.reason ?? new KeyboardInterrupt());
    else signal.addEventListener("abort", () => reject(signal.reason ?? new KeyboardInterrupt()), { once: true });
  });
  p.catch(() => undefined);
  return p;
}

/** Script-level variables of this context, for magics (`$name`, `{expr}`). */
export function globalScope(): MagicScope {
  return {
    lookup(name) {
      if (!IDENT.test(name)) return { found: false };
      const found = vm.runInThisContext(`typeof ${name} !== "undefined"`) as boolean;
      return found ? { found: true, value: vm.runInThisContext(name) as unknown } : { found: false };
    },
    // The newline keeps a trailing `// comment` in expr from swallowing the closing paren.
    evaluate: (expr) => vm.runInThisContext(`(${expr}\n)`, { filename: "magic-expression" }) as unknown,
  };
}

/**
 * Defines `require`, `module`, `exports`, `__filename` and `__dirname` for scripts, resolving
 * from the kernel's folder, with `sense-tslab` mapped to the package at `root`.
 */
export function installScriptGlobals(root: string, cwd: string = process.cwd()): void {
  const cellFile = path.join(cwd, "__cell.js");
  const base = Module.createRequire(cellFile);
  const senseIndex = distPath(root, "index");
  const cellRequire = ((id: string) => (id === PACKAGE_NAME ? base(senseIndex) : base(id))) as NodeJS.Require;
  const resolve = ((id: string, opts?: { paths?: string[] }) => (id === PACKAGE_NAME ? senseIndex : base.resolve(id, opts))) as NodeJS.RequireResolve;
  resolve.paths = base.resolve.paths;
  cellRequire.resolve = resolve;
  cellRequire.cache = base.cache;
  cellRequire.extensions = base.extensions;
  cellRequire.main = undefined;
  const cellModule = { exports: {}, filename: cellFile, id: ".", path: cwd, loaded: true, children: [], paths: base.resolve.paths(".") ?? [] };
  const g = globalThis as Record<string, unknown>;
  for (const [k, v] of Object.entries({ require: cellRequire, module: cellModule, exports: cellModule.exports, __filename: cellFile, __dirname: cwd })) {
    Object.defineProperty(g, k, { value: v, writable: true, configurable: true, enumerable: false });
  }
}

/** The JavaScript engine (see the file comment). */
export class JsEngine implements Engine {
  readonly info: EngineInfo = {
    languageInfo: { name: "javascript", version: process.versions.node, mimetype: "application/javascript", file_extension: ".js" },
    banner: "Sense JavaScript",
  };
  private readonly globals = globalScope();

  constructor(root: string) {
    installScriptGlobals(root);
  }

  async execute(code: string, io: CellIO): Promise<CellOutcome> {
    return runCell(code, abortPromise(io.signal), `cell-${io.executionCount}.js`);
  }

  complete(code: string, cursor: number): Completion {
    return complete(code, cursor);
  }

  inspect(code: string, cursor: number): string | null {
    return inspect(code, cursor);
  }

  isComplete(code: string): Completeness {
    return { status: isComplete(code) };
  }

  scope(): MagicScope {
    return this.globals;
  }
}
