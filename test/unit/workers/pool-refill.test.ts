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
import type { StartRequest } from "../../../src/backends/backend";
import type { SessionModel } from "../../../src/jupyter/schemas";
import type { OutputSink } from "../../../src/protocol/cell";
import { Cluster } from "../../../src/workers";
import { REFILL_LANES } from "../../../src/workers/pool";
import { FakeBackend } from "../../support/fake-backend";

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
    let released = 0;
    while (backend.poolStarts < 12 || backend.held.length > 0) {
      // a lane starts its next kernel once its last one is ready: never more than the lanes at once
      expect(backend.held.length).toBeLessThanOrEqual(REFILL_LANES);
      const next = backend.held.shift();
      if (!next) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        continue;
      }
      next();
      released++;
    }
    expect(released).toBe(6);
    const full = await cluster.setPool({ n: 6, engine: "sense-fast", keeper: false });
    expect(full).toMatchObject({ ready: 6, starting: 0 });
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
});
