/**
 * Chaos (#23): `map` through lost workers, on a real Jupyter Server and on kernels started
 * directly, with real `sense-ts` workers: one SIGKILLed a third of the way in (what one loss costs
 * a map: a figure, per backend), three of eight SIGKILLed at random moments, one stopped from
 * another call mid-map. Every result exact and in input order. After each backend: no process left.
 */
import { map } from "../../src/remote";
import { launchWorkers, listWorkers, stopWorkers } from "../../src/workers";
import type { WorkerRecord } from "../../src/jupyter/schemas";
import { captureSink } from "../helpers/util";
import { Figures, trace } from "../reliability/support";
import { between, ChaosBackend, directBackend, ENGINE, FULL, itemsOf, serverBackend, sigkill, work } from "./support";

const figures = new Figures("chaos");
afterAll(() => figures.flush());

const WORKERS = 8;
const ITEMS = 20_000;
const ROUNDS = FULL ? 3 : 1;
const items = itemsOf(ITEMS);
const expected = items.map(work);

describe.each([
  ["server", serverBackend],
  ["direct", directBackend],
] as const)("map through lost workers (%s backend)", (name, make) => {
  let b: ChaosBackend | undefined;
  const sink = captureSink();
  const ctx = () => b!.context;

  /** Tops the cluster up to `n` live workers; their records, in launch order. */
  async function live(n: number): Promise<WorkerRecord[]> {
    const up = (await listWorkers({ context: ctx() })).filter((r) => r.status === "running" || r.status === "idle");
    trace(`chaos ${name}: ${up.length} live workers, launching ${Math.max(0, n - up.length)}`);
    if (up.length < n) up.push(...(await launchWorkers({ n: n - up.length, engine: ENGINE, keeper: false, context: ctx(), sink })));
    return up;
  }

  /** Runs the map, doing `during` meanwhile; its wall time, ms. */
  async function timedMap(workers: WorkerRecord[], during: (startedAt: number) => Promise<void> = async () => undefined): Promise<number> {
    const t0 = performance.now();
    trace(`chaos ${name}: map of ${ITEMS} items on ${workers.map((w) => w.name).join(" ")}`);
    const [out] = await Promise.all([map(work, items, { targets: workers, context: ctx(), sink, progress: false }), during(t0)]);
    const ms = performance.now() - t0;
    trace(`chaos ${name}: map done in ${Math.round(ms)} ms`);
    // Exact and in order: compared item by item (a mismatch names its index).
    expect(out.length).toBe(ITEMS);
    expect(out.findIndex((r, i) => r !== expected[i])).toBe(-1);
    return ms;
  }

  let baselineMs = 0;

  beforeAll(async () => {
    trace(`chaos ${name}: starting the backend`);
    b = await make();
  });
  afterAll(async () => {
    if (!b) return;
    await stopWorkers({ context: ctx() });
    await b.close();
  });

  it("one worker SIGKILLed a third of the way in: every result exact, in order; the extra wall time is a figure", async () => {
    const extra: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const ws = await live(WORKERS);
      baselineMs = await timedMap(ws);
      const victim = ws[round % ws.length];
      let killedAt = 0;
      const lossMs = await timedMap(ws, async (t0) => {
        await new Promise((r) => setTimeout(r, baselineMs / 3));
        sigkill(victim.id);
        killedAt = performance.now() - t0;
      });
      expect(killedAt).toBeGreaterThan(0);
      expect(killedAt).toBeLessThan(lossMs);
      extra.push(lossMs - baselineMs);
      figures.add(`${name}: map of ${ITEMS} items on ${WORKERS} workers, no loss`, Math.round(baselineMs), "ms");
      figures.add(`${name}: the same map, one worker SIGKILLed at a third`, Math.round(lossMs), "ms");
    }
    figures.series(`${name}: extra wall time one worker loss costs that map`, extra.map(Math.round), "ms");
    // The lost worker is failed (the others carry on), and no live worker is left running its chunks.
    const after = await listWorkers({ context: ctx() });
    expect(after.filter((r) => r.status === "running" || r.status === "idle").length).toBe(WORKERS - 1);
  });

  it("three of eight workers SIGKILLed at random moments: every result exact, in order", async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const ws = await live(WORKERS);
      const victims = [...ws].sort(() => Math.random() - 0.5).slice(0, 3);
      let killed = 0;
      let ended = false;
      await timedMap(ws, async () => {
        await Promise.all(
          victims.map(async (v) => {
            await new Promise((r) => setTimeout(r, between(0.05, 0.6) * baselineMs));
            if (ended) return;
            sigkill(v.id);
            killed++;
          }),
        );
      }).finally(() => (ended = true));
      // Each kill happened while the map ran (the trial is not vacuous).
      expect(killed).toBe(3);
    }
  });

  it("a worker stopped from another call mid-map: every result exact, in order", async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const ws = await live(WORKERS);
      const victim = ws[2];
      let stopped: WorkerRecord[] = [];
      await timedMap(ws, async () => {
        await new Promise((r) => setTimeout(r, baselineMs / 3));
        stopped = await stopWorkers(victim.name, { context: ctx() });
      });
      expect(stopped.map((r) => [r.name, r.status])).toEqual([[victim.name, "stopped"]]);
    }
  });
});
