/**
 * The warm pool's background refill after a launch took its kernels starts them a few at a time
 * (src/workers/pool.ts `REFILL_LANES`), not all at once: the launch's workers are still running
 * their startup code, and N kernels booting together took the machine's cores from them (a pooled
 * launch of 64 waited ~4 s for its first lines). An explicit `setWorkerPool` still starts what it
 * misses at once (its caller waits for it). Over the fake backend, whose session starts the test
 * holds and releases.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { ExecuteReply, ExecuteRequest, KernelChannel, StartRequest } from "../../../src/backends/backend";
import type { SessionModel } from "../../../src/jupyter/schemas";
import type { OutputSink } from "../../../src/protocol/cell";
import { Cluster } from "../../../src/workers";
import { REFILL_LANES, WorkerPools } from "../../../src/workers/pool";
import { FakeBackend, FakeKernel } from "../../support/fake-backend";

const quiet: OutputSink = { stdout: () => undefined, stderr: () => undefined, display: () => undefined };

/** A fake backend whose pooled-session starts wait for the test while `holding`. */
class HeldBackend extends FakeBackend {
  holding = false;
  readonly held: (() => void)[] = [];
  poolStarts = 0;
  override async start(r: StartRequest): Promise<SessionModel> {
    if (r.type === "sense-pool") {
      this.poolStarts++;
      if (this.holding) await new Promise<void>((resolve) => this.held.push(resolve));
    }
    return super.start(r);
  }
}

/**
 * Releases the held pooled-session starts one at a time until `total` starts were made and none is
 * held, checking at each step that no more than the refill's lanes are in flight; how many it released.
 */
async function releaseRefill(backend: HeldBackend, total: number): Promise<number> {
  let released = 0;
  while (backend.poolStarts < total || backend.held.length > 0) {
    // a lane starts its next kernel once its last one is ready: never more than the lanes at once
    expect(backend.held.length).toBeLessThanOrEqual(REFILL_LANES);
    const next = backend.held.shift();
    if (!next) {
      // the released start's kernel gets ready (in-process promises) and its lane starts the next
      await new Promise<void>((resolve) => setImmediate(resolve));
      continue;
    }
    next();
    released++;
  }
  return released;
}

describe("the warm pool's refill", () => {
  let home: string;
  let backend: HeldBackend;
  let cluster: Cluster;
  const context = () => ({ endpoint: { baseUrl: "http://127.0.0.1:1/", token: "tok" }, projectHome: home, dashboardId: "process-9-pool", masterId: "process-9-pool" });

  beforeEach(() => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), "sense-pool-refill-"));
    backend = new HeldBackend({ js: true });
    cluster = new Cluster({ backend, context: context(), hooks: { onShutdown: () => () => undefined, installProcessHooks: () => undefined } });
  });
  afterEach(async () => {
    backend.holding = false;
    for (const release of backend.held.splice(0)) release();
    await cluster.shutdown();
    fs.rmSync(home, { recursive: true, force: true });
  });

  it(`after a launch took 6 pooled kernels, at most ${REFILL_LANES} replacements start at a time, until the pool is full again`, async () => {
    expect(await cluster.setPool({ n: 6, engine: "sense-fast", keeper: false })).toMatchObject({ ready: 6, starting: 0 });
    expect(backend.poolStarts).toBe(6);
    backend.holding = true;
    const ws = await cluster.launch({ n: 6, engine: "sense-fast", keeper: false, sink: quiet, code: "1" });
    expect(ws).toHaveLength(6);
    // the launch adopted the 6 pooled kernels (no new worker session) and its refill began
    expect(backend.calls.filter((c) => c === "start sense-worker")).toEqual([]);
    expect(backend.held).toHaveLength(REFILL_LANES);
    expect(await releaseRefill(backend, 12)).toBe(6);
    const full = await cluster.setPool({ n: 6, engine: "sense-fast", keeper: false });
    expect(full).toMatchObject({ ready: 6, starting: 0 });
    expect(backend.poolStarts).toBe(12);
  });

  it(`launches in quick succession share the refill's lanes: still at most ${REFILL_LANES} replacements start at a time`, async () => {
    expect(await cluster.setPool({ n: 6, engine: "sense-fast", keeper: false })).toMatchObject({ ready: 6 });
    backend.holding = true;
    // each launch asks for a refill while the one before is still starting its replacements
    for (let k = 0; k < 3; k++) expect(await cluster.launch({ n: 2, engine: "sense-fast", keeper: false, sink: quiet, code: "1" })).toHaveLength(2);
    expect(await releaseRefill(backend, 12)).toBe(6);
    expect(await cluster.setPool({ n: 6, engine: "sense-fast", keeper: false })).toMatchObject({ ready: 6, starting: 0 });
    expect(backend.poolStarts).toBe(12);
  });

  it("setWorkerPool itself starts every kernel it misses at once", async () => {
    backend.holding = true;
    const filling = cluster.setPool({ n: 5, engine: "sense-fast", keeper: false });
    await new Promise<void>((resolve) => setImmediate(resolve));
    expect(backend.held).toHaveLength(5);
    for (const release of backend.held.splice(0)) release();
    expect(await filling).toMatchObject({ ready: 5, starting: 0 });
  });

  it("a master shut down while setWorkerPool replaces a kernel that failed to start: setWorkerPool resolves, and nothing more starts", async () => {
    // The failed kernel's session delete is held, so the shutdown's drain comes while that kernel's
    // lane still waits: the pool is no longer the master's, and its refill stops. setWorkerPool's own
    // wait for a full pool then spun on (a loop of microtasks only: the process hung at 100% CPU).
    const failing = new FailingBackend();
    const pools = new WorkerPools({ track: () => undefined, forget: () => undefined });
    const spec = { backend: failing, masterId: "process-9-pool", projectHome: home, engine: "sense-fast", language: "javascript" as const, size: "small" as const, folder: "", baseEnv: {}, watchdog: false, startTimeoutMs: 10_000 };
    // A guard so that loop fails this test instead of hanging the runner (no timer fires in it).
    const proto = WorkerPools.prototype as unknown as { fill: (...a: unknown[]) => Promise<void> };
    const fill = proto.fill;
    let fills = 0;
    const spy = jest.spyOn(proto, "fill").mockImplementation(function (this: WorkerPools, ...a: unknown[]) {
      if (++fills > 100) return Promise.reject(new Error("setWorkerPool keeps refilling a drained pool"));
      return fill.apply(this, a);
    });
    try {
      const filling = pools.resize(spec, 1);
      while (failing.heldStops.length === 0) await new Promise<void>((resolve) => setImmediate(resolve));
      const starts = failing.poolStarts;
      const draining = pools.drainAll();
      for (const release of failing.heldStops.splice(0)) release();
      await expect(filling).resolves.toMatchObject({ target: 1 });
      await draining;
      expect(failing.poolStarts).toBe(starts);
      expect(pools.info()).toEqual([]);
      expect([...failing.sessions.values()]).toEqual([]);
    } finally {
      spy.mockRestore();
      for (const release of failing.heldStops.splice(0)) release();
    }
  });
});

/** A fake backend whose first pooled kernel fails its environment setup, and the delete of its session waits for the test. */
class FailingBackend extends FakeBackend {
  poolStarts = 0;
  readonly heldStops: (() => void)[] = [];
  private failed?: string;
  override async start(r: StartRequest): Promise<SessionModel> {
    const s = await super.start(r);
    if (r.type === "sense-pool" && this.poolStarts++ === 0) this.failed = s.id;
    return s;
  }
  override connect(kernel: { id: string; name: string }): KernelChannel {
    const session = [...this.sessions.values()].find((x) => x.kernel?.id === kernel.id);
    if (session?.id !== this.failed) return super.connect(kernel);
    const k = new BrokenPreamble(kernel.id, kernel.name);
    this.kernels.set(kernel.id, k);
    return k;
  }
  override async stop(sessionId: string): Promise<void> {
    if (sessionId === this.failed) await new Promise<void>((resolve) => this.heldStops.push(resolve));
    return super.stop(sessionId);
  }
}

/** A kernel whose preamble fails (its environment could not be loaded). */
class BrokenPreamble extends FakeKernel {
  override execute(request: ExecuteRequest): { msgId: string; done: Promise<ExecuteReply> } {
    const { msgId } = super.execute(request);
    return { msgId, done: Promise.resolve({ status: "error", ename: "Error", evalue: "no environment" }) };
  }
}
