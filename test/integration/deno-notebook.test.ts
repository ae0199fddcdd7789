/**
 * notebooks/deno-workers.ipynb (a Deno master on Deno's own kernel, three Deno workers) run end
 * to end: by nbclient (`jupyter nbconvert --execute`) with no Jupyter Server, and through a real
 * Jupyter Server. The notebook's folder has a package.json and node_modules/sense-tslab, as a
 * user's project would. Afterwards nothing of Sense is left.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { SessionStore } from "../../src/backends/direct/session-store";
import { RestClient } from "../../src/jupyter/rest";
import { runNotebook } from "../../harness/notebook-runner";
import { headless, Headless, run, savedCells, SavedCell } from "../helpers/headless";
import { JupyterServer, processesUnder, startJupyterServer } from "../helpers/jupyter";
import { allText } from "../helpers/kernel";
import { REPO } from "../helpers/util";

const NOTEBOOK = "deno-workers.ipynb";

/** Makes `dir` a Deno project that has sense-tslab in its node_modules, with the notebook. */
function denoProject(dir: string): string {
  fs.writeFileSync(path.join(dir, "package.json"), JSON.stringify({ name: "deno-project", private: true, dependencies: { "sense-tslab": `file:${REPO}` } }));
  fs.mkdirSync(path.join(dir, "node_modules"), { recursive: true });
  fs.symlinkSync(REPO, path.join(dir, "node_modules", "sense-tslab"));
  const file = path.join(dir, NOTEBOOK);
  fs.copyFileSync(path.join(REPO, "notebooks", NOTEBOOK), file);
  return file;
}

/** What the notebook must show, from the text of each of its code cells in order. */
function check(cells: string[]): void {
  const all = cells.join("\n");
  expect(all).toMatch(/runtime: deno/);
  for (const w of ["w1", "w2", "w3"]) expect(all).toMatch(new RegExp(`\\[${w}\\] ready: ${w} on deno \\d+\\.\\d+`));
  expect(all).toMatch(/3 workers · 3 idle/);
  expect(all).toMatch(/tasks in order: true/);
  expect(all).toMatch(/pi ≈ 3\.1\d\d/);
  expect(all).toMatch(/3 workers · 3 ok/);
  expect(all).toMatch(/pulled: 100000, 100000, 100000/);
  expect(all).toMatch(/stopped 3 workers/);
}

describe("deno-workers.ipynb with no server", () => {
  let machine: Headless;
  beforeAll(async () => {
    machine = await headless("sense-deno-nb-");
    // Deno's kernel, as `sense-tslab install-deno` registers it for a user.
    const r = await run([process.execPath, path.join(REPO, "dist", "src", "cli.js"), "install-deno", "--deno", path.join(REPO, ".venv", "bin", "deno"), "--prefix", path.join(machine.tmp, "specs")], process.env, REPO);
    if (r.code !== 0) throw new Error(r.out);
  });
  afterAll(() => machine?.remove());

  /** Runs a notebook's code cells on Deno's kernel with test/support/run-cells.py: each cell's output text, late output included. */
  async function runCells(file: string): Promise<{ cells: string[]; failed: boolean }> {
    const r = await run([path.join(REPO, ".venv", "bin", "python"), path.join(REPO, "test", "support", "run-cells.py"), file, "deno"], machine.env(), machine.project);
    if (r.code !== 0) throw new Error(`run-cells failed (${r.code}):\n${r.out}`);
    return JSON.parse(r.out.trim().split("\n").pop() ?? "{}") as { cells: string[]; failed: boolean };
  }

  /** Nothing of Sense is left on the machine: no session record, no kernel connection file. */
  function nothingLeft(): void {
    expect(new SessionStore(machine.runtimeDir).list()).toEqual([]);
    expect(fs.readdirSync(machine.runtimeDir).filter((f) => f.startsWith("kernel-"))).toEqual([]);
  }

  it("nbconvert runs every cell to the end, with no error; nothing is left", async () => {
    denoProject(machine.project);
    const r = await run([machine.jupyter, "nbconvert", "--to", "notebook", "--execute", "--output", "deno-workers.out.ipynb", NOTEBOOK], machine.env(), machine.project);
    if (r.code !== 0) throw new Error(`nbconvert failed (${r.code}):\n${r.out}`);
    const cells: SavedCell[] = savedCells(path.join(machine.project, "deno-workers.out.ipynb"));
    expect(cells.flatMap((c) => c.outputs.filter((o) => o.output_type === "error"))).toEqual([]);
    // The text is checked below: Deno's kernel (2.9) sends some output after a cell's idle, and
    // nbclient, as JupyterLab, drops what comes after it (README, "In a Deno notebook").
    nothingLeft();
  });

  it("every cell's output, the Deno master's and its Deno workers' (labelled), is sent parented to its cell; nothing is left", async () => {
    fs.rmSync(machine.project, { recursive: true, force: true });
    fs.mkdirSync(machine.project);
    const file = denoProject(machine.project);
    const report = await runCells(file);
    expect(report.failed).toBe(false);
    check(report.cells);
    nothingLeft();
  });

  it("a Deno master launches 3 Deno and 2 sense-ts workers (labelled output), runs execute/map/push/pull on the Deno ones, stops one and all; nothing is left", async () => {
    fs.rmSync(machine.project, { recursive: true, force: true });
    fs.mkdirSync(machine.project);
    denoProject(machine.project);
    const cells = [
      'import * as sense from "sense-tslab";',
      [
        'const deno = await sense.launchWorkers(3, { engine: "deno", code: "const me: string = Deno.env.get(\\"SENSE_WORKER_NAME\\")!;\\nconsole.log(\\"deno up\\", me);" });',
        'const ts = await sense.launchWorkers(2, { engine: "sense-ts", code: "console.log(\\"ts up\\", process.env.SENSE_WORKER_NAME);" });',
        "await sense.awaitWorkers(null, { waitForCompletion: true, timeoutSeconds: 120 });",
      ].join("\n"),
      'const rs = await sense.execute("console.log(\\"hi from\\", Deno.env.get(\\"SENSE_WORKER_NAME\\"));\\n6 * 7", { targets: deno });\nconsole.log("JSON " + JSON.stringify(rs.map((r) => r.value)));',
      [
        'await sense.push({ table: new Map([["k", new Set([1n])]]) }, { targets: deno });',
        'const pulled = await sense.pull("table", { targets: deno });',
        "const mapped = await sense.map((x: number) => x * 2, [1, 2, 3, 4, 5, 6], { targets: deno });",
        'console.log("JSON " + JSON.stringify([pulled.every((t) => t instanceof Map && (t.get("k") as Set<bigint>).has(1n)), mapped]));',
      ].join("\n"),
      'const one = await sense.stopWorkers(deno[0]);\nconst all = await sense.stopWorkers();\nconsole.log("JSON " + JSON.stringify([one.map((w) => w.name), all.map((w) => w.status), (await sense.listWorkers()).length]));',
    ];
    const file = path.join(machine.project, "mixed.ipynb");
    fs.writeFileSync(file, JSON.stringify({ nbformat: 4, nbformat_minor: 5, metadata: { kernelspec: { name: "deno", display_name: "Deno", language: "typescript" } }, cells: cells.map((source) => ({ cell_type: "code", source, metadata: {}, outputs: [], execution_count: null })) }));
    const report = await runCells(file);
    if (report.failed) throw new Error(report.cells.join("\n---\n"));
    const json = (i: number): unknown => JSON.parse(/^JSON (.*)$/m.exec(report.cells[i])?.[1] ?? "null");
    for (const w of ["w1", "w2", "w3"]) expect(report.cells[1]).toContain(`[${w}] deno up ${w}\n`);
    for (const w of ["w4", "w5"]) expect(report.cells[1]).toContain(`[${w}] ts up ${w}\n`);
    for (const w of ["w1", "w2", "w3"]) expect(report.cells[2]).toContain(`[${w}] hi from ${w}\n`);
    expect(json(2)).toEqual([42, 42, 42]);
    expect(json(3)).toEqual([true, [2, 4, 6, 8, 10, 12]]);
    expect(json(4)).toEqual([["w1"], ["stopped", "stopped", "stopped", "stopped"], 0]);
    nothingLeft();
  });
});

describe("deno-workers.ipynb through a Jupyter Server", () => {
  let server: JupyterServer;
  let rest: RestClient;
  beforeAll(async () => {
    server = await startJupyterServer();
    rest = new RestClient({ baseUrl: server.url, token: server.token });
  });
  afterAll(async () => {
    const marker = server?.baseDir;
    await server?.stop();
    if (marker) expect(processesUnder(marker)).toEqual([]);
  });

  it("runs every cell on the deno kernel; its workers stopped, nothing is left on the server", async () => {
    const report = await runNotebook(server, server.rootDir, denoProject(server.rootDir));
    const failed = report.cells.find((c) => c.status !== "ok");
    if (failed) throw new Error(`cell ${failed.index + 1} ${failed.status}:\n${failed.source}\n---\n${allText(failed.outputs)}`);
    check(report.cells.map((c) => allText(c.outputs)));
    expect(await rest.listSessions()).toEqual([]);
    expect(await rest.listKernels()).toEqual([]);
  });
});
