/**
 * Soak: in ONE `sense-ts` master, cycles of launch 8 fast workers → each POSTs a message to an
 * HTTP server in the master and prints the master's answer → stop. Afterwards: zero worker
 * kernels, sessions and processes, the master's open fds back to their level after the first
 * cycle, and the master's RSS grown by less than 10 % from the first cycle to the last.
 *
 * Memory is read after a full garbage collection in the master (V8's `gc`, exposed from a cell):
 * without it RSS measures how lazily V8 collects, not what is kept (measured: 38.5 % "growth" over
 * 30 cycles without; the heap kept after a collection grows ~66 KiB a cycle, half of it tslab's own
 * per-cell history, which cells of `console.log(1)` show too).
 */
import { JupyterServer, processesUnder } from "../helpers/jupyter";
import { NotebookKernel, openNotebook } from "../helpers/kernel";
import type { RestClient } from "../../src/jupyter/rest";
import { COUNTS, FAST_ENGINE, fdCount, Figures, kernelPid, rssKiB, SecretScan, trace, until } from "./support";
import { scannedServer } from "../helpers/scanned-server";

const figures = new Figures("soak");
const scan = new SecretScan();
let server: JupyterServer;
let rest: RestClient;
let nb: NotebookKernel | undefined;

scannedServer({
  scan,
  figures,
  started: (s, r) => {
    server = s;
    rest = r;
  },
  cleanup: async () => {
    await nb?.shutdown();
  },
});

const SETUP = [
  'import * as sense from "sense-tslab";',
  'import * as http from "http";',
  "const received: string[] = [];",
  "const srv = http.createServer((req, res) => { let b = ''; req.on('data', (d) => (b += d)); req.on('end', () => { received.push(b); res.end('ack:' + b); }); });",
  "await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));",
  "const url = `http://127.0.0.1:${(srv.address() as import('net').AddressInfo).port}/`;",
  // A full collection on demand, so memory figures show what is kept rather than V8's laziness.
  'require("v8").setFlagsFromString("--expose-gc");',
  'const fullGc = require("vm").runInNewContext("gc") as () => void;',
  "console.log('READY');",
].join("\n");

const MEMORY = 'fullGc(); fullGc(); console.log("HEAP " + process.memoryUsage().heapUsed);';

// Runs in each fast worker: one message to the master, the answer printed.
const WORKER = "const r = await fetch(process.env.MASTER_URL as string, { method: 'POST', body: process.env.SENSE_WORKER_NAME });\nconsole.log(await r.text());";

const cycle = (n: number) =>
  [
    "received.length = 0;",
    `const ws = await sense.launchWorkers(${n}, { engine: ${JSON.stringify(FAST_ENGINE)}, env: { MASTER_URL: url }, code: ${JSON.stringify(WORKER)} });`,
    "const done = await sense.awaitWorkers(ws, { waitForCompletion: true, timeoutSeconds: 120 });",
    "const acks = ws.filter((w) => sense.workerOutput(w.id).includes('ack:' + w.name)).length;",
    "await sense.stopWorkers();",
    "console.log('CYCLE ' + JSON.stringify({ received: received.length, acks, failures: done.failures.length, left: (await sense.listWorkers()).length }));",
  ].join("\n");

it(`${COUNTS.soakCycles} cycles of ${COUNTS.soakWorkers} workers in one master: nothing leaks`, async () => {
  nb = await openNotebook(server, "sense-ts", "soak.ipynb");
  const master = nb;
  const setup = await master.run(SETUP);
  expect(setup.stdout).toBe("READY\n");
  const pid = kernelPid(master.kernelId);
  const rss: number[] = [];
  const heap: number[] = [];
  const fds: number[] = [];
  const times: number[] = [];
  for (let c = 0; c < COUNTS.soakCycles; c++) {
    const t0 = Date.now();
    // A cell re-declares its consts each time: tslab allows it, as a notebook re-run does.
    const r = await master.run(cycle(COUNTS.soakWorkers));
    times.push(Date.now() - t0);
    scan.addOutputs(`cycle ${c}`, r.outputs);
    const m = /CYCLE (.*)/.exec(r.stdout);
    if (!m) throw new Error(`cycle ${c} printed no result:\n${r.stdout}\n${r.stderr}`);
    expect(JSON.parse(m[1])).toEqual({ received: COUNTS.soakWorkers, acks: COUNTS.soakWorkers, failures: 0, left: 0 });
    // Nothing of the cycle is left on the server or in the process table.
    await until("the cycle's kernels and processes to be gone", async () => {
      const kernels = (await rest.listKernels()).filter((k) => k.id !== master.kernelId).length;
      const sessions = (await rest.listSessions()).filter((s) => s.type === "sense-worker").length;
      const procs = processesUnder(server.baseDir).filter((p) => p !== server.pid && p !== pid).length;
      return kernels + sessions + procs === 0 ? true : undefined;
    }, 30_000);
    const mem = await master.run(MEMORY);
    const h = /HEAP (\d+)/.exec(mem.stdout);
    if (!h) throw new Error(`no heap figure: ${mem.stderr}`);
    heap.push(Math.round(Number(h[1]) / 1024));
    rss.push(rssKiB(pid));
    fds.push(fdCount(pid));
    trace(`soak cycle ${c}: ${times[c]} ms, rss ${rss[c]} KiB, heap after gc ${heap[c]} KiB, fds ${fds[c]}`);
  }
  // fds: back to the level after the first cycle (closing sockets can lag a moment: poll, do not sleep).
  const finalFds = await until("the master's fds to return to their first-cycle level", () => (fdCount(pid) <= fds[0] ? fdCount(pid) : undefined), 15_000, 100).catch(() => fdCount(pid));
  const growth = (rss[rss.length - 1] - rss[0]) / rss[0];
  const heapGrowth = (heap[heap.length - 1] - heap[0]) / heap[0];
  figures.series(`soak cycle time (launch ${COUNTS.soakWorkers}, exchange, stop)`, times, "ms");
  figures.add("master RSS after cycle 1 -> last", `${rss[0]} -> ${rss[rss.length - 1]}`, "KiB");
  figures.add("master RSS growth, cycle 1 -> last (after a full GC)", (growth * 100).toFixed(1), "%", "< 10");
  figures.add("master heap kept after a full GC, cycle 1 -> last", `${heap[0]} -> ${heap[heap.length - 1]} (${(heapGrowth * 100).toFixed(1)} %)`, "KiB");
  figures.add("master open fds after cycle 1 -> end", `${fds[0]} -> ${finalFds}`, "fds", "no growth");
  figures.add("leaked kernels / sessions / processes", 0, "");
  expect(finalFds).toBeLessThanOrEqual(fds[0]);
  expect(growth).toBeLessThan(0.1);
  expect(heapGrowth).toBeLessThan(0.1);
});
