/**
 * Limits a launch must respect before anything starts, against a real Jupyter Server with
 * sense-fast workers: startup code over the server's 10 MiB websocket message limit (refused,
 * where it used to vanish silently), the worker limit for the warm pool, timeouts past
 * setTimeout's range, env values with NUL or too big for execve, engine names that are
 * Object.prototype members, a script whose name starts with two dots. Each refusal: its code, a
 * message naming the limit, no session, no env file.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { JupyterServer, startJupyterServer } from "../helpers/jupyter";
import { RestClient } from "../../src/jupyter/rest";
import { awaitWorkers, launchWorkers, setWorkerPool, stopKeeper, stopWorkers, workerOutput, WorkerContextInput } from "../../src/workers";
import type { LaunchWorkersOptions } from "../../src/workers";
import { MAX_MESSAGE_CONTENT_BYTES } from "../../src/protocol/limits";
import { captureSink, FAST_ENGINE, Figures, SecretScan } from "./support";

const figures = new Figures("limits");
const scan = new SecretScan();
let server: JupyterServer;
let rest: RestClient;
let context: WorkerContextInput;
let logStart = 0;
/** Refused cases per class of limit (a row each in the reliability table). */
const refusals = new Map<string, string[]>();

beforeAll(async () => {
  server = await startJupyterServer();
  logStart = server.log().length;
  rest = new RestClient({ baseUrl: server.url, token: server.token });
  context = { endpoint: { baseUrl: server.url, token: server.token }, projectHome: server.rootDir, serverRootDir: server.rootDir, dashboardId: `process-limits-${process.pid}` };
});

afterAll(async () => {
  await stopWorkers({ context }).catch(() => undefined);
  await setWorkerPool({ n: 0, engine: FAST_ENGINE, context }).catch(() => undefined);
  await stopKeeper();
  if (server) {
    scan.add("server log", server.log().slice(logStart));
    await server.stop();
  }
  for (const [cls, cases] of refusals) figures.add(`${cls}: refused with its code, nothing started`, cases.length, "cases", "all");
  figures.flush();
  expect(scan.leaks(server ? [server.token] : [])).toEqual([]);
});

const launch = (o: Partial<LaunchWorkersOptions>) => launchWorkers({ n: 1, engine: FAST_ENGINE, keeper: false, sink: captureSink(), ...o, context });

/** `run` must fail with `code` and a message matching `message`, leaving no session and no env file. */
async function refused(cls: string, what: string, code: string, message: RegExp, run: () => Promise<unknown>): Promise<void> {
  const e = await run().then(
    () => undefined,
    (err: unknown) => err as { code?: string; message: string },
  );
  if (!e) throw new Error(`${what}: not refused`);
  scan.addError(what, e);
  expect({ what, code: e.code }).toEqual({ what, code });
  expect(e.message).toMatch(message);
  expect(e.message.length).toBeLessThan(2_000);
  expect(await rest.listSessions()).toEqual([]);
  const dotSense = path.join(server.rootDir, ".sense");
  expect(fs.existsSync(dotSense) ? fs.readdirSync(dotSense).filter((f) => f.startsWith("env-")) : []).toEqual([]);
  refusals.set(cls, [...(refusals.get(cls) ?? []), what]);
}

describe("startup code and the 10 MiB websocket limit", () => {
  it("code over the limit is refused up front with the limit named (it used to be dropped and the worker stayed 'running' forever)", async () => {
    const code = "console.log('never runs')\n//" + "x".repeat(10.5 * 1024 * 1024);
    await refused("startup code over 10 MiB", "10.5 MiB startup code", "too_large", /10\.0 MiB/, () => launch({ code }));
  });

  it("code just under the limit reaches the worker and runs", async () => {
    const code = "//" + "x".repeat(MAX_MESSAGE_CONTENT_BYTES - 200) + "\nconsole.log('big startup code ran')";
    const sink = captureSink();
    const t0 = Date.now();
    const [w] = await launch({ code, sink });
    const done = await awaitWorkers([w.id], { waitForCompletion: true, timeoutSeconds: 120, context });
    figures.add(`startup code of ${(code.length / 1024 / 1024).toFixed(2)} MiB -> ran`, Date.now() - t0, "ms");
    expect(done.failures).toEqual([]);
    expect(workerOutput(w.id)).toContain("big startup code ran");
    await stopWorkers(w.id, { context });
  });
});

describe("the warm pool and the worker limit", () => {
  it("SENSE_MAX_WORKERS=3 refuses a pool of 6, and n: 100000 is refused", async () => {
    const old = process.env.SENSE_MAX_WORKERS;
    process.env.SENSE_MAX_WORKERS = "3";
    try {
      await refused("pool over SENSE_MAX_WORKERS", "setWorkerPool n 6 over SENSE_MAX_WORKERS=3", "bad_option", /from 0 to 3/, () => setWorkerPool({ n: 6, engine: FAST_ENGINE, keeper: false, context }));
    } finally {
      if (old === undefined) delete process.env.SENSE_MAX_WORKERS;
      else process.env.SENSE_MAX_WORKERS = old;
    }
    await refused("pool over SENSE_MAX_WORKERS", "setWorkerPool n 100000", "bad_option", /from 0 to 64/, () => setWorkerPool({ n: 100_000, engine: FAST_ENGINE, keeper: false, context }));
  });
});

describe("timeouts past setTimeout's range", () => {
  it("startTimeoutSeconds 1e10 is refused (it used to time out in about 1 ms); the largest allowed one works", async () => {
    await refused("timeouts past 2^31-1 ms", "startTimeoutSeconds 1e10", "bad_option", /at most 2147483 s/, () => launch({ startTimeoutSeconds: 1e10 }));
    await refused("timeouts past 2^31-1 ms", "startTimeoutSeconds Infinity", "bad_option", /number of seconds/, () => launch({ startTimeoutSeconds: Infinity }));
    await refused("timeouts past 2^31-1 ms", "awaitWorkers timeoutSeconds 1e10", "bad_option", /at most/, () => awaitWorkers(null, { timeoutSeconds: 1e10, context }));
    await refused("timeouts past 2^31-1 ms", "awaitWorkers pollMs 1e10", "bad_option", /at most/, () => awaitWorkers(null, { pollMs: 1e10, context }));
    const [w] = await launch({ startTimeoutSeconds: 2_147_483, code: "console.log('patient worker up')" });
    expect(w.status).toBe("running");
    await stopWorkers(w.id, { context });
  });
});

describe("env values", () => {
  it("a NUL inside a value is refused (a JavaScript worker used to get it cut short)", async () => {
    await refused("env NUL / over 128 KiB", "env value with NUL", "bad_option", /NUL/, () => launch({ env: { CUT: "a\u0000b" } }));
  });

  it("a 1 MB value and 640 KB in all are refused (every child process of the worker failed with E2BIG)", async () => {
    await refused("env NUL / over 128 KiB", "env value of 1 MB", "bad_option", /at most 131071 bytes/, () => launch({ env: { BIG: "x".repeat(1_000_000) } }));
    const many = Object.fromEntries(Array.from({ length: 5 }, (_, i) => [`PART${i}`, "y".repeat(128_000)]));
    await refused("env NUL / over 128 KiB", "env of 640 KB in all", "bad_option", /524288 bytes in all/, () => launch({ env: many }));
  });

  it("a value just under the limit reaches the worker whole, and its child processes start", async () => {
    const value = "z".repeat(131_071 - "BIG=".length);
    const code = `const r = require("child_process").spawnSync(process.execPath, ["-e", "console.log('child sees ' + process.env.BIG.length)"], { encoding: "utf8" }); console.log(r.stdout.trim() || ('spawn failed: ' + (r.error && r.error.code)));`;
    const [w] = await launch({ env: { BIG: value }, code });
    const done = await awaitWorkers([w.id], { waitForCompletion: true, timeoutSeconds: 120, context });
    expect(done.failures).toEqual([]);
    expect(workerOutput(w.id)).toContain(`child sees ${value.length}`);
    await stopWorkers(w.id, { context });
  });
});

describe("messages", () => {
  it.each(["__proto__", "constructor", "toString", "hasOwnProperty"])("engine %j: unknown_engine naming it and the installed kernelspecs", async (engine) => {
    await refused("engine named like an Object member", `engine ${engine}`, "unknown_engine", new RegExp(`unknown engine "${engine}"; installed kernelspecs: .*${FAST_ENGINE}`), () => launch({ engine }));
  });

  it("a script named ..dots.js inside the project home runs (it was called outside the project)", async () => {
    fs.writeFileSync(path.join(server.rootDir, "..dots.js"), "console.log('dots script ran')\n");
    fs.mkdirSync(path.join(server.rootDir, "..jobs"), { recursive: true });
    fs.writeFileSync(path.join(server.rootDir, "..jobs", "x.js"), "console.log('dots folder ran')\n");
    const ws = [...(await launch({ script: "..dots.js" })), ...(await launch({ script: "..jobs/x.js" }))];
    const done = await awaitWorkers(ws.map((w) => w.id), { waitForCompletion: true, timeoutSeconds: 120, context });
    expect(done.failures).toEqual([]);
    expect(workerOutput(ws[0].id)).toContain("dots script ran");
    expect(workerOutput(ws[1].id)).toContain("dots folder ran");
    figures.add("scripts ..dots.js and ..jobs/x.js inside the project home ran", 2, "of 2");
    await stopWorkers(...ws.map((w) => w.id), { context });
    // Still refused: the parent folder itself.
    await refused("script ../x.js (still outside)", "script ../x.js", "bad_option", /outside the project home/, () => launch({ script: "../x.js" }));
  });
});
