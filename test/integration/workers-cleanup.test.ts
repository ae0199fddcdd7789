/**
 * The three cleanup layers, each alone (the other layers switched off), against a real server:
 * 1. a plain Node master stops its workers on SIGTERM (lifecycle hooks);
 * 2. the keeper deletes the workers of a SIGKILLed master;
 * 3. the worker-side watchdog deletes a worker whose master kernel was deleted.
 */
import type { ChildProcess } from "node:child_process";
import { JupyterServer, processesUnder, startJupyterServer, waitForExit } from "../helpers/jupyter";
import { openNotebook } from "../helpers/kernel";
import { RestClient } from "../../src/jupyter/rest";
import { launchWorkers, stopWorkers, WorkerContextInput } from "../../src/workers";
import { buildWorkers } from "../fixtures/workers/build";
import { until } from "../helpers/util";
import { masterReady, spawnMaster } from "../helpers/master";

describe("worker cleanup layers", () => {
  let server: JupyterServer;
  let rest: RestClient;
  let built: ReturnType<typeof buildWorkers>;
  const children: ChildProcess[] = [];
  const figures: string[] = [];

  /** Kernel processes of the server (the server itself and test-started masters excluded). */
  const kernelProcs = () => processesUnder(server.baseDir).filter((p) => p !== server.pid && !children.some((c) => c.pid === p));

  beforeAll(async () => {
    built = buildWorkers();
    server = await startJupyterServer();
    rest = new RestClient({ baseUrl: server.url, token: server.token });
  });

  afterEach(async () => {
    for (const c of children.splice(0)) {
      if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    }
    for (const s of await rest.listSessions()) await rest.deleteSession(s.id).catch(() => undefined);
    await until("no kernels", async () => ((await rest.listKernels()).length === 0 ? true : undefined));
    await until("no kernel processes", () => (kernelProcs().length === 0 ? true : undefined), 15_000);
  });

  afterAll(async () => {
    await server?.stop();
    if (figures.length) console.log(figures.join("\n"));
  });

  /** Starts master.js as a plain Node master; resolves with its READY data. */
  async function startMaster(env: Record<string, string>): Promise<{ child: ChildProcess; ids: string[]; keeperPid: number | null }> {
    const childEnv: NodeJS.ProcessEnv = { ...process.env };
    for (const k of Object.keys(childEnv)) if (k.startsWith("SENSE_") || k.startsWith("JUPYTER")) delete childEnv[k];
    Object.assign(childEnv, {
      SENSE_API_URL: server.url,
      SENSE_API_TOKEN: server.token,
      SENSE_PROJECT_HOME: server.rootDir,
      SENSE_KEEPER_SCRIPT: built.keeper,
      ...env,
    });
    const m = await spawnMaster(built.index, childEnv, children);
    const data = masterReady(m);
    expect(m.out()).not.toContain(server.token);
    return { child: m.child, ids: data.ids, keeperPid: data.keeperPid };
  }

  it("layer 2: the keeper removes every worker kernel and process of a SIGKILLed master", async () => {
    const { child, ids, keeperPid } = await startMaster({ SENSE_WATCHDOG: "0", MASTER_WORKERS: "2" });
    expect(ids).toHaveLength(2);
    expect(keeperPid).toEqual(expect.any(Number));
    // the token travels on the keeper's stdin only
    const fs = await import("node:fs");
    const keeperEnv = fs.readFileSync(`/proc/${keeperPid}/environ`, "utf8") + fs.readFileSync(`/proc/${keeperPid}/cmdline`, "utf8");
    expect(keeperEnv).not.toContain(server.token);
    expect((await rest.listKernels()).map((k) => k.id).sort()).toEqual([...ids].sort());
    expect(kernelProcs().length).toBe(2);

    const t0 = Date.now();
    child.kill("SIGKILL");
    await until(
      "zero worker kernels and processes",
      async () => ((await rest.listKernels()).length === 0 && (await rest.listSessions()).length === 0 && kernelProcs().length === 0 ? true : undefined),
      10_000,
    );
    const ms = Date.now() - t0;
    figures.push(`master SIGKILL -> zero worker kernels and processes (keeper alone, 2 python3 workers): ${ms} ms`);
    expect(ms).toBeLessThan(2_000);
    expect(await waitForExit(keeperPid!, 5_000)).toBe(true);
  });

  it("layer 2 with a warm pool: the keeper removes pooled kernels too", async () => {
    const { child, ids } = await startMaster({ SENSE_WATCHDOG: "0", MASTER_WORKERS: "1", MASTER_POOL: "2", MASTER_ENGINE: "sense-fast", MASTER_CODE: "console.log('up')" });
    const pool = (await rest.listSessions()).filter((s) => s.type === "sense-pool");
    expect(pool).toHaveLength(2);
    expect(pool.every((s) => s.kernel && !ids.includes(s.kernel.id))).toBe(true);
    expect(kernelProcs().length).toBe(3);
    const t0 = Date.now();
    child.kill("SIGKILL");
    await until(
      "zero worker and pooled kernels and processes",
      async () => ((await rest.listKernels()).length === 0 && (await rest.listSessions()).length === 0 && kernelProcs().length === 0 ? true : undefined),
      10_000,
    );
    figures.push(`master SIGKILL -> zero worker + pooled kernels (keeper alone, 1 worker + 2 pooled sense-fast): ${Date.now() - t0} ms`);
  });

  it("layers 1 and 3 with a warm pool: hooks drain the pool on SIGTERM; a pooled kernel's watchdog removes it when the master is gone", async () => {
    const a = await startMaster({ SENSE_WATCHDOG: "0", SENSE_KEEPER: "0", MASTER_WORKERS: "1", MASTER_POOL: "2", MASTER_ENGINE: "sense-fast", MASTER_CODE: "console.log('up')" });
    const exited = new Promise<number | null>((resolve) => a.child.on("exit", (code) => resolve(code)));
    a.child.kill("SIGTERM");
    expect(await exited).toBe(143);
    expect(await rest.listSessions()).toEqual([]);
    await until("no processes", () => (kernelProcs().length === 0 ? true : undefined), 10_000);

    // Watchdog alone (no keeper, no hooks: SIGKILL): pooled kernels run it from the moment they are warm.
    const b = await startMaster({ SENSE_KEEPER: "0", MASTER_WORKERS: "1", MASTER_POOL: "2", MASTER_ENGINE: "sense-fast", MASTER_CODE: "console.log('up')" });
    expect((await rest.listSessions()).filter((s) => s.type === "sense-pool")).toHaveLength(2);
    const t0 = Date.now();
    b.child.kill("SIGKILL");
    await until("the pooled kernels to delete themselves", async () => ((await rest.listKernels()).length === 0 ? true : undefined), 15_000);
    figures.push(`master SIGKILL -> worker + pooled kernels gone (watchdog alone): ${Date.now() - t0} ms`);
  });

  it("layer 1: a plain Node master stops its workers when terminated", async () => {
    const { child, ids, keeperPid } = await startMaster({ SENSE_WATCHDOG: "0", SENSE_KEEPER: "0", MASTER_WORKERS: "2" });
    expect(keeperPid).toBeNull();
    expect(ids).toHaveLength(2);
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    const t0 = Date.now();
    child.kill("SIGTERM");
    expect(await exited).toBe(143);
    // the hooks ran before the exit: nothing is left at that moment already
    expect(await rest.listSessions()).toEqual([]);
    expect(await rest.listKernels()).toEqual([]);
    await until("no worker processes", () => (kernelProcs().length === 0 ? true : undefined), 10_000);
    figures.push(`master SIGTERM -> workers stopped and master exited (hooks alone): ${Date.now() - t0} ms`);
  });

  it("layer 3: the watchdog deletes a worker whose master kernel was deleted", async () => {
    const nb = await openNotebook(server, "python3");
    let nbClosed = false;
    try {
      const context: WorkerContextInput = {
        endpoint: { baseUrl: server.url, token: server.token },
        kernelId: nb.kernelId,
        dashboardId: nb.kernelId,
        masterId: nb.kernelId,
        projectHome: server.rootDir,
        serverRootDir: server.rootDir,
      };
      const sink = { stdout: () => undefined, stderr: () => undefined, display: () => undefined };
      const [w] = await launchWorkers(1, { engine: "python3", keeper: false, sink, context });
      const session = (await rest.listSessions()).find((s) => s.kernel?.id === w.id);
      expect(session?.path).toMatch(/^\.sense-worker-/);
      const t0 = Date.now();
      await nb.shutdown();
      nbClosed = true;
      await until("the worker to delete itself", async () => ((await rest.listKernels()).length === 0 ? true : undefined), 15_000);
      figures.push(`master kernel deleted -> worker gone (watchdog alone): ${Date.now() - t0} ms`);
      expect(await stopWorkers(w, { context })).toEqual([expect.objectContaining({ id: w.id, status: "stopped" })]);
    } finally {
      if (!nbClosed) await nb.shutdown();
    }
  });

});
