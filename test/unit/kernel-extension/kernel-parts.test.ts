/**
 * The Sense kernel's own pieces, without ZeroMQ: the self-healing converter set (over fake
 * converters), magic detection and scope, error descriptions, the argv parser.
 * The real tslab seam is covered by test/integration/kernel*.test.ts.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { Converter, ConvertResult, Diagnostic } from "tslab/dist/converter";
import { createHealingConverterSet, isTimerSlotError, nodeModulesStamp, wrapTypeScriptWatchers } from "../../../kernel-extension/converters";
import { CompileError, describeError, KeyboardInterrupt } from "../../../kernel-extension/cell-errors";
import { isPrecompiled, precompiledMetadata, requestMetadata, wantsResultInReply } from "../../../src/protocol/marks";
import { workerSession } from "../../../kernel-extension/core";
import { localPackageRoot, parseKernelArgs } from "../../../kernel-extension/kernel";
import { silenceServicesConsole } from "../../../src/util/services-console";
import { notebookScope } from "../../../kernel-extension/magic-cells";
import { isMagicSource } from "../../../src/protocol/cell";
import { presenter } from "../../../kernel-extension/present";
import { hookPackageResolution } from "../../../kernel-extension/resolve";
import Module from "node:module";

let tmp: string;
beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "sense-kparts-"));
});
afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

const diag = (code: number): Diagnostic => ({ start: { offset: 0, line: 0, character: 0 }, end: { offset: 0, line: 0, character: 0 }, messageText: `TS${code}`, category: 1, code });

/** A fake converter whose convert() runs the scripted behaviours in turn. */
function fakeFactory(script: ((n: number) => ConvertResult)[]) {
  const made: { closed: boolean }[] = [];
  let calls = 0;
  const create = (): Converter => {
    const state = { closed: false };
    made.push(state);
    return {
      convert: () => script[Math.min(calls++, script.length - 1)](calls),
      inspect: () => undefined as unknown as ReturnType<Converter["inspect"]>,
      complete: () => ({ start: 0, end: 0, candidates: [] }),
      addModule: () => [],
      close: () => void (state.closed = true),
    };
  };
  return { create, made };
}
const ok: () => ConvertResult = () => ({ output: "1", declOutput: "", diagnostics: [] }) as unknown as ConvertResult;
const timerError = () => {
  throw new Error("Unexpected pending rebuildTimer");
};
const missing: () => ConvertResult = () => ({ diagnostics: [diag(2307)] }) as unknown as ConvertResult;

describe("healing converter set", () => {
  it("rebuilds once and retries on 'Unexpected pending rebuildTimer'", () => {
    const f = fakeFactory([timerError, ok]);
    const set = createHealingConverterSet({ isJS: false, cwd: tmp, create: f.create });
    expect(set.node.convert("", "1").diagnostics).toEqual([]);
    expect(f.made.length).toBe(2);
    expect(f.made[0].closed).toBe(true);
    expect(set.resets.map((r) => r.reason)).toEqual(["pending rebuildTimer"]);
  });

  it("does not loop: a second timer error propagates", () => {
    const f = fakeFactory([timerError, timerError]);
    const set = createHealingConverterSet({ isJS: false, cwd: tmp, create: f.create });
    expect(() => set.node.convert("", "1")).toThrow(/pending rebuildTimer/);
    expect(f.made.length).toBe(2);
  });

  it("retries a TS2307 only when node_modules changed since the converter was built", () => {
    const f = fakeFactory([missing, ok]);
    const set = createHealingConverterSet({ isJS: false, cwd: tmp, create: f.create });
    // unchanged node_modules: the diagnostic is real
    expect(set.node.convert("", "import 'x'").diagnostics.map((d) => d.code)).toEqual([2307]);
    expect(f.made.length).toBe(1);
    fs.mkdirSync(path.join(tmp, "node_modules"));
    const f2 = fakeFactory([missing, ok]);
    const set2 = createHealingConverterSet({ isJS: false, cwd: tmp, create: f2.create });
    set2.warm();
    fs.mkdirSync(path.join(tmp, "node_modules", "x"));
    fs.writeFileSync(path.join(tmp, "node_modules", ".package-lock.json"), "{}");
    expect(set2.node.convert("", "import 'x'").diagnostics).toEqual([]);
    expect(f2.made.length).toBe(2);
  });

  it("invalidate() makes the next call build a fresh converter; others errors pass through", () => {
    const f = fakeFactory([ok]);
    const set = createHealingConverterSet({ isJS: false, cwd: tmp, create: f.create });
    set.node.convert("", "1");
    // Nothing changed in node_modules: no rebuild.
    set.invalidate("install");
    set.node.convert("", "1");
    expect(f.made.length).toBe(1);
    fs.mkdirSync(path.join(tmp, "node_modules"));
    set.invalidate("install");
    // The watchers see the same install later: still one rebuild.
    set.invalidate("watcher: node_modules");
    set.node.convert("", "1");
    set.invalidate("watcher: node_modules");
    set.node.convert("", "1");
    expect(f.made.length).toBe(2);
    expect(set.resets.map((r) => r.reason)).toEqual(["install"]);
    const boom = fakeFactory([
      () => {
        throw new TypeError("other");
      },
    ]);
    expect(() => createHealingConverterSet({ isJS: false, cwd: tmp, create: boom.create }).node.convert("", "")).toThrow(TypeError);
  });

  it("watcher events under node_modules invalidate, and the timer error in a watcher is swallowed", () => {
    const callbacks: ((f: string) => void)[] = [];
    const sys = { watchDirectory: (_p: string, cb: (f: string) => void) => void callbacks.push(cb) };
    const watch = wrapTypeScriptWatchers(sys);
    const f = fakeFactory([ok]);
    const set = createHealingConverterSet({ isJS: false, cwd: tmp, create: f.create, watch });
    set.warm();
    let calls = 0;
    sys.watchDirectory(path.join(tmp, "node_modules"), () => {
      calls++;
      throw new Error("Unexpected pending rebuildTimer");
    });
    fs.mkdirSync(path.join(tmp, "node_modules"));
    expect(() => callbacks[0](path.join(tmp, "node_modules", "pkg"))).not.toThrow();
    expect(calls).toBe(1);
    set.node.convert("", "1");
    expect(f.made.length).toBe(2);
    expect(set.resets[0].reason).toMatch(/^watcher: /);
    set.close();
  });

  it("the watch belongs to the sys it wraps: wrapping again returns it; a set hears only the watch it was given", () => {
    const callbacks: ((f: string) => void)[] = [];
    const sys = { watchDirectory: (_p: string, cb: (f: string) => void) => void callbacks.push(cb) };
    const watch = wrapTypeScriptWatchers(sys);
    const wrapped = sys.watchDirectory;
    expect(wrapTypeScriptWatchers(sys)).toBe(watch);
    expect(sys.watchDirectory).toBe(wrapped);
    const other = wrapTypeScriptWatchers({ watchDirectory: () => undefined });
    expect(other).not.toBe(watch);
    const heard: string[] = [];
    const off = watch.subscribe((p) => void heard.push(p));
    other.subscribe((p) => void heard.push(`other:${p}`));
    sys.watchDirectory(path.join(tmp, "node_modules"), () => undefined);
    callbacks[0](path.join(tmp, "node_modules", "a"));
    off();
    callbacks[0](path.join(tmp, "node_modules", "b"));
    expect(heard).toEqual([path.join(tmp, "node_modules", "a")]);

    const f = fakeFactory([ok]);
    const unwatched = createHealingConverterSet({ isJS: false, cwd: tmp, create: f.create });
    const watched = createHealingConverterSet({ isJS: false, cwd: tmp, create: fakeFactory([ok]).create, watch });
    unwatched.warm();
    watched.warm();
    fs.mkdirSync(path.join(tmp, "node_modules"));
    callbacks[0](path.join(tmp, "node_modules", "c"));
    unwatched.node.convert("", "1");
    watched.node.convert("", "1");
    expect(unwatched.resets).toEqual([]);
    expect(watched.resets.map((r) => r.reason)).toEqual([`watcher: ${path.join(tmp, "node_modules", "c")}`]);
    watched.close();
    // Closed, a set unsubscribes from its watch.
    let subscribed = 0;
    const counting = { subscribe: () => (subscribed++, () => void subscribed--) };
    const third = createHealingConverterSet({ isJS: false, cwd: tmp, create: fakeFactory([ok]).create, watch: counting });
    expect(subscribed).toBe(1);
    third.close();
    expect(subscribed).toBe(0);
  });

  it("recognises tslab's timer errors and fingerprints node_modules", () => {
    expect(isTimerSlotError(new Error("Unexpected pending rebuildTimer"))).toBe(true);
    expect(isTimerSlotError(new Error("clearing unexpected tiemr"))).toBe(true);
    expect(isTimerSlotError(new Error("x"))).toBe(false);
    const a = nodeModulesStamp(tmp);
    fs.mkdirSync(path.join(tmp, "node_modules"));
    expect(nodeModulesStamp(tmp)).not.toBe(a);
  });
});

describe("magic cells", () => {
  it("detects magic cells by their first non-empty line", () => {
    expect(isMagicSource("\n  %lsmagic")).toBe(true);
    expect(isMagicSource("%%sense_worker\nbody")).toBe(true);
    expect(isMagicSource("const a = 1 % 2;\n%x")).toBe(false);
    expect(isMagicSource("")).toBe(false);
  });

  it("the notebook scope looks up variables and evaluates expressions over them only", () => {
    const scope = notebookScope(() => ({ n: 4, name: "w", default: 1 }));
    expect(scope.lookup("n")).toEqual({ found: true, value: 4 });
    expect(scope.lookup("toString")).toEqual({ found: false });
    expect(scope.evaluate!("n * 2 + name.length")).toBe(9);
    expect(scope.evaluate!("n // a trailing comment")).toBe(4);
    expect(() => scope.evaluate!("undefinedThing")).toThrow(/undefinedThing is not defined/);
  });

});

describe("presenter", () => {
  it("loads the package's present module on the first value, once, from its own root", () => {
    const makeRoot = (name: string) => {
      const root = path.join(tmp, name);
      const dir = path.join(root, "dist", "src", "display");
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(
        path.join(dir, "present.js"),
        `let loads = (globalThis.__senseTestLoads ??= {}); loads[${JSON.stringify(name)}] = (loads[${JSON.stringify(name)}] ?? 0) + 1;
         exports.presentValue = (v) => (typeof v === "number" ? { rich: { "text/plain": "${name}:" + v, "text/html": "<b>" + v + "</b>" } } : { text: "${name}:" + String(v) });`,
      );
      return root;
    };
    const loads = () => (globalThis as { __senseTestLoads?: Record<string, number> }).__senseTestLoads ?? {};
    const a = presenter(makeRoot("a"));
    const b = presenter(makeRoot("b"));
    expect(loads()).toEqual({});
    expect(a(1)).toEqual({ "text/plain": "a:1", "text/html": "<b>1</b>" });
    expect(a("x")).toEqual({ "text/plain": "a:x" });
    expect(b("y")).toEqual({ "text/plain": "b:y" });
    expect(loads()).toEqual({ a: 1, b: 1 });
    expect(() => presenter(path.join(tmp, "none"))(1)).toThrow(/Cannot find module/);
  });
});

describe("package resolution hook", () => {
  it("maps sense-tslab to the root's build; idempotent; the remover restores Node's resolver", () => {
    const M = Module as unknown as { _resolveFilename: (request: string, parent: unknown, isMain: boolean) => string };
    const original = M._resolveFilename;
    const root = path.join(tmp, "pkg");
    fs.mkdirSync(path.join(root, "dist", "src"), { recursive: true });
    fs.writeFileSync(path.join(root, "dist", "src", "index.js"), "");
    fs.writeFileSync(path.join(root, "extra.js"), "");
    const off = hookPackageResolution(root);
    try {
      expect(hookPackageResolution(path.join(tmp, "other"))).toBe(off);
      expect(M._resolveFilename("sense-tslab", null, false)).toBe(path.join(root, "dist", "src", "index.js"));
      expect(M._resolveFilename("sense-tslab/extra.js", null, false)).toBe(path.join(root, "extra.js"));
    } finally {
      off();
    }
    expect(M._resolveFilename).toBe(original);
    // Removed, it can be hooked anew.
    const again = hookPackageResolution(root);
    expect(again).not.toBe(off);
    again();
    expect(M._resolveFilename).toBe(original);
  });
});

describe("kernel plumbing", () => {
  it("marks precompiled code by execute metadata", () => {
    expect(isPrecompiled(precompiledMetadata())).toBe(true);
    expect(isPrecompiled({ sense: { precompiled: "typescript" } })).toBe(false);
    expect(isPrecompiled({})).toBe(false);
    expect(isPrecompiled(undefined)).toBe(false);
  });

  it("asks for the result in the reply by execute metadata, with or without the precompiled mark", () => {
    expect(requestMetadata({})).toBeUndefined();
    expect(requestMetadata({ precompiled: true })).toEqual(precompiledMetadata());
    const both = requestMetadata({ precompiled: true, resultInReply: true });
    expect(isPrecompiled(both)).toBe(true);
    expect(wantsResultInReply(both)).toBe(true);
    const js = requestMetadata({ resultInReply: true });
    expect(isPrecompiled(js)).toBe(false);
    expect(wantsResultInReply(js)).toBe(true);
    expect(wantsResultInReply(precompiledMetadata())).toBe(false);
    expect(wantsResultInReply({ sense: { result: "iopub" } })).toBe(false);
    expect(wantsResultInReply({ sense: null })).toBe(false);
    expect(wantsResultInReply(undefined)).toBe(false);
  });

  it("tells worker and pooled sessions from notebooks by the session path", () => {
    expect(workerSession("work/.sense-worker-ab12cd34-3-0f0f0f")).toBe(true);
    expect(workerSession(".sense-pool-ab12cd34-00ff00ff")).toBe(true);
    expect(workerSession("/srv/project/work/sense:k-1:3:small:1700000000000:starting")).toBe(true);
    expect(workerSession("/srv/project/sense-pool:k-1:sense-ts:small:1700000000000")).toBe(true);
    expect(workerSession("work/analysis.ipynb")).toBe(false);
    expect(workerSession(undefined)).toBeUndefined();
  });

  it("prefers a sense-tslab installed above the notebook's folder over its own copy", () => {
    const own = path.join(tmp, "own");
    fs.mkdirSync(own);
    const nbDir = path.join(tmp, "project", "notebooks");
    fs.mkdirSync(nbDir, { recursive: true });
    expect(localPackageRoot(nbDir, own)).toBeNull();
    const local = path.join(tmp, "project", "node_modules", "sense-tslab");
    fs.mkdirSync(path.join(local, "dist", "kernel-extension"), { recursive: true });
    fs.writeFileSync(path.join(local, "dist", "kernel-extension", "kernel.js"), "");
    expect(localPackageRoot(nbDir, own)).toBe(fs.realpathSync(local));
    // The same copy (the kernelspec points into this very project) is not "another" one.
    expect(localPackageRoot(nbDir, local)).toBeNull();
  });

  it("drops console.debug calls made from @jupyterlab/services only", () => {
    const original = console.debug;
    const seen: unknown[][] = [];
    console.debug = (...args: unknown[]) => void seen.push(args);
    try {
      silenceServicesConsole(console);
      const dir = path.join(tmp, "node_modules", "@jupyterlab", "services", "lib");
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(path.join(dir, "chatty.js"), 'module.exports = () => console.debug("Starting WebSocket: ws://x");\n');
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      (require(path.join(dir, "chatty.js")) as () => void)();
      console.debug("user debug");
      expect(seen).toEqual([["user debug"]]);
    } finally {
      console.debug = original;
    }
  });

  it("parses the kernel's argv", () => {
    expect(parseKernelArgs(["--config-path", "/c.json"])).toEqual({ configPath: "/c.json", jsKernel: false });
    expect(parseKernelArgs(["--config-path=/c.json", "--js"])).toEqual({ configPath: "/c.json", jsKernel: true });
    expect(() => parseKernelArgs(["--js"])).toThrow(/--config-path is required/);
    expect(() => parseKernelArgs(["--config-path", "/c", "--nope"])).toThrow(/usage: node kernel.js/);
  });
});

describe("error descriptions", () => {
  it("gives ename, evalue and a traceback without the kernel's frames", () => {
    const e = new RangeError("too far");
    e.stack = "RangeError: too far\n    at f (cell-3.js:1:7)\n    at cell-3.js:2:1\n    at runCell (/x/dist/kernel-extension/js-exec.js:120:5)\n    at node:internal/x";
    expect(describeError(e)).toEqual({ ename: "RangeError", evalue: "too far", traceback: ["RangeError: too far", "    at f (cell-3.js:1:7)", "    at cell-3.js:2:1"] });
  });

  it("interrupts are KeyboardInterrupt; compile errors list file:line:col; Sense errors are one line", () => {
    expect(describeError(new KeyboardInterrupt()).ename).toBe("KeyboardInterrupt");
    const vmInterrupt = Object.assign(new Error("Script execution was interrupted by `SIGINT`"), { code: "ERR_SCRIPT_EXECUTION_INTERRUPTED" });
    expect(describeError(vmInterrupt).ename).toBe("KeyboardInterrupt");
    const c = describeError(new CompileError([{ file: "cell-2.ts", line: 1, column: 7, code: 2322, message: "Type 'number' is not assignable to type 'string'." }]));
    expect(c).toEqual({
      ename: "CompileError",
      evalue: "cell-2.ts:1:7 - error TS2322: Type 'number' is not assignable to type 'string'.",
      traceback: ["cell-2.ts:1:7 - error TS2322: Type 'number' is not assignable to type 'string'."],
    });
    const usage = Object.assign(new Error("no magic named x"), { name: "UsageError", code: "unknown_magic" });
    expect(describeError(usage)).toEqual({ ename: "UsageError", evalue: "no magic named x", traceback: ["UsageError: no magic named x"] });
    expect(describeError("just a string")).toEqual({ ename: "Error", evalue: "'just a string'", traceback: ["Uncaught 'just a string'"] });
  });
});
