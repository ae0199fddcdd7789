import { tokenize, quoteToken } from "../../../src/magics/tokenize";
import { isUsageError } from "../../../src/errors";

function usageErrorOf(fn: () => unknown): { code: string; message: string } {
  try {
    fn();
  } catch (e) {
    if (isUsageError(e)) return { code: e.code, message: e.message };
    throw e;
  }
  throw new Error("expected a UsageError");
}

describe("tokenize", () => {
  test("splits on any whitespace and drops empty runs", () => {
    expect(tokenize("  a  b\tc \n d ")).toEqual(["a", "b", "c", "d"]);
    expect(tokenize("")).toEqual([]);
  });

  test("single quotes are literal, quotes are removed", () => {
    expect(tokenize(`'a b' 'x"y' '\\n' '$HOME'`)).toEqual(["a b", 'x"y', "\\n", "$HOME"]);
  });

  test("double quotes keep spaces and honour \\\" \\\\ \\$ but keep other backslashes", () => {
    expect(tokenize(`"a b" "say \\"hi\\"" "c:\\dir" "\\\\" "\\$x"`)).toEqual(["a b", 'say "hi"', "c:\\dir", "\\", "$x"]);
  });

  test("backslash escapes outside quotes", () => {
    expect(tokenize(`a\\ b c\\"d \\'e`)).toEqual(["a b", 'c"d', "'e"]);
  });

  test("adjacent quoted and unquoted parts join into one token", () => {
    expect(tokenize(`--env MSG="a b"'c d'e`)).toEqual(["--env", "MSG=a bc de"]);
  });

  test("empty quotes give an empty token", () => {
    expect(tokenize(`-n ''`)).toEqual(["-n", ""]);
    expect(tokenize(`"" x`)).toEqual(["", "x"]);
  });

  test("unbalanced quotes are usage errors naming the quote", () => {
    expect(usageErrorOf(() => tokenize(`"abc`))).toEqual({ code: "usage", message: expect.stringMatching(/double quote/) });
    expect(usageErrorOf(() => tokenize(`it's`))).toEqual({ code: "usage", message: expect.stringMatching(/single quote/) });
    expect(usageErrorOf(() => tokenize(`abc\\`)).code).toBe("usage");
  });

  test("atom segments are glued verbatim into one token", () => {
    expect(tokenize([{ text: "--env MSG=" }, { text: `a "b" c`, atom: true }, { text: " x" }])).toEqual(["--env", `MSG=a "b" c`, "x"]);
    expect(tokenize([{ text: "a " }, { text: "", atom: true }])).toEqual(["a", ""]);
  });

  test("quoteToken round-trips through tokenize", () => {
    for (const v of ["plain", "a b", "it's", "", `"q"`, "$x"]) expect(tokenize(quoteToken(v))).toEqual([v]);
  });
});
