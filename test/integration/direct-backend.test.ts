/**
 * The workers layer on the direct backend: a Cluster starting real kernels from the project's
 * kernelspecs with no Jupyter Server, their output, listing, stop.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { DirectBackend } from "../../src/backends/direct/backend";
import { Cluster } from "../../src/workers/cluster";
import { processStartTime } from "../../src/util/pid";
import { captureSink, processAlive, REPO, until } from "../helpers/util";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "sense-direct-cluster-"));
const home = path.join(tmp, "project");
fs.mkdirSync(home);
const paths = { env: { SENSE_JUPYTER_PREFIX: path.join(REPO, ".venv"), JUPYTER_DATA_DIR: path.join(tmp, "data") }, home: tmp, procRoot: "/proc" };
const backend = new DirectBackend({ root: home, runtimeDir: path.join(tmp, "runtime"), paths, stdio: "ignore" });
const cluster = new Cluster({
  backend,
  context: { endpoint: { baseUrl: "http://127.0.0.1:9/", token: "" }, projectHome: home, dashboardId: "process-direct-test", masterId: "process-direct-test" },
  hooks: { onShutdown: () => () => undefined, installProcessHooks: () => undefined },
});

afterAll(async () => {
  await cluster.shutdown();
  fs.rmSync(tmp, { recursive: true, force: true });
});

test.each([
  ["python3", "import os\nprint('hello from', os.environ['SENSE_WORKER_NAME'], os.environ['GREETING'])"],
  ["sense-fast", "console.log('hello from', process.env.SENSE_WORKER_NAME, process.env.GREETING);"],
])("%s workers launched with no server print labelled output, are listed, and stop with nothing left", async (engine, code) => {
  const sink = captureSink();
  const launched = await cluster.launch({ n: 2, engine, code, env: { GREETING: "hi" }, sink, keeper: false });
  // A short startup code may already have finished when the launch resolves.
  for (const r of launched) expect(["running", "idle"]).toContain(r.status);
  const names = launched.map((r) => r.name);
  await until("both workers printed", () => (names.every((n) => sink.out.join("").includes(`hello from ${n} hi`)) ? true : undefined), 60_000);
  await until("both idle", async () => ((await cluster.list()).filter((r) => launched.some((l) => l.id === r.id)).every((r) => r.status === "idle") ? true : undefined), 60_000);
  const sessions = backend.store.list().filter((s) => launched.some((l) => l.id === s.kernel.id));
  expect(sessions).toHaveLength(2);
  const pids = sessions.map((s) => s.pid);
  expect(pids.every(processAlive)).toBe(true);
  // Each record carries its kernel's and its owner's start time (#24: no signal to a reused pid).
  for (const s of sessions) expect([s.pidStart, s.ownerStart]).toEqual([processStartTime(s.pid), processStartTime(process.pid)]);
  expect(sessions.every((s) => /^proc:\d+$/.test(s.pidStart ?? ""))).toBe(true);
  const stopped = await cluster.stop(launched.map((r) => r.id));
  expect(stopped.map((r) => r.status)).toEqual(["stopped", "stopped"]);
  expect(pids.some(processAlive)).toBe(false);
  expect(backend.store.list().filter((s) => launched.some((l) => l.id === s.kernel.id))).toEqual([]);
  expect(sessions.some((s) => fs.existsSync(s.connectionFile))).toBe(false);
});

test("a direct worker's channel answers usage_request over the ZeroMQ control socket (Sense and ipykernel)", async () => {
  const launched = await cluster.launch({ n: 1, engine: "sense-fast", keeper: false });
  const py = await cluster.launch({ n: 1, engine: "python3", keeper: false });
  try {
    const ready = await cluster.await([...launched, ...py].map((r) => r.id), { timeoutSeconds: 60 });
    expect(ready.failures).toEqual([]);
    for (const r of [...launched, ...py]) {
      expect(cluster.worker(r.id).channel).toBeDefined();
      const usage = await cluster.worker(r.id).channel?.usage(10_000);
      const session = backend.store.list().find((s) => s.kernel.id === r.id);
      expect(usage?.pid).toBe(session?.pid);
      expect(usage?.kernelMemory).toBeGreaterThan(10 * 1024 * 1024);
      expect(usage?.cpuCount).toBe(os.cpus().length);
    }
  } finally {
    await cluster.stop([...launched, ...py].map((r) => r.id));
  }
});
