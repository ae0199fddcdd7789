/**
 * A master's answers to `sense_cluster_request` (the JupyterLab panel, issue #26): its failed
 * workers with their reasons (their sessions are gone), and restart / stop through the cluster's
 * own calls; anything but an allowlisted action and worker names is refused, changing nothing.
 * Over a fake backend whose kernels run JavaScript and can be killed.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { OutputSink } from "../../../src/protocol/cell";
import { clusterReply, CLUSTER_REQUEST, controlRequestMessage } from "../../../src/protocol/control";
import { execute } from "../../../src/remote";
import { Cluster } from "../../../src/workers";
import { answerClusterRequest, parseClusterRequest } from "../../../src/workers/cluster-requests";
import { FakeBackend, JsFakeKernel } from "../../support/fake-backend";

describe("sense_cluster_request", () => {
  let home: string;
  let backend: FakeBackend;
  let cluster: Cluster;
  const launchSink: OutputSink = { stdout: () => undefined, stderr: () => undefined, display: () => undefined };
  const context = () => ({ endpoint: { baseUrl: "http://127.0.0.1:1/", token: "tok" }, projectHome: home, dashboardId: "process-9-panel", masterId: "process-9-panel" });
  const kernelOf = (name: string) => backend.kernels.get(cluster.worker(name).kernelId) as JsFakeKernel;

  beforeEach(async () => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), "sense-cluster-req-"));
    backend = new FakeBackend({ js: true });
    cluster = new Cluster({ backend, context: context(), hooks: { onShutdown: () => () => undefined, installProcessHooks: () => undefined } });
    await cluster.launch({ n: 2, engine: "sense-fast", keeper: false, sink: launchSink, code: "globalThis.startups = (globalThis.startups ?? 0) + 1;" });
    await cluster.await([], { waitForCompletion: true, timeoutSeconds: 10 });
  });
  afterEach(async () => {
    await cluster.shutdown();
    fs.rmSync(home, { recursive: true, force: true });
  });

  async function failW2(): Promise<void> {
    void kernelOf("w2").die();
    const deadline = Date.now() + 5_000;
    while (cluster.worker("w2").status !== "failed" || [...backend.sessions.values()].some((s) => s.kernel?.id === cluster.worker("w2").kernelId)) {
      if (Date.now() > deadline) throw new Error("w2 never failed");
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  it("lists the failed workers with their reasons (none before), read back by the panel's reader", async () => {
    expect(await answerClusterRequest({ action: "list" }, cluster)).toEqual({ status: "ok", workers: [] });
    const old = cluster.worker("w2").kernelId;
    await failW2();
    const reply = clusterReply(await answerClusterRequest({ action: "list" }, cluster));
    expect(reply).toEqual({
      status: "ok",
      workers: [{ name: "w2", kernelId: old, engine: "sense-fast", size: "small", status: "failed", reason: expect.stringMatching(/its kernel died/), startedAtMs: expect.any(Number), restartable: true }],
    });
  });

  it("restart starts w2 again (listed starting meanwhile; its startup code run once more); stop of a failed worker drops it from the list", async () => {
    await failW2();
    const old = cluster.worker("w2").kernelId;
    // The fresh kernel's start is held: meanwhile the list says w2 is starting (under its old kernel).
    let release = () => undefined as void;
    const held = new Promise<void>((r) => (release = r));
    const start = backend.start.bind(backend);
    backend.start = async (r) => {
      await held;
      return start(r);
    };
    const restarting = answerClusterRequest({ action: "restart", workers: ["w2"] }, cluster);
    for (let i = 0; i < 100 && !cluster.failed().some((f) => f.record.status === "starting"); i++) await new Promise((r) => setImmediate(r));
    expect(clusterReply(await answerClusterRequest({ action: "list" }, cluster))).toEqual({ status: "ok", workers: [expect.objectContaining({ name: "w2", kernelId: old, status: "starting", restartable: false })] });
    release();
    const reply = clusterReply(await restarting);
    expect(reply).toMatchObject({ status: "ok", workers: [{ name: "w2", status: expect.stringMatching(/^(running|idle)$/), restartable: true }] });
    await cluster.await(["w2"], { waitForCompletion: true, timeoutSeconds: 5 });
    expect(cluster.worker("w2").kernelId).not.toBe(old);
    expect(cluster.worker("w2").status).toBe("idle");
    // The fresh kernel ran the startup code once (the old one's state is gone).
    expect((await execute("globalThis.startups", { cluster, targets: "w2", sink: launchSink }))[0].value).toBe(1);
    expect(await answerClusterRequest({ action: "list" }, cluster)).toEqual({ status: "ok", workers: [] });

    await failW2();
    expect(clusterReply(await answerClusterRequest({ action: "stop", workers: ["w2"] }, cluster))).toMatchObject({ status: "ok", workers: [{ name: "w2", status: "stopped" }] });
    expect(await answerClusterRequest({ action: "list" }, cluster)).toEqual({ status: "ok", workers: [] });
    expect((await cluster.list()).map((r) => r.name)).toEqual(["w1"]);
  });

  it("refuses anything but an allowlisted action and worker names, starting and stopping nothing", async () => {
    await failW2();
    const calls = backend.calls.length;
    const bad: unknown[] = [
      null,
      "list",
      [],
      {},
      { action: "exec" },
      { action: "restart" },
      { action: "restart", workers: [] },
      { action: "restart", workers: "w2" },
      { action: "restart", workers: ["w2; rm -rf /"] },
      { action: "restart", workers: ["w0"] },
      { action: "stop", workers: [2] },
      { action: "list", workers: ["w1"] },
      { action: "restart", workers: ["w2"], code: "process.exit()" },
    ];
    for (const content of bad) {
      expect(() => parseClusterRequest(content)).toThrow(expect.objectContaining({ code: "bad_option" }));
      expect(await answerClusterRequest(content, cluster)).toMatchObject({ status: "error", code: "bad_option", ename: "UsageError" });
    }
    expect(await answerClusterRequest({ action: "restart", workers: ["w2", "w9"] }, cluster)).toMatchObject({ status: "error", code: "unknown_worker" });
    await expect(cluster.restart(["w2"], { sink: "elsewhere" as never })).rejects.toMatchObject({ code: "bad_option" });
    expect(backend.calls.length).toBe(calls);
    expect(cluster.worker("w2").status).toBe("failed");
    expect(cluster.worker("w1").status).toBe("idle");
  });

  it("the panel's reader keeps only well-formed workers, and reads a refusal", () => {
    const good = { name: "w3", kernelId: "k", engine: "sense-js", size: "small", status: "failed", reason: "its kernel died", startedAtMs: 5, restartable: true };
    const reply = clusterReply({ status: "ok", workers: [good, { ...good, name: "x" }, { ...good, startedAtMs: "5" }, { ...good, reason: 7 }, null, "w1"] });
    expect(reply).toEqual({ status: "ok", workers: [good] });
    expect(clusterReply({ status: "error", code: "unknown_worker", evalue: "no w9" })).toEqual({ status: "error", code: "unknown_worker", message: "no w9" });
    expect(clusterReply(undefined)).toMatchObject({ status: "error" });
    const msg = controlRequestMessage(CLUSTER_REQUEST, { action: "list" }, "client", "me");
    expect(msg).toMatchObject({ channel: "control", header: { msg_type: "sense_cluster_request", session: "client", username: "me", version: "5.3" }, content: { action: "list" } });
  });
});
