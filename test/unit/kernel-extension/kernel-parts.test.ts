/**
 * The Sense kernel's own pieces, without ZeroMQ: the self-healing converter set (over fake
 * converters), magic routing and scope, the message-type peek and the argv parser.
 * The real tslab seam is covered by test/integration/kernel*.test.ts.
 */
import { createHmac } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { Converter, ConvertResult, Diagnostic } from "tslab/dist/converter";
import type { Executor } from "tslab/dist/executor";
import { createHealingConverterSet, isTimerSlotError, nodeModulesStamp, wrapTypeScriptWatchers } from "../../../kernel-extension/converters";
import { parseKernelArgs, peekMessageType } from "../../../kernel-extension/kernel";
import { silenceServicesConsole } from "../../../src/util/services-console";
import { createMagicExecutor, isMagicSource, MagicsModule, notebookScope, openCell, requestSink, RequestWriters } from "../../../kernel-extension/magic-cells";

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
    set.invalidate("install");
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
    wrapTypeScriptWatchers(sys);
    const f = fakeFactory([ok]);
    const set = createHealingConverterSet({ isJS: false, cwd: tmp, create: f.create });
    set.warm();
    let calls = 0;
    sys.watchDirectory(path.join(tmp, "node_modules"), () => {
      calls++;
      throw new Error("Unexpected pending rebuildTimer");
    });
    expect(() => callbacks[0](path.join(tmp, "node_modules", "pkg"))).not.toThrow();
    expect(calls).toBe(1);
    set.node.convert("", "1");
    expect(f.made.length).toBe(2);
    expect(set.resets[0].reason).toMatch(/^watcher: /);
    set.close();
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

describe("magic routing", () => {
  const inner = (): Executor & { ran: string[] } => {
    const ran: string[] = [];
    return {
      ran,
      execute: async (src: string) => (ran.push(src), true),
      inspect: () => undefined as unknown as ReturnType<Executor["inspect"]>,
      complete: () => ({ start: 1, end: 2, candidates: ["x"] }),
      reset: () => undefined,
      interrupt: () => undefined,
      locals: {},
      close: () => undefined,
    };
  };
  const writers = () => {
    const out: { stream: [string, string][]; display: unknown[] } = { stream: [], display: [] };
    const w: RequestWriters = { writeStream: (n, t) => void out.stream.push([n, t]), writeDisplayData: (d, u) => void out.display.push([d, u]) };
    return { out, w };
  };

  it("detects magic cells by their first non-empty line", () => {
    expect(isMagicSource("\n  %lsmagic")).toBe(true);
    expect(isMagicSource("%%sense_worker\nbody")).toBe(true);
    expect(isMagicSource("const a = 1 % 2;\n%x")).toBe(false);
    expect(isMagicSource("")).toBe(false);
  });

  it("sends magic cells to runCell with the current request's sink, and code to tslab", async () => {
    const tslab = inner();
    const { out, w } = writers();
    const seen: string[] = [];
    const magics: MagicsModule = {
      runCell: async (src, ctx) => {
        seen.push(String(src));
        ctx.sink.stdout("hi\n");
        ctx.sink.display({ "text/plain": "t", "text/html": "<b>t</b>" }, { displayId: "d1" });
        ctx.sink.display({ "text/plain": "u" }, { displayId: "d1", update: true });
        return { ok: true, value: { n: 1 } };
      },
    };
    const ex = createMagicExecutor(tslab, { loadMagics: () => magics, currentCell: () => openCell(w, notebookScope(() => ({}))), scope: notebookScope(() => ({})) });
    expect(await ex.execute("%lsmagic")).toBe(true);
    expect(await ex.execute("1 + 1")).toBe(true);
    expect(seen).toEqual(["%lsmagic"]);
    expect(tslab.ran).toEqual(["1 + 1"]);
    expect(out.stream).toEqual([
      ["stdout", "hi\n"],
      ["stdout", "{ n: 1 }\n"],
    ]);
    expect(out.display).toEqual([
      [{ data: { "text/plain": "t", "text/html": "<b>t</b>" }, metadata: {}, transient: { display_id: "d1" } }, false],
      [{ data: { "text/plain": "u" }, metadata: {}, transient: { display_id: "d1" } }, true],
    ]);
    expect(ex.complete("%ls", 3)).toEqual({ start: 3, end: 3, candidates: [] });
    expect(ex.complete("a", 1).candidates).toEqual(["x"]);
  });

  it("a failed magic fails the cell; a registry that cannot load says so", async () => {
    const { out, w } = writers();
    const failing = createMagicExecutor(inner(), { loadMagics: () => ({ runCell: async () => ({ ok: false, error: new Error("x") }) }), currentCell: () => openCell(w, notebookScope(() => ({}))) });
    expect(await failing.execute("%x")).toBe(false);
    const broken = createMagicExecutor(inner(), {
      loadMagics: () => {
        throw new Error("Cannot find module 'magics'");
      },
      currentCell: () => openCell(w, notebookScope(() => ({}))),
    });
    expect(await broken.execute("%x")).toBe(false);
    expect(out.stream.at(-1)?.[1]).toMatch(/magics registry could not be loaded: Cannot find module/);
  });

  it("interrupt() ends a running magic with KeyboardInterrupt", async () => {
    const { out, w } = writers();
    let signal: AbortSignal | undefined;
    const ex = createMagicExecutor(inner(), {
      loadMagics: () => ({ runCell: (_s, ctx) => ((signal = ctx.signal), new Promise(() => undefined)) }),
      currentCell: () => openCell(w, notebookScope(() => ({}))),
    });
    const running = ex.execute("%sleep_forever");
    ex.interrupt();
    expect(await running).toBe(false);
    expect(signal?.aborted).toBe(true);
    expect(out.stream.at(-1)).toEqual(["stderr", expect.stringMatching(/^KeyboardInterrupt: Interrupted/)]);
  });

  it("the notebook scope looks up variables and evaluates expressions over them only", () => {
    const scope = notebookScope(() => ({ n: 4, name: "w", default: 1 }));
    expect(scope.lookup("n")).toEqual({ found: true, value: 4 });
    expect(scope.lookup("toString")).toEqual({ found: false });
    expect(scope.evaluate!("n * 2 + name.length")).toBe(9);
    expect(scope.evaluate!("n // a trailing comment")).toBe(4);
    expect(() => scope.evaluate!("undefinedThing")).toThrow(/undefinedThing is not defined/);
  });

  it("requestSink writes streams by name", () => {
    const { out, w } = writers();
    const sink = requestSink(w);
    sink.stderr("e");
    sink.display({ "text/plain": "p" });
    expect(out.stream).toEqual([["stderr", "e"]]);
    expect(out.display).toEqual([[{ data: { "text/plain": "p" }, metadata: {}, transient: {} }, false]]);
  });
});

describe("kernel plumbing", () => {
  const frames = (key: string, msgType: string) => {
    const parts = [JSON.stringify({ msg_type: msgType, msg_id: "1" }), "{}", "{}", "{}"].map((s) => Buffer.from(s));
    const h = createHmac("sha256", key);
    for (const p of parts) h.update(p);
    return [Buffer.from("id"), Buffer.from("<IDS|MSG>"), Buffer.from(h.digest("hex")), ...parts];
  };

  it("peeks the message type of signed messages only", () => {
    expect(peekMessageType("k", frames("k", "shutdown_request"))).toBe("shutdown_request");
    expect(peekMessageType("k", frames("other", "shutdown_request"))).toBeNull();
    expect(peekMessageType("k", [Buffer.from("junk")])).toBeNull();
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
