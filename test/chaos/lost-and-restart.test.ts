/**
 * Chaos (#23), on a real Jupyter Server and on kernels started directly, with real `sense-ts`
 * workers (a V8 heap limit of 256 MiB each): `execute` on every worker while one is SIGKILLed (that
 * one `lost` with its reason, the others `ok`); a poison item that kills every worker running it,
 * and one that exceeds the memory limit (each named after `retries`); after
 * each, `restartWorkers` brings the lost workers back with their env and startup code (checked by
 * their output) and `map` uses them again. After each backend: no process left.
 */
import { RemoteError } from "../../src/errors";
import { execute, map } from "../../src/remote";
import { awaitWorkers, launchWorkers, listWorkers, restartWorkers, stopWorkers } from "../../src/workers";
import type { WorkerRecord } from "../../src/jupyter/schemas";
import { captureSink, until } from "../helpers/util";
import { Figures, trace } from "../reliability/support";
import { ChaosBackend, directBackend, ENGINE, FULL, serverBackend, sigkill } from "./support";

const figures = new Figures("chaos");
afterAll(() => figures.flush());

const WORKERS = 4;
const ROUNDS = FULL ? 3 : 1;
const STARTUP = 'console.log("startup of", process.env.SENSE_WORKER_NAME, "tag", process.env.CHAOS_TAG); globalThis.startups = (globalThis.startups ?? 0) + 1;';

// A Jupyter Server notices a dead kernel when its restarter polls (jupyter_client's
// KernelRestarter.time_to_dead, 3 s by default); the direct backend when the process exits.
const NOTICE_MS = { server: 3_000 + 1_000, direct: 1_000 };

// The workers' V8 heap limit: the out-of-memory trial's item exceeds it (a size's limit under Enterprise Gateway).
const HEAP_MIB = 256;

describe.each([
  ["server", serverBackend],
  ["direct", directBackend],
] as const)("lost workers and restart (%s backend)", (name, make) => {
  let b: ChaosBackend | undefined;
  const sink = captureSink();
  const ctx = () => b!.context;
  let workers: WorkerRecord[] = [];

  beforeAll(async () => {
    trace(`chaos ${name}: starting the backend`);
    b = await make({ heapLimitMiB: HEAP_MIB });
    workers = await launchWorkers({ n: WORKERS, engine: ENGINE, keeper: false, context: ctx(), sink, env: { CHAOS_TAG: "tagged" }, code: STARTUP });
    await awaitWorkers(workers, { waitForCompletion: true, timeoutSeconds: 120, context: ctx() });
  });
  afterAll(async () => {
    if (!b) return;
    await stopWorkers({ context: ctx() });
    await b.close();
  });
  // A test that failed before its own restart leaves failed workers: the next test starts from
  // every worker idle all the same (its own failure stays the only one reported).
  afterEach(async () => {
    if (!b) return;
    const failed = (await listWorkers({ context: ctx() })).filter((r) => r.status === "failed").map((r) => r.name);
    if (failed.length === 0) return;
    await restartWorkers({ context: ctx(), sink: captureSink() });
    await until("the restarted workers idle", async () => ((await listWorkers({ context: ctx() })).every((r) => r.status === "idle") ? true : undefined), 120_000);
  });

  /** Restarts every failed worker and checks each came back in place: env and startup code by its output, then map runs on it. */
  async function restartFailed(expected: string[]): Promise<void> {
    const out = captureSink();
    const t0 = performance.now();
    const back = await restartWorkers({ context: ctx(), sink: out });
    expect(back.map((r) => r.name).sort()).toEqual([...expected].sort());
    await until("the restarted workers idle", async () => {
      const rs = (await listWorkers({ context: ctx() })).filter((r) => expected.includes(r.name));
      return rs.length === expected.length && rs.every((r) => r.status === "idle") ? true : undefined;
    }, 120_000);
    figures.add(`${name}: restartWorkers of ${expected.length} ${ENGINE} worker(s), until idle`, Math.round(performance.now() - t0), "ms");
    for (const w of expected) expect(out.text()).toContain(`[${w}] startup of ${w} tag tagged\n`);
    const all = await listWorkers({ context: ctx() });
    expect(all.map((r) => r.status)).toEqual(all.map(() => "idle"));
    const again = back.map((r) => r.name);
    const got = await map((x: number) => [x, process.env.SENSE_WORKER_NAME], Array.from({ length: 40 }, (_, i) => i), { targets: again, context: ctx(), sink, progress: false });
    expect(got.map((g) => g[0])).toEqual(Array.from({ length: 40 }, (_, i) => i));
    expect(new Set(got.map((g) => g[1]))).toEqual(new Set(again));
  }

  it("execute on every worker while one is SIGKILLed: that one `lost` naming why, soon after the loss; the others ok; then restarted in place", async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const live = (await listWorkers({ context: ctx() })).filter((r) => r.status === "idle");
      expect(live).toHaveLength(WORKERS);
      const victim = live[round % live.length];
      let lostAt = 0;
      const running = execute("await new Promise((r) => setTimeout(r, 8000));\n'finished'", {
        targets: live,
        context: ctx(),
        sink,
        raiseOnError: false,
        onResult: (r) => {
          if (r.status === "lost") lostAt = performance.now();
        },
      });
      // Killed once every worker runs the cell (each is busy).
      await new Promise((r) => setTimeout(r, 1_500));
      sigkill(victim.id);
      const killedAt = performance.now();
      const rs = await running;
      expect(rs.map((r) => [r.worker, r.status])).toEqual(live.map((w) => [w.name, w.name === victim.name ? "lost" : "ok"]));
      const lost = rs.find((r) => r.worker === victim.name)!;
      expect(lost.error?.evalue).toMatch(new RegExp(`^worker ${victim.name} was lost while running this: its kernel`));
      if (name === "direct") expect(lost.error?.evalue).toMatch(/killed by SIGKILL/);
      const noticeMs = lostAt - killedAt;
      figures.add(`${name}: a SIGKILLed worker's execute result, ms after the kill`, Math.round(noticeMs), "ms");
      expect(noticeMs).toBeLessThan(NOTICE_MS[name]);
      // Listed failed with its reason; a call on it fails at once, naming why.
      const rec = (await listWorkers({ context: ctx() })).find((r) => r.name === victim.name);
      expect(rec).toMatchObject({ status: "failed", reason: expect.stringMatching(/its kernel/) });
      const t0 = performance.now();
      await expect(execute("1", { targets: victim.name, context: ctx(), sink })).rejects.toMatchObject({ code: "unknown_worker", message: expect.stringMatching(/is failed \(its kernel.*restartWorkers/) });
      expect(performance.now() - t0).toBeLessThan(1_000);
      await restartFailed([victim.name]);
    }
  });

  it("a poison item that kills every worker running it fails the map after `retries`, naming it; the workers it took are restarted", async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const live = (await listWorkers({ context: ctx() })).filter((r) => r.status === "idle");
      expect(live).toHaveLength(WORKERS);
      const poison = 777;
      // The item ends its worker as the system's out-of-memory killer would (SIGKILL): a local
      // server or direct kernel has no memory limit of its own (docs/workers.md, sizes).
      const e = await map((x: number) => (x === 777 ? process.kill(process.pid, "SIGKILL") : x * 2), Array.from({ length: 2_000 }, (_, i) => i), {
        targets: live,
        context: ctx(),
        sink,
        progress: false,
        retries: 2,
      }).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(RemoteError);
      const f = (e as RemoteError).failures;
      expect(f).toHaveLength(1);
      expect(f[0]).toMatchObject({ index: poison, ename: "WorkerLost" });
      expect(f[0].evalue).toMatch(/^item 777 took 3 workers \(w\d+, w\d+, w\d+\): each was lost while running it/);
      const took = /\((w\d+), (w\d+), (w\d+)\)/.exec(f[0].evalue)!.slice(1);
      const failed = (await listWorkers({ context: ctx() })).filter((r) => r.status === "failed").map((r) => r.name);
      expect(failed.sort()).toEqual([...took].sort());
      await restartFailed(took);
    }
  });

  it("an item that exceeds the workers' memory limit fails the map after `retries`, naming it; the workers it took are restarted", async () => {
    const live = (await listWorkers({ context: ctx() })).filter((r) => r.status === "idle");
    expect(live).toHaveLength(WORKERS);
    const e = await map(
      (x: number) => {
        if (x !== 1234) return x + 1;
        const hog: number[][] = [];
        for (;;) hog.push(new Array(1_000_000).fill(x));
      },
      Array.from({ length: 3_000 }, (_, i) => i),
      { targets: live, context: ctx(), sink, progress: false },
    ).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(RemoteError);
    const f = (e as RemoteError).failures;
    expect(f).toHaveLength(1);
    expect(f[0]).toMatchObject({ index: 1234, ename: "WorkerLost" });
    expect(f[0].evalue).toMatch(/^item 1234 took 3 workers \(w\d+, w\d+, w\d+\): each was lost while running it/);
    // The direct backend knows how the process ended: V8 aborts when its heap is full.
    if (name === "direct") expect(f[0].evalue).toMatch(/SIGABRT: .*heap out of memory/);
    const results = (e as RemoteError).results;
    for (const [i, r] of results.entries()) if (r !== undefined) expect(r).toBe(i + 1);
    const took = /\((w\d+), (w\d+), (w\d+)\)/.exec(f[0].evalue)!.slice(1);
    await restartFailed(took);
  });
});
