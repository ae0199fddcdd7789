/**
 * Notebooks run with no Jupyter Server, as `jupyter nbconvert --execute` (nbclient) runs them:
 * the Sense kernel is started straight from its kernelspec, and installs and workers work through
 * the direct backend. Real nbconvert, real kernels, the real npm registry.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { SessionStore } from "../../src/backends/direct/session-store";
import { headless, Headless, outputText, run, savedCells } from "../helpers/headless";

let machine: Headless;

beforeAll(async () => {
  machine = await headless();
});

afterAll(() => machine?.remove());

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
  const { project, runtimeDir } = machine;
  fs.writeFileSync(path.join(project, "headless.ipynb"), JSON.stringify(nb));
  const r = await run([machine.jupyter, "nbconvert", "--to", "notebook", "--execute", "--output", "out.ipynb", "headless.ipynb"], machine.env(), project);
  expect(r.code).toBe(0);
  const outs = savedCells(path.join(project, "out.ipynb")).map((c) => c.outputs.map(outputText).join(""));
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
