/**
 * Load: several `sense-ts` masters on one Jupyter Server, each launching its workers at the same
 * moment. Every launch succeeds, and every master lists exactly its own cluster, no one else's.
 */
import { JupyterServer, processesUnder } from "../helpers/jupyter";
import { NotebookKernel, openNotebook } from "../helpers/kernel";
import type { RestClient } from "../../src/jupyter/rest";
import { COUNTS, FAST_ENGINE, Figures, SecretScan, until } from "./support";
import { scannedServer } from "../helpers/scanned-server";

const figures = new Figures("load");
const scan = new SecretScan();
let server: JupyterServer;
let rest: RestClient;
const masters: NotebookKernel[] = [];

scannedServer({
  scan,
  figures,
  started: (s, r) => {
    server = s;
    rest = r;
  },
  cleanup: async () => {
    for (const m of masters) await m.shutdown();
  },
});

it(`${COUNTS.loadMasters} masters x ${COUNTS.loadWorkers} workers at once: all start, each sees only its own`, async () => {
  const { loadMasters: M, loadWorkers: N } = COUNTS;
  for (let i = 0; i < M; i++) {
    const nb = await openNotebook(server, "sense-ts", `load-${i}.ipynb`);
    masters.push(nb);
    expect((await nb.run('import * as sense from "sense-tslab";\nconsole.log("ok")')).stdout).toBe("ok\n");
  }
  const cell = [
    "const t0 = Date.now();",
    `const ws = await sense.launchWorkers(${N}, { engine: ${JSON.stringify(FAST_ENGINE)}, code: "console.log('hi from ' + process.env.SENSE_WORKER_NAME)" });`,
    "const launchMs = Date.now() - t0;",
    "const done = await sense.awaitWorkers(ws, { waitForCompletion: true, timeoutSeconds: 120 });",
    "const listed = await sense.listWorkers();",
    "console.log('LOAD ' + JSON.stringify({ launchMs, ids: ws.map((w) => w.id), failures: done.failures.length, listed: listed.map((w) => w.id), masters: [...new Set(listed.map((w) => w.masterId))] }));",
  ].join("\n");
  const t0 = Date.now();
  // All masters launch at the same moment.
  const results = await Promise.all(masters.map((m) => m.run(cell)));
  const wall = Date.now() - t0;
  const launchMs: number[] = [];
  const all = new Set<string>();
  results.forEach((r, i) => {
    scan.addOutputs(`master ${i}`, r.outputs);
    const m = /LOAD (.*)/.exec(r.stdout);
    if (!m) throw new Error(`master ${i} printed no result:\n${r.stdout}\n${r.stderr}`);
    const res = JSON.parse(m[1]) as { launchMs: number; ids: string[]; failures: number; listed: string[]; masters: string[] };
    expect(res.ids).toHaveLength(N);
    expect(res.failures).toBe(0);
    expect([...res.listed].sort()).toEqual([...res.ids].sort());
    expect(res.masters).toEqual([masters[i].kernelId]);
    launchMs.push(res.launchMs);
    for (const id of res.ids) all.add(id);
  });
  expect(all.size).toBe(M * N);
  expect((await rest.listSessions()).filter((s) => s.type === "sense-worker")).toHaveLength(M * N);
  figures.series(`launchWorkers(${N}) per master, ${M} masters at once`, launchMs, "ms");
  figures.add(`wall time, ${M} x ${N} workers launched and finished`, wall, "ms");

  const t1 = Date.now();
  await Promise.all(masters.map((m) => m.run("await sense.stopWorkers();")));
  figures.add(`stop ${M * N} workers (${M} masters at once)`, Date.now() - t1, "ms");
  await until("zero worker kernels and processes", async () => {
    const kernels = (await rest.listKernels()).length - M;
    const procs = processesUnder(server.baseDir).filter((p) => p !== server.pid).length - M;
    return kernels === 0 && procs === 0 ? true : undefined;
  }, 30_000);
});
