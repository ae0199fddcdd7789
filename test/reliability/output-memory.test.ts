/**
 * A worker printing ~40 MB into a plain Node master (a real Jupyter Server, a sense-fast worker):
 * the master keeps only the last SENSE_WORKER_OUTPUT_MIB of it (4 MiB by default), its heap after
 * a full GC stays bounded during the flood and after stopWorkers(), and workerOutput() says what
 * was dropped.
 */
import { spawn } from "node:child_process";
import * as path from "node:path";
import { buildWorkers } from "../fixtures/workers/build";
import type { JupyterServer } from "../helpers/jupyter";
import { Figures, SecretScan, until } from "./support";
import { scannedServer } from "../helpers/scanned-server";

const figures = new Figures("output memory");
const scan = new SecretScan();
let server: JupyterServer;
const OUTPUT_MASTER = path.join(__dirname, "..", "fixtures", "workers", "output-master.js");
const MiB = 1024 * 1024;

scannedServer({
  scan,
  figures,
  started: (s) => {
    server = s;
  },
});

it("a 40 MB flood: the master keeps the last 4 MiB, its heap stays bounded, workerOutput says it was truncated", async () => {
  const built = buildWorkers();
  const lines = 200_000; // ~38 MiB, the size of the trial's flood
  const child = spawn(process.execPath, ["--expose-gc", OUTPUT_MASTER, built.index], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, SENSE_API_URL: server.url, SENSE_API_TOKEN: server.token, SENSE_PROJECT_HOME: server.rootDir, SENSE_KEEPER: "0", FLOOD_LINES: String(lines) },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (out += d.toString()));
  const t0 = Date.now();
  const line = await until("the master's RESULT", () => /^(RESULT|FAILED) .*$/m.exec(out)?.[0] ?? (child.exitCode !== null ? `EXIT ${child.exitCode}` : undefined), 600_000, 200);
  child.kill("SIGTERM");
  scan.add("output master", out);
  expect(line.startsWith("RESULT")).toBe(true);
  const r = JSON.parse(line.slice("RESULT ".length)) as { before: number; afterFlood: number; afterStop: number; failures: number; textBytes: number; head: string; tail: string; endedBytes: number };
  const flooded = lines * 199;
  figures.add(`worker output of ${(flooded / MiB).toFixed(1)} MiB relayed`, Date.now() - t0, "ms");
  figures.add("master heap growth after a full GC, during / after stopWorkers()", `${((r.afterFlood - r.before) / MiB).toFixed(1)} / ${((r.afterStop - r.before) / MiB).toFixed(1)}`, "MiB", "<= 16 (was 79 MiB after stop)");
  figures.add("workerOutput(id) kept / dropped", `${(r.textBytes / MiB).toFixed(1)} / ${((flooded - r.textBytes) / MiB).toFixed(1)}`, "MiB", "keeps the last 4 MiB, says so");
  expect(r.failures).toBe(0);
  expect(r.head).toMatch(/^\[Sense: output truncated: the first \d+\.\d MiB were dropped; only the last 4\.0 MiB/);
  // The newest output is kept: the worker's last line, or, when the server's iopub rate limit cut
  // the flood (seen after the #12/#13 merge: the server then drops messages), its notice, which comes last.
  expect(r.tail).toMatch(/LAST LINE|rate_limit_window/);
  expect(r.textBytes).toBeLessThanOrEqual(4.6 * MiB);
  expect(r.textBytes).toBeGreaterThan(3.9 * MiB);
  expect(r.afterFlood - r.before).toBeLessThan(16 * MiB);
  expect(r.afterStop - r.before).toBeLessThan(16 * MiB);
  expect(r.endedBytes).toBeLessThanOrEqual(4.6 * MiB);
});
