/**
 * Master-side TypeScript for fast workers: the startup code is type-checked once, in the master,
 * and shipped to `sense-fast` workers as plain JavaScript, so no worker ever loads a compiler.
 *
 * The compiler is the one already loaded in this process when there is one (tslab's
 * `@tslab/typescript-for-tslab` inside a `sense-ts` master), else the `typescript` package.
 * Parsed library files (`lib.*.d.ts`, `@types/node`) are cached across calls, so only the first
 * check pays for parsing them; inside a `sense-ts` master even that check does not: the kernel
 * hands over the declaration files tslab's converter already parsed ({@link Transpiler.adoptFrom}).
 */
import type * as Acorn from "acorn";
import * as fs from "node:fs";
import * as path from "node:path";
import type * as TS from "typescript";
import { UsageError } from "./errors";
import { processDefault } from "./util/process-default";

/** One compiler message about the checked code. */
export interface Diagnostic {
  /** `error`, `warning`, `suggestion` or `message`. */
  category: "error" | "warning" | "suggestion" | "message";
  /** TypeScript's code, e.g. 2322. */
  code: number;
  /** Flattened message text. */
  message: string;
  /** File the message is about (the checked code's `fileName` for its own problems). */
  file?: string;
  /** 1-based line and column, when the message points into a file. */
  line?: number;
  column?: number;
}

/** Options of {@link checkAndTranspile}. */
export interface TranspileOptions {
  /**
   * Name the code is checked under; its folder is where imports resolve from.
   * Default: `<cwd>/__startup.ts`.
   */
  fileName?: string;
  /** Throw on errors (default `true`); with `false` errors are returned in `diagnostics`. */
  throwOnError?: boolean;
}

/** Result of {@link checkAndTranspile}. */
export interface TranspileResult {
  /** CommonJS ES2022 JavaScript (top-level `await` kept: the fast kernel runs it). */
  js: string;
  /** Every diagnostic (only non-errors, unless `throwOnError: false`). */
  diagnostics: Diagnostic[];
}

/** The compiler to use: one already loaded in this process, else the `typescript` package. */
function loadCompiler(): typeof TS {
  const loaded = Object.keys(require.cache).find((k) => /[\\/]@tslab[\\/]typescript-for-tslab[\\/]lib[\\/]typescript\.js$/.test(k));
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (loaded ? require.cache[loaded]?.exports : require("typescript")) as typeof TS;
}

/** What a {@link Transpiler} keeps between checks. */
interface CompileCache {
  /** Parsed library and package declarations, by file name: they do not change between checks. */
  sourceFiles: Map<string, TS.SourceFile>;
  /** The previous check's program, which TypeScript reuses for the files that did not change. */
  lastProgram?: TS.Program;
  /** Declaration files parsed here (not adopted), in order: for {@link Transpiler.stats}. */
  parsed: string[];
  /** How many declaration files were adopted from another program. */
  adopted: number;
  /** How many checks ran. */
  checks: number;
}

/** What a {@link Transpiler} parsed itself and what it adopted (see {@link Transpiler.stats}). */
export interface TranspilerStats {
  /** Declaration files (`lib.*.d.ts`, `@types/...`) this transpiler parsed itself, in order. */
  parsed: string[];
  /** How many declaration files it adopted, already parsed, from another program ({@link Transpiler.adoptFrom}). */
  adopted: number;
  /** How many checks it ran ({@link Transpiler.checkAndTranspile}), a warm-up's included. */
  checks: number;
}

/** The parts of a program {@link Transpiler.adoptFrom} reads. */
export type AdoptableProgram = Pick<TS.Program, "getSourceFiles" | "isSourceFileDefaultLibrary">;

/**
 * True when `a` and `b` are one compiler module, or one is an overlay inheriting from the other
 * (the kernel replaces tslab's TypeScript in `require.cache` by such an overlay). Nodes of two
 * distinct module instances must never mix: each numbers its nodes and symbols with its own counter.
 */
function sameCompiler(a: object, b: object): boolean {
  return a === b || Object.getPrototypeOf(a) === b || Object.getPrototypeOf(b) === a;
}

/** Options of {@link Transpiler}. */
export interface TranspilerOptions {
  /** The TypeScript module to use (default: the one loaded in this process, else `typescript`, loaded on first use). */
  typescript?: typeof TS;
}

/**
 * The master's TypeScript compiler with what it keeps between calls (the compiler module, parsed
 * library declarations, the last program). One per process backs {@link checkAndTranspile} and
 * {@link prepareRemoteCode} (see {@link defaultTranspiler}); tests construct their own.
 */
export class Transpiler {
  private ts: typeof TS | undefined;
  private readonly cache: CompileCache = { sourceFiles: new Map(), parsed: [], adopted: 0, checks: 0 };

  constructor(options: TranspilerOptions = {}) {
    this.ts = options.typescript;
  }

  /**
   * As {@link checkAndTranspile}, with this instance's compiler and caches.
   * @throws as {@link checkAndTranspile}.
   */
  checkAndTranspile(code: string, options: TranspileOptions = {}): TranspileResult {
    if (typeof code !== "string") throw new UsageError("code must be a string", { code: "bad_option" });
    return checkWith(this.compiler(), this.cache, code, options);
  }

  /**
   * As {@link prepareRemoteCode}, with this instance's compiler.
   * @throws as {@link prepareRemoteCode}.
   */
  prepareRemoteCode(code: string, options: { fileName?: string } = {}): RemoteCode {
    if (typeof code !== "string") throw new UsageError("code must be a string", { code: "bad_option" });
    // Plain JavaScript needs no compiler: a master that never loaded TypeScript (a Node script, a
    // sense-fast master) does not load it (~300 ms, once) for its first remote call.
    return prepareJavaScript(code) ?? prepareWith(this.compiler(), code, options);
  }

  /**
   * Takes over the library declarations (`lib.*.d.ts`, and `.d.ts` files under `node_modules`)
   * another program of this same compiler module already parsed, so the next check does not parse
   * them again: a `sense-ts` master hands over its converter's programs, whose libraries are the
   * ones a check here reads (target ES2022, lib ES2022, tslab's `@types/node`). Files of the other
   * program's own (cells, tslab's `__prev__.d.ts`) are never taken; a file already held is kept.
   * Does nothing when `typescript` is not this transpiler's compiler module.
   * @returns how many files were adopted.
   */
  adoptFrom(typescript: object, program: AdoptableProgram): number {
    if (!sameCompiler(this.compiler(), typescript)) return 0;
    let n = 0;
    for (const sf of program.getSourceFiles()) {
      if (!sf.isDeclarationFile || this.cache.sourceFiles.has(sf.fileName)) continue;
      if (!program.isSourceFileDefaultLibrary(sf) && !/[\\/]node_modules[\\/]/.test(sf.fileName)) continue;
      this.cache.sourceFiles.set(sf.fileName, sf);
      n++;
    }
    this.cache.adopted += n;
    return n;
  }

  /** What this transpiler parsed itself and how much it adopted (a copy; for tests and the bench). */
  stats(): TranspilerStats {
    return { parsed: [...this.cache.parsed], adopted: this.cache.adopted, checks: this.cache.checks };
  }

  // Loaded on first use: a master that never checks code never pays for loading a compiler.
  private compiler(): typeof TS {
    this.ts ??= loadCompiler();
    return this.ts;
  }
}

/**
 * The process's default {@link Transpiler} (the one {@link checkAndTranspile} and
 * {@link prepareRemoteCode} use): its parsed library files make every check after the first fast.
 */
export const defaultTranspiler: () => Transpiler = processDefault(() => new Transpiler());

/** The `@types/node` folder the first of `from` resolves (Node's resolution from each folder in turn). */
function findTypesNode(from: string[]): string | undefined {
  for (const dir of from) {
    try {
      return path.dirname(require.resolve("@types/node/package.json", { paths: [dir] }));
    } catch {
      /* try the next place */
    }
  }
  return undefined;
}

function senseTypes(): string | undefined {
  const d = path.resolve(__dirname, "index.d.ts");
  return fs.existsSync(d) ? d : undefined;
}

function toDiagnostic(ts: typeof TS, d: TS.Diagnostic): Diagnostic {
  const category = (["warning", "error", "suggestion", "message"] as const)[d.category] ?? "error";
  const out: Diagnostic = { category, code: d.code, message: ts.flattenDiagnosticMessageText(d.messageText, "\n") };
  if (d.file && d.start !== undefined) {
    const pos = d.file.getLineAndCharacterOfPosition(d.start);
    out.file = d.file.fileName;
    out.line = pos.line + 1;
    out.column = pos.character + 1;
  }
  return out;
}

/** `file:line:col - error TS1234: message` lines, as tsc prints them. */
export function formatDiagnostics(diagnostics: readonly Diagnostic[]): string {
  return diagnostics
    .map((d) => `${d.file ? `${path.basename(d.file)}:${d.line}:${d.column} - ` : ""}${d.category} TS${d.code}: ${d.message}`)
    .join("\n");
}

/**
 * Type-checks `code` (TypeScript, with Node's types and `sense-tslab`'s own) and transpiles it to
 * CommonJS ES2022 JavaScript for the `sense-fast` engine.
 * @throws UsageError with code `compile_error` when the code has type or syntax errors (unless
 *   `throwOnError: false`); its message lists each error with line and column and its
 *   `details.diagnostics` holds them as {@link Diagnostic}s. Nothing else happens (no side effects).
 */
export function checkAndTranspile(code: string, options: TranspileOptions = {}): TranspileResult {
  return defaultTranspiler().checkAndTranspile(code, options);
}

/** {@link checkAndTranspile}'s work, with a {@link Transpiler}'s compiler and cache. */
function checkWith(ts: typeof TS, cache: CompileCache, code: string, options: TranspileOptions): TranspileResult {
  cache.checks++;
  const fileName = path.resolve(options.fileName ?? path.join(process.cwd(), "__startup.ts"));
  const dir = path.dirname(fileName);
  // tslab's own copy before this package's: the one a sense-ts kernel checks its cells with (see
  // kernel-extension/resolve.ts nodeTypesDir), so the master's check shares what its converter parsed.
  const typesNode = findTypesNode([dir, path.dirname(require.resolve("tslab/package.json")), __dirname]);
  const sense = senseTypes();
  const compilerOptions: TS.CompilerOptions = {
    target: ts.ScriptTarget.ES2022,
    // Checked as an ES module so top-level `await` is legal; emitted as CommonJS below.
    module: ts.ModuleKind.ES2022,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    moduleDetection: ts.ModuleDetectionKind.Force,
    lib: ["lib.es2022.d.ts"],
    strict: true,
    esModuleInterop: true,
    skipLibCheck: true,
    noEmit: true,
    types: typesNode ? ["node"] : [],
    typeRoots: typesNode ? [path.dirname(typesNode)] : [],
    paths: sense ? { "sense-tslab": [sense] } : undefined,
  };
  const host = ts.createCompilerHost(compilerOptions, true);
  const baseGet = host.getSourceFile.bind(host);
  host.getSourceFile = (name, languageVersion, onError, shouldCreate) => {
    if (path.resolve(name) === fileName) return ts.createSourceFile(name, code, languageVersion, true);
    // Library and package declarations do not change between checks: parse them once. An adopted
    // file parsed for another language version or module format is parsed again here.
    const hit = cache.sourceFiles.get(name);
    const wanted = typeof languageVersion === "object" ? languageVersion : { languageVersion, impliedNodeFormat: undefined };
    if (hit && hit.languageVersion === wanted.languageVersion && hit.impliedNodeFormat === wanted.impliedNodeFormat) return hit;
    const sf = baseGet(name, languageVersion, onError, shouldCreate);
    if (sf && /\.d\.[cm]?ts$/.test(name)) {
      cache.sourceFiles.set(name, sf);
      cache.parsed.push(name);
    }
    return sf;
  };
  const baseRead = host.readFile.bind(host);
  host.readFile = (name) => (path.resolve(name) === fileName ? code : baseRead(name));
  const baseExists = host.fileExists.bind(host);
  host.fileExists = (name) => path.resolve(name) === fileName || baseExists(name);

  const program = ts.createProgram({ rootNames: [fileName], options: compilerOptions, host, oldProgram: cache.lastProgram });
  cache.lastProgram = program;
  const sf = program.getSourceFile(fileName);
  const raw = [...program.getOptionsDiagnostics(), ...program.getGlobalDiagnostics(), ...program.getSyntacticDiagnostics(sf), ...program.getSemanticDiagnostics(sf)];
  const diagnostics = raw.map((d) => toDiagnostic(ts, d));
  const errors = diagnostics.filter((d) => d.category === "error");
  if (errors.length > 0 && options.throwOnError !== false) {
    throw new UsageError(`the startup code does not compile:\n${formatDiagnostics(errors)}`, {
      code: "compile_error",
      details: { diagnostics: errors, fileName },
    });
  }
  const out = ts.transpileModule(code, {
    fileName,
    compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.CommonJS, esModuleInterop: true, sourceMap: false, inlineSourceMap: false },
    reportDiagnostics: false,
  });
  return { js: out.outputText, diagnostics };
}


/** Where {@link prepareRemoteCode} keeps the value of the code's last expression on the worker. */
export const LAST_VALUE_KEY = "sense.remote.last";

/** Result of {@link prepareRemoteCode}. */
export interface RemoteCode {
  /** The TypeScript to send to a TypeScript kernel (the last expression wrapped, see below). */
  ts: string;
  /** The same code as JavaScript (CommonJS, ES2022, top-level `await` kept) for JavaScript kernels. */
  js: string;
  /** True when the code ends in an expression whose value the worker keeps under {@link LAST_VALUE_KEY}. */
  hasValue: boolean;
}

/** True when `sf` uses anything a JavaScript engine would not run as written (types, enums, modules, decorators...). */
function needsEmit(ts: typeof TS, sf: TS.SourceFile): boolean {
  const k = ts.SyntaxKind;
  const tsOnly = new Set<TS.SyntaxKind>([
    k.AsExpression, k.NonNullExpression, k.SatisfiesExpression, k.TypeAssertionExpression, k.InterfaceDeclaration, k.TypeAliasDeclaration,
    k.EnumDeclaration, k.ModuleDeclaration, k.ImportEqualsDeclaration, k.ExportAssignment, k.ImportDeclaration, k.ExportDeclaration, k.Decorator,
    k.DeclareKeyword, k.PublicKeyword, k.PrivateKeyword, k.ProtectedKeyword, k.ReadonlyKeyword, k.AbstractKeyword, k.OverrideKeyword, k.ExportKeyword,
    k.ExpressionWithTypeArguments, k.JsxElement, k.JsxSelfClosingElement, k.JsxFragment,
  ]);
  const visit = (n: TS.Node): boolean => {
    if (tsOnly.has(n.kind) || (n.kind >= k.FirstTypeNode && n.kind <= k.LastTypeNode)) return true;
    const x = n as { type?: unknown; typeParameters?: unknown; typeArguments?: unknown; questionToken?: unknown; exclamationToken?: unknown };
    if (x.type !== undefined || x.typeParameters !== undefined || x.typeArguments !== undefined || x.exclamationToken !== undefined) return true;
    if (ts.isParameter(n) && x.questionToken !== undefined) return true;
    if (ts.isClassLike(n) && n.heritageClauses?.some((h) => h.token === k.ImplementsKeyword)) return true;
    return ts.forEachChild(n, visit) === true;
  };
  return visit(sf);
}

/**
 * Prepares code that `execute` runs on JavaScript/TypeScript workers: parsed (and, when it uses
 * TypeScript syntax, transpiled) once, here in the master, with syntax checking only. Nothing is
 * type-checked: remote code refers to names that exist only on the workers (their startup code's
 * globals, pushed values), which a checker here would reject. A final expression statement `e`
 * becomes `;((globalThis as any)[Symbol.for(LAST_VALUE_KEY)] = [(e)])[0]` (the `;` guards against a previous line without one): the cell's value is
 * unchanged, and the worker keeps it for the reply's `user_expressions` (see src/remote/runtime.ts).
 * The wrap stays on the expression's own lines, so line numbers in worker tracebacks match the code.
 * Plain JavaScript is sent as written (a parse, ~0.1 ms); only TypeScript syntax pays for an emit.
 * @throws UsageError `compile_error` for a syntax error, with line and column; nothing is sent then.
 */
export function prepareRemoteCode(code: string, options: { fileName?: string } = {}): RemoteCode {
  return defaultTranspiler().prepareRemoteCode(code, options);
}

/**
 * `code` with its final expression (`code.slice(start, end)`) wrapped so the worker keeps its
 * value (see {@link prepareRemoteCode}), for TypeScript and JavaScript workers.
 */
function wrapLast(code: string, start: number, end: number): RemoteCode {
  const key = `Symbol.for(${JSON.stringify(LAST_VALUE_KEY)})`;
  const [head, expr, tail] = [code.slice(0, start), code.slice(start, end), code.slice(end)];
  return { ts: `${head};((globalThis as any)[${key}] = [(${expr})])[0]${tail}`, js: `${head};(globalThis[${key}] = [(${expr})])[0]${tail}`, hasValue: true };
}

/**
 * {@link prepareRemoteCode}'s work for plain JavaScript, without TypeScript: what acorn parses as a
 * script (top-level `await` allowed). `undefined` for anything else (TypeScript syntax, ES module
 * syntax, a syntax error), which the compiler then handles as before. Never throws.
 */
function prepareJavaScript(code: string): RemoteCode | undefined {
  let program: Acorn.Program;
  // TypeScript's type arguments also parse as JavaScript comparisons (`f<T>(x)`, `new Set<number>([1])`
  // is `(new Set < number) > [1]` to acorn): where a `<` is followed by a `>` anywhere, the code may
  // mean something else to the compiler, whose reading (and emit) it keeps.
  let opened = false;
  let ambiguous = false;
  try {
    // Loaded here, not with this module: every Sense kernel loads this module at start.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const acorn = require("acorn") as typeof Acorn;
    const { relational, bitShift } = acorn.tokTypes;
    const onToken = (t: Acorn.Token): void => {
      if (t.type !== relational && t.type !== bitShift) return;
      const op = code.slice(t.start, t.end);
      if (op === "<") opened = true;
      else if (opened && op.startsWith(">")) ambiguous = true;
    };
    // preserveParens: a final `(a, b)` is wrapped with its parentheses, as TypeScript's node has them.
    program = acorn.parse(code, { ecmaVersion: "latest", sourceType: "script", allowAwaitOutsideFunction: true, allowHashBang: true, preserveParens: true, onToken });
  } catch {
    return undefined;
  }
  if (ambiguous) return undefined;
  const statements = program.body.filter((s) => s.type !== "EmptyStatement");
  const last = statements[statements.length - 1];
  return last?.type === "ExpressionStatement" ? wrapLast(code, last.expression.start, last.expression.end) : { ts: code, js: code, hasValue: false };
}

/** {@link prepareRemoteCode}'s work, with a {@link Transpiler}'s compiler. */
function prepareWith(ts: typeof TS, code: string, options: { fileName?: string }): RemoteCode {
  const fileName = options.fileName ?? "remote.ts";
  const sf = ts.createSourceFile(fileName, code, ts.ScriptTarget.ES2022, true, ts.ScriptKind.TS);
  const parseErrors = (sf as unknown as { parseDiagnostics?: TS.Diagnostic[] }).parseDiagnostics;
  const fail = (diags: readonly TS.Diagnostic[]) => {
    const errors = diags.map((d) => toDiagnostic(ts, d)).filter((d) => d.category === "error");
    return new UsageError(`the code does not parse:\n${formatDiagnostics(errors)}`, { code: "compile_error", details: { diagnostics: errors } });
  };
  if (parseErrors?.length) throw fail(parseErrors);
  const statements = sf.statements.filter((s) => s.kind !== ts.SyntaxKind.EmptyStatement);
  const last = statements[statements.length - 1];
  const wrapped = last && ts.isExpressionStatement(last) ? wrapLast(code, last.expression.getStart(sf), last.expression.end) : { ts: code, js: code, hasValue: false };
  const { ts: tsCode, hasValue } = wrapped;
  let jsCode = wrapped.js;
  if (parseErrors === undefined || needsEmit(ts, sf)) {
    const out = ts.transpileModule(tsCode, {
      fileName,
      compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.CommonJS, esModuleInterop: true, sourceMap: false, inlineSourceMap: false },
      reportDiagnostics: true,
    });
    if (out.diagnostics?.some((d) => d.category === ts.DiagnosticCategory.Error)) throw fail(out.diagnostics);
    jsCode = out.outputText;
  }
  return { ts: tsCode, js: jsCode, hasValue };
}
