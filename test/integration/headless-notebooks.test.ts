/**
 * Every example notebook executed by nbclient (`jupyter nbconvert --execute`) with no Jupyter
 * Server, and its saved outputs checked: worker output that arrives after its launching cell
 * finished, and the launch tables' final state, must be in the saved notebook (they reach it as
 * updates of displays the launching cell showed). Each notebook runs again with a failing cell in
 * the middle and `--allow-errors`: the cells after it still run and keep their output.
 * Real nbconvert, real kernels started from their kernelspecs, the real npm registry.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { SessionStore } from "../../src/backends/direct/session-store";
import { headless, Headless, outputText, run, SavedCell, savedCells } from "../helpers/headless";
import { REPO } from "../helpers/util";

let machine: Headless;

beforeAll(async () => {
  machine = await headless("sense-headless-nb-");
  fs.cpSync(path.join(REPO, "notebooks"), path.join(machine.project, "notebooks"), { recursive: true });
});

afterAll(() => machine?.remove());

/** Worker labels (w1, w2, ...) of the lines of `text` matching `re`. */
function labelsOf(text: string, re: RegExp): string[] {
  return text
    .split("\n")
    .filter((l) => re.test(l))
    .map((l) => /^\[(w\d+)\]/.exec(l)?.[1])
    .filter((x): x is string => x !== undefined);
}

const textOf = (cells: SavedCell[]) => cells.map((c) => c.outputs.map(outputText).join("")).join("\n");

/** The saved text of the first cell whose source starts with `start`. */
function cellText(cells: SavedCell[], start: string): string {
  const cell = cells.find((c) => c.source.startsWith(start));
  if (!cell) throw new Error(`no cell starting with ${JSON.stringify(start)}`);
  return cell.outputs.map(outputText).join("");
}

/** What each example notebook must have saved. */
const checks: Record<string, (cells: SavedCell[]) => void> = {
  "zmq-workers"(cells) {
    const all = textOf(cells);
    expect(all.match(/Received request: Sense is so easy!/g)).toHaveLength(3);
    // Printed by the workers after the %%sense_worker cell finished: in that cell, labelled.
    const launch = cellText(cells, "%%sense_worker");
    expect(labelsOf(launch, /Received reply: I agree\./).sort()).toEqual(["w1", "w2", "w3"]);
    expect(labelsOf(launch, /Connecting to master\.\.\./).sort()).toEqual(["w1", "w2", "w3"]);
    // The launch table's final state: stopped by %sense_stop, cells later.
    expect(launch).toMatch(/3 workers · 3 stopped/);
    expect(cellText(cells, "%sense_await")).toMatch(/3 workers · 3 idle/);
    expect(cells[cells.length - 1].outputs.map(outputText).join("").trim()).toBe("0");
  },
  "getting-started"(cells) {
    const all = textOf(cells);
    expect(all).toMatch(/true false/);
    expect(cellText(cells, "%sense_auth")).toMatch(/direct \(no Jupyter Server\)/);
    expect(all).toMatch(/no Jupyter Server here: no REST API to call/);
    expect(all).toMatch(/finished: 2 failed: 0/);
    expect(labelsOf(all, /hello from w\d+ of /).sort()).toEqual(["w1", "w2"]);
    const magic = cellText(cells, "%%sense_worker");
    expect(labelsOf(magic, /hi from a magic-launched worker/)).toEqual(["w3"]);
    expect(magic).toMatch(/1 worker · 1 stopped/);
    expect(all).toMatch(/stopped 3 workers/);
  },
  "python-workers"(cells) {
    const all = textOf(cells);
    expect(all).toMatch(/\[w1\] squares from w1 -> 1/);
    expect(all).toMatch(/\[w2\] squares from w2 -> 4/);
    expect(all).toMatch(/completed: 2 failures: 0/);
    // Only what the workers printed: no debugger notice of a kernel started without a server.
    expect(all).not.toMatch(/Debugger warning|frozen modules|PYDEVD/);
    const magic = cellText(cells, "%%sense_worker");
    expect(labelsOf(magic, /python 3 worker says hi/)).toEqual(["w3"]);
    expect(magic).toMatch(/1 worker · 1 stopped/);
    expect(cellText(cells, "%sense_stop")).toMatch(/3 workers · 3 stopped/);
  },
  "parallel-map"(cells) {
    const px = cellText(cells, "%%sense_px");
    // Every worker's print and value, in the cell that ran them.
    expect(labelsOf(px, /ready: w\d/).sort()).toEqual(["w1", "w2", "w3", "w4"]);
    for (const w of ["w1", "w2", "w3", "w4"]) expect(px).toMatch(new RegExp(`^Out\\[${w}\\]: ["']${w}["']$`, "m"));
    const all = textOf(cells);
    expect(all).toMatch(/tasks in order: true/);
    expect(all).toMatch(/pi ≈ 3\.1\d\d/);
    expect(all).toMatch(/map done .*64\/64/);
    expect(all).toMatch(/4 workers · 4 ok/);
    expect(all).toMatch(/pulled: 200000, 200000, 200000, 200000/);
    expect(all).toMatch(/stopped 4 workers/);
  },
};

/** Runs `argv` (a `jupyter nbconvert` command) in the project; afterwards nothing of Sense is left. */
async function nbconvert(argv: string[]): Promise<void> {
  const r = await run([machine.jupyter, ...argv], machine.env(), machine.project);
  if (r.code !== 0) throw new Error(`nbconvert failed (${r.code}):\n${r.out}`);
  // The kernel shut down and took its workers: no session and no connection file of ours is left.
  expect(new SessionStore(machine.runtimeDir).list()).toEqual([]);
  expect(fs.readdirSync(machine.runtimeDir).filter((f) => f.startsWith("kernel-"))).toEqual([]);
}

test("jupyter nbconvert --to notebook --execute notebooks/zmq-workers.ipynb, no server: every worker line, the tables' final state", async () => {
  await nbconvert(["nbconvert", "--to", "notebook", "--execute", "notebooks/zmq-workers.ipynb"]);
  checks["zmq-workers"](savedCells(path.join(machine.project, "notebooks", "zmq-workers.nbconvert.ipynb")));
});

describe.each(["getting-started", "python-workers", "parallel-map"])("%s.ipynb by nbclient, no server", (name) => {
  test("every cell's output saved, late worker output and final tables included", async () => {
    await nbconvert(["nbconvert", "--to", "notebook", "--execute", "--output", `${name}.out.ipynb`, `notebooks/${name}.ipynb`]);
    checks[name](savedCells(path.join(machine.project, "notebooks", `${name}.out.ipynb`)));
  });
});

describe.each(Object.keys(checks))("%s.ipynb with a failing cell in the middle, --allow-errors", (name) => {
  test("the error is in its cell and every later cell still ran", async () => {
    const file = path.join(machine.project, "notebooks", `${name}.ipynb`);
    const nb = JSON.parse(fs.readFileSync(file, "utf8")) as { cells: { cell_type: string }[] };
    const code = nb.cells.map((c, i) => (c.cell_type === "code" ? i : -1)).filter((i) => i >= 0);
    const at = code[Math.floor(code.length / 2)];
    nb.cells.splice(at, 0, { cell_type: "code", execution_count: null, metadata: {}, outputs: [], source: 'throw new Error("a failing cell in the middle");' } as { cell_type: string });
    const failing = path.join(machine.project, "notebooks", `${name}-failing.ipynb`);
    fs.writeFileSync(failing, JSON.stringify(nb));
    await nbconvert(["nbconvert", "--to", "notebook", "--execute", "--allow-errors", "--output", `${name}-failing.out.ipynb`, failing]);
    const cells = savedCells(path.join(machine.project, "notebooks", `${name}-failing.out.ipynb`));
    const bad = cells.find((c) => c.source.startsWith("throw new Error"));
    expect(bad?.outputs.filter((o) => o.output_type === "error").map((o) => `${o.ename}: ${o.evalue}`)).toEqual(["Error: a failing cell in the middle"]);
    checks[name](cells.filter((c) => c !== bad));
  });
});
