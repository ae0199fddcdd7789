import { runCell, isMagicCell, parseCell } from "../../../src/magics/run";
import { MagicRegistry, defineMagic, formatHelp, lsmagicMagic, senseHelpMagic } from "../../../src/magics/registry";
import { varsScope, emptyScope } from "../../../src/magics/expand";
import { createMagicTag, runMagic } from "../../../src/magics/template";
import { makeDisplayable } from "../../../src/display/bundle";
import type { MimeBundle, OutputSink, DisplayOptions } from "../../../src/display/sink";
import { inspect } from "node:util";

interface Recorded {
  sink: OutputSink;
  out: string[];
  err: string[];
  displays: { bundle: MimeBundle; options?: DisplayOptions }[];
}
function recordingSink(): Recorded {
  const r: Recorded = { out: [], err: [], displays: [], sink: undefined as unknown as OutputSink };
  r.sink = { stdout: (t) => r.out.push(t), stderr: (t) => r.err.push(t), display: (bundle, options) => r.displays.push({ bundle, options }) };
  return r;
}

type Call = { name: string; options: unknown; positionals: string[]; body: string };

function fixture() {
  const calls: Call[] = [];
  const registry = new MagicRegistry();
  const record = (args: { name: string; options: unknown; positionals: string[]; body: string }) => {
    calls.push({ name: args.name, options: args.options, positionals: args.positionals, body: args.body });
  };
  registry.register(lsmagicMagic);
  registry.register(senseHelpMagic);
  registry.register(
    defineMagic({
      name: "sense_worker",
      kinds: ["cell"],
      summary: "Launch workers running the cell body.",
      options: [
        { name: "n", short: "n", type: "integer", default: 1, description: "number of workers" },
        { name: "env", type: "keyvalue", repeat: true, description: "environment variable" },
      ],
      run: record,
    }),
  );
  registry.register(
    defineMagic({
      name: "sense_workers",
      kinds: ["line"],
      summary: "List the workers.",
      options: [],
      run: (args) => {
        record(args);
        return makeDisplayable({ rows: 2 }, () => ({ "text/plain": "TABLE", "text/html": "<table></table>" }));
      },
    }),
  );
  registry.register(
    defineMagic({
      name: "sense_stop",
      kinds: ["line"],
      summary: "Stop workers.",
      options: [],
      positionals: [{ name: "id", description: "ids", variadic: true }],
      run: (args) => {
        record(args);
        return args.positionals.length;
      },
    }),
  );
  registry.register(
    defineMagic({
      name: "both",
      kinds: ["line", "cell"],
      summary: "Line or cell.",
      options: [],
      positionals: [{ name: "x", description: "x" }],
      run: record,
    }),
  );
  registry.register(
    defineMagic({
      name: "explode",
      kinds: ["line"],
      summary: "Throws.",
      options: [],
      run: () => {
        throw new Error("kaboom");
      },
    }),
  );
  const rec = recordingSink();
  const ctx = { sink: rec.sink, scope: varsScope({ msg: "a b", n: 2 }), registry };
  return { calls, registry, rec, ctx };
}

describe("isMagicCell", () => {
  test("first non-empty line decides", () => {
    expect(isMagicCell("%sense_workers")).toBe(true);
    expect(isMagicCell("\n\n  %%sense_worker\nx")).toBe(true);
    expect(isMagicCell("const x = 1 % 2")).toBe(false);
    expect(isMagicCell("\n\nx\n%y")).toBe(false);
    expect(isMagicCell("")).toBe(false);
  });
});

describe("runCell grammar", () => {
  test("a cell magic gets the rest of the cell as its body, args expanded", async () => {
    const { calls, ctx, rec } = fixture();
    const out = await runCell("%%sense_worker -n $n --env MSG=$msg\nconsole.log(1)\n\nconsole.log($msg)\n", ctx);
    expect(rec.err).toEqual([]);
    expect(out).toEqual({ ok: true, value: undefined, displayed: false });
    expect(calls).toEqual([
      { name: "sense_worker", options: { n: 2, env: { MSG: "a b" } }, positionals: [], body: "console.log(1)\n\nconsole.log($msg)\n" },
    ]);
  });

  test("several line magics run in order, comments and blank lines skipped; the last value is returned", async () => {
    const { calls, ctx } = fixture();
    const out = await runCell("%sense_stop a b\n// a comment\n\n  %sense_stop 'c d'\n%both y", ctx);
    expect(out.ok).toBe(true);
    expect(calls.map((c) => c.positionals)).toEqual([["a", "b"], ["c d"], ["y"]]);
    expect(calls[2].body).toBe("");
  });

  test("a Displayable result is displayed through the sink", async () => {
    const { ctx, rec } = fixture();
    const out = await runCell("%sense_workers", ctx);
    expect(out.displayed).toBe(true);
    expect(rec.displays).toEqual([{ bundle: { "text/plain": "TABLE", "text/html": "<table></table>" } }]);
  });

  test("a bad line anywhere means nothing runs", async () => {
    const { calls, ctx, rec } = fixture();
    const out = await runCell("%sense_stop a\n%sense_workers --bogus", ctx);
    expect(out.ok).toBe(false);
    expect(calls).toEqual([]);
    expect(rec.err.join("")).toBe("UsageError: unknown option --bogus for %sense_workers\nusage: %sense_workers\n");
  });

  test("code lines in a line-magic cell, and %% after the first line, are usage errors", async () => {
    const { ctx, rec } = fixture();
    expect((await runCell("%sense_stop a\nconst x = 1", ctx)).ok).toBe(false);
    expect(rec.err[0]).toMatch(/^UsageError: line 2 is not a magic/);
    expect((await runCell("%sense_stop a\n%%sense_worker", ctx)).ok).toBe(false);
    expect(rec.err[1]).toMatch(/must be on the first line/);
  });

  test("parseCell keeps interpolated atoms out of the magic name", () => {
    expect(() => parseCell([{ text: "%" }, { text: "x", atom: true }])).toThrow(/not a magic name/);
    expect(parseCell("%%both? ")[0]).toMatchObject({ kind: "cell", name: "both", help: 1 });
    expect(parseCell("%both??")[0]).toMatchObject({ kind: "line", help: 2 });
  });
});

describe("runCell errors", () => {
  test("usage errors: one line plus usage, no stack, ok false", async () => {
    const { ctx, rec } = fixture();
    const out = await runCell("%%sense_worker -n abc\nx", ctx);
    expect(out.ok).toBe(false);
    expect((out.error as { code: string }).code).toBe("bad_option");
    expect(rec.err).toEqual([
      "UsageError: option -n/--n expects an integer, got 'abc'\nusage: %%sense_worker [-n N] [--env K=V]...\n",
    ]);
    expect(rec.err[0]).not.toMatch(/\n\s+at /);
  });

  test("unknown line magic when a cell magic exists (and vice versa), IPython's wording", async () => {
    const { ctx, rec } = fixture();
    await runCell("%sense_worker -n 2", ctx);
    expect(rec.err[0]).toBe(
      "UsageError: Line magic `%sense_worker` not found (But cell magic `%%sense_worker` exists, did you mean that instead?).\n",
    );
    await runCell("%%sense_workers\nbody", ctx);
    expect(rec.err[1]).toBe(
      "UsageError: Cell magic `%%sense_workers` not found (But line magic `%sense_workers` exists, did you mean that instead?).\n",
    );
  });

  test("unknown magic with did-you-mean", async () => {
    const { ctx, rec } = fixture();
    const out = await runCell("%sense_wrkers", ctx);
    expect((out.error as { code: string }).code).toBe("unknown_magic");
    expect(rec.err[0]).toBe("UsageError: Line magic `%sense_wrkers` not found. (Did you mean %sense_workers?) %lsmagic lists them all.\n");
    await runCell("%nothinglikeit", ctx);
    expect(rec.err[1]).toBe("UsageError: Line magic `%nothinglikeit` not found. %lsmagic lists them all.\n");
  });

  test("an empty %% body is a usage error, with the line-magic hint when there is one", async () => {
    const { ctx, rec, calls } = fixture();
    await runCell("%%sense_worker -n 2\n  \n", ctx);
    expect(rec.err[0]).toBe(
      "UsageError: %%sense_worker is a cell magic, but the cell body is empty.\nusage: %%sense_worker [-n N] [--env K=V]...\n",
    );
    await runCell("%%both x", ctx);
    expect(rec.err[1]).toMatch(/^UsageError: %%both is a cell magic, but the cell body is empty\. Did you mean the line magic %both \(single %\)\?/);
    expect(calls).toEqual([]);
  });

  test("tokenizer and expansion errors are usage errors with the magic's usage", async () => {
    const { ctx, rec } = fixture();
    await runCell(`%sense_stop "abc`, ctx);
    expect(rec.err[0]).toMatch(/^UsageError: unbalanced quotes.*\nusage: %sense_stop \[ID\.\.\.\]\n$/);
    await runCell(`%sense_stop $nope`, ctx);
    expect(rec.err[1]).toMatch(/^UsageError: \$nope: no variable named 'nope' is defined\n/);
  });

  test("other errors are reported with their stack, ok false", async () => {
    const { ctx, rec } = fixture();
    const out = await runCell("%explode", ctx);
    expect(out.ok).toBe(false);
    expect(rec.err[0]).toMatch(/^Error: kaboom\n\s+at /);
  });

  test("an aborted signal stops before running", async () => {
    const { ctx, calls } = fixture();
    const ac = new AbortController();
    ac.abort();
    const out = await runCell("%sense_stop a", { ...ctx, signal: ac.signal });
    expect(out.ok).toBe(false);
    expect(calls).toEqual([]);
  });
});

describe("help and listing", () => {
  test("%name? prints the help derived from the declaration, and runs nothing", async () => {
    const { ctx, rec, calls, registry } = fixture();
    const out = await runCell("%%sense_worker?", ctx);
    expect(out.ok).toBe(true);
    expect(calls).toEqual([]);
    expect(rec.out).toEqual([formatHelp(registry.find("cell", "sense_worker")!)]);
    expect(rec.out[0]).toMatch(/^usage: %%sense_worker \[-n N\] \[--env K=V\]\.\.\.\n\nLaunch workers running the cell body\.\n/);
    expect(rec.out[0]).toMatch(/-n N, --n N\s+number of workers \(default: 1\)/);
  });

  test("%sense_help name and %sense_help with a typo", async () => {
    const { ctx, rec, registry } = fixture();
    await runCell("%sense_help %%sense_worker", ctx);
    expect(rec.out[0]).toBe(formatHelp(registry.find("cell", "sense_worker")!));
    await runCell("%sense_help sense_stp", ctx);
    expect(rec.err[0]).toMatch(/^UsageError: no magic named sense_stp \(Did you mean sense_stop\?\)/);
    await runCell("%sense_help", ctx);
    expect(rec.out[1]).toContain("usage: %sense_stop [ID...]");
    expect(rec.out[1]).toContain("usage: %lsmagic");
  });

  test("%lsmagic lists every registered magic with its summary, in both MIME types", async () => {
    const { ctx, rec, registry } = fixture();
    const out = await runCell("%lsmagic", ctx);
    expect(out.displayed).toBe(true);
    const b = rec.displays[0].bundle;
    for (const m of registry.list()) {
      expect(b["text/plain"]).toContain(m.summary);
      expect(b["text/html"]).toContain(m.summary);
      if (m.kinds.includes("line")) expect(b["text/plain"]).toContain(`%${m.name}`);
      if (m.kinds.includes("cell")) expect(b["text/plain"]).toContain(`%%${m.name}`);
    }
    expect(b["text/plain"]).toMatch(/^Available line magics:\n%both {2}%explode {2}%lsmagic {2}%sense_help {2}%sense_stop {2}%sense_workers\n\nAvailable cell magics:\n%%both {2}%%sense_worker\n/);
  });
});

describe("tagged template and runMagic", () => {
  test("each interpolated value is one token, even with spaces and quotes", async () => {
    const { ctx, calls, rec } = fixture();
    const m = createMagicTag({ sink: rec.sink, registry: ctx.registry });
    const id = "w 1 'x'";
    const value = await m`%sense_stop ${id} plain ${42}`;
    expect(value).toBe(3);
    expect(calls[0].positionals).toEqual(["w 1 'x'", "plain", "42"]);
    await m`%%sense_worker --env MSG=${"a b"} -n${3}
console.log(${"in body"}, "\n")`;
    expect(calls[1].options).toEqual({ n: 3, env: { MSG: "a b" } });
    // Raw text: the \n in the body reaches the magic as backslash-n, as typed.
    expect(calls[1].body).toBe('console.log(in body, "\\n")');
  });

  test("a displayed result resolves to undefined (it was shown already)", async () => {
    const { ctx, rec } = fixture();
    const m = createMagicTag({ sink: rec.sink, registry: ctx.registry });
    await expect(m`%sense_workers`).resolves.toBeUndefined();
    expect(rec.displays).toHaveLength(1);
  });

  test("usage errors reject with a short inspect form; nothing on stderr", async () => {
    const { ctx, rec } = fixture();
    const m = createMagicTag({ sink: rec.sink, registry: ctx.registry });
    const err = await m`%sense_worker`.catch((e: unknown) => e);
    expect(inspect(err)).toBe(
      "UsageError: Line magic `%sense_worker` not found (But cell magic `%%sense_worker` exists, did you mean that instead?).",
    );
    expect(rec.err).toEqual([]);
  });

  test("runMagic: $name needs explicit vars in stock tslab, and says so", async () => {
    const { ctx, rec, calls } = fixture();
    await expect(runMagic("%sense_stop $id", { sink: rec.sink, registry: ctx.registry })).rejects.toThrow(/no variable named 'id'.*vars/);
    await expect(runMagic("%sense_stop $id", { sink: rec.sink, registry: ctx.registry, vars: { id: "x y" } })).resolves.toBe(1);
    expect(calls[0].positionals).toEqual(["x y"]);
    await expect(runMagic("%sense_stop {1+1}", { sink: rec.sink, registry: ctx.registry, scope: emptyScope })).rejects.toThrow(/cannot be evaluated/);
  });
});
