/**
 * Workers with real python3 kernels; the jest process is a plain Node master. The whole suite
 * runs on both backends — through a real Jupyter Server, and direct (kernels started from their
 * kernelspecs with no server, src/backends/direct/) — and in each with workers started cold and adopted
 * from a warm pool. After every test: no session, no kernel, no kernel process left.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { freePort, JupyterServer, processesUnder, startJupyterServer } from "../helpers/jupyter";
import { RestClient } from "../../src/jupyter/rest";
import { SessionStore } from "../../src/backends/direct/session-store";
import { awaitWorkers, launchWorkers, listWorkers, POOL_SESSION_TYPE, setWorkerPool, stopKeeper, stopWorkers, workerOutput, WorkerContextInput } from "../../src/workers";
import { buildWorkers } from "../fixtures/workers/build";
import { captureSink, REPO, until } from "../helpers/util";

/** A session as either backend lists it. */
interface SessionView {
  name: string;
  type: string;
  path: string;
  kernelId: string;
}

/** Where the suite's workers run: a Jupyter Server, or the direct backend's runtime folder. */
interface Place {
  context: WorkerContextInput;
  /** The project home (the server's root). */
  rootDir: string;
  /** What a worker's SENSE_API_URL is (none on the direct backend). */
  apiUrl: string;
  /** A secret that must never show (the server's token), if any. */
  secret?: string;
  sessions(): Promise<SessionView[]>;
  kernels(): Promise<string[]>;
  /** Live kernel processes of this place. */
  processes(): number[];
  /** Everything a listing shows, to scan for secrets. */
  listing(): Promise<string>;
  close(): Promise<void>;
}

async function serverPlace(): Promise<Place> {
  const server: JupyterServer = await startJupyterServer();
  const rest = new RestClient({ baseUrl: server.url, token: server.token });
  const sessions = async () => (await rest.listSessions()).map((s) => ({ name: s.name ?? "", type: s.type ?? "", path: s.path ?? "", kernelId: s.kernel?.id ?? "" }));
  return {
    context: { endpoint: { baseUrl: server.url, token: server.token }, projectHome: server.rootDir, serverRootDir: server.rootDir },
    rootDir: server.rootDir,
    apiUrl: server.url,
    secret: server.token,
    sessions,
    kernels: async () => (await rest.listKernels()).map((k) => k.id),
    processes: () => processesUnder(server.baseDir).filter((p) => p !== server.pid),
    listing: async () => JSON.stringify(await rest.listSessions()),
    close: () => server.stop(),
  };
}

async function directPlace(): Promise<Place> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "sense-workers-direct-"));
  const rootDir = path.join(tmp, "project");
  const runtimeDir = path.join(tmp, "runtime");
  fs.mkdirSync(rootDir);
  // The kernelspecs of the project's environment, as a user's Jupyter installation provides them.
  process.env.SENSE_JUPYTER_PREFIX ??= path.join(REPO, ".venv");
  const store = new SessionStore(runtimeDir);
  const sessions = async () => store.list().map((s) => ({ name: s.name, type: s.type, path: s.path, kernelId: s.kernel.id }));
  return {
    context: { backend: "direct", runtimeDir, projectHome: rootDir },
    rootDir,
    apiUrl: "<unset>",
    sessions,
    kernels: async () => (await sessions()).map((s) => s.kernelId),
    processes: () => processesUnder(runtimeDir),
    listing: async () => JSON.stringify(store.list()),
    close: async () => fs.rmSync(tmp, { recursive: true, force: true }),
  };
}

describe.each([
  ["server", "cold"],
  ["server", "pooled"],
  ["direct", "cold"],
  ["direct", "pooled"],
])("workers (python3 engine, plain Node master, %s backend, %s)", (backend, mode) => {
  let place: Place;
  let context: WorkerContextInput;
  const figures: string[] = [];
  const pooled = mode === "pooled";
  const where = `${backend}, ${mode}`;
  /** Kernel ids of the warm pool as the test started (pooled mode): launches must take these. */
  let poolIds = new Set<string>();

  /** The pool back at its size (pooled mode), so no pooled kernel is half-created while we look. */
  const poolSettled = async () => {
    if (pooled) await setWorkerPool({ n: 3, engine: "python3", context });
  };
  /** The sessions other than the warm pool's. */
  const sessionsNow = async () => {
    await poolSettled();
    return (await place.sessions()).filter((s) => s.type !== POOL_SESSION_TYPE);
  };
  /** The kernels other than the warm pool's. */
  const kernelsNow = async () => {
    await poolSettled();
    const pool = new Set((await place.sessions()).filter((s) => s.type === POOL_SESSION_TYPE).map((s) => s.kernelId));
    return (await place.kernels()).filter((k) => !pool.has(k));
  };
  /** In pooled mode, that these workers are kernels that were warm before the test. */
  const expectFromPool = (workers: { id: string }[]) => {
    if (pooled) for (const w of workers) expect(poolIds).toContain(w.id);
  };

  beforeAll(async () => {
    process.env.SENSE_KEEPER_SCRIPT = buildWorkers().keeper;
    place = backend === "server" ? await serverPlace() : await directPlace();
    context = place.context;
  });

  beforeEach(async () => {
    if (!pooled) return;
    const info = await setWorkerPool({ n: 3, engine: "python3", context });
    expect(info).toMatchObject({ engine: "python3", target: 3, ready: 3, starting: 0 });
    poolIds = new Set((await place.sessions()).filter((s) => s.type === POOL_SESSION_TYPE).map((s) => s.kernelId));
    expect(poolIds.size).toBe(3);
  });

  afterEach(async () => {
    // stop whatever a failed test left, then prove nothing is left
    if (pooled) await setWorkerPool({ n: 0, engine: "python3", context });
    await stopWorkers({ context }).catch(() => undefined);
    await until("no sessions and kernels", async () => ((await place.sessions()).length === 0 && (await place.kernels()).length === 0 ? true : undefined));
    await until("no kernel processes", () => (place.processes().length === 0 ? true : undefined), 15_000);
  });

  afterAll(async () => {
    await stopKeeper();
    await place?.close();
    if (figures.length) console.log(figures.join("\n"));
  });

  it("runs the README example over ZeroMQ: 3 workers ask, the master answers, their prints arrive labelled", async () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const zmq = require("zeromq") as typeof import("zeromq");
    const sock = new zmq.Reply();
    const port = await freePort();
    const address = `tcp://127.0.0.1:${port}`;
    await sock.bind(address);
    try {
      const sink = captureSink();
      const code = [
        "import os, zmq",
        "s = zmq.Context.instance().socket(zmq.REQ)",
        "s.connect(os.environ['SERVER'])",
        "s.send(b'Sense is so easy!')",
        "print(s.recv().decode())",
        "s.close()",
      ].join("\n");
      const t0 = Date.now();
      const workers = await launchWorkers(3, { engine: "python3", env: { SERVER: address }, code, sink, context });
      figures.push(`launch 3 python3 workers (ZeroMQ example, ${where}): ${Date.now() - t0} ms`);
      expect(workers.map((w) => w.status)).toEqual(["running", "running", "running"]);
      expectFromPool(workers);
      for (let i = 0; i < 3; i++) {
        const [msg] = await sock.receive();
        expect(msg.toString()).toBe("Sense is so easy!");
        await sock.send("I agree.");
      }
      const done = await awaitWorkers(workers, { waitForCompletion: true, timeoutSeconds: 60, context });
      expect(done.failures).toEqual([]);
      expect(done.workers.map((w) => w.status)).toEqual(["idle", "idle", "idle"]);
      const out = sink.out.join("");
      for (const w of workers) {
        expect(out).toContain(`[${w.name}] I agree.\n`);
        expect(workerOutput(w.id)).toBe("I agree.\n");
      }
      // preamble output never shows, and the token never appears anywhere
      if (place.secret) expect(out + sink.err.join("")).not.toContain(place.secret);
      const t1 = Date.now();
      const stopped = await stopWorkers(workers, { context });
      figures.push(`stopWorkers(3 python3 workers, ${where}): ${Date.now() - t1} ms`);
      expect(stopped.map((w) => w.status)).toEqual(["stopped", "stopped", "stopped"]);
    } finally {
      sock.close();
    }
  });

  it("sets the env before any code runs, deletes the env file, and tags sessions without secrets", async () => {
    const sink = captureSink();
    const code = [
      "import os",
      "keys = ['FOO', 'SENSE_MASTER_ID', 'SENSE_DASHBOARD_ID', 'SENSE_API_URL', 'SENSE_PROJECT_HOME', 'SENSE_PROJECT_IP', 'SENSE_WORKER_NAME', 'SENSE_SESSION_ID', 'SENSE_WORKER_CPUS', 'SENSE_WORKER_MEMORY_MB']",
      "for k in keys: print(k + '=' + os.environ.get(k, '<unset>'))",
      "print('TOKEN_SET=' + str(len(os.environ.get('SENSE_API_TOKEN', '')) > 0))",
      "print('CWD=' + os.getcwd())",
    ].join("\n");
    const t0 = Date.now();
    const [w] = await launchWorkers({ n: 1, engine: "sense-ipython-engine", env: { FOO: "bar baz" }, code, sink, context });
    figures.push(`launch 1 python3 worker (${where}): ${Date.now() - t0} ms`);
    expectFromPool([w]);
    const done = await awaitWorkers([w.id], { waitForCompletion: true, timeoutSeconds: 60, context });
    expect(done.failures).toEqual([]);
    const text = workerOutput(w.id);
    expect(text).toContain("FOO=bar baz\n");
    expect(text).toContain(`SENSE_DASHBOARD_ID=${w.id}\n`);
    expect(text).toContain(`SENSE_SESSION_ID=${w.sessionId}\n`);
    expect(text).toContain(`SENSE_MASTER_ID=${w.masterId}\n`);
    expect(text).toContain(`SENSE_API_URL=${place.apiUrl}\n`);
    expect(text).toContain(`SENSE_PROJECT_HOME=${place.rootDir}\n`);
    expect(text).toContain("SENSE_PROJECT_IP=127.0.0.1\n");
    expect(text).toContain(`SENSE_WORKER_NAME=${w.name}\n`);
    expect(text).toContain("SENSE_WORKER_CPUS=1\nSENSE_WORKER_MEMORY_MB=2048\n");
    // A server's workers get its token (to list and stop their siblings); direct workers need none.
    expect(text).toContain(`TOKEN_SET=${place.secret ? "True" : "False"}\n`);
    expect(text).toContain(`CWD=${fs.realpathSync(place.rootDir)}\n`);
    expect(w.engine).toBe("python3");
    // the env file is gone (and the pool's refill wrote and deleted its own), and nothing the server shows holds the token
    await poolSettled();
    expect(fs.existsSync(path.join(place.rootDir, ".sense")) ? fs.readdirSync(path.join(place.rootDir, ".sense")) : []).toEqual([]);
    const sessions = await sessionsNow();
    if (place.secret) expect(await place.listing()).not.toContain(place.secret);
    expect(sessions[0].name).toMatch(new RegExp(`^sense:${w.masterId}:${w.index}:small:\\d+:idle$`));
    expect(sessions[0].type).toBe("sense-worker");
    expect(sessions[0].path).toMatch(/^\.sense-worker-/);
  });

  it("runs the script rather than the code, and refuses a script outside the project home before starting anything", async () => {
    fs.mkdirSync(path.join(place.rootDir, "jobs"), { recursive: true });
    fs.writeFileSync(path.join(place.rootDir, "jobs", "start.py"), "print('from the script')\n");
    const [w] = await launchWorkers(1, { engine: "python3", script: "jobs/start.py", code: "print('from the code')", sink: captureSink(), context });
    await awaitWorkers(w, { waitForCompletion: true, timeoutSeconds: 60, context });
    expect(workerOutput(w.id)).toBe("from the script\n");
    await stopWorkers(w, { context });

    await expect(launchWorkers(1, { engine: "python3", script: "../../etc/passwd", context })).rejects.toMatchObject({ code: "bad_option" });
    await expect(launchWorkers(1, { engine: "python3", script: "jobs/missing.py", context })).rejects.toMatchObject({ code: "script_not_found" });
    await expect(launchWorkers(1, { engine: "no-such-kernel", context })).rejects.toMatchObject({ code: "unknown_engine", message: expect.stringContaining("python3") });
    expect(await sessionsNow()).toEqual([]);
  });

  it("lists the cluster from inside a worker", async () => {
    const lib = buildWorkers().index;
    const code = [
      "import os, subprocess",
      "js = \"require(process.env.SENSE_LIB).listWorkers().then(ws => console.log('count=' + ws.length + ' me=' + ws.some(w => w.id === process.env.SENSE_DASHBOARD_ID)), e => console.log('error ' + e.code + ' ' + e.message))\"",
      "r = subprocess.run([os.environ['NODE_BIN'], '-e', js], env=os.environ, capture_output=True, text=True, timeout=60)",
      "print(r.stdout.strip() or r.stderr)",
    ].join("\n");
    const workers = await launchWorkers(2, { engine: "python3", env: { SENSE_LIB: lib, NODE_BIN: process.execPath }, code, sink: captureSink(), context });
    const done = await awaitWorkers(workers, { waitForCompletion: true, timeoutSeconds: 90, context });
    expect(done.failures).toEqual([]);
    for (const w of workers) expect(workerOutput(w.id)).toBe("count=2 me=true\n");
    expect((await listWorkers({ context })).map((w) => w.id)).toEqual(workers.map((w) => w.id));
  });

  it("stops one, refuses unknown ids without stopping anything, then stops all; stopping twice is fine", async () => {
    const t0 = Date.now();
    const workers = await launchWorkers(4, { engine: "python3", sink: captureSink(), context });
    figures.push(`launch 4 python3 workers (no startup code, ${where}): ${Date.now() - t0} ms`);
    expect(workers.map((w) => w.index)).toEqual(workers.map((_, i) => workers[0].index + i));
    expect(workers.map((w) => w.status)).toEqual(["idle", "idle", "idle", "idle"]);

    const t1 = Date.now();
    const [one] = await stopWorkers(workers[1].id, { context });
    figures.push(`stopWorkers(1 python3 worker, ${where}): ${Date.now() - t1} ms`);
    expect(one).toMatchObject({ id: workers[1].id, status: "stopped" });
    expect((await sessionsNow()).length).toBe(3);

    await expect(stopWorkers([workers[0].id, "nope-1", "nope-2"], { context })).rejects.toMatchObject({ code: "unknown_worker", message: expect.stringContaining("nope-1") });
    expect((await sessionsNow()).length).toBe(3);

    expect((await stopWorkers(workers[1], { context }))[0].status).toBe("stopped");
    const all = await stopWorkers({ context });
    expect(all.map((w) => w.id)).toEqual([workers[0].id, workers[2].id, workers[3].id]);
    expect(all.map((w) => w.status)).toEqual(["stopped", "stopped", "stopped"]);
    expect(await kernelsNow()).toEqual([]);
  });

  it("awaitWorkers reports a worker still running its startup code as a timeout", async () => {
    const workers = await launchWorkers(1, { engine: "python3", code: "import time\ntime.sleep(60)", sink: captureSink(), context });
    const running = await awaitWorkers(workers, { timeoutSeconds: 30, context });
    expect(running.workers.map((w) => w.status)).toEqual(["running"]);
    const t0 = Date.now();
    const r = await awaitWorkers(workers, { waitForCompletion: true, timeoutSeconds: 1, context });
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect(r.workers).toEqual([]);
    expect(r.failures).toEqual([expect.objectContaining({ id: workers[0].id, status: "running", reason: "timeout" })]);
    await expect(awaitWorkers(["w999"], { context })).rejects.toMatchObject({ code: "unknown_worker" });
  });

  it("marks a worker whose startup code raises failed, shows the traceback, and leaves the others alone", async () => {
    const sink = captureSink();
    const code = "import os\nif int(os.environ['SENSE_WORKER_NAME'][1:]) % 2 == 0:\n    raise ValueError('boom')\nprint('fine')";
    const workers = await launchWorkers(2, { engine: "python3", code, sink, context });
    const r = await awaitWorkers(workers, { waitForCompletion: true, timeoutSeconds: 60, context });
    const bad = workers.find((w) => w.index % 2 === 0)!;
    const good = workers.find((w) => w.index % 2 === 1)!;
    expect(r.workers.map((w) => w.id)).toEqual([good.id]);
    expect(r.failures).toEqual([expect.objectContaining({ id: bad.id, status: "failed", reason: expect.stringContaining("ValueError") })]);
    expect(sink.err.join("")).toMatch(new RegExp(`\\[${bad.name}\\] .*ValueError: boom`));
    expect(sink.out.join("")).toContain(`[${good.name}] fine\n`);
    // the failed worker's status is in its session too (the server's, or the store's), for any process to see
    const listed = await listWorkers({ context });
    expect(listed.find((w) => w.id === bad.id)?.status).toBe("failed");
    expect((await sessionsNow()).find((s) => s.kernelId === bad.id)?.name).toMatch(/:failed$/);
  });

  it("marks a worker whose process exits failed and deletes it (a server would restart it)", async () => {
    const workers = await launchWorkers(1, { engine: "python3", code: "import os\nos._exit(3)", sink: captureSink(), context });
    const r = await awaitWorkers(workers, { waitForCompletion: true, timeoutSeconds: 60, context });
    const why = backend === "server" ? /exited and was restarted by the server/ : /exited with code 3/;
    expect(r.failures).toEqual([expect.objectContaining({ id: workers[0].id, status: "failed", reason: expect.stringMatching(why) })]);
    await until("the exited worker's kernel is gone", async () => ((await kernelsNow()).length === 0 ? true : undefined));
    expect(await sessionsNow()).toEqual([]);
  });

  it("rejects bad options before starting anything", async () => {
    await expect(launchWorkers(0, { engine: "python3", context })).rejects.toMatchObject({ code: "bad_option" });
    await expect(launchWorkers(1, { engine: "python3", env: { "1BAD": "x" }, context })).rejects.toMatchObject({ code: "bad_option" });
    await expect(launchWorkers(1, { engine: "python3", env: { N: 3 as unknown as string }, context })).rejects.toMatchObject({ code: "bad_option" });
    expect(await sessionsNow()).toEqual([]);
    if (pooled) expect(new Set((await place.sessions()).map((s) => s.kernelId))).toEqual(poolIds);
  });
});
