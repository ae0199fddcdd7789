/**
 * What a worker kernel's boot loads. Every worker pays its boot in CPU, and a launch of N workers
 * on a small machine is N boots sharing its cores (#25): a `sense-fast` worker runs plain
 * JavaScript and must not load the TypeScript engine (its converter glue, the code cache, the
 * master-side transpiler) nor `child_process` (only a system without /proc asks `ps`); a
 * `sense-ts` worker runs precompiled startup code and loads the compiler's side only when a cell
 * needs it. The kernel runs from `dist/` in a child Node process, sockets bound, as a kernelspec
 * starts it.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { writeConnectionFile } from "../../../src/protocol/wire";
import { holdPorts, listenAnyPort } from "../../../src/util/ports";

const REPO = path.resolve(__dirname, "..", "..", "..");
const KERNEL = path.join(REPO, "dist", "kernel-extension", "kernel.js");

interface Loaded {
  files: string[];
  builtins: string[];
}

/** Boots a kernel of `flavour` until its sockets are bound; what it loaded by then. */
async function bootLoads(flavour: "fast" | "ts"): Promise<Loaded> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sense-boot-"));
  try {
    const file = path.join(dir, "kernel.json");
    writeConnectionFile(file, "127.0.0.1", (await holdPorts(5, listenAnyPort("127.0.0.1"))) as [number, number, number, number, number], "sense-fast");
    const script = [
      "const before = new Set(process.moduleLoadList);",
      `require(${JSON.stringify(KERNEL)}).startSenseKernel(process.argv[1], process.argv[2]).then(() => {`,
      '  const builtins = process.moduleLoadList.filter((m) => !before.has(m) && m.startsWith("NativeModule ")).map((m) => m.slice(13));',
      // fd 1 itself: the kernel owns process.stdout once it runs.
      '  require("fs").writeSync(1, JSON.stringify({ files: Object.keys(require.cache), builtins }));',
      "  process.exit(0);",
      "});",
    ].join("\n");
    const r = spawnSync(process.execPath, ["-e", script, file, flavour], { encoding: "utf8", timeout: 60_000 });
    if (r.status !== 0) throw new Error(`kernel boot failed (${r.status ?? r.signal}): ${r.stderr}`);
    return JSON.parse(r.stdout) as Loaded;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const base = (files: string[]) => files.map((f) => path.relative(REPO, f));

test("a sense-fast worker's boot loads neither the TypeScript engine nor child_process", async () => {
  const fast = await bootLoads("fast");
  const files = base(fast.files);
  // The boot really ran: the protocol core and ZeroMQ are there.
  expect(files).toContain(path.join("dist", "kernel-extension", "core.js"));
  expect(files.some((f) => f.includes(`${path.sep}zeromq${path.sep}`))).toBe(true);
  for (const absent of ["ts-engine.js", "code-cache.js", "converters.js"]) expect(files).not.toContain(path.join("dist", "kernel-extension", absent));
  expect(files).not.toContain(path.join("dist", "src", "transpile.js"));
  expect(files).not.toContain(path.join("dist", "src", "kernelspecs.js"));
  expect(files.filter((f) => f.includes(`${path.sep}typescript${path.sep}`))).toEqual([]);
  expect(fast.builtins).not.toContain("child_process");
});

test("a sense-ts kernel boots with its TypeScript engine but loads the compiler's side (converter glue, code cache, transpiler) only when it compiles", async () => {
  const files = base((await bootLoads("ts")).files);
  expect(files).toContain(path.join("dist", "kernel-extension", "ts-engine.js"));
  for (const absent of ["code-cache.js", "converters.js"]) expect(files).not.toContain(path.join("dist", "kernel-extension", absent));
  expect(files).not.toContain(path.join("dist", "src", "transpile.js"));
  expect(files.filter((f) => f.includes(`${path.sep}typescript${path.sep}`))).toEqual([]);
});
