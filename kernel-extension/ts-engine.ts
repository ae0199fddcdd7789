/**
 * The TypeScript engine of `sense-ts` (and, in JavaScript mode, of `sense-js`): tslab 1.0.22's
 * converter type-checks each cell against the earlier ones and transpiles it; this module runs the
 * result, as tslab's executor does (declarations kept in `__tslab__.exports`, local `.ts` files
 * imported as side outputs, `require("tslab")` for its display API), and reports the outcome to
 * the core: the last expression's value, or a {@link CompileError} / the thrown error.
 *
 * Nothing of TypeScript or tslab loads until a cell needs it (the first cell that is neither a
 * magic nor precompiled, or a complete/inspect/is_complete request, or the warm-up). Precompiled
 * cells (a worker's startup code, already checked by the master) run in the JavaScript engine.
 */
import * as fs from "node:fs";
import Module, { createRequire } from "node:module";
import * as path from "node:path";
import * as vm from "node:vm";
import type * as ConverterModule from "tslab/dist/converter";
import type { Converter, Diagnostic } from "tslab/dist/converter";
import type * as InspectModule from "tslab/dist/inspect";
import type * as MetadataModule from "tslab/dist/metadata";
import { CURRENT_CELL_KEY, type CellIO, type CurrentCell, type DisplayMessage, type MagicScope } from "../src/protocol/cell";
import { CompileError, type CellDiagnostic } from "./cell-errors";
import type { HealingConverterSet } from "./converters";
import type { CellOutcome, Completeness, Completion, Engine, EngineInfo } from "./engine";
import { abortPromise, globalScope, JsEngine } from "./js-engine";
import { notebookScope } from "./magic-cells";
import type { CodeCache } from "./code-cache";
import { loadTslabTypeScript, overlayTslabTypeScript, prepareTypeRoots } from "./resolve";
import { distPath } from "../src/protocol/marks";
import type { defaultTranspiler } from "../src/transpile";

// What only the compiler's side needs (the converter glue, the code cache, the master-side
// transpiler) loads with the compiler, not with the kernel: a worker that runs precompiled code
// never compiles, and every worker of a launch pays its own boot on the machine's shared cores.
/* eslint-disable @typescript-eslint/no-require-imports */
const lazy = {
  converters: () => require("./converters") as typeof import("./converters"),
  codeCache: () => require("./code-cache") as typeof import("./code-cache"),
  transpiler: (): ReturnType<typeof defaultTranspiler> => (require("../src/transpile") as typeof import("../src/transpile")).defaultTranspiler(),
};
/* eslint-enable @typescript-eslint/no-require-imports */

/** Options of {@link TsEngine}. */
export interface TsEngineOptions {
  /** JavaScript flavour (`sense-js`): tslab's converter in JS mode. */
  isJS: boolean;
  /** This package's root. */
  root: string;
  /** The notebook's folder (imports resolve from it). */
  cwd?: string;
  log: (line: string) => void;
  /** Loads tslab's TypeScript through V8's code cache (default: one in {@link defaultCodeCacheDir}). */
  codeCache?: CodeCache;
}

interface SideOutput {
  path: string;
  data: string;
}

/** What exists once the compiler was loaded. */
interface Loaded {
  converters: HealingConverterSet;
  getCodeMetadata: typeof MetadataModule.getCodeMetadata;
  isCompleteCode: typeof ConverterModule.isCompleteCode;
  printQuickInfo: typeof InspectModule.printQuickInfo;
  parseErrors: (code: string) => number;
}

/** tslab's `exports` object: `defineProperty` (how TS compiles named imports) acts as a plain set. */
function createExports(target: Record<string, unknown>): Record<string, unknown> {
  return new Proxy(target, {
    defineProperty: (_t, prop, attrs) => {
      if (prop === "__esModule") return true;
      target[prop as string] = attrs.get ? (attrs.get as () => unknown)() : attrs.value;
      return true;
    },
  });
}

function tslabVersionOfTypeScript(): string {
  try {
    const tslabDir = path.dirname(require.resolve("tslab/package.json"));
    const pj = require.resolve("@tslab/typescript-for-tslab/package.json", { paths: [tslabDir] });
    return (JSON.parse(fs.readFileSync(pj, "utf8")) as { version: string }).version;
  } catch {
    return "";
  }
}

const KERNEL_GLOBALS_DECL = [
  "/** Shows `value` in the cell: a MIME bundle as is, anything else as the kernel presents a last expression. */",
  "export declare function display(value: unknown, options?: { displayId?: string; update?: boolean; metadata?: Record<string, unknown> }): void;",
  "/** Clears the cell's output (when `wait`, at its next output). */",
  "export declare function clearOutput(wait?: boolean): void;",
  "",
].join("\n");

/** The TypeScript engine (see the file comment). */
export class TsEngine implements Engine {
  readonly info: EngineInfo;
  private loaded: Loaded | null = null;
  private codeCache: CodeCache | null = null;
  private transpilerWarmed = false;
  private readonly js: JsEngine;
  private readonly exportsTarget: Record<string, unknown> = {};
  private readonly exports = createExports(this.exportsTarget);
  private readonly sideOutputs = new Map<string, string>();
  private readonly sideModules = new Map<string, NodeJS.Module>();
  private readonly cellRequire: NodeJS.Require;
  private readonly cellScope: MagicScope;
  // The kernel's own globals, declared for the type checker like an earlier cell's declarations.
  private prevDecl = KERNEL_GLOBALS_DECL;
  private readonly cwd: string;

  constructor(private readonly options: TsEngineOptions) {
    this.cwd = options.cwd ?? process.cwd();
    this.js = new JsEngine(options.root);
    this.info = options.isJS
      ? { languageInfo: { ...this.js.info.languageInfo }, banner: "Sense JavaScript (tslab)" }
      : {
          languageInfo: { name: "typescript", version: tslabVersionOfTypeScript(), mimetype: "text/typescript", file_extension: ".ts", codemirror_mode: "typescript" },
          banner: "Sense TypeScript (tslab)",
        };
    this.cellRequire = this.wrapRequire(Module.createRequire(path.join(this.cwd, "src.js")), this.cwd);
    // Cells see `exports` and `require` through this global, as in tslab.
    vm.runInThisContext("(x) => { globalThis.__tslab__ = x; }")({ exports: this.exports, require: this.cellRequire });
    // KERNEL_GLOBALS_DECL's names, seen by compiled cells through `exports` like earlier declarations.
    for (const name of ["display", "clearOutput"]) {
      Object.defineProperty(this.exportsTarget, name, { get: () => (globalThis as Record<string, unknown>)[name], enumerable: false, configurable: true });
    }
    const tslabScope = notebookScope(() => this.exports);
    const globals = globalScope();
    this.cellScope = {
      lookup: (name) => {
        const own = tslabScope.lookup(name);
        return own.found ? own : globals.lookup(name);
      },
      evaluate: (expr) => tslabScope.evaluate?.(expr),
    };
  }

  /** Loads tslab's converter (the compiler) once. */
  private load(): Loaded {
    if (this.loaded) return this.loaded;
    const { root, log, isJS } = this.options;
    const { CodeCache, defaultCodeCacheDir } = lazy.codeCache();
    const cache = this.options.codeCache ?? new CodeCache(defaultCodeCacheDir(), { log });
    try {
      // Every program tslab's converter builds hands its parsed libraries to the master's
      // transpiler: the first launch with TypeScript startup code then parses none of them again.
      overlayTslabTypeScript(root, prepareTypeRoots(), (file) => cache.require(file), (typescript, program) => void lazy.transpiler().adoptFrom(typescript, program));
    } catch (e) {
      log(`sense: sense-tslab types will not resolve outside a folder that has them: ${(e as Error).message}`);
    }
    const ts = loadTslabTypeScript() as unknown as {
      sys: Record<string, unknown>;
      createSourceFile(name: string, text: string, target: number, setParents?: boolean, kind?: number): { parseDiagnostics?: unknown[] };
      ScriptTarget: { Latest: number };
      ScriptKind: { TSX: number };
    };
    const { createHealingConverterSet, wrapTypeScriptWatchers } = lazy.converters();
    const watch = wrapTypeScriptWatchers(ts.sys);
    // Loaded only now: tslab's modules must see the overlaid TypeScript.
    const load = createRequire(__filename);
    const converter = load("tslab/dist/converter") as typeof ConverterModule;
    const converters = createHealingConverterSet({ isJS, cwd: this.cwd, create: converter.createConverter, log, watch });
    try {
      const { onInstalled } = load(distPath(root, "npmInstall")) as { onInstalled?: (l: () => void) => () => void };
      onInstalled?.(() => converters.invalidate("install"));
    } catch (e) {
      log(`sense: install notifications unavailable: ${(e as Error).message}`);
    }
    // tslab's display API writes through this export; route it to the cell running now.
    const jupyter = load("tslab/dist/jupyter") as { lastWriteDisplayData: ((msg: DisplayMessage, update: boolean) => void) | null };
    jupyter.lastWriteDisplayData = (msg, update) => {
      const current = (globalThis as Record<symbol, unknown>)[CURRENT_CELL_KEY] as (() => CurrentCell) | undefined;
      current?.().displayMessage(msg, update);
    };
    this.codeCache = cache;
    this.loaded = {
      converters,
      getCodeMetadata: (load("tslab/dist/metadata") as typeof MetadataModule).getCodeMetadata,
      isCompleteCode: converter.isCompleteCode,
      printQuickInfo: (load("tslab/dist/inspect") as typeof InspectModule).printQuickInfo,
      parseErrors: (code) => ts.createSourceFile("cell.ts", code, ts.ScriptTarget.Latest, false, ts.ScriptKind.TSX).parseDiagnostics?.length ?? 0,
    };
    return this.loaded;
  }

  /** `require` for cells: `tslab` is tslab itself; local `.ts` files come from the side outputs. */
  private wrapRequire(req: NodeJS.Require, dirname: string): NodeJS.Require {
    const fromSideOutputs = (id: string): unknown => {
      let filename = path.isAbsolute(id) ? path.normalize(id) : path.join(dirname, id);
      if (path.extname(filename) === "") filename += ".js";
      const cached = this.sideModules.get(filename);
      if (cached) return cached.exports;
      const source = this.sideOutputs.get(filename);
      if (source === undefined) return null;
      const mod = new Module(filename, module) as NodeJS.Module & { _compile(code: string, file: string): void; paths: string[] };
      mod.filename = filename;
      mod.paths = (Module as unknown as { _nodeModulePaths(dir: string): string[] })._nodeModulePaths(path.dirname(filename));
      mod.require = this.wrapRequire(mod.require as NodeJS.Require, path.dirname(filename));
      mod._compile(source, filename);
      this.sideModules.set(filename, mod);
      return mod.exports;
    };
    return new Proxy(req, {
      apply: (_target, thisArg, args: unknown[]) => {
        if (args.length !== 1 || typeof args[0] !== "string") return Reflect.apply(req, thisArg, args) as unknown;
        const id = args[0];
        if (id === "tslab") return createRequire(__filename)("tslab") as unknown;
        const side = id.startsWith(".") || path.isAbsolute(id) ? fromSideOutputs(id) : null;
        return side ?? (Reflect.apply(req, thisArg, args) as unknown);
      },
    });
  }

  private updateSideOutputs(outs: SideOutput[] | undefined): void {
    for (const out of outs ?? []) {
      this.sideModules.delete(out.path);
      this.sideOutputs.set(out.path, out.data);
    }
  }

  private diagnostics(diags: readonly Diagnostic[], count: number): CellDiagnostic[] {
    const file = `cell-${count}.${this.options.isJS ? "js" : "ts"}`;
    return diags.map((d) => ({ file: d.fileName ?? file, line: d.start.line + 1, column: d.start.character + 1, code: d.code, message: d.messageText }));
  }

  async execute(code: string, io: CellIO, precompiled: boolean): Promise<CellOutcome> {
    if (precompiled) return this.js.execute(code, io);
    const { converters, getCodeMetadata } = this.load();
    const meta = getCodeMetadata(code);
    const conv: Converter = meta.mode === "browser" ? converters.browser : converters.node;
    if (meta.module) {
      const diags = conv.addModule(meta.module, code, meta);
      return diags.length ? { ok: false, error: new CompileError(this.diagnostics(diags, io.executionCount)) } : { ok: true, value: undefined };
    }
    // Browser cells are type-checked only (tslab does not run them either).
    if (meta.mode === "browser") return { ok: true, value: undefined };
    const converted = converters.node.convert(this.prevDecl, code);
    this.saveCodeCache();
    // Compiling is synchronous: an interrupt that came meanwhile is seen only now. Look before
    // running anything: the signal is read in the next poll phase of the event loop, which comes
    // before the second check phase from here.
    await new Promise((r) => setImmediate(() => setImmediate(r)));
    if (io.signal.aborted) return { ok: false, error: io.signal.reason };
    this.updateSideOutputs(converted.sideOutputs);
    if (converted.diagnostics.length > 0) return { ok: false, error: new CompileError(this.diagnostics(converted.diagnostics, io.executionCount)) };
    if (!converted.output) {
      this.prevDecl = converted.declOutput ?? "";
      return { ok: true, value: undefined };
    }
    // The function wrapper lets `let`/`const` be declared again by a later cell, as in tslab.
    const prefix = converted.hasToplevelAwait ? "(async function(exports, require) { " : "(function(exports, require) { ";
    const wrapped = `${prefix}${converted.output}\n})(__tslab__.exports, __tslab__.require)`;
    try {
      const ret = vm.runInThisContext(wrapped, { breakOnSigint: true, displayErrors: false, filename: `cell-${io.executionCount}.js` }) as unknown;
      if (converted.hasToplevelAwait) await Promise.race([ret, abortPromise(io.signal)]);
    } catch (error) {
      return { ok: false, error };
    }
    this.prevDecl = converted.declOutput ?? "";
    let value: unknown;
    const last = converted.lastExpressionVar;
    if (last && Object.prototype.hasOwnProperty.call(this.exports, last)) {
      value = this.exports[last];
      delete this.exports[last];
    }
    return { ok: true, value };
  }

  private converterFor(code: string): Converter {
    const { converters, getCodeMetadata } = this.load();
    return getCodeMetadata(code).mode === "browser" ? converters.browser : converters.node;
  }

  complete(code: string, cursor: number): Completion {
    const info = this.converterFor(code).complete(this.prevDecl, code, cursor);
    return { matches: info.candidates, start: info.start, end: info.end };
  }

  inspect(code: string, cursor: number): string | null {
    const info = this.converterFor(code).inspect(this.prevDecl, code, cursor);
    return info ? this.load().printQuickInfo(info) : null;
  }

  isComplete(code: string): Completeness {
    const { isCompleteCode, parseErrors } = this.load();
    const r = isCompleteCode(code);
    if (!r.completed) return { status: "incomplete", indent: r.indent ?? "" };
    return { status: parseErrors(code) > 0 ? "invalid" : "complete" };
  }

  scope(): MagicScope {
    return this.cellScope;
  }

  warm(): void {
    this.load().converters.warm();
    this.saveCodeCache();
    // kernel_info comes more than once (the server's nudges, each front end): one warm-up check.
    if (!this.options.isJS && !this.transpilerWarmed) this.warmTranspiler();
  }

  // A TypeScript master checks its workers' startup code with the package's transpiler; the first
  // check of a process runs the type checker's code cold (about 3x a later check). One tiny check
  // here, while the notebook is idle, makes the first launch cost what later ones do. Its libraries
  // are the converter's (adopted), so it parses none.
  private warmTranspiler(): void {
    this.transpilerWarmed = true;
    try {
      // The file a launch from this folder checks (cluster.ts: the workers' folder, by default the
      // notebook's): its program then reuses this one's module resolutions, not only its libraries.
      lazy.transpiler().checkAndTranspile(WARM_UP_CODE, { fileName: path.join(this.options.cwd ?? process.cwd(), "__startup.ts") });
    } catch (e) {
      this.options.log(`sense: transpiler warm-up failed: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  // Once the compiler did its first work, its code cache entry holds the functions that work
  // compiled too; written right after (the reply is out), once per machine and TypeScript.
  private saveCodeCache(): void {
    const cache = this.codeCache;
    if (cache?.pending) setImmediate(() => cache.save()).unref();
  }
}

/** Startup code as workers' often is (Node globals, generics, a template, await), for the transpiler's warm-up. */
const WARM_UP_CODE = [
  "const senseWarmUp: number[] = [1, 2].map((x) => x * 2);",
  "console.log(`${senseWarmUp.length}`, JSON.stringify({ home: process.env.HOME ?? \"\" }));",
  "await Promise.resolve(senseWarmUp);",
  "",
].join("\n");
