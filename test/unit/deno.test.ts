import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { runCli } from "../../src/cli";
import { ConfigError } from "../../src/errors";
import { denoAnswerCode, denoKernelSpec, isDenoKernel } from "../../src/platform/deno";

function capture() {
  const io = { outText: "", errText: "", out: (t: string) => void (io.outText += t), err: (t: string) => void (io.errText += t) };
  return io;
}

describe("Deno's kernelspec", () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "sense-deno-spec-"));
  const fakeDeno = path.join(tmp, "bin", "deno");
  fs.mkdirSync(path.dirname(fakeDeno));
  fs.writeFileSync(fakeDeno, "#!/bin/sh\n", { mode: 0o755 });
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it("runs `deno jupyter --kernel` by absolute path, with no update check", () => {
    expect(denoKernelSpec(fakeDeno)).toEqual({
      argv: [fakeDeno, "jupyter", "--kernel", "--conn", "{connection_file}"],
      display_name: "Deno",
      language: "typescript",
      env: { DENO_NO_UPDATE_CHECK: "1" },
    });
  });

  it.each([["deno"], [path.join(tmp, "missing")], [tmp]])("rejects %j (not an absolute path to an executable file)", (p) => {
    let e: unknown;
    try {
      denoKernelSpec(p);
    } catch (x) {
      e = x;
    }
    expect(e instanceof ConfigError && e.code).toBe("bad_config");
  });

  it("`sense-tslab install-deno --deno PATH --prefix DIR` writes the kernelspec where Jupyter looks; bad arguments change nothing", async () => {
    const io = capture();
    expect(await runCli(["install-deno", "--deno", fakeDeno, "--prefix", path.join(tmp, "env")], io)).toBe(0);
    const spec = JSON.parse(fs.readFileSync(path.join(tmp, "env", "share", "jupyter", "kernels", "deno", "kernel.json"), "utf8")) as { argv: string[] };
    expect(spec.argv[0]).toBe(fakeDeno);
    expect(io.outText).toContain("installed deno in ");
    const bad = capture();
    expect(await runCli(["install-deno", "--prefix", path.join(tmp, "other"), "--deno"], bad)).toBe(2);
    expect(bad.errText).toMatch(/^UsageError: --deno needs the path of the deno binary/);
    expect(fs.existsSync(path.join(tmp, "other"))).toBe(false);
  });
});

describe("Deno's kernel as a worker", () => {
  it("is recognised by its kernel_info implementation", () => {
    expect(isDenoKernel("Deno kernel")).toBe(true);
    expect(isDenoKernel("sense-tslab")).toBe(false);
    expect(isDenoKernel(undefined)).toBe(false);
  });

  it("answers as the cell's last expression, on a line of its own after the code (a trailing comment cannot swallow it)", () => {
    const code = denoAnswerCode("x = 1 // note", "rt.take()");
    expect(code).toBe('x = 1 // note\n;((b) => ({ [Symbol.for("Jupyter.display")]: () => b }))(rt.take())');
  });
});
