/**
 * The watchdog thread (src/workers/cleanup/watchdog.ts) in a real Node process whose main thread never
 * yields, as a worker running `for (;;) {}` does: it must end that process when the master process
 * goes (after trying to delete the session), and at once when the Jupyter Server process goes.
 */
import { ChildProcess, spawn } from "node:child_process";
import { ChildProcesses } from "../../helpers/children";
import { WATCHDOG_THREAD_SOURCE, WatchdogData } from "../../../src/workers/cleanup/watchdog";

const children = new ChildProcesses();
afterAll(() => children.killAll());
const sleeper = () => children.sleeper();

/** A process that starts the watchdog, says so, then spins forever; it ignores SIGTERM, as a busy kernel does. */
function spinner(data: WatchdogData): { child: ChildProcess; started: Promise<void>; exited: Promise<NodeJS.Signals | null> } {
  const script = [
    'const { Worker } = require("worker_threads");',
    `new Worker(${JSON.stringify(WATCHDOG_THREAD_SOURCE)}, { eval: true, workerData: ${JSON.stringify(data)} }).unref();`,
    'process.on("SIGTERM", () => undefined);',
    'process.stdout.write("SPINNING\\n", () => { for (;;) {} });',
  ].join("\n");
  const child = spawn(process.execPath, ["-e", script], { stdio: ["ignore", "pipe", "inherit"] });
  children.track(child);
  const started = new Promise<void>((resolve) => child.stdout!.on("data", (d: Buffer) => d.toString().includes("SPINNING") && resolve()));
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on("exit", (_code, sig) => resolve(sig)));
  return { child, started, exited };
}

const base = (over: Partial<WatchdogData>): WatchdogData => ({
  // Nothing listens on port 9 of loopback: the session delete fails fast, as with a server that is gone.
  baseUrl: "http://127.0.0.1:9/",
  token: "",
  masterId: "m",
  masterKind: "process",
  masterPid: 0,
  sameHost: true,
  sessionId: "s",
  serverPid: 0,
  intervalMs: 100,
  graceMs: 500,
  ...over,
});

it("ends a spinning process (that ignores SIGTERM) once its master process is gone", async () => {
  const master = sleeper();
  const w = spinner(base({ masterPid: master.pid! }));
  await w.started;
  // Still running while the master lives: a watchdog that fires early would be as wrong.
  const early = await Promise.race([w.exited.then(() => "exited"), new Promise((r) => setTimeout(() => r("running"), 600))]);
  expect(early).toBe("running");
  const t0 = Date.now();
  master.kill("SIGKILL");
  expect(await w.exited).toBe("SIGKILL");
  // interval + delete + grace + SIGTERM wait: a few seconds, never "forever".
  expect(Date.now() - t0).toBeLessThan(15_000);
});

it("ends a spinning process at once when the Jupyter Server process is gone", async () => {
  const server = sleeper();
  const master = sleeper();
  const w = spinner(base({ masterPid: master.pid!, serverPid: server.pid! }));
  await w.started;
  server.kill("SIGKILL");
  expect(await w.exited).toBe("SIGKILL");
  master.kill("SIGKILL");
});
