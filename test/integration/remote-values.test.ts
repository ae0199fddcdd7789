/**
 * Values reach workers as data, never as source (issue #24, items 1, 6, 8), through real kernels:
 * python3, sense-fast and sense-ts workers behind a real Jupyter Server, and python3 and sense-fast
 * workers started directly (no server). Strings built to end a literal or a line (U+2028, U+2029,
 * U+0085, quotes, backslashes, NUL, `>>> ` prompts, magics) go through push, pull, execute results
 * and map and come back exactly; the commands they carry never run (a marker file stays absent).
 * Names a runtime relies on are refused; every other name can be pushed and the worker still
 * works. After the suite: no session, kernel or process left.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { launchWorkers, type WorkerContextInput } from "../../src/workers";
import { execute, map, pull, push } from "../../src/remote";
import { checkNames, checkSettable, RESERVED_NAMES } from "../../src/remote/names";
import type { WorkerRecord } from "../../src/jupyter/schemas";
import { captureSink } from "../helpers/util";
import { directMachine } from "../helpers/direct-machine";
import { serverMachine } from "../helpers/server-machine";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "sense-remote-values-"));
const marker = path.join(tmp, "ran");
const sink = captureSink();

/** Strings that broke out of a pasted literal (Python or JavaScript), or that IPython's transforms changed. */
function hostileStrings(): string[] {
  const py = `__import__('os').system('touch ${marker}')`;
  const js = `require('fs').writeFileSync(${JSON.stringify(marker)}, '')`;
  const seps = ["\u2028", "\u2029", "\u0085", "\n", "\r", "\v", "\f", "\u001c", "\u001d", "\u001e"];
  return [
    // the exploit, and the same through each separator Python's str.splitlines knows
    ...seps.map((s) => `x)))${s}x = ! and ${py} or '{}')) #${s}#`),
    ...seps.map((s) => `"))${s}${py}${s}#`),
    ...seps.map((s) => `")${s}${js}${s}//`),
    `first line\u2028>>> second line`,
    `>>> print('hi')\n... more\nIn [1]: x\u2029>>> y\u0085... z`,
    `%%bash\ntouch ${marker}`,
    `\u2028!touch ${marker}\u2028`,
    `\u2028%system touch ${marker}\u2028`,
    `'''"""\\'\\"\\\\\\u2028\\x00\\`,
    "`${" + js + "}`",
    "nul\u0000inside\u0000",
    "lone \ud800 high, lone \udc80 low, \udfff, pair \ud83d\ude00, reversed \ude00\ud83d",
    "\ufeff bom \ufffe \uffff",
    "",
    // long: a megabyte and more of UTF-8 made of the characters above
    "\u2028>>> \"'\\\u0000\u0085".repeat(100_000),
  ];
}

/** One value holding all of them, as strings, keys (`__proto__` too) and nested data. */
function hostileValue(): Record<string, unknown> {
  const strings = hostileStrings();
  const keyed: Record<string, unknown> = {};
  for (const s of strings.slice(0, -1)) keyed[s] = s;
  Object.defineProperty(keyed, "__proto__", { value: { polluted: true }, enumerable: true, writable: true, configurable: true });
  return { strings, keyed, nested: [[strings[0], { deep: strings[strings.length - 2] }]], n: 0.1, big: 2 ** 53, t: true, z: null };
}

/** Pushes, pulls, executes and (JavaScript) maps the hostile value on `targets`; nothing may run. */
async function roundTrip(targets: WorkerRecord[], context: WorkerContextInput, languages: ("python" | "javascript")[]): Promise<void> {
  const value = hostileValue();
  const strings = value.strings as string[];
  await push({ hostile: value, s: strings[0], long: strings[strings.length - 1] }, { targets, context, sink });
  expect(fs.existsSync(marker)).toBe(false);
  const rows = await pull(["hostile", "s", "long"], { targets, context, sink });
  for (const row of rows) {
    expect(row.s).toBe(strings[0]);
    expect(row.long).toBe(strings[strings.length - 1]);
    expect(row.hostile).toEqual(value);
    // an own key, not the object's prototype (which may be another realm's Object.prototype)
    const keyed = (row.hostile as { keyed: object }).keyed;
    expect(Object.prototype.hasOwnProperty.call(keyed, "__proto__")).toBe(true);
    expect(Object.getPrototypeOf(keyed)).not.toHaveProperty("polluted");
  }
  // execute results travel back as data too
  for (const r of await execute("hostile", { targets, context, sink })) expect(r.value).toEqual(value);
  // each string alone, as a global and as an execute value
  for (const s of strings) {
    await push({ one: s }, { targets, context, sink });
    expect(await pull("one", { targets, context, sink })).toEqual(targets.map(() => s));
  }
  const js = targets.filter((_, i) => languages[i] === "javascript");
  if (js.length) {
    // map: items, results and the function's own source (with literal separators in it)
    expect(await map((x: string) => x, strings, { targets: js, context, sink, progress: false })).toEqual(strings);
    const fn = (0, eval)(`(x) => x + "\u2028>>> \u2029" + '\u0085"\\u2028'`) as (x: string) => string;
    expect(await map(fn, ["a", "\u2028"], { targets: js, context, sink, progress: false })).toEqual(["a\u2028>>> \u2029\u0085\"\u2028", "\u2028\u2028>>> \u2029\u0085\"\u2028"]);
  }
  expect(fs.existsSync(marker)).toBe(false);
}

// Runs after every describe's own afterAll (and also when a filter skipped a describe and its hooks).
afterAll(() => {
  const ran = fs.existsSync(marker);
  fs.rmSync(tmp, { recursive: true, force: true });
  expect(ran).toBe(false);
});

describe("through a Jupyter Server", () => {
  let context: WorkerContextInput;
  let py: WorkerRecord[];
  let fast: WorkerRecord[];
  let ts: WorkerRecord[];

  serverMachine(async (c) => {
    context = c;
    [py, fast, ts] = await Promise.all([
      launchWorkers({ n: 2, engine: "python3", keeper: false, context, sink }),
      launchWorkers({ n: 2, engine: "sense-fast", keeper: false, context, sink }),
      launchWorkers({ n: 1, engine: "sense-ts", keeper: false, context, sink }),
    ]);
  });

  it("strings that ended a pasted literal round-trip exactly through python3, sense-fast and sense-ts workers; nothing runs", async () => {
    await roundTrip([py[0], fast[0], ts[0]], context, ["python", "javascript", "javascript"]);
    // the exploit: push reports success AND sets the global, and no IPython warning is printed
    const exploit = `x)))\u2028x = ! and __import__('os').system('touch ${marker}') or '{}')) #\u2028#`;
    const before = sink.err.join("").length;
    await push({ p: exploit, q: "first line\u2028>>> second line" }, { targets: py[0], context, sink });
    expect(await pull(["p", "q"], { targets: py[0], context, sink })).toEqual([{ p: exploit, q: "first line\u2028>>> second line" }]);
    expect(sink.err.join("").slice(before)).toBe("");
    expect(fs.existsSync(marker)).toBe(false);
  });

  it("a name a runtime relies on is refused (bad_option, naming it and why); after pushing every other name, push, pull, execute and map still work", async () => {
    const [p, j] = [py[1], fast[1]];
    // refused before anything is sent
    for (const [name, target] of [["Symbol", j], ["__proto__", j], ["globalThis", j], ["__builtins__", p], ["Out", p], ["get_ipython", p]] as const) {
      await expect(push({ [name]: 1 }, { targets: target, context })).rejects.toMatchObject({ code: "bad_option", message: expect.stringContaining(name) });
    }
    await expect(push(JSON.parse('{"__proto__": {"x": 1}}') as Record<string, unknown>, { targets: j, context })).rejects.toMatchObject({ code: "bad_option" });
    // a sample of names: every global each worker has, the runtimes' own names, both reserved lists
    const jsGlobals = (await execute("Object.getOwnPropertyNames(globalThis)", { targets: j, context, sink }))[0].value as string[];
    const pyGlobals = (await execute("sorted(set(dir(__import__('builtins'))) | set(get_ipython().user_ns))", { targets: p, context, sink }))[0].value as string[];
    const runtimeOwn = "d exec eval globals json base64 math re builtins IPython Box exact payload name last many push unwire NAME rt geval checkName req v8 vm util path box describe b64 unb64 fns answer value take def run pull sense".split(" ");
    const sample = [...new Set([...jsGlobals, ...pyGlobals, ...runtimeOwn, ...RESERVED_NAMES.javascript, ...RESERVED_NAMES.python])];
    const allowedOn = (language: "python" | "javascript") =>
      sample.filter((n) => {
        try {
          checkSettable(checkNames([n], "push", { set: true }), language, "push", "w");
          return true;
        } catch {
          return false;
        }
      });
    for (const [target, language] of [[p, "python"], [j, "javascript"]] as const) {
      const allowed = allowedOn(language);
      expect(allowed.length).toBeGreaterThan(50);
      await push(Object.fromEntries(allowed.map((n) => [n, 1])), { targets: target, context, sink });
      // every runtime function still works
      expect((await execute("6 * 7", { targets: target, context, sink }))[0].value).toBe(42);
      await push({ after: "x\u2028y", print: 2 }, { targets: target, context, sink });
      const some = allowed.filter((n) => !n.startsWith("_")).slice(-1)[0];
      expect(await pull(["after", some], { targets: target, context, sink })).toEqual([{ after: "x\u2028y", [some]: 1 }]);
      expect(await pull("print", { targets: target, context, sink })).toEqual([2]);
      if (language === "javascript") expect(await map((x: number) => x * 2, [1, 2, 3], { targets: target, context, sink, progress: false })).toEqual([2, 4, 6]);
    }
  });

  it("a throwing getter pushed to a Python worker is bad_option naming it; NaN timeouts and ids say NaN", async () => {
    const getter = {
      get boom(): number {
        throw new RangeError("no value here");
      },
    };
    await expect(push({ g: getter }, { targets: py[0], context })).rejects.toMatchObject({ code: "bad_option", message: expect.stringMatching(/\bg cannot be sent: reading it threw RangeError: no value here/) });
    await expect(push({ g: { nested: [getter] } }, { targets: fast[0], context })).rejects.toMatchObject({ code: "bad_option", message: expect.stringMatching(/push: g cannot be sent.*no value here/) });
    await expect(execute("1", { targets: py[0], timeoutSeconds: NaN, context })).rejects.toMatchObject({ code: "bad_option", message: expect.stringMatching(/not NaN$/) });
    await expect(execute("1", { targets: [NaN as unknown as string], context })).rejects.toMatchObject({ code: "bad_option", message: expect.stringMatching(/: NaN$/) });
  });
});

describe("direct (no server)", () => {
  // The env preamble names a file in the project home, so the home's name is a value too: one that
  // ends lines for IPython. (The old JSON literal of it sat inside a function body, where IPython's
  // token-based transforms left it alone; it now travels as base64 like every other value.)
  // (the folder is the file's: its afterAll removes it after checking the marker)
  const { home, context } = directMachine("remote-values", { tmp, homeName: `pro\u2028ject")\u2028__import__('os').system('touch ${marker}')\u2028#\u0085'` });

  it("strings that ended a pasted literal round-trip exactly through python3 and sense-fast workers (in a project home named to break out too); nothing runs", async () => {
    const [[p], [j]] = await Promise.all([
      launchWorkers({ n: 1, engine: "python3", keeper: false, context, sink }),
      launchWorkers({ n: 1, engine: "sense-fast", keeper: false, context, sink }),
    ]);
    expect(fs.existsSync(marker)).toBe(false);
    // the workers loaded their environment from there
    expect((await execute("import os\nos.environ['SENSE_PROJECT_HOME']", { targets: p, context, sink }))[0].value).toBe(home);
    expect((await execute("process.env.SENSE_PROJECT_HOME", { targets: j, context, sink }))[0].value).toBe(home);
    await roundTrip([p, j], context, ["python", "javascript"]);
  });
});
