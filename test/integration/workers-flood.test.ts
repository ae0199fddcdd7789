/**
 * A worker that floods output: every line reaches the master, in order, through a Jupyter
 * Server with its default IOPub rate limits (which drop messages past 1 MB/s or 1000 msgs/s
 * over 3 s). Both JavaScript engines pace and coalesce their iopub traffic so nothing is dropped.
 */
import { JupyterServer, processesUnder, startJupyterServer } from "../helpers/jupyter";
import { awaitWorkers, launchWorkers, stopWorkers, workerOutput, type WorkerContextInput } from "../../src/workers";
import type { OutputSink } from "../../src/display/sink";

let server: JupyterServer;
let context: WorkerContextInput;

beforeAll(async () => {
  server = await startJupyterServer();
  context = { endpoint: { baseUrl: server.url, token: server.token }, projectHome: server.rootDir, serverRootDir: server.rootDir };
});

afterAll(async () => {
  await stopWorkers({ context }).catch(() => undefined);
  const marker = server?.baseDir;
  await server?.stop();
  if (marker) expect(processesUnder(marker)).toEqual([]);
});

// ~2.6 MB per worker: more than the server lets through in one 3 s window without pacing.
const LINES = 30_000;
const code = `const pad = "x".repeat(70);\nfor (let i = 0; i < ${LINES}; i++) console.log("line " + i + " " + pad);`;

it.each(["sense-fast", "sense-ts"])(`%s: ${LINES} lines flooded by a worker all arrive, in order`, async (engine) => {
  let shown = "";
  const sink: OutputSink = { stdout: (t) => void (shown += t), stderr: (t) => void (shown += t), display: () => undefined };
  const [w] = await launchWorkers(1, { engine, code, sink, context });
  const done = await awaitWorkers([w.id], { waitForCompletion: true, timeoutSeconds: 150, context });
  expect(done.failures).toEqual([]);
  const lines = workerOutput(w.id).split("\n").filter((l) => l.startsWith("line "));
  expect(lines).toHaveLength(LINES);
  expect(lines.every((l, i) => l.startsWith(`line ${i} `))).toBe(true);
  const labelled = shown.split("\n").filter((l) => l.startsWith(`[${w.name}] line `));
  expect(labelled).toHaveLength(LINES);
  expect(shown).not.toMatch(/IOPub (data|message) rate exceeded/);
  await stopWorkers([w.id], { context });
});
