/**
 * Remote execution asks the Cluster it is given for its targets: the workers of a `new Cluster()`
 * (not the process default) take `execute`, `push`/`pull` and `map`, over a fake backend whose
 * kernels really run JavaScript (test/support/fake-backend.ts `JsFakeKernel`), no server.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { OutputSink } from "../../src/protocol/cell";
import { execute, map, pull, push } from "../../src/remote";
import { Cluster } from "../../src/workers";
import { defaultCluster } from "../../src/workers/api";
import { FakeBackend, JsFakeKernel } from "../support/fake-backend";

const quiet: OutputSink = { stdout: () => undefined, stderr: () => undefined, display: () => undefined };

describe("remote calls on the workers of a Cluster of one's own", () => {
  let home: string;
  let backend: FakeBackend;
  let cluster: Cluster;
  const context = () => ({ endpoint: { baseUrl: "http://127.0.0.1:1/", token: "tok" }, projectHome: home, dashboardId: "process-7-own", masterId: "process-7-own" });

  beforeEach(async () => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), "sense-cluster-work-"));
    backend = new FakeBackend({ js: true });
    cluster = new Cluster({ backend, context: context(), hooks: { onShutdown: () => () => undefined, installProcessHooks: () => undefined } });
    await cluster.launch({ n: 3, engine: "sense-fast", keeper: false, sink: quiet });
    await cluster.await([], { waitForCompletion: true, timeoutSeconds: 10 });
  });
  afterEach(async () => {
    await cluster.shutdown();
    fs.rmSync(home, { recursive: true, force: true });
  });

  it("execute runs on each of its workers, in target order, and values come back as data", async () => {
    expect([...backend.kernels.values()].every((k) => k instanceof JsFakeKernel)).toBe(true);
    const rs = await execute("globalThis.seen = (globalThis.seen ?? 0) + 1; ({ n: 6 * 7, seen })", { cluster, sink: quiet });
    expect(rs.map((r) => [r.worker, r.status, r.value])).toEqual([
      ["w1", "ok", { n: 42, seen: 1 }],
      ["w2", "ok", { n: 42, seen: 1 }],
      ["w3", "ok", { n: 42, seen: 1 }],
    ]);
    // The process's default cluster has none of these workers.
    expect(defaultCluster().runnable({ context: context() })).toEqual([]);
  });

  it("push and pull name workers of that cluster", async () => {
    await push({ table: new Map([["a", 1]]), big: 2n ** 70n }, { cluster, targets: ["w2", "w3"], sink: quiet });
    expect(await pull("big", { cluster, targets: ["w3", "w2"], sink: quiet })).toEqual([2n ** 70n, 2n ** 70n]);
    expect(await pull(["table"], { cluster, targets: "w2", sink: quiet })).toEqual([{ table: new Map([["a", 1]]) }]);
    await expect(pull("big", { cluster, targets: "w1", sink: quiet })).rejects.toMatchObject({ code: "remote_error" });
  });

  it("map spreads the items over its workers, results in input order", async () => {
    const items = Array.from({ length: 50 }, (_, i) => i);
    const out = await map((x: number) => x * x + 1, items, { cluster, sink: quiet, chunkSize: 4 });
    expect(out).toEqual(items.map((x) => x * x + 1));
  });

  it("refuses a cluster that is not a Cluster", async () => {
    await expect(execute("1", { cluster: {} as Cluster, sink: quiet })).rejects.toMatchObject({ code: "bad_option" });
  });
});
