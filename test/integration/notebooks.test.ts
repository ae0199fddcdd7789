/**
 * Every notebook in notebooks/ runs end to end on the sense-ts kernel through a real Jupyter
 * Server, and its outputs are checked; nothing is left running afterwards.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { REPO, startJupyterServer, JupyterServer, processesUnder } from "../helpers/jupyter";
import { allText, shownText } from "../helpers/kernel";
import { runNotebook, NotebookReport } from "../../harness/notebook-runner";
import { RestClient } from "../../src/jupyter/rest";

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

async function run(name: string): Promise<NotebookReport> {
  const file = path.join(server.rootDir, name);
  fs.copyFileSync(path.join(REPO, "notebooks", name), file);
  const report = await runNotebook(server, server.rootDir, file);
  const failed = report.cells.find((c) => c.status !== "ok");
  if (failed) throw new Error(`cell ${failed.index + 1} ${failed.status}:\n${failed.source}\n---\n${allText(failed.outputs)}`);
  // The notebook stopped its workers and the runner its kernel: nothing is left on the server.
  expect(await rest.listSessions()).toEqual([]);
  expect(await rest.listKernels()).toEqual([]);
  return report;
}

/** Worker labels (w1, w2, ...) of output lines matching `re`. */
function labelsOf(text: string, re: RegExp): string[] {
  return text
    .split("\n")
    .filter((l) => re.test(l))
    .map((l) => /\[[^\]]*?\b(w\d+)\b[^\]]*\]/.exec(l)?.[1])
    .filter((x): x is string => !!x);
}

describe("example notebooks", () => {
  it("zmq-workers.ipynb: the seed's example, workers over ZeroMQ", async () => {
    const report = await run("zmq-workers.ipynb");
    const all = report.cells.map((c) => allText(c.outputs)).join("\n");
    expect(all.match(/Received request: Sense is so easy!/g)).toHaveLength(3);
    // Each of the three workers got the master's answer, and its print is labelled by worker.
    expect(new Set(labelsOf(all, /Received reply: I agree\./))).toEqual(new Set(["w1", "w2", "w3"]));
    expect(new Set(labelsOf(all, /Connecting to master/))).toEqual(new Set(["w1", "w2", "w3"]));
    // The workers table: text/html and text/plain together.
    const workerTables = report.cells
      .flatMap((c) => c.outputs)
      .filter((o) => (o.type === "display_data" || o.type === "update_display_data") && /<table/.test(String(o.data["text/html"])) && /\bw3\b/.test(String(o.data["text/plain"])));
    expect(workerTables.length).toBeGreaterThan(0);
    // The %%sense_worker cell's live table was updated in place after that cell had finished.
    const workerCell = report.cells.find((c) => c.source.startsWith("%%sense_worker"));
    const late = workerCell ? workerCell.outputs.slice(workerCell.outputsAtReply) : [];
    const first = workerCell?.outputs.find((o) => o.type === "display_data");
    const tableId = first?.type === "display_data" ? first.displayId : undefined;
    expect(tableId).toBeDefined();
    const updates = late.filter((o) => o.type === "update_display_data" && o.displayId === tableId);
    expect(updates.length).toBeGreaterThan(0);
    // What the workers printed after the cell ended is in that cell, in its late display, labelled.
    const shown = shownText(workerCell?.outputs ?? []);
    expect(new Set(labelsOf(shown, /Received reply: I agree\./))).toEqual(new Set(["w1", "w2", "w3"]));
    expect(late.filter((o) => o.type === "update_display_data").every((u) => u.type === "update_display_data" && (u.displayId === tableId || /^sense-late-/.test(u.displayId ?? "")))).toBe(true);
    const text = (o: (typeof updates)[number]) => (o.type === "update_display_data" ? String(o.data["text/plain"]) : "");
    expect(updates.some((u) => /3 workers · 3 idle/.test(text(u)))).toBe(true);
    expect(text(updates[updates.length - 1])).toMatch(/3 workers · 3 stopped/);
    expect(allText(report.cells[report.cells.length - 1].outputs).trim()).toBe("0");
  });

  it("getting-started.ipynb: install, network, auth and a REST call, workers by calls and magics", async () => {
    const report = await run("getting-started.ipynb");
    const all = report.cells.map((c) => allText(c.outputs)).join("\n");
    expect(all).toMatch(/true false/);
    expect(all).toMatch(/REST status: 200/);
    expect(all).toMatch(/finished: 2 failed: 0/);
    expect(new Set(labelsOf(all, /hello from w\d+ of /))).toEqual(new Set(["w1", "w2"]));
    expect(all).toMatch(/hi from a magic-launched worker/);
    expect(all).toMatch(/stopped \d+ workers/);
    expect(all).not.toContain(server.token);
  });

  it("python-workers.ipynb: Python workers launched from a TypeScript master", async () => {
    const report = await run("python-workers.ipynb");
    const all = report.cells.map((c) => allText(c.outputs)).join("\n");
    expect(all).toMatch(/completed: 2 failures: 0/);
    expect(labelsOf(all, /squares from w1 -> 1$/)).toEqual(["w1"]);
    expect(labelsOf(all, /squares from w2 -> 4$/)).toEqual(["w2"]);
    expect(all).toMatch(/python 3 worker says hi/);
  });

  it("parallel-map.ipynb: %%sense_px, push/pull, map over four workers, the results table", async () => {
    const report = await run("parallel-map.ipynb");
    const all = report.cells.map((c) => allText(c.outputs)).join("\n");
    expect(new Set(labelsOf(all, /ready: w\d/))).toEqual(new Set(["w1", "w2", "w3", "w4"]));
    for (const w of ["w1", "w2", "w3", "w4"]) expect(all).toContain(`Out[${w}]: '${w}'`);
    expect(all).toMatch(/tasks in order: true/);
    const pi = Number(/pi ≈ (\d\.\d+)/.exec(all)?.[1]);
    expect(Math.abs(pi - Math.PI)).toBeLessThan(0.02);
    expect(all).toMatch(/map done \[#{20}\] 64\/64 100%/);
    expect(all).toMatch(/w1\s+ok\s+200\s+[\d.]+ ms/);
    expect(all).toMatch(/pulled: 200000, 200000, 200000, 200000/);
    expect(all).toMatch(/stopped 4 workers/);
  });
});
