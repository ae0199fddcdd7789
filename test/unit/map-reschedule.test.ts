/**
 * `map` survives lost workers (#23): the chunks a lost worker held go back to the queue and the
 * others run them (results exact, in input order); a chunk that keeps killing its workers (a
 * poison item) fails the map naming the item after `retries`; no worker left fails it saying how
 * many items finished. Over a fake backend whose kernels really run JavaScript and can be killed
 * (`die()` in a cell: the kernel never answers and its lifecycle goes `dead`).
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { MimeBundle, OutputSink } from "../../src/protocol/cell";
import { RemoteError } from "../../src/errors";
import { map, push } from "../../src/remote";
import { Cluster } from "../../src/workers";
import { FakeBackend, JsFakeKernel } from "../support/fake-backend";

/** The fake kernels' `die()` (a global of their contexts, not of this file). */
declare const die: () => never;

const quiet: OutputSink = { stdout: () => undefined, stderr: () => undefined, display: () => undefined };

describe("map when workers are lost", () => {
  let home: string;
  let backend: FakeBackend;
  let cluster: Cluster;
  const context = () => ({ endpoint: { baseUrl: "http://127.0.0.1:1/", token: "tok" }, projectHome: home, dashboardId: "process-9-chaos", masterId: "process-9-chaos" });

  async function start(n: number): Promise<void> {
    await cluster.launch({ n, engine: "sense-fast", keeper: false, sink: quiet });
    await cluster.await([], { waitForCompletion: true, timeoutSeconds: 10 });
  }

  beforeEach(() => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), "sense-map-loss-"));
    backend = new FakeBackend({ js: true });
    cluster = new Cluster({ backend, context: context(), hooks: { onShutdown: () => () => undefined, installProcessHooks: () => undefined } });
  });
  afterEach(async () => {
    await cluster.shutdown();
    fs.rmSync(home, { recursive: true, force: true });
  });

  it("runs a lost worker's chunks on the others: every result exact and in order, the loss shown in the progress", async () => {
    await start(3);
    // w2 dies (as a SIGKILL) on its 6th item, mid-chunk.
    await push({ victim: true }, { cluster, targets: "w2", sink: quiet });
    const shown: string[] = [];
    const sink: OutputSink = { ...quiet, display: (b: MimeBundle) => void shown.push(String(b["text/plain"])) };
    const items = Array.from({ length: 120 }, (_, i) => i);
    const out = await map(
      (x: number) => {
        const g = globalThis as { victim?: boolean; seen?: number };
        if (g.victim && (g.seen = (g.seen ?? 0) + 1) > 5) return die();
        return x * 3 + 1;
      },
      items,
      { cluster, sink, chunkSize: 4 },
    );
    expect(out).toEqual(items.map((x) => x * 3 + 1));
    const w2 = (await cluster.list()).find((r) => r.name === "w2");
    expect(w2).toMatchObject({ status: "failed", reason: expect.stringMatching(/its kernel died/) });
    const last = shown[shown.length - 1];
    expect(last).toMatch(/map done/);
    expect(last).toMatch(/w2 \d+ \(lost\)/);
    expect(last).toMatch(/chunks? re-run/);
    expect(last).toMatch(/w2 lost: .*died/);
  });

  it("a poison item fails the map after `retries`, naming the item and the workers it took", async () => {
    await start(4);
    const items = Array.from({ length: 100 }, (_, i) => i);
    const err = (await map((x: number) => (x === 37 ? die() : x + 1), items, { cluster, sink: quiet, chunkSize: 10 }).catch((e: unknown) => e)) as RemoteError;
    expect(err).toBeInstanceOf(RemoteError);
    expect(err.failures).toHaveLength(1);
    expect(err.failures[0]).toMatchObject({ index: 37, ename: "WorkerLost" });
    expect(err.failures[0].evalue).toMatch(/^item 37 took 3 workers \(w\d, w\d, w\d\): each was lost while running it .*run 3 times \(retries: 2\)/);
    // The fourth worker is left, and the results of the other items that ran are kept.
    expect(cluster.runnable()).toHaveLength(1);
    expect(err.results.filter((r) => r !== undefined).length).toBeGreaterThan(0);
    for (const [i, r] of err.results.entries()) if (r !== undefined) expect(r).toBe(i + 1);
  });

  it("a poison item that kills its worker as soon as the chunk before it finished (whose reply dies with the kernel) is named, not that chunk; it takes retries + 1 workers", async () => {
    await start(4);
    const items = Array.from({ length: 100 }, (_, i) => i);
    // w2 holds items 20–29 and, prefetched behind them, 30–39: item 30 kills it before the reply
    // of 20–29 has left the kernel, so the master never learns that 20–29 finished.
    const err = (await map((x: number) => (x === 30 ? die() : x + 1), items, { cluster, sink: quiet, chunkSize: 10 }).catch((e: unknown) => e)) as RemoteError;
    expect(err).toBeInstanceOf(RemoteError);
    expect(err.failures).toHaveLength(1);
    expect(err.failures[0]).toMatchObject({ index: 30, ename: "WorkerLost" });
    expect(err.failures[0].evalue).toMatch(/^item 30 took 3 workers \(w2, w\d, w\d\): each was lost while running it .*run 3 times \(retries: 2\)/);
    // Only the workers it took are lost: the fourth is left.
    expect(cluster.runnable()).toHaveLength(1);
    for (const [i, r] of err.results.entries()) if (r !== undefined) expect(r).toBe(i + 1);
  });

  it("retries: 0 fails at the first loss known to be the chunk's, naming its items (a loss in doubt runs it again alone first)", async () => {
    await start(3);
    const items = Array.from({ length: 40 }, (_, i) => i);
    // w2 dies on item 13 with items 15–19 sent behind 10–14: which it ran is in doubt until 10–14 takes a worker alone.
    const err = (await map((x: number) => (x === 13 ? die() : x), items, { cluster, sink: quiet, chunkSize: 5, retries: 0 }).catch((e: unknown) => e)) as RemoteError;
    expect(err.failures).toHaveLength(1);
    expect(err.failures[0]).toMatchObject({ ename: "WorkerLost" });
    expect(err.failures[0].evalue).toMatch(/^items 10–14 took 2 workers \(w2, w\d\)/);
    expect(cluster.runnable()).toHaveLength(1);
  });

  it("a chunk given back in doubt at the end of the queue still runs: a worker whose chunks end wakes its other slot to take it (the map hung)", async () => {
    await start(4);
    await push({ marker: path.join(home, "killed-once") }, { cluster, sink: quiet });
    const items = Array.from({ length: 41 }, (_, i) => i);
    // Item 38 kills the first worker that runs it, with a chunk prefetched behind it: both go back
    // in doubt, to run alone. By then the queue holds nothing else, and every other worker's slot
    // that ends first waits for its second slot, which (prefetching, near the end) takes nothing.
    const out = await map(
      (x: number) => {
        const g = globalThis as unknown as { marker: string; require: (id: string) => typeof fs };
        const files = g.require("fs");
        if (x === 38 && !files.existsSync(g.marker)) {
          files.writeFileSync(g.marker, "");
          return die();
        }
        return x * 2;
      },
      items,
      { cluster, sink: quiet, chunkSize: 1 },
    );
    expect(out).toEqual(items.map((x) => x * 2));
    expect(cluster.runnable()).toHaveLength(3);
  });

  it("no worker left: a RemoteError that says how many items finished", async () => {
    await start(3);
    const items = Array.from({ length: 60 }, (_, i) => i);
    // Every worker dies on its 4th item: no chunk is to blame, so retries never run out first.
    const err = (await map(
      (x: number) => {
        const g = globalThis as { seen?: number };
        if ((g.seen = (g.seen ?? 0) + 1) > 3) return die();
        return x;
      },
      items,
      { cluster, sink: quiet, chunkSize: 2, retries: 50 },
    ).catch((e: unknown) => e)) as RemoteError;
    expect(err).toBeInstanceOf(RemoteError);
    expect(err.failures).toHaveLength(1);
    expect(err.failures[0].evalue).toMatch(/^every worker was lost \(w1, w2, w3; the last, w\d: .*\); \d+ of 60 items finished/);
    const finished = Number(/; (\d+) of 60/.exec(err.failures[0].evalue)![1]);
    expect(err.results.filter((r) => r !== undefined)).toHaveLength(finished);
    expect([...backend.kernels.values()].every((k) => k instanceof JsFakeKernel)).toBe(true);
  });

  it("refuses a bad retries, before anything is sent", async () => {
    await start(1);
    for (const retries of [-1, 1.5, "2", 1000]) {
      await expect(map((x: number) => x, [1], { cluster, sink: quiet, retries: retries as number })).rejects.toMatchObject({ code: "bad_option" });
    }
  });
});
