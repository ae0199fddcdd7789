/**
 * A machine with no Jupyter Server anywhere, as nbconvert, papermill or VS Code see it: the Sense
 * kernels registered from this checkout into a prefix of the test's own (as a user's install
 * would be), python3 from the project's environment, a runtime folder of its own, and an
 * environment with every `SENSE_*`/`JUPYTER*`/`JPY_*` variable of the test runner removed.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ensureBuilt, REPO } from "./util";

/** Runs `argv` to its end (no shell); resolves with its exit code and output. */
export function run(argv: string[], env: NodeJS.ProcessEnv, cwd: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const c = spawn(argv[0], argv.slice(1), { env, cwd, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    c.stdout.on("data", (d: Buffer) => (out += d.toString()));
    c.stderr.on("data", (d: Buffer) => (out += d.toString()));
    c.once("error", reject);
    c.once("exit", (code) => resolve({ code, out }));
  });
}

/** One headless machine (a temporary folder); {@link Headless.remove} deletes it. */
export interface Headless {
  /** The temporary folder holding everything below. */
  tmp: string;
  /** The Jupyter runtime folder (connection files, Sense's session store). */
  runtimeDir: string;
  /** An empty project folder. */
  project: string;
  /** The project environment's `jupyter` command. */
  jupyter: string;
  /** The environment of a terminal with no Jupyter Server anywhere. */
  env(): NodeJS.ProcessEnv;
  remove(): void;
}

/** Sets up a {@link Headless} machine: builds the package and registers its kernels and python3 there. */
export async function headless(prefix = "sense-headless-"): Promise<Headless> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const specs = path.join(tmp, "specs");
  const runtimeDir = path.join(tmp, "runtime");
  const project = path.join(tmp, "project");
  fs.mkdirSync(project);
  ensureBuilt(["cli", "index", "backends/direct/backend"]);
  const r = await run([process.execPath, path.join(REPO, "dist", "src", "cli.js"), "install", "--prefix", specs], process.env, REPO);
  if (r.code !== 0) throw new Error(r.out);
  // python3 from the project's environment, as a user's Jupyter installation provides it.
  const kernels = path.join(specs, "share", "jupyter", "kernels");
  fs.cpSync(path.join(REPO, ".venv", "share", "jupyter", "kernels", "python3"), path.join(kernels, "python3"), { recursive: true });
  const kernelJson = path.join(kernels, "python3", "kernel.json");
  const spec = JSON.parse(fs.readFileSync(kernelJson, "utf8")) as { argv: string[] };
  spec.argv[0] = path.join(REPO, ".venv", "bin", "python");
  fs.writeFileSync(kernelJson, JSON.stringify(spec));
  return {
    tmp,
    runtimeDir,
    project,
    jupyter: path.join(REPO, ".venv", "bin", "jupyter"),
    env() {
      const env: NodeJS.ProcessEnv = { ...process.env };
      for (const k of Object.keys(env)) if (k.startsWith("SENSE_") || k.startsWith("JUPYTER") || k.startsWith("JPY_")) delete env[k];
      return { ...env, JUPYTER_PATH: path.join(specs, "share", "jupyter"), JUPYTER_RUNTIME_DIR: runtimeDir };
    },
    remove: () => fs.rmSync(tmp, { recursive: true, force: true }),
  };
}

/** One output of a saved notebook (nbformat 4). */
export interface SavedOutput {
  output_type: string;
  name?: string;
  text?: string | string[];
  data?: Record<string, string | string[]>;
  ename?: string;
  evalue?: string;
}

/** One code cell of a saved notebook. */
export interface SavedCell {
  source: string;
  outputs: SavedOutput[];
}

const joined = (t: string | string[] | undefined) => (Array.isArray(t) ? t.join("") : (t ?? ""));

/** The text an output shows (stream text, a display's `text/plain`, or an error's `ename: evalue`), ending in a newline when it is not a stream. */
export function outputText(o: SavedOutput): string {
  if (o.output_type === "error") return `${o.ename}: ${o.evalue}\n`;
  if (o.output_type === "stream") return joined(o.text);
  const plain = joined(o.data?.["text/plain"]);
  return plain === "" || plain.endsWith("\n") ? plain : plain + "\n";
}

/** The code cells of the notebook saved at `file`, sources and outputs. */
export function savedCells(file: string): SavedCell[] {
  const nb = JSON.parse(fs.readFileSync(file, "utf8")) as { cells: { cell_type: string; source: string | string[]; outputs?: SavedOutput[] }[] };
  return nb.cells.filter((c) => c.cell_type === "code").map((c) => ({ source: joined(c.source), outputs: c.outputs ?? [] }));
}
