/**
 * A Cluster driven through a fake backend (test/support/fake-backend.ts), no server, no global
 * seam: launch → output → loss → stop, and the records, handles and status events on the way.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { MimeBundle, OutputSink } from "../../../src/display/sink";
import type { WorkerRecord } from "../../../src/jupyter/schemas";
import { Cluster, decodeWorkerTag } from "../../../src/workers";
import { FakeBackend } from "../../support/fake-backend";

function recorder(): OutputSink & { out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, stdout: (t) => void out.push(t), stderr: (t) => void err.push(t), display: (b: MimeBundle) => void out.push(`display:${b["text/plain"]}`) };
}

/** Resolves when `check` holds, checking on each turn of the event loop (no fixed sleeps). */
async function until(check: () => boolean, what: string, limitMs = 5_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setImmediate(r));
  }
}

describe("Cluster with a fake backend", () => {
  let home: string;
  let backend: FakeBackend;
  let cluster: Cluster;
  const shutdownHooks: (() => Promise<void>)[] = [];

  beforeEach(() => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), "sense-cluster-"));
    backend = new FakeBackend();
    shutdownHooks.length = 0;
    cluster = new Cluster({
      backend,
      context: { endpoint: { baseUrl: "http://127.0.0.1:1/", token: "tok" }, projectHome: home, dashboardId: "process-9-fake", masterId: "process-9-fake" },
      hooks: { onShutdown: (h) => (shutdownHooks.push(h), () => undefined), installProcessHooks: () => undefined },
    });
  });
  afterEach(async () => {
    await cluster.shutdown();
    fs.rmSync(home, { recursive: true, force: true });
  });

  it("launch → output → loss → stop", async () => {
    const sink = recorder();
    const events: WorkerRecord[] = [];
    cluster.onStatus((r) => events.push(r));

    // launch: two workers, each connected before its env and startup code are sent
    const ws = await cluster.launch({ n: 2, engine: "python3", code: "work()", env: { JOB: "j1" }, keeper: false, sink });
    expect(ws.map((w) => [w.name, w.status])).toEqual([
      ["w1", "running"],
      ["w2", "running"],
    ]);
    expect(shutdownHooks).toHaveLength(1);
    const [k1, k2] = ws.map((w) => backend.kernels.get(w.id)!);
    expect(k1.env).toMatchObject({ JOB: "j1", SENSE_MASTER_ID: "process-9-fake", SENSE_WORKER_NAME: "w1", SENSE_DASHBOARD_ID: k1.id, SENSE_API_TOKEN: "tok" });
    expect(k1.requests.map((r) => r.code.includes("__sense_preamble") || r.code)).toEqual([true, "work()"]);
    expect(decodeWorkerTag(backend.sessions.get(ws[0].sessionId)!.name)).toMatchObject({ status: "running", index: 1 });
    expect(fs.readdirSync(path.join(home, ".sense"))).toEqual([]);

    // output: labelled on the launching sink, kept whole per worker; the preamble's output is not the user's
    k1.publish({ type: "stream", parentId: k1.requests[0].msgId, content: { name: "stdout", text: "preamble noise\n" } });
    k1.publish({ type: "stream", parentId: k1.requests[1].msgId, content: { name: "stdout", text: "hello from w1\n" } });
    k2.publish({ type: "error", parentId: k2.requests[1].msgId, content: { ename: "ValueError", evalue: "bad", traceback: ["ValueError: bad"] } });
    expect(sink.out).toEqual(["[w1] hello from w1\n"]);
    expect(sink.err).toEqual(["[w2] ValueError: bad\n"]);
    expect(cluster.output("w1")).toBe("hello from w1\n");
    expect(cluster.worker(ws[1].id).output.list()).toEqual([{ type: "error", ename: "ValueError", evalue: "bad", traceback: ["ValueError: bad"] }]);
    expect(cluster.worker("w1").channel).toBe(k1);

    // the startup code finishes: w1 idle (persisted in the session tag)
    k1.reply(k1.requests[1].msgId, { status: "ok" });
    await until(() => cluster.worker("w1").status === "idle", "w1 idle");
    await until(() => decodeWorkerTag(backend.sessions.get(ws[0].sessionId)!.name)?.status === "idle", "w1's tag idle");

    // loss: w2's kernel restarts (its process exited) → failed, said in the cell, deleted
    k2.lifecycle("restarting");
    await until(() => !backend.sessions.has(ws[1].sessionId), "w2's session deleted");
    const w2 = cluster.worker("w2").record();
    expect(w2).toMatchObject({ status: "failed", reason: expect.stringMatching(/restarted by the server/) });
    expect(sink.err.join("")).toMatch(/\[w2\] Sense: worker w2 failed: .*its record stays/);
    expect(k2.disposed).toBe(true);
    expect(cluster.worker("w2").channel).toBeUndefined();
    // The failed worker stays listed, with its reason, though its session is gone (#23).
    expect((await cluster.list()).map((r) => [r.name, r.status, r.reason])).toEqual([
      ["w1", "idle", undefined],
      ["w2", "failed", expect.stringMatching(/restarted by the server/)],
    ]);
    const awaited = await cluster.await([], { waitForCompletion: true, timeoutSeconds: 1 });
    expect(awaited.workers.map((r) => r.name)).toEqual(["w1"]);
    expect(awaited.failures.map((r) => [r.name, r.status])).toEqual([["w2", "failed"]]);

    // stop: every worker of the cluster, the failed one too (its row goes); output stays readable
    const stopped = await cluster.stop([]);
    expect(stopped.map((r) => [r.name, r.status])).toEqual([
      ["w1", "stopped"],
      ["w2", "stopped"],
    ]);
    expect(await cluster.list()).toEqual([]);
    expect(backend.sessions.size).toBe(0);
    expect(k1.disposed).toBe(true);
    expect(cluster.output("w1")).toBe("hello from w1\n");
    const final = await cluster.await(["w1", "w2"], { timeoutSeconds: 0 });
    expect(final.failures.map((r) => [r.name, r.status])).toEqual([
      ["w1", "stopped"],
      ["w2", "stopped"],
    ]);
    expect(cluster.worker("w2").record().reason).toMatch(/restarted by the server/);
    // every status was announced, in order per worker, from `starting` (its kernel up)
    const of = (name: string) => events.filter((e) => e.name === name).map((e) => e.status);
    expect(of("w1")).toEqual(["starting", "running", "idle", "stopped"]);
    expect(of("w2")).toEqual(["starting", "running", "failed", "stopped"]);
    // stopping again is fine; a worker it never had is refused, nothing done
    await expect(cluster.stop(["w1"])).resolves.toEqual([expect.objectContaining({ status: "stopped" })]);
    await expect(cluster.stop(["w1", "w9"])).rejects.toMatchObject({ code: "unknown_worker" });
    expect(() => cluster.worker("w9")).toThrow(expect.objectContaining({ code: "unknown_worker" }));
  });

  it("a kernel that dies after someone else deleted its session is recorded as stopped, not failed", async () => {
    const [w] = await cluster.launch({ n: 1, engine: "python3", keeper: false, sink: recorder() });
    expect(w.status).toBe("idle");
    backend.sessions.delete(w.sessionId);
    backend.kernels.get(w.id)!.lifecycle("dead");
    // Failed at the loss, then stopped once the session is found gone (someone else stopped it).
    await until(() => cluster.worker(w.id).status === "stopped", "worker stopped");
    expect(cluster.worker(w.id).record()).toMatchObject({ status: "stopped" });
    expect(cluster.worker(w.id).channel).toBeUndefined();
    expect(backend.calls.filter((c) => c.startsWith("stop"))).toEqual([]);
  });

  it("a launch that fails for one worker stops the others (all or nothing)", async () => {
    const start = backend.start.bind(backend);
    let n = 0;
    backend.start = async (r) => {
      if (++n === 2) throw new Error("no room");
      return start(r);
    };
    await expect(cluster.launch({ n: 3, engine: "python3", keeper: false, sink: recorder() })).rejects.toThrow("no room");
    expect(backend.sessions.size).toBe(0);
    expect(await cluster.list()).toEqual([]);
  });

  it("a pool resize replaces a member that failed to start, so it resolves full", async () => {
    // The second start fails (a kernel that did not come up in time, say); the pool starts another.
    const start = backend.start.bind(backend);
    let starts = 0;
    backend.start = async (r) => {
      if (++starts === 2) throw new Error("the kernel did not start in time");
      return start(r);
    };
    const info = await cluster.setPool({ n: 3, engine: "sense-fast", keeper: false });
    expect(info).toMatchObject({ target: 3, ready: 3, starting: 0, lastError: "the kernel did not start in time" });
    expect(starts).toBe(4);
  });

  it("the shutdown hook stops live workers and pooled kernels", async () => {
    await cluster.setPool({ n: 1, engine: "sense-fast", keeper: false });
    await cluster.launch({ n: 1, engine: "python3", keeper: false, sink: recorder() });
    expect(backend.sessions.size).toBe(2);
    await Promise.all(shutdownHooks.map((h) => h()));
    expect(backend.sessions.size).toBe(0);
    expect(cluster.pools()).toEqual([]);
  });
});
