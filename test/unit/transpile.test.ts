import * as path from "node:path";
import * as ts from "typescript";
import { checkAndTranspile, defaultTranspiler, formatDiagnostics, Transpiler } from "../../src/transpile";
import { isUsageError, SenseError } from "../../src/errors";

const SNIPPET = [
  "import * as os from 'node:os';",
  "interface Job { id: number; name: string }",
  "const jobs: Job[] = [];",
  "for (let i = 0; i < 5; i++) jobs.push({ id: i, name: `job-${i}` });",
  "function describe(j: Job): string {",
  "  return `${j.id}:${j.name}`;",
  "}",
  "const host: string = os.hostname();",
  "const total = jobs.reduce((s, j) => s + j.id, 0);",
  "const wait = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));",
  "await wait(1);",
  "console.log(host.length > 0, total, jobs.map(describe).join(','));",
  "enum Level { Low, High }",
  "const level: Level = Level.High;",
  "type Pair<T> = [T, T];",
  "const pair: Pair<number> = [1, 2];",
  "class Counter { private n = 0; inc(): number { return ++this.n; } }",
  "const c = new Counter();",
  "c.inc();",
  "console.log(level, pair[0] + pair[1], c.inc(), process.pid > 0, Buffer.from('x').length);",
].join("\n");

describe("checkAndTranspile", () => {
  it("turns good TypeScript into CommonJS JavaScript without types", () => {
    const r = checkAndTranspile("const n: number = 40 + 2;\nconsole.log(n);\n");
    expect(r.diagnostics).toEqual([]);
    expect(r.js).toContain("const n = 40 + 2;");
    expect(r.js).not.toContain(": number");
  });

  it("checks with Node's types, keeps top-level await and turns imports into require", () => {
    const r = checkAndTranspile(SNIPPET, { fileName: path.join(__dirname, "startup.ts") });
    expect(r.diagnostics.filter((d) => d.category === "error")).toEqual([]);
    expect(r.js).toContain('require("node:os")');
    expect(r.js).toContain("await wait(1);");
    expect(r.js).not.toMatch(/interface Job/);
  });

  it("rejects a type error with the diagnostic text and its line, before anything runs", () => {
    let caught: unknown;
    try {
      checkAndTranspile("const a = 1;\nconst s: string = a * 2;\n", { fileName: "/tmp/job.ts" });
    } catch (e) {
      caught = e;
    }
    expect(isUsageError(caught)).toBe(true);
    const err = caught as SenseError;
    expect(err.code).toBe("compile_error");
    expect(err.message).toContain("job.ts:2:7 - error TS2322: Type 'number' is not assignable to type 'string'.");
    expect(err.details.diagnostics).toEqual([
      expect.objectContaining({ category: "error", code: 2322, line: 2, column: 7, file: "/tmp/job.ts" }),
    ]);
  });

  it("reports syntax errors and unknown names", () => {
    const r = checkAndTranspile("const x = ;\nundefinedThing();\n", { throwOnError: false, fileName: "/tmp/x.ts" });
    expect(r.diagnostics.map((d) => [d.code, d.line])).toEqual(expect.arrayContaining([[1109, 1], [2304, 2]]));
    expect(formatDiagnostics(r.diagnostics)).toMatch(/x\.ts:2:1 - error TS2304: Cannot find name 'undefinedThing'/);
  });

  it("rejects a non-string with bad_option", () => {
    expect(() => checkAndTranspile(42 as unknown as string)).toThrow(expect.objectContaining({ code: "bad_option" }));
  });

  it("is fast once warm (reported, not asserted)", () => {
    const t0 = performance.now();
    checkAndTranspile(SNIPPET, { fileName: path.join(__dirname, "warm.ts") });
    const warm = performance.now() - t0;
    console.log(`checkAndTranspile, 20-line snippet, warm: ${warm.toFixed(0)} ms`);
    expect(warm).toBeGreaterThan(0);
  });
});

describe("Transpiler (an instance of its own)", () => {
  it("checks and prepares code with the compiler it was given, apart from the default one", () => {
    let created = 0;
    const counting = new Proxy(ts, {
      get: (target, key) => {
        if (key === "createProgram") created++;
        return Reflect.get(target, key) as unknown;
      },
    });
    const t = new Transpiler({ typescript: counting });
    expect(t.checkAndTranspile("const n: number = 1;\nconsole.log(n);\n").js).toContain("console.log(n)");
    expect(created).toBe(1);
    expect(() => t.checkAndTranspile("const s: string = 1;")).toThrow(/TS2322/);
    expect(created).toBe(2);
    expect(t.prepareRemoteCode("const x: number = 2; x").hasValue).toBe(true);
    expect(() => t.prepareRemoteCode(42 as unknown as string)).toThrow(/code must be a string/);
    checkAndTranspile("1;");
    // The default transpiler is another instance: it did not use this one's compiler.
    expect(created).toBe(2);
    expect(defaultTranspiler()).not.toBe(t);
  });
});

describe("Transpiler.adoptFrom (libraries another program of the same compiler parsed)", () => {
  // A program like the one tslab's converter builds: the same libraries, a virtual `.d.ts` of its own.
  function otherProgram(): ts.Program {
    const options: ts.CompilerOptions = { target: ts.ScriptTarget.ES2022, lib: ["lib.es2022.d.ts"], types: [], noEmit: true };
    const host = ts.createCompilerHost(options);
    const own = path.join(__dirname, "__prev__.d.ts");
    const base = host.getSourceFile.bind(host);
    host.getSourceFile = (name, v, ...rest) => (path.resolve(name) === own ? ts.createSourceFile(name, "declare const prev: number;", v) : base(name, v, ...rest));
    const exists = host.fileExists.bind(host);
    host.fileExists = (name) => path.resolve(name) === own || exists(name);
    return ts.createProgram({ rootNames: [own], options, host });
  }

  it("takes the other program's lib.*.d.ts so a check parses none of them, and never its own files", () => {
    const t = new Transpiler({ typescript: ts });
    const program = otherProgram();
    const adopted = t.adoptFrom(ts, program);
    expect(adopted).toBeGreaterThan(10);
    // Exactly the default libraries: the program's own `__prev__.d.ts` stays its own.
    expect(adopted).toBe(program.getSourceFiles().filter((sf) => program.isSourceFileDefaultLibrary(sf)).length);
    expect(t.stats().adopted).toBe(adopted);
    // A second hand-over of the same files adds nothing.
    expect(t.adoptFrom(ts, program)).toBe(0);
    expect(t.checkAndTranspile("const n: number = [1, 2].at(-1) ?? 0;\nconsole.log(n);\n").diagnostics).toEqual([]);
    const parsed = t.stats().parsed;
    expect(parsed.filter((f) => /[\\/]lib\.[^\\/]*\.d\.ts$/.test(f))).toEqual([]);
  });

  it("adopts nothing from another compiler module (node and symbol ids would collide)", () => {
    const t = new Transpiler({ typescript: ts });
    const another = { ...ts };
    expect(t.adoptFrom(another, otherProgram())).toBe(0);
    expect(t.stats().adopted).toBe(0);
    t.checkAndTranspile("const n: number = 1;\n");
    expect(t.stats().parsed.some((f) => /[\\/]lib\.es5\.d\.ts$/.test(f))).toBe(true);
  });
});
