/**
 * JavaScript/TypeScript workers from a plain Node master: the README's ZeroMQ example on sense-ts,
 * on sense-fast, and on sense-fast from a warm pool; and a worker whose code calls process.exit(). zeromq is made importable in the
 * project home by symlinking the repo's copy into `<root>/node_modules/zeromq` (no registry access
 * in tests; it is the same package an `npm install zeromq` would bring).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { freePort, JupyterServer, processesUnder, REPO, startJupyterServer } from "../helpers/jupyter";
import { RestClient } from "../../src/jupyter/rest";
import type { OutputSink } from "../../src/display/sink";
import { awaitWorkers, launchWorkers, POOL_SESSION_TYPE, setWorkerPool, stopKeeper, stopWorkers, workerOutput, WorkerContextInput } from "../../src/workers";
import { buildWorkers } from "../fixtures/workers/build";
import { until } from "../helpers/util";

describe("sense-ts workers", () => {
  let server: JupyterServer;
  let rest: RestClient;
  let context: WorkerContextInput;
  const figures: string[] = [];

  beforeAll(async () => {
    process.env.SENSE_KEEPER_SCRIPT = buildWorkers().keeper;
    server = await startJupyterServer();
    rest = new RestClient({ baseUrl: server.url, token: server.token });
    context = { endpoint: { baseUrl: server.url, token: server.token }, projectHome: server.rootDir, serverRootDir: server.rootDir };
    fs.mkdirSync(path.join(server.rootDir, "node_modules"), { recursive: true });
    fs.symlinkSync(path.join(REPO, "node_modules", "zeromq"), path.join(server.rootDir, "node_modules", "zeromq"));
  });

  afterEach(async () => {
    await stopWorkers({ context }).catch(() => undefined);
    await until("no sessions and kernels", async () => ((await rest.listSessions()).length === 0 && (await rest.listKernels()).length === 0 ? true : undefined));
    await until("no kernel processes", () => (processesUnder(server.baseDir).filter((p) => p !== server.pid).length === 0 ? true : undefined), 15_000);
  });

  afterAll(async () => {
    await stopKeeper();
    await server?.stop();
    if (figures.length) console.log(figures.join("\n"));
  });

  const TS_CODE = [
    'import * as zmq from "zeromq";',
    "const sock = new zmq.Request();",
    "sock.connect(process.env.SERVER as string);",
    'await sock.send("Sense is so easy!");',
    "const [reply] = await sock.receive();",
    "console.log(reply.toString());",
    "sock.close();",
  ].join("\n");
  // The same for sense-fast from a plain Node master, which sends JavaScript as it is.
  const JS_CODE = TS_CODE.replace('import * as zmq from "zeromq";', 'const zmq = require("zeromq");').replace(" as string", "");

  it.each([
    ["sense-ts workers", "sense-ts-engine", "sense-ts", TS_CODE, false],
    ["sense-fast workers", "sense-fast", "sense-fast", JS_CODE, false],
    ["sense-fast workers from a warm pool", "sense-fast", "sense-fast", JS_CODE, true],
  ])("runs the README example over ZeroMQ with 3 %s", async (what, engine, kernelName, code, pooled) => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const zmq = require("zeromq") as typeof import("zeromq");
    const sock = new zmq.Reply();
    const address = `tcp://127.0.0.1:${await freePort()}`;
    await sock.bind(address);
    try {
      const out: string[] = [];
      const err: string[] = [];
      const sink: OutputSink = { stdout: (t) => void out.push(t), stderr: (t) => void err.push(t), display: () => undefined };
      let warm: string[] = [];
      if (pooled) {
        await setWorkerPool({ n: 3, engine, context });
        warm = (await rest.listSessions()).filter((s) => s.type === POOL_SESSION_TYPE).map((s) => s.kernel?.id ?? "");
        expect(warm).toHaveLength(3);
      }
      const t0 = Date.now();
      const workers = await launchWorkers(3, { engine, env: { SERVER: address }, code, sink, context });
      figures.push(`launch 3 ${what}: ${Date.now() - t0} ms`);
      if (pooled) expect(workers.map((w) => w.id).sort()).toEqual([...warm].sort());
      for (let i = 0; i < 3; i++) {
        const [msg] = await sock.receive();
        expect(msg.toString()).toBe("Sense is so easy!");
        await sock.send("I agree.");
      }
      const done = await awaitWorkers(workers, { waitForCompletion: true, timeoutSeconds: 120, context });
      expect(done.failures).toEqual([]);
      for (const w of workers) {
        expect(w.engine).toBe(kernelName);
        expect(out.join("")).toContain(`[${w.name}] I agree.\n`);
        expect(workerOutput(w.id)).toBe("I agree.\n");
      }
      expect(out.join("") + err.join("")).not.toContain(server.token);
      const t1 = Date.now();
      await stopWorkers(workers, { context });
      figures.push(`stopWorkers(3 ${what}): ${Date.now() - t1} ms`);
    } finally {
      sock.close();
      if (pooled) await setWorkerPool({ n: 0, engine, context });
    }
  });

  it.each([["sense-ts"], ["sense-fast"]])("marks a %s worker that calls process.exit() failed and deletes it", async (engine) => {
    const t0 = Date.now();
    const [w] = await launchWorkers(1, { engine, code: "process.exit(0);", sink: { stdout: () => undefined, stderr: () => undefined, display: () => undefined }, context });
    figures.push(`launch 1 ${engine} worker: ${Date.now() - t0} ms`);
    const r = await awaitWorkers(w, { waitForCompletion: true, timeoutSeconds: 60, context });
    expect(r.failures).toEqual([expect.objectContaining({ id: w.id, status: "failed", reason: expect.stringContaining("restarted") })]);
    await until("the worker's kernel is gone", async () => ((await rest.listKernels()).length === 0 ? true : undefined));
  });
});
