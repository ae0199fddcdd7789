import { MagicRegistry, defineMagic, parseArgs, formatUsage, formatHelp, defaultRegistry, type MagicArgs } from "../../../src/magics/registry";
import { isUsageError, isSenseError } from "../../../src/errors";
import { editDistance, suggestSimilar } from "../../../src/magics/suggest";

const worker = defineMagic({
  name: "sense_worker",
  kinds: ["cell"],
  summary: "Launch workers running the cell body.",
  description: "Starts N worker kernels.",
  options: [
    { name: "n", short: "n", type: "integer", default: 1, description: "number of workers" },
    { name: "size", type: "choice", choices: ["small", "medium", "large"], description: "worker size" },
    { name: "env", type: "keyvalue", repeat: true, description: "environment variable" },
    { name: "script", type: "string", metavar: "FILE", description: "startup script" },
  ],
  run: () => undefined,
});

const all = defineMagic({
  name: "all",
  kinds: ["line"],
  summary: "every option type",
  options: [
    { name: "count", short: "c", type: "integer", description: "an integer" },
    { name: "ratio", type: "number", description: "a number" },
    { name: "verbose", short: "v", type: "boolean", description: "a flag" },
    { name: "quiet", short: "q", type: "boolean", description: "another flag" },
    { name: "tag", short: "t", type: "string", repeat: true, description: "repeatable string" },
    { name: "mode", type: "choice", choices: ["fast", "slow"], default: "fast", description: "a choice" },
    { name: "label", type: "string", description: "a string" },
  ],
  positionals: [{ name: "ids", description: "ids", variadic: true }],
  run: () => undefined,
});

function usageError(fn: () => unknown): Error & { code: string; usage?: string } {
  try {
    fn();
  } catch (e) {
    if (isUsageError(e)) return e;
    throw e;
  }
  throw new Error("expected a UsageError");
}

describe("parseArgs", () => {
  test("defaults when nothing is given", () => {
    const a = parseArgs(worker, []);
    expect(a.options).toEqual({ n: 1, env: {} });
    expect(parseArgs(all, []).options).toEqual({ verbose: false, quiet: false, tag: [], mode: "fast" });
  });

  test("--opt=value, --opt value, -n 3, -n3", () => {
    expect(parseArgs(worker, ["--n=4"]).options.n).toBe(4);
    expect(parseArgs(worker, ["--n", "5"]).options.n).toBe(5);
    expect(parseArgs(worker, ["-n", "3"]).options.n).toBe(3);
    expect(parseArgs(worker, ["-n3"]).options.n).toBe(3);
    expect(parseArgs(worker, ["--size", "large", "--script=/x y.js"]).options).toMatchObject({ size: "large", script: "/x y.js" });
  });

  test("every option type, clustered flags and positionals", () => {
    const a = parseArgs(all, ["-vq", "-c", "-2", "--ratio", "1.5e2", "-t", "a", "--tag=b", "-tc", "x", "--mode", "slow", "--label", "", "y"]);
    expect(a.options).toEqual({ count: -2, ratio: 150, verbose: true, quiet: true, tag: ["a", "b", "c"], mode: "slow", label: "" });
    expect(a.positionals).toEqual(["x", "y"]);
    expect(parseArgs(all, ["--verbose=false"]).options.verbose).toBe(false);
    expect(usageError(() => parseArgs(all, ["--verbose=maybe"])).code).toBe("bad_option");
  });

  test("repeated --env collects into a record; a later key wins", () => {
    const a = parseArgs(worker, ["--env", "A=1", "--env=B=x=y", "--env", "MSG=a b", "--env", "A=2", "--env", "E="]);
    expect(a.options.env).toEqual({ A: "2", B: "x=y", MSG: "a b", E: "" });
  });

  test("a key=value without = (or with an empty key) is a usage error", () => {
    expect(usageError(() => parseArgs(worker, ["--env", "NOEQUALS"])).message).toMatch(/KEY=VALUE.*NOEQUALS/);
    expect(usageError(() => parseArgs(worker, ["--env", "=v"])).code).toBe("bad_option");
  });

  test.each([["abc"], ["1.5"], [""], ["NaN"], ["1e3"], ["0x10"], [" 1"], ["99999999999999999999"]])("-n %j is a usage error, never NaN", (v) => {
    const e = usageError(() => parseArgs(worker, ["-n", v]));
    expect(e.code).toBe("bad_option");
    expect(e.message).toMatch(/-n\/--n expects an integer/);
    expect(e.usage).toBe(formatUsage(worker));
  });

  test("numbers: empty and non-finite are errors", () => {
    for (const v of ["", "abc", "Infinity", "NaN"]) expect(usageError(() => parseArgs(all, ["--ratio", v])).code).toBe("bad_option");
  });

  test("a missing value is a usage error", () => {
    expect(usageError(() => parseArgs(worker, ["--size"])).message).toMatch(/--size needs a value/);
    expect(usageError(() => parseArgs(worker, ["-n"])).message).toMatch(/needs a value/);
  });

  test("choices are validated with a suggestion", () => {
    const e = usageError(() => parseArgs(worker, ["--size", "larg"]));
    expect(e.message).toContain("invalid choice 'larg' (choose from small, medium, large)");
    expect(e.message).toContain("Did you mean large?");
  });

  test("unknown options get a did-you-mean suggestion", () => {
    expect(usageError(() => parseArgs(worker, ["--sise", "small"])).message).toBe(
      "unknown option --sise for %sense_worker (Did you mean --size?)",
    );
    expect(usageError(() => parseArgs(worker, ["--scrpit=x"])).message).toContain("(Did you mean --script?)");
    expect(usageError(() => parseArgs(worker, ["--zzzzzz"])).message).toBe("unknown option --zzzzzz for %sense_worker");
    expect(usageError(() => parseArgs(worker, ["-x"])).code).toBe("bad_option");
  });

  test("-- ends options", () => {
    const a = parseArgs(all, ["-v", "--", "--label", "-c"]);
    expect(a.options.verbose).toBe(true);
    expect(a.positionals).toEqual(["--label", "-c"]);
  });

  test("positional counts are checked", () => {
    expect(usageError(() => parseArgs(worker, ["extra"])).message).toMatch(/takes no positional arguments, got extra 'extra'/);
    const one = defineMagic({ name: "one", kinds: ["line"], summary: "s", options: [], positionals: [{ name: "pkg", description: "p", required: true }], run: () => 0 });
    expect(usageError(() => parseArgs(one, [])).message).toMatch(/missing PKG/);
    expect(usageError(() => parseArgs(one, ["a", "b"])).message).toMatch(/at most 1/);
  });

  test("option values are typed from the declaration", () => {
    const seen: unknown[] = [];
    const m = defineMagic({
      name: "typed",
      kinds: ["line"],
      summary: "s",
      options: [
        { name: "n", type: "integer", default: 2, description: "d" },
        { name: "size", type: "choice", choices: ["a", "b"], description: "d" },
        { name: "env", type: "keyvalue", repeat: true, description: "d" },
      ],
      run(args) {
        // Compile-time checks: these assignments only type-check if the inference works.
        const n: number = args.options.n;
        const size: "a" | "b" | undefined = args.options.size;
        const env: Record<string, string> = args.options.env;
        seen.push(n, size, env);
      },
    });
    const args = parseArgs(m, ["--size", "b"]) as MagicArgs;
    m.run(args, { sink: { stdout: () => {}, stderr: () => {}, display: () => {} }, scope: { lookup: () => ({ found: false }) } });
    expect(seen).toEqual([2, "b", {}]);
  });
});

describe("usage and help derive from the declaration", () => {
  test("usage line", () => {
    expect(formatUsage(worker)).toBe("usage: %%sense_worker [-n N] [--size {small,medium,large}] [--env K=V]... [--script FILE]");
    expect(formatUsage(all)).toBe(
      "usage: %all [-c COUNT] [--ratio RATIO] [-v] [-q] [-t TAG]... [--mode {fast,slow}] [--label LABEL] [IDS...]",
    );
  });

  test("help lists summary, description and every option with defaults", () => {
    const help = formatHelp(worker);
    expect(help.split("\n")[0]).toBe(formatUsage(worker));
    expect(help).toContain("Launch workers running the cell body.");
    expect(help).toContain("Starts N worker kernels.");
    expect(help).toMatch(/-n N, --n N\s+number of workers \(default: 1\)/);
    expect(help).toMatch(/--size \{small,medium,large\}\s+worker size/);
    expect(help).toMatch(/--env K=V\s+environment variable \(repeatable\)/);
    expect(help).toMatch(/--script FILE\s+startup script/);
  });
});

describe("defineMagic validates declarations", () => {
  const bad = (spec: Parameters<typeof defineMagic>[0]) => {
    try {
      defineMagic(spec);
    } catch (e) {
      return isSenseError(e) ? e.code : "other";
    }
    return "none";
  };
  test("bad names, duplicates, choices without choices, bad defaults", () => {
    const base = { kinds: ["line"] as const, summary: "s", run: () => 0 };
    expect(bad({ ...base, name: "bad-name", options: [] })).toBe("bad_magic_spec");
    expect(bad({ ...base, name: "x", options: [{ name: "a", short: "a", type: "string", description: "" }, { name: "b", short: "a", type: "string", description: "" }] })).toBe("bad_magic_spec");
    expect(bad({ ...base, name: "x", options: [{ name: "c", type: "choice", description: "" }] })).toBe("bad_magic_spec");
    expect(bad({ ...base, name: "x", options: [{ name: "n", type: "integer", default: 1.5, description: "" }] })).toBe("bad_magic_spec");
    expect(bad({ ...base, name: "x", options: [], positionals: [{ name: "a", description: "", variadic: true }, { name: "b", description: "" }] })).toBe("bad_magic_spec");
  });
});

describe("MagicRegistry", () => {
  test("register, find by kind, list; duplicates need replace", () => {
    const r = new MagicRegistry();
    r.register(worker);
    r.register(all);
    expect(r.find("cell", "sense_worker")).toBe(worker);
    expect(r.find("line", "sense_worker")).toBeUndefined();
    expect(r.list().map((m) => m.name)).toEqual(["all", "sense_worker"]);
    let code = "";
    try {
      r.register(worker);
    } catch (e) {
      code = isSenseError(e) ? e.code : "other";
    }
    expect(code).toBe("duplicate_magic");
    const both = defineMagic({ ...worker, kinds: ["line", "cell"], summary: "new" });
    r.register(both, { replace: true });
    expect(r.find("line", "sense_worker")?.summary).toBe("new");
    expect(r.list()).toHaveLength(2);
    expect(r.unregister("sense_worker")).toBe(true);
    expect(r.find("cell", "sense_worker")).toBeUndefined();
  });

  test("the default registry has %lsmagic and %sense_help", () => {
    expect(defaultRegistry.find("line", "lsmagic")).toBeDefined();
    expect(defaultRegistry.find("line", "sense_help")).toBeDefined();
  });
});

describe("suggestions", () => {
  test("edit distance counts a swap as one edit", () => {
    expect(editDistance("size", "sise")).toBe(1);
    expect(editDistance("scrpit", "script")).toBe(1);
    expect(editDistance("", "abc")).toBe(3);
  });
  test("only similar candidates are suggested", () => {
    expect(suggestSimilar("--sise", ["--size", "--script", "--env"])).toEqual(["--size"]);
    expect(suggestSimilar("qqqq", ["--size"])).toEqual([]);
  });
});
