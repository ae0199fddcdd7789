/**
 * Notebooks run with no Jupyter Server, as `jupyter nbconvert --execute` (nbclient) runs them:
 * the Sense kernel is started straight from its kernelspec, and installs and workers work through
 * the direct backend. Real nbconvert, real kernels, the real npm registry.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { SessionStore } from "../../src/direct/session-store";
import { ensureBuilt, REPO } from "../helpers/util";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "sense-headless-"));
const specs = path.join(tmp, "specs");
const runtimeDir = path.join(tmp, "runtime");
const project = path.join(tmp, "project");
fs.mkdirSync(project);

/** Runs `argv` to its end (no shell); resolves with its exit code and output. */
function run(argv: string[], env: NodeJS.ProcessEnv, cwd: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const c = spawn(argv[0], argv.slice(1), { env, cwd, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    c.stdout.on("data", (d: Buffer) => (out += d.toString()));
    c.stderr.on("data", (d: Buffer) => (out += d.toString()));
    c.once("error", reject);
    c.once("exit", (code) => resolve({ code, out }));
  });
}

/** The environment of a terminal with no Jupyter Server anywhere. */
function headlessEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith("SENSE_") || k.startsWith("JUPYTER") || k.startsWith("JPY_")) delete env[k];
  return { ...env, JUPYTER_PATH: path.join(specs, "share", "jupyter"), JUPYTER_RUNTIME_DIR: runtimeDir };
}

interface Output {
  output_type: string;
  text?: string | string[];
  data?: Record<string, string | string[]>;
  ename?: string;
  evalue?: string;
}

const text = (o: Output) => [o.text, o.data?.["text/plain"], o.evalue].map((t) => (Array.isArray(t) ? t.join("") : (t ?? ""))).join("");

beforeAll(async () => {
  ensureBuilt(["cli", "index", "direct/direct-backend"]);
  // The kernels registered from this checkout into a prefix of the test's own, as a user's install would be.
  const r = await run([process.execPath, path.join(REPO, "dist", "src", "cli.js"), "install", "--prefix", specs], process.env, REPO);
  if (r.code !== 0) throw new Error(r.out);
  // python3 from the project's environment, as a user's Jupyter installation provides it.
  fs.cpSync(path.join(REPO, ".venv", "share", "jupyter", "kernels", "python3"), path.join(specs, "share", "jupyter", "kernels", "python3"), { recursive: true });
  const kernelJson = path.join(specs, "share", "jupyter", "kernels", "python3", "kernel.json");
  const spec = JSON.parse(fs.readFileSync(kernelJson, "utf8")) as { argv: string[] };
  spec.argv[0] = path.join(REPO, ".venv", "bin", "python");
  fs.writeFileSync(kernelJson, JSON.stringify(spec));
});

afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

test("jupyter nbconvert --execute with no server: %sense_install, the package in the next cell, workers launched, listed and stopped, nothing left", async () => {
  const cells = [
    "%sense_install is-number",
    'const isNumber = require("is-number");\nisNumber(42)',
    'import * as sense from "sense-tslab";\nconst ws = await sense.launchWorkers(2, { engine: "python3", code: "import os\\nprint(\'hi from\', os.environ[\'SENSE_WORKER_NAME\'])" });\nawait sense.awaitWorkers(ws, { waitForCompletion: true });\n(await sense.listWorkers()).map((w) => w.name + ":" + w.status).join(",")',
    "(await sense.getMaster()).engine",
    '(await sense.stopWorkers()).map((w) => w.status).join(",")',
  ];
  const nb = {
    nbformat: 4,
    nbformat_minor: 5,
    metadata: { kernelspec: { name: "sense-ts", display_name: "TypeScript (Sense)", language: "typescript" } },
    cells: cells.map((source, i) => ({ cell_type: "code", id: `c${i}`, metadata: {}, execution_count: null, outputs: [], source })),
  };
  fs.writeFileSync(path.join(project, "headless.ipynb"), JSON.stringify(nb));
  const r = await run([path.join(REPO, ".venv", "bin", "jupyter"), "nbconvert", "--to", "notebook", "--execute", "--output", "out.ipynb", "headless.ipynb"], headlessEnv(), project);
  expect(r.code).toBe(0);
  const saved = JSON.parse(fs.readFileSync(path.join(project, "out.ipynb"), "utf8")) as { cells: { outputs: Output[] }[] };
  const outs = saved.cells.map((c) => c.outputs.map(text).join(""));
  expect(outs[0]).toMatch(new RegExp(`Installed is-number into ${project}`));
  expect(outs[0]).toMatch(/is-number +\d+\.\d+\.\d+/);
  expect(outs[1]).toContain("true");
  expect(outs[2]).toContain("[w1] hi from w1");
  expect(outs[2]).toContain("[w2] hi from w2");
  expect(outs[2]).toContain("w1:idle,w2:idle");
  expect(outs[3]).toContain("sense-ts");
  expect(outs[4]).toContain("stopped,stopped");
  expect(JSON.parse(fs.readFileSync(path.join(project, "package.json"), "utf8")).dependencies).toHaveProperty("is-number");
  // The kernel shut down: no session (worker or master) and no connection file of ours is left.
  expect(new SessionStore(runtimeDir).list()).toEqual([]);
  expect(fs.readdirSync(runtimeDir).filter((f) => f.startsWith("kernel-"))).toEqual([]);
});
