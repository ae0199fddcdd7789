import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { runCli } from "../../src/cli";
import { ConfigError } from "../../src/errors";
import { discoverRun, jsRuntime } from "../../src/jupyter/context";
import { denoAnswerCode, denoKernelSpec, isDenoKernel, keeperArgv } from "../../src/platform/deno";

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

  it("runs `deno jupyter --kernel` by absolute path, with no update check, interrupted by message", () => {
    expect(denoKernelSpec(fakeDeno)).toEqual({
      argv: [fakeDeno, "jupyter", "--kernel", "--conn", "{connection_file}"],
      display_name: "Deno",
      language: "typescript",
      interrupt_mode: "message",
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

describe("a Deno master process", () => {
  it("finds its connection file on Deno's `--conn` flag (nbclient names it tmp<random>.json)", () => {
    const proc = fs.mkdtempSync(path.join(os.tmpdir(), "sense-deno-proc-"));
    try {
      fs.mkdirSync(path.join(proc, "4242"));
      fs.writeFileSync(path.join(proc, "4242", "cmdline"), ["/venv/bin/deno", "jupyter", "--kernel", "--conn", "/tmp/tmpab12cd.json"].join("\0"));
      const ctx = discoverRun({ env: { SENSE_BACKEND: "direct", JUPYTER_RUNTIME_DIR: "/tmp/rt" }, procRoot: proc, pid: 4242, cwd: "/p" });
      expect(ctx.connectionFile).toBe("/tmp/tmpab12cd.json");
      // this test runs on Node
      expect(ctx.runtime).toBe("node");
      expect(jsRuntime()).toBe("node");
    } finally {
      fs.rmSync(proc, { recursive: true, force: true });
    }
  });

  it("runs the keeper on a real node on PATH, not on the node link to deno Deno gives its children, else on deno", () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "sense-deno-keeper-"));
    try {
      const deno = path.join(tmp, "venv", "deno");
      fs.mkdirSync(path.dirname(deno));
      fs.writeFileSync(deno, "#!/bin/sh\n", { mode: 0o755 });
      const shim = path.join(tmp, "compat", "node");
      fs.mkdirSync(path.dirname(shim));
      fs.symlinkSync(deno, shim);
      const node = path.join(tmp, "bin", "node");
      fs.mkdirSync(path.dirname(node));
      fs.writeFileSync(node, "#!/bin/sh\n", { mode: 0o755 });
      expect(keeperArgv("/k.js", "node", "/usr/bin/node")).toEqual(["/usr/bin/node", "/k.js"]);
      expect(keeperArgv("/k.js", "deno", deno, { PATH: `${path.dirname(shim)}:${path.dirname(node)}` })).toEqual([node, "/k.js"]);
      expect(keeperArgv("/k.js", "deno", deno, { PATH: path.dirname(shim) })).toEqual([deno, "run", "--allow-all", "--no-prompt", "/k.js"]);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});
