/** The kernelspec writer and the `sense-tslab` CLI, in temporary folders. */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { KERNEL_NAMES, kernelSpec, kernelsDir, packageRoot, pythonSysPrefix, removeKernelSpecs, writeKernelSpecs } from "../../src/kernelspecs";
import { parseDestination, runCli } from "../../src/cli";
import { ConfigError, UsageError } from "../../src/errors";

const REPO = path.resolve(__dirname, "..", "..");
let tmp: string;
beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "sense-spec-"));
});
afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

function capture() {
  const io = { outText: "", errText: "", out: (t: string) => void (io.outText += t), err: (t: string) => void (io.errText += t) };
  return io;
}

describe("kernelSpec", () => {
  it("describes sense-ts with absolute node and kernel script paths", () => {
    const spec = kernelSpec("sense-ts");
    expect(spec).toEqual({
      argv: [process.execPath, path.join(REPO, "dist", "kernel-extension", "kernel.js"), "--config-path", "{connection_file}"],
      display_name: "TypeScript (Sense)",
      language: "typescript",
      interrupt_mode: "signal",
      metadata: { sense: { version: JSON.parse(fs.readFileSync(path.join(REPO, "package.json"), "utf8")).version, kernel: "sense-ts" } },
    });
    expect(path.isAbsolute(spec.argv[0])).toBe(true);
  });

  it("describes sense-js with --js", () => {
    const spec = kernelSpec("sense-js", { nodePath: "/opt/node", kernelScript: "/k.js", version: "9.9.9" });
    expect(spec.argv).toEqual(["/opt/node", "/k.js", "--config-path", "{connection_file}", "--js"]);
    expect(spec.display_name).toBe("JavaScript (Sense)");
    expect(spec.language).toBe("javascript");
    expect(spec.metadata.sense.version).toBe("9.9.9");
  });

  it("finds the package root from the source and the dist folder alike", () => {
    expect(packageRoot(path.join(REPO, "kernel-extension"))).toBe(REPO);
    expect(packageRoot(path.join(REPO, "dist", "kernel-extension"))).toBe(REPO);
    expect(() => packageRoot(tmp)).toThrow(ConfigError);
  });
});

describe("writing and removing kernelspecs", () => {
  it("writes both folders with kernel.json and a logo, replacing older ones", () => {
    const dir = path.join(tmp, "kernels");
    fs.mkdirSync(path.join(dir, "sense-ts"), { recursive: true });
    fs.writeFileSync(path.join(dir, "sense-ts", "stale.txt"), "old");
    const changes = writeKernelSpecs(dir, { version: "1.2.3", kernelScript: "/x/kernel.js" });
    expect(changes.map((c) => c.name)).toEqual([...KERNEL_NAMES]);
    expect(KERNEL_NAMES).toEqual(expect.arrayContaining(["sense-ts", "sense-js"]));
    expect(fs.readdirSync(dir).sort()).toEqual([...KERNEL_NAMES].sort());
    expect(fs.readdirSync(path.join(dir, "sense-ts")).sort()).toEqual(["kernel.json", "logo-svg.svg"]);
    const js = JSON.parse(fs.readFileSync(path.join(dir, "sense-js", "kernel.json"), "utf8"));
    expect(js.argv.at(-1)).toBe("--js");
    expect(js.metadata).toEqual({ sense: { version: "1.2.3", kernel: "sense-js" } });
  });

  it("removes only Sense kernelspecs and reports what was not there", () => {
    const dir = path.join(tmp, "kernels");
    writeKernelSpecs(dir, { version: "1", kernelScript: "/k.js" });
    // a foreign spec under our name stays
    fs.writeFileSync(path.join(dir, "sense-js", "kernel.json"), JSON.stringify({ argv: ["x"], display_name: "other", language: "javascript" }));
    const r = removeKernelSpecs(dir);
    expect(r.map((c) => [c.name, c.changed])).toEqual(KERNEL_NAMES.map((n) => [n, n !== "sense-js"]));
    expect(fs.existsSync(path.join(dir, "sense-ts"))).toBe(false);
    expect(fs.existsSync(path.join(dir, "sense-js", "kernel.json"))).toBe(true);
    expect(removeKernelSpecs(path.join(tmp, "nothing")).every((c) => !c.changed)).toBe(true);
  });
});

describe("kernelsDir", () => {
  it("--user follows JUPYTER_DATA_DIR, else ~/.local/share/jupyter", () => {
    expect(kernelsDir({ kind: "user" }, { JUPYTER_DATA_DIR: tmp })).toBe(path.join(tmp, "kernels"));
    expect(kernelsDir({ kind: "user" }, { HOME: "/home/someone" })).toBe("/home/someone/.local/share/jupyter/kernels");
  });

  it("--prefix DIR and --sys-prefix of a real Python", () => {
    expect(kernelsDir({ kind: "prefix", prefix: tmp })).toBe(path.join(tmp, "share", "jupyter", "kernels"));
    const venvPython = path.join(REPO, ".venv", "bin", "python");
    expect(kernelsDir({ kind: "sys-prefix", python: venvPython })).toBe(path.join(pythonSysPrefix(venvPython), "share", "jupyter", "kernels"));
    expect(pythonSysPrefix(venvPython)).toBe(path.join(REPO, ".venv"));
  });

  it("a Python that cannot be run is a ConfigError naming it", () => {
    const missing = path.join(tmp, "no-python");
    expect(() => pythonSysPrefix(missing)).toThrow(ConfigError);
    expect(() => pythonSysPrefix(missing)).toThrow(/no-python/);
  });
});

describe("CLI arguments", () => {
  it.each([
    [["install", "--bogus"], /Unknown option '--bogus'/],
    [["install", "--user", "--prefix", "/x"], /choose one of --user, --prefix/],
    [["install", "--python", "python3"], /--python only goes with --sys-prefix/],
    [["install", "--prefix="], /--prefix needs a folder/],
    [["uninstall", "stray"], /positional argument/],
  ])("%j is a usage error: exit 2, one short message, no stack", async (argv, message) => {
    const io = capture();
    expect(await runCli(argv, io)).toBe(2);
    expect(io.errText).toMatch(/^UsageError: /);
    expect(io.errText).toMatch(message);
    expect(io.errText).toMatch(/usage: sense-tslab (un)?install/);
    expect(io.errText).not.toMatch(/\n\s+at /);
    expect(io.outText).toBe("");
  });

  it("an unknown command or none at all is a usage error", async () => {
    const io = capture();
    expect(await runCli(["frobnicate"], io)).toBe(2);
    expect(io.errText).toMatch(/^UsageError: unknown command 'frobnicate'/);
    expect(await runCli([], capture())).toBe(2);
  });

  it("parseDestination maps flags to destinations", () => {
    expect(parseDestination([], "u")).toEqual({ kind: "user" });
    expect(parseDestination(["--sys-prefix", "--python", "/p"], "u")).toEqual({ kind: "sys-prefix", python: "/p" });
    expect(parseDestination(["--prefix", "/d"], "u")).toEqual({ kind: "prefix", prefix: "/d" });
    expect(() => parseDestination(["--user", "--sys-prefix"], "u")).toThrow(UsageError);
  });

  it("install --prefix then uninstall --prefix, changing nothing else", async () => {
    const io = capture();
    expect(await runCli(["install", "--prefix", tmp], io)).toBe(0);
    const kernels = path.join(tmp, "share", "jupyter", "kernels");
    const panel = path.join(tmp, "share", "jupyter", "labextensions", "sense-tslab-panel");
    expect(io.outText).toBe(KERNEL_NAMES.map((n) => `installed ${n} in ${path.join(kernels, n)}\n`).join("") + `installed the JupyterLab panel in ${panel}\n`);
    expect(fs.readdirSync(kernels).sort()).toEqual([...KERNEL_NAMES].sort());
    const io2 = capture();
    expect(await runCli(["uninstall", "--prefix", tmp], io2)).toBe(0);
    expect(io2.outText).toMatch(/removed sense-ts/);
    expect(fs.readdirSync(kernels)).toEqual([]);
    expect(fs.readdirSync(path.dirname(panel))).toEqual([]);
  });

  it("a failing install (unwritable place) exits 1 with a one-line reason", async () => {
    const blocker = path.join(tmp, "file");
    fs.writeFileSync(blocker, "");
    const io = capture();
    expect(await runCli(["install", "--prefix", blocker], io)).toBe(1);
    expect(io.errText).toMatch(/^sense-tslab install: .*(ENOTDIR|EEXIST)/);
    expect(io.errText.trim().split("\n")).toHaveLength(1);
  });
});
