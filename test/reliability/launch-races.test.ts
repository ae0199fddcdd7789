/**
 * Launches racing with something else, on a real Jupyter Server: a kernel interrupt arriving while
 * a sense-ts master's launch is in flight (through the API and through %%sense_worker): the launch
 * stops, removes the workers it started, says so, and no worker runs its code; a master and one of
 * its own workers launching at the same moment: every worker name stays unique in the cluster.
 */
import * as path from "node:path";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import type { JupyterServer } from "../helpers/jupyter";
import { allText, NotebookKernel, openNotebook } from "../helpers/kernel";
import type { RestClient } from "../../src/jupyter/rest";
import { awaitWorkers, launchWorkers, listWorkers, stopKeeper, stopWorkers, workerOutput, WorkerContextInput } from "../../src/workers";
import { captureSink, COUNTS, FAST_ENGINE, Figures, kernelPids, SecretScan, until } from "./support";
import { ensureBuilt, REPO } from "../helpers/util";
import { scannedServer } from "../helpers/scanned-server";

const figures = new Figures("launch races");
const scan = new SecretScan();
let server: JupyterServer;
let rest: RestClient;
const notebooks: NotebookKernel[] = [];

beforeAll(() => {
  ensureBuilt(["index", "workers/cluster", "workers/cleanup/watchdog"]);
});

scannedServer({
  scan,
  figures,
  started: (s, r) => {
    server = s;
    rest = r;
  },
  cleanup: async () => {
    for (const nb of notebooks) await nb.shutdown();
    await stopKeeper();
  },
});

const workerSessions = async (masterId: string) => (await rest.listSessions()).filter((s) => s.type === "sense-worker" && (s.name ?? "").startsWith(`sense:${masterId}:`));

describe("an interrupt during a launch", () => {
  const CELLS: [string, (n: number) => string][] = [
    ["launchWorkers()", (n) => `import * as s from "sense-tslab";\nawait s.launchWorkers(${n}, { engine: "sense-ts", code: "console.log('STARTUP-RAN ' + process.env.SENSE_WORKER_NAME)" });`],
    ["%%sense_worker", (n) => `%%sense_worker -n ${n} --engine sense-ts\nconsole.log('STARTUP-RAN ' + process.env.SENSE_WORKER_NAME)`],
  ];
  it.each(CELLS)("%s: the launch stops, its workers are removed, it says so, no startup code runs", async (label, cell) => {
    const nb = await openNotebook(server, "sense-ts", `interrupt-${label.replace(/\W/g, "")}.ipynb`);
    notebooks.push(nb);
    const running = nb.run(cell(3));
    // Interrupt once the launch is under way: a first worker session exists, the others are coming.
    await until("a first worker session", async () => ((await workerSessions(nb.kernelId)).length > 0 ? true : undefined), 60_000, 20);
    const t0 = Date.now();
    await rest.raw("POST", `api/kernels/${nb.kernelId}/interrupt`);
    const r = await running;
    await until("the interrupted launch to say so", () => (/launch interrupted/.test(allText(r.outputs)) ? true : undefined), 60_000, 50);
    await until("no worker session of that master", async () => ((await workerSessions(nb.kernelId)).length === 0 ? true : undefined), 30_000, 50);
    await until("no worker kernel", async () => ((await rest.listKernels()).every((k) => notebooks.some((n) => n.kernelId === k.id)) ? true : undefined), 30_000, 50);
    figures.add(`interrupt during a launch of 3 sense-ts workers (${label}) -> launch stopped, zero workers`, Date.now() - t0, "ms");
    const text = allText(r.outputs);
    scan.add(`${label} cell`, text);
    expect(text).toMatch(/KeyboardInterrupt|Interrupt/);
    expect(text).toMatch(/Sense: launch interrupted/);
    expect(text).not.toContain("STARTUP-RAN");
    // The kernel still works, and a new launch from it runs normally.
    const again = await nb.run(`import * as s2 from "sense-tslab";\nconst w2 = await s2.launchWorkers(1, { engine: "sense-fast", code: "console.log('after interrupt')" });\nawait s2.awaitWorkers(w2, { waitForCompletion: true });\nawait s2.stopWorkers();\nconsole.log("DONE");`);
    expect(again.stdout).toContain("DONE");
  });
});

describe("a master and one of its workers launching at the same moment", () => {
  it(`${COUNTS.killTrials} rounds: every worker name in the cluster is unique`, async () => {
    const rounds = COUNTS.killTrials;
    // The worker waits at a loopback gate; the test opens it and launches from the master at once.
    const waiting: http.ServerResponse[] = [];
    const gate = http.createServer((_req, res) => void waiting.push(res));
    await new Promise<void>((resolve) => gate.listen(0, "127.0.0.1", resolve));
    const gateUrl = `http://127.0.0.1:${(gate.address() as AddressInfo).port}/`;
    const context: WorkerContextInput = { endpoint: { baseUrl: server.url, token: server.token }, projectHome: server.rootDir, serverRootDir: server.rootDir, dashboardId: `process-race-${process.pid}` };
    const sink = captureSink();
    try {
      const index = JSON.stringify(path.join(REPO, "dist", "src", "index.js"));
      const code = [
        `const sense = require(${index}); const http = require("http");`,
        `(async () => { for (let r = 0; r < ${rounds}; r++) {`,
        `  await new Promise((ok) => http.get(${JSON.stringify(gateUrl)} + r, (res) => { res.resume(); res.on("end", ok); }));`,
        `  const ws = await sense.launchWorkers(2, { engine: "sense-fast", code: "", keeper: false });`,
        `  console.log("ROUND " + r + " " + JSON.stringify(ws.map((w) => w.name)));`,
        `} })().catch((e) => console.log("WORKER-LAUNCH-FAILED " + e.message));`,
      ].join("\n");
      const [launcher] = await launchWorkers(1, { engine: FAST_ENGINE, code, keeper: false, sink, context });
      let duplicates = 0;
      let own: string[] = [];
      for (let r = 0; r < rounds; r++) {
        await until(`the worker at the gate (round ${r})`, () => (waiting.length > 0 ? true : undefined), 30_000, 5);
        waiting.shift()!.end("go");
        const mine = await launchWorkers(2, { engine: FAST_ENGINE, code: "", keeper: false, sink, context });
        await until(`the worker's launch of round ${r}`, () => (workerOutput(launcher.id).includes(`ROUND ${r} `) || workerOutput(launcher.id).includes("WORKER-LAUNCH-FAILED") ? true : undefined), 60_000, 20);
        expect(workerOutput(launcher.id)).not.toContain("WORKER-LAUNCH-FAILED");
        const names = (await listWorkers({ context })).map((w) => w.name);
        const unique = new Set(names);
        duplicates += names.length - unique.size;
        expect({ round: r, names: [...names].sort() }).toEqual({ round: r, names: [...unique].sort() });
        expect(names).toHaveLength(1 + 4 * (r + 1));
        expect(mine.every((w) => names.includes(w.name))).toBe(true);
        own = mine.map((w) => w.name);
      }
      figures.add(`master and worker launching 2 + 2 at once, ${rounds} rounds -> duplicate names`, duplicates, "", "0");
      // stopWorkers(<name>) stops exactly one worker: a name of this master's own (which names the
      // race gave to this master and which to the worker's launches is the race's own).
      const before = (await listWorkers({ context })).length;
      await stopWorkers(own[0], { context });
      expect((await listWorkers({ context })).length).toBe(before - 1);
      await awaitWorkers(null, { timeoutSeconds: 0, context });
    } finally {
      for (const res of waiting) res.end("stop");
      gate.close();
      await stopWorkers({ context }).catch(() => undefined);
      scan.add("race sink", sink.text());
    }
    await until("no worker kernel processes", async () => (kernelPids((await rest.listKernels()).map((k) => k.id).filter((id) => !notebooks.some((n) => n.kernelId === id))).length === 0 ? true : undefined), 30_000, 100);
  });
});
