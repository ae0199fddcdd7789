import { expandArgs, varsScope, emptyScope, type MagicScope } from "../../../src/magics/expand";
import { tokenize } from "../../../src/magics/tokenize";
import { isUsageError } from "../../../src/errors";
import { runCell } from "../../../src/magics/run";
import { MagicRegistry, defineMagic } from "../../../src/magics/registry";
import type { OutputSink } from "../../../src/display/sink";

const scope: MagicScope = varsScope(
  { n: 3, msg: "a b", quote: `it's "x"`, cfg: { size: "large", nested: { port: 8080 } }, file: "data", nothing: undefined },
  (expr) => {
    if (expr === "n * 2") return 6;
    if (expr === "boom") throw new Error("kaput");
    return `<${expr}>`;
  },
);

const expand = (line: string, s: MagicScope = scope) => tokenize(expandArgs(line, s));

function usageError(fn: () => unknown): Error & { code: string; details: Record<string, unknown> } {
  try {
    fn();
  } catch (e) {
    if (isUsageError(e)) return e as Error & { code: string; details: Record<string, unknown> };
    throw e;
  }
  throw new Error("expected a UsageError");
}

describe("expandArgs", () => {
  test("$name and $a.b.c", () => {
    expect(expand("-n $n --size $cfg.size --port $cfg.nested.port")).toEqual(["-n", "3", "--size", "large", "--port", "8080"]);
  });

  test("an expanded value with spaces stays one token, also glued to text", () => {
    expect(expand("--env MSG=$msg $msg")).toEqual(["--env", "MSG=a b", "a b"]);
  });

  test("quotes inside an expanded value mean nothing", () => {
    expect(expand("--env Q=$quote")).toEqual(["--env", `Q=it's "x"`]);
  });

  test("$$ is a literal dollar, a lone $ stays", () => {
    expect(expand("$$n cost$ 5$")).toEqual(["$n", "cost$", "5$"]);
  });

  test("nothing is expanded inside single quotes or after a backslash", () => {
    expect(expand(`'$n {x}' \\$n "$n"`)).toEqual(["$n {x}", "$n", "3"]);
  });

  test("{expr} is evaluated; {{ and }} are literal braces", () => {
    expect(expand("-n {n * 2} {{a}} {'}'}")).toEqual(["-n", "6", "{a}", "<'}'>"]);
  });

  test("a dot after a primitive is plain text", () => {
    expect(expand("$file.csv")).toEqual(["data.csv"]);
  });

  test("an undefined name is a usage error naming it", () => {
    const e = usageError(() => expand("--x $missing"));
    expect(e.code).toBe("usage");
    expect(e.message).toContain("missing");
    expect(e.details.name).toBe("missing");
    const e2 = usageError(() => expand("$cfg.nope"));
    expect(e2.message).toContain("cfg.nope");
    expect(usageError(() => expand("$nothing")).message).toContain("$nothing is undefined");
  });

  test("{expr} without an evaluator, a throwing one, or unterminated is a usage error", () => {
    expect(usageError(() => expand("{x}", emptyScope)).message).toMatch(/cannot be evaluated/);
    expect(usageError(() => expand("{boom}")).message).toMatch(/kaput/);
    expect(usageError(() => expand("{oops")).message).toMatch(/unterminated/);
  });

  test("the missing-name hint of a scope is appended", () => {
    expect(usageError(() => expand("$x", { ...emptyScope, missingHint: "pass vars" })).message).toContain("(pass vars)");
  });
});

describe("cell bodies are never expanded", () => {
  test("a %% body reaches the magic verbatim", async () => {
    const seen: { body?: string; positionals?: string[] } = {};
    const registry = new MagicRegistry();
    registry.register(
      defineMagic({
        name: "echo",
        kinds: ["cell"],
        summary: "echo",
        options: [],
        positionals: [{ name: "word", description: "w" }],
        run(args) {
          seen.body = args.body;
          seen.positionals = args.positionals;
        },
      }),
    );
    const sink: OutputSink = { stdout: () => {}, stderr: (t) => { throw new Error(t); }, display: () => {} };
    const out = await runCell("%%echo $msg\nconsole.log(`${x}`, $msg, {n})\n'$n'", { sink, scope, registry });
    expect(out.ok).toBe(true);
    expect(seen.positionals).toEqual(["a b"]);
    expect(seen.body).toBe("console.log(`${x}`, $msg, {n})\n'$n'");
  });
});
