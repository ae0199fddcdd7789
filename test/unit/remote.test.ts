/** Remote execution's pure parts: code preparation, values, errors, interrupts, the magic and the table. */
import { EventEmitter } from "node:events";
import * as vm from "node:vm";
import { prepareRemoteCode, LAST_VALUE_KEY, Transpiler } from "../../src/transpile";
import { RemoteError, isRemoteError } from "../../src/errors";
import { jsonExact, toWire, fromWire, toJsonWire, fromJsonWire } from "../../src/remote/values";
import { checkNames, checkSettable } from "../../src/remote/names";
import { jsRuntimeCall, PY_LAST_VALUE, pyPush, pyValuesOf, readReply, wireArg } from "../../src/remote/runtime";
import { execute } from "../../src/remote/execute";
import { map } from "../../src/remote/map";
import { buildPreamble } from "../../src/workers/bootstrap/preamble";
import { shown } from "../../src/errors";
import { watchInterrupts } from "../../src/remote/interrupt";
import { functionSource } from "../../src/remote/map";
import { RouteTable } from "../../src/workers/channel";
import { richBundle } from "../../src/display/hooks";
import { MagicRegistry } from "../../src/magics/registry";
import { executeCell, formatFailure } from "../../src/magics/run";
import { registerRemoteMagics, RemoteCore } from "../../src/magics/remote";
import type { ExecuteOptions, ExecuteResult } from "../../src/remote/execute";
import { emptyScope, varsScope } from "../../src/magics/expand";
import { captureSink } from "../helpers/util";

const runJs = (js: string) => {
  const ctx = vm.createContext({});
  const completion: unknown = vm.runInContext(js, ctx);
  return { completion, kept: vm.runInContext(`globalThis[Symbol.for(${JSON.stringify(LAST_VALUE_KEY)})]?.[0]`, ctx) as unknown };
};

describe("prepareRemoteCode", () => {
  it("keeps the last expression's value without changing the cell's value", () => {
    // no `;` after `20`: the wrap (which starts with a parenthesis) must not become a call of 20
    const p = prepareRemoteCode("var a = 20\na * 2 + 2");
    expect(p.hasValue).toBe(true);
    const r = runJs(p.js);
    expect(r.completion).toBe(42);
    expect(r.kept).toBe(42);
  });

  it("leaves plain JavaScript as written and transpiles TypeScript; no type check", () => {
    expect(prepareRemoteCode("let x = 1;").js).toBe("let x = 1;");
    const t = prepareRemoteCode("const n: number = onlyOnWorkers as number;\nn * 2");
    expect(t.js).not.toMatch(/: number|as number/);
    expect(t.ts).toMatch(/\(globalThis as any\)/);
    expect(prepareRemoteCode("enum E { A }\nE.A").js).toMatch(/E\[E\["A"\] = 0\]/);
  });

  it("a syntax error is a compile_error with line and column", () => {
    expect(() => prepareRemoteCode("1 +\nlet = = 2")).toThrow(expect.objectContaining({ code: "compile_error", message: expect.stringMatching(/remote\.ts:2:\d+ - error TS/) }));
  });

  it("plain JavaScript is prepared without the compiler (a master that never loaded TypeScript does not load it); TypeScript syntax still uses it", () => {
    let used = 0;
    const typescript = new Proxy({}, { get: () => { used++; throw new Error("the compiler was used"); } }) as unknown as typeof import("typescript");
    const tr = new Transpiler({ typescript });
    const cases: [string, unknown][] = [
      ["var a = 20\na * 2 + 2", 42],
      ["let s = 0; for (const x of [1, 2, 3]) s += x; (s, s * 2)", 12],
      ["const o = { k: 7 };\no.k;;", 7],
      ["await Promise.resolve(5)", undefined],
    ];
    for (const [code, value] of cases) {
      const p = tr.prepareRemoteCode(code);
      expect(p.hasValue).toBe(true);
      expect(p.ts).toMatch(/\(globalThis as any\)/);
      // the same text as the compiler's path makes
      expect(p).toEqual(prepareRemoteCode(code));
      if (value !== undefined) expect(runJs(p.js)).toEqual({ completion: value, kept: value });
    }
    expect(tr.prepareRemoteCode("let x = 1;")).toEqual({ ts: "let x = 1;", js: "let x = 1;", hasValue: false });
    expect(used).toBe(0);
    expect(() => tr.prepareRemoteCode("const n: number = 1;\nn")).toThrow("the compiler was used");
    expect(() => tr.prepareRemoteCode("import * as fs from 'fs';\nfs")).toThrow("the compiler was used");
  });

  it("TypeScript type arguments that also parse as JavaScript comparisons (f<T>(x), new Set<number>([...])) are still transpiled for JavaScript workers", () => {
    // acorn reads `new Set<number>([1, 2])` as `(new Set < number) > [1, 2]`: sent as written, a
    // JavaScript worker threw "number is not defined" (or computed a boolean) where the compiler's
    // path had erased the type arguments.
    const cases: [string, unknown][] = [
      ["const id = (x) => x;\nid<number>(21) * 2", 42],
      ["new Set<number>([1, 2, 2]).size", 2],
      ["new Map<string, number>([['a', 1]]).get('a')", 1],
      ["const id = (x) => x;\nid<Array<string>>(['q'])[0]", "q"],
    ];
    for (const [code, value] of cases) {
      const p = prepareRemoteCode(code);
      expect(p.js).not.toMatch(/<(number|string|Array)/);
      expect(runJs(p.js)).toEqual({ completion: value, kept: value });
    }
    // plain comparisons still run as written
    const c = prepareRemoteCode("const a = 1, b = 2, c = 0;\n(a < b) > c");
    expect(runJs(c.js)).toEqual({ completion: true, kept: true });
  });
});

describe("values", () => {
  it("jsonExact accepts exactly what JSON carries unchanged", () => {
    for (const v of [null, 1, "s", true, [1, [2]], { a: { b: [null] } }]) expect(jsonExact(v)).toBe(true);
    const cyc: Record<string, unknown> = {};
    cyc.self = cyc;
    for (const v of [undefined, NaN, -0, Infinity, 1n, new Date(), new Map(), new Array(3), { f: () => 1 }, { u: undefined }, cyc, Object.assign([1], { x: 1 })]) expect(jsonExact(v)).toBe(false);
  });
  it("checkNames is an allowlist", () => {
    expect(checkNames(["a", "_b2"], "push")).toEqual(["a", "_b2"]);
    for (const bad of ["a-b", "1a", "class", "None", "x;y", "", "é"]) expect(() => checkNames([bad], "push")).toThrow(expect.objectContaining({ code: "bad_option" }));
  });
  it("a name a runtime relies on cannot be set (dunders, __proto__, Symbol, IPython's Out): bad_option naming it and why", () => {
    // reading is harmless; setting broke the worker
    expect(checkNames(["__name__", "Symbol"], "pull")).toEqual(["__name__", "Symbol"]);
    for (const n of ["__builtins__", "__proto__", "__x", "__"]) {
      expect(() => checkNames([n], "push", { set: true })).toThrow(expect.objectContaining({ code: "bad_option", message: expect.stringMatching(new RegExp(`^push: "${n}" starts with __`)) }));
    }
    for (const n of ["Symbol", "Object", "JSON", "Buffer", "require", "process", "Array", "Map", "Reflect", "setTimeout", "Promise"]) {
      expect(() => checkSettable([n], "javascript", "push", "w1")).toThrow(expect.objectContaining({ code: "bad_option", message: expect.stringContaining(`"${n}" cannot be set on JavaScript worker w1`) }));
      expect(() => checkSettable([n], "typescript", "push", "w1")).toThrow(expect.objectContaining({ code: "bad_option" }));
      expect(() => checkSettable([n], "python", "push", "w2")).not.toThrow();
    }
    for (const n of ["Out", "_oh", "get_ipython", "In"]) {
      expect(() => checkSettable([n], "python", "push", "w2")).toThrow(expect.objectContaining({ code: "bad_option", message: expect.stringContaining(`"${n}" cannot be set on Python worker w2`) }));
    }
    // the runtimes' helpers keep their own names: these are free to use
    for (const n of ["json", "base64", "exec", "globals", "print", "d", "rt", "fs"]) {
      expect(checkNames([n], "push", { set: true })).toEqual([n]);
      for (const l of ["python", "javascript"] as const) expect(() => checkSettable([n], l, "push", "w")).not.toThrow();
    }
  });
  it("values for Python travel as base64 of UTF-8 JSON: exact both ways, and the Python source holds only ASCII", () => {
    const hostile = ["x)))\u2028x = ! and __import__('os').system('touch /tmp/p') or '{}')) #\u2028#", "first line\u2028>>> second line", "\u2029\u0085\0'\"\\", "\ud800 lone \udc80", "\ud83d\ude00"];
    const values = { s: hostile, o: JSON.parse('{"__proto__": {"x": 1}, "\\u2028": 2}') as unknown };
    const wire = toJsonWire(values, "push");
    expect(wire).toMatch(/^[A-Za-z0-9+/]*={0,2}$/);
    expect(fromJsonWire(wire)).toEqual(values);
    expect(Object.prototype.hasOwnProperty.call((fromJsonWire(wire) as { o: object }).o, "__proto__")).toBe(true);
    // the code sent to a Python worker: a fixed template and base64, nothing of the values
    for (const src of [pyPush(wire), pyValuesOf(["a", "b"]), PY_LAST_VALUE]) {
      expect(src).toMatch(/^[\x20-\x7e]*$/);
      expect(src).not.toContain("touch");
    }
    // the Python worker's answers: base64 of ASCII JSON, lone surrogates kept
    const answer = Buffer.from(JSON.stringify({ value: hostile }), "utf8").toString("base64");
    expect(readReply({ json64: answer })).toEqual({ value: hostile });
    expect(readReply({ value: 1 })).toEqual({ value: 1 });
    expect(readReply({ json64: "not json" })).toBeUndefined();
  });
  it("every argument of a JavaScript runtime call is base64; the env preamble embeds the path as base64", () => {
    expect(() => wireArg('")\u2028x')).toThrow(/must be base64/);
    expect(jsRuntimeCall(`pull(${wireArg(toWire(["a"], "pull"))})`)).toContain(".pull(\"");
    const file = "/tmp/pro\u2028ject\u0085/\"x'/.sense/env.sealed";
    for (const language of ["python", "javascript"] as const) {
      const src = buildPreamble(language, file, { key: "AAAA" });
      expect(src).not.toContain("pro\u2028ject");
      expect(src).toContain(Buffer.from(file, "utf8").toString("base64"));
    }
    expect(() => buildPreamble("python", file, { key: '"+x' })).toThrow(/must be base64/);
  });
  it("a value whose reading throws, or that JSON cannot carry, is bad_option naming it (Python workers)", () => {
    const getter = Object.defineProperty({}, "boom", {
      enumerable: true,
      get() {
        throw new RangeError("no value here");
      },
    });
    expect(() => toJsonWire({ g: getter }, "push to Python worker w1")).toThrow(expect.objectContaining({ code: "bad_option", message: "push to Python worker w1: g cannot be sent: reading it threw RangeError: no value here" }));
    expect(() => toJsonWire({ m: { x: [1, new Map()] } }, "push")).toThrow(expect.objectContaining({ code: "bad_option", message: expect.stringMatching(/^push: m cannot be sent: m\.x\[1\] is Map\(0\) \{\}, not a plain object/) }));
    expect(() => toJsonWire({ n: NaN }, "push")).toThrow(expect.objectContaining({ message: expect.stringMatching(/n is NaN, which JSON does not carry/) }));
    // a getter is read once: what was checked is what is sent
    let reads = 0;
    const once = Object.defineProperty({}, "v", { enumerable: true, get: () => (++reads === 1 ? 1 : new Map()) });
    expect(fromJsonWire(toJsonWire({ once }, "push"))).toEqual({ once: { v: 1 } });
    expect(reads).toBe(1);
  });
  it("messages show NaN, Infinity and undefined as themselves, not as null", async () => {
    expect([shown(NaN), shown(Infinity), shown(undefined), shown("x"), shown(10n), shown(() => 1)]).toEqual(["NaN", "Infinity", "undefined", '"x"', "10n", "[Function (anonymous)]"]);
    await expect(execute("1", { timeoutSeconds: NaN })).rejects.toMatchObject({ code: "bad_option", message: expect.stringMatching(/, not NaN$/) });
    await expect(execute("1", { targets: [NaN as unknown as string] })).rejects.toMatchObject({ code: "bad_option", message: "not a worker id, name, record or handle: NaN" });
    await expect(map((x: number) => x, [1], { chunkSize: NaN })).rejects.toMatchObject({ code: "bad_option", message: "map: chunkSize must be a positive integer, not NaN" });
  });
  it("v8 wire keeps structured data; unclonable values are a clear error", () => {
    const v = { m: new Map([[1, new Set([2])]]), b: 5n, d: new Date(3) };
    expect(fromWire(toWire(v, "x"))).toEqual(v);
    expect(() => toWire({ f: () => 1 }, "push: a value")).toThrow(expect.objectContaining({ code: "bad_option", message: expect.stringMatching(/push: a value cannot be sent/) }));
  });
});

describe("RemoteError", () => {
  it("shows the first traceback in full and one line per other failure", () => {
    const e = new RemoteError(
      "execute",
      [
        { worker: "w2", id: "k2", ename: "ZeroDivisionError", evalue: "division by zero", traceback: ["\u001b[31mTraceback\u001b[0m", "ZeroDivisionError: division by zero"] },
        { worker: "w3", id: "k3", ename: "NameError", evalue: "name 'x' is not defined", traceback: ["long", "trace"] },
      ],
      [],
      { of: 3 },
    );
    expect(e.code).toBe("remote_error");
    expect(isRemoteError(e)).toBe(true);
    expect(e.message).toBe("one or more exceptions raised in: execute (2 of 3)\n[w2:execute] ZeroDivisionError: division by zero\n[w3:execute] NameError: name 'x' is not defined");
    expect(e.render()).toBe("RemoteError: one or more exceptions raised in: execute\n[w2:execute]\nTraceback\nZeroDivisionError: division by zero\n[w3:execute] NameError: name 'x' is not defined");
    expect(formatFailure(e)).toBe(e.render() + "\n");
    expect(e.stack).toBe(e.render());
  });
});

describe("interrupts and routes", () => {
  it("an AbortSignal fires; SIGINT only when the process already handles it", () => {
    const proc = new EventEmitter();
    const ac = new AbortController();
    const plain = watchInterrupts(ac.signal, proc as never);
    expect(proc.listenerCount("SIGINT")).toBe(0);
    ac.abort();
    expect(plain.fired).toBe(true);
    plain.dispose();
    const kernelHandler = () => undefined;
    proc.on("SIGINT", kernelHandler);
    const inKernel = watchInterrupts(undefined, proc as never);
    proc.emit("SIGINT");
    expect(inKernel.fired).toBe(true);
    inKernel.dispose();
    expect(proc.listeners("SIGINT")).toEqual([kernelHandler]);
  });
  it("RouteTable keeps only the most recent finished routes", () => {
    const t = new RouteTable();
    const releases = Array.from({ length: RouteTable.KEEP_DONE + 10 }, (_, i) => t.add(`m${i}`, () => undefined));
    const running = t.add("running", () => undefined);
    releases.forEach((r) => r());
    expect(t.get("m0")).toBeUndefined();
    expect(t.get(`m${RouteTable.KEEP_DONE + 9}`)).toBeDefined();
    expect(t.get("running")).toBeDefined();
    running();
  });
  it("functionSource takes function and arrow expressions only", () => {
    expect(functionSource((x: number) => x + 1)).toMatch(/=>/);
    expect(() => functionSource(Math.max)).toThrow(expect.objectContaining({ code: "bad_option" }));
    expect(() => functionSource({ m(x: number) { return x; } }.m)).toThrow(expect.objectContaining({ code: "bad_option" }));
  });
});

const result = (worker: string, over: Partial<ExecuteResult> = {}): ExecuteResult => ({ worker, id: `k-${worker}`, status: "ok", value: 42, data: { "text/plain": "42" }, stdout: "", stderr: "", durationMs: 1.25, ...over });

describe("%%sense_px and the results table", () => {
  const setup = (answer: (code: string, o: ExecuteOptions) => Promise<ExecuteResult[]>) => {
    const calls: [string, ExecuteOptions][] = [];
    const core: RemoteCore = { execute: (c, o) => (calls.push([c, o]), answer(c, o)) };
    const registry = new MagicRegistry();
    registerRemoteMagics(registry, core);
    const sink = captureSink();
    return { calls, sink, run: (src: string) => executeCell(src, { sink, scope: emptyScope, registry }) };
  };

  it("passes targets, timeout and body to execute and shows Out[w] per worker", async () => {
    const s = setup(async () => [result("w1"), result("w2", { value: undefined, data: {} })]);
    await s.run("%%sense_px w1 w2 --timeout 2.5\n6 * 7");
    expect(s.calls[0][0]).toBe("6 * 7");
    expect(s.calls[0][1]).toMatchObject({ targets: ["w1", "w2"], timeoutSeconds: 2.5 });
    expect(s.sink.displays.map((d) => d["text/plain"])).toEqual(["Out[w1]: 42"]);
  });

  it("a failure shows the good workers' values, then fails the cell", async () => {
    const s = setup(async () => {
      throw new RemoteError("execute", [{ worker: "w2", id: "k", ename: "E", evalue: "v", traceback: [] }], [result("w1"), result("w2", { status: "error" })]);
    });
    await expect(s.run("%%sense_px\nx")).rejects.toMatchObject({ code: "remote_error" });
    expect(s.sink.displays.map((d) => d["text/plain"])).toEqual(["Out[w1]: 42"]);
  });

  it("--noblock returns at once; results are shown as they arrive", async () => {
    let deliver!: (o: ExecuteOptions) => void;
    const s = setup(() => new Promise((resolve) => (deliver = (opts) => (opts.onResult?.(result("w1")), opts.onResult?.(result("w2", { status: "error", value: undefined, error: { ename: "E", evalue: "boom", traceback: [] } })), resolve([])))));
    await s.run("%%sense_px --noblock\nx");
    expect(s.sink.displays).toEqual([]);
    deliver(s.calls[0][1]);
    expect(s.sink.displays.map((d) => d["text/plain"])).toEqual(["Out[w1]: 42"]);
    expect(s.sink.err.join("")).toMatch(/\[w2:execute\]\nE: boom/);
  });

  it("%sense_scatter splits a notebook variable over the named workers; %sense_gather returns the whole", async () => {
    const calls: unknown[][] = [];
    const core: RemoteCore = {
      execute: async () => [],
      scatter: async (name, value, o) => void calls.push(["scatter", name, value, o.targets]),
      gather: async (name, o) => (calls.push(["gather", name, o.targets]), new Float64Array([1, 2, 3])),
    };
    const registry = new MagicRegistry();
    registerRemoteMagics(registry, core);
    const sink = captureSink();
    const data = new Float64Array([1, 2, 3]);
    const scope = varsScope({ data });
    await executeCell("%sense_scatter data w1 w2", { sink, scope, registry });
    const got = await executeCell("%sense_gather data", { sink, scope, registry });
    expect(calls).toEqual([
      ["scatter", "data", data, ["w1", "w2"]],
      ["gather", "data", undefined],
    ]);
    expect(got.value).toEqual(new Float64Array([1, 2, 3]));
    // A name the notebook does not have is a usage error naming it, and nothing is sent.
    await expect(executeCell("%sense_scatter nothere", { sink, scope, registry })).rejects.toMatchObject({ code: "bad_option", message: expect.stringMatching(/no variable named nothere/) });
    expect(calls).toHaveLength(2);
  });

  it("ExecuteResult[] renders as a table (worker, status, value, time)", () => {
    const b = richBundle([result("w1"), result("w2", { status: "timeout", value: undefined, error: { ename: "TimeoutError", evalue: "late", traceback: [] } })]);
    expect(b?.["text/plain"]).toMatch(/2 workers · 1 ok · 1 timeout\nworker\s+status\s+value\s+time\n[- ]+\nw1\s+ok\s+42\s+1\.3 ms\nw2\s+timeout\s+TimeoutError: late\s+1\.3 ms/);
    expect(b?.["text/html"]).toMatch(/<table>/);
  });
});
