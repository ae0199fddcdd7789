/**
 * Lost workers stay visible (#23): a worker whose kernel died stays listed as `failed` with a
 * reason until it is restarted or stopped; a request it was running ends at once as `lost`,
 * naming why; execute/push/pull on it fail at once naming why. Over a fake backend whose kernels
 * run JavaScript and can be killed (`die()`), and the reason texts the direct backend's exits give.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { OutputSink } from "../../src/protocol/cell";
import { execute, map, pull, push } from "../../src/remote";
import { RestError } from "../../src/errors";
import { Cluster } from "../../src/workers";
import { exitText } from "../../src/workers/worker";
import { FakeBackend, JsFakeKernel } from "../support/fake-backend";

const quiet: OutputSink = { stdout: () => undefined, stderr: () => undefined, display: () => undefined };

describe("lost workers", () => {
  let home: string;
  let backend: FakeBackend;
  let cluster: Cluster;
  const context = () => ({ endpoint: { baseUrl: "http://127.0.0.1:1/", token: "tok" }, projectHome: home, dashboardId: "process-8-lost", masterId: "process-8-lost" });

  beforeEach(async () => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), "sense-lost-"));
    backend = new FakeBackend({ js: true });
    cluster = new Cluster({ backend, context: context(), hooks: { onShutdown: () => () => undefined, installProcessHooks: () => undefined } });
    await cluster.launch({ n: 3, engine: "sense-fast", keeper: false, sink: quiet, env: { GREETING: "hi" }, code: "globalThis.startups = (globalThis.startups ?? 0) + 1;" });
    await cluster.await([], { waitForCompletion: true, timeoutSeconds: 10 });
  });
  afterEach(async () => {
    await cluster.shutdown();
    fs.rmSync(home, { recursive: true, force: true });
  });

  const kernelOf = (name: string) => backend.kernels.get(cluster.worker(name).kernelId) as JsFakeKernel;

  it("execute on every worker while one dies: that one `lost` with its reason, at once; the others ok", async () => {
    // Warmed up first: the first execute loads the code preparation (acorn) in this process.
    await execute("0", { cluster, sink: quiet });
    await push({ victim: true }, { cluster, targets: "w2", sink: quiet });
    const t0 = performance.now();
    const rs = await execute('if (globalThis.victim) await die();\n"done"', { cluster, sink: quiet, raiseOnError: false });
    expect(performance.now() - t0).toBeLessThan(1_000);
    expect(rs.map((r) => [r.worker, r.status, r.value])).toEqual([
      ["w1", "ok", "done"],
      ["w2", "lost", undefined],
      ["w3", "ok", "done"],
    ]);
    expect(rs[1].error).toMatchObject({ ename: "WorkerLost", evalue: expect.stringMatching(/^worker w2 was lost while running this: its kernel died/) });
  });

  it("a failed worker stays listed with its reason until stopped; execute/push/pull on it fail at once naming why", async () => {
    void kernelOf("w2").die();
    await until(async () => (await cluster.list()).find((r) => r.name === "w2")?.status === "failed");
    const listed = await cluster.list();
    expect(listed.map((r) => [r.name, r.status])).toEqual([
      ["w1", "idle"],
      ["w2", "failed"],
      ["w3", "idle"],
    ]);
    expect(listed[1].reason).toMatch(/its kernel died/);
    // Its kernel is gone from the backend all the same.
    expect([...backend.sessions.values()].map((s) => s.kernel?.id)).not.toContain(listed[1].id);
    for (const call of [() => execute("1", { cluster, targets: "w2", sink: quiet }), () => push({ a: 1 }, { cluster, targets: "w2", sink: quiet }), () => pull("a", { cluster, targets: ["w1", "w2"], sink: quiet })]) {
      await expect(call()).rejects.toMatchObject({ code: "unknown_worker", message: expect.stringMatching(/^worker w2 is failed \(its kernel died.*\): it cannot run code; restartWorkers\("w2"\)/) });
    }
    // Default targets skip it.
    expect((await execute("2", { cluster, sink: quiet })).map((r) => r.worker)).toEqual(["w1", "w3"]);
    await cluster.stop(["w2"]);
    expect((await cluster.list()).map((r) => r.name)).toEqual(["w1", "w3"]);
  });

  it("restart starts a fresh kernel in place of a failed worker: same name, index, engine, size, env; its startup code run again; map uses it again", async () => {
    const before = cluster.worker("w2").record();
    await push({ state: "old" }, { cluster, targets: "w2", sink: quiet });
    void kernelOf("w2").die();
    await until(async () => (await cluster.list()).find((r) => r.name === "w2")?.status === "failed");
    const seen: string[] = [];
    const off = cluster.onStatus((r) => r.name === "w2" && seen.push(r.status));
    const [again] = await cluster.restart([], { sink: quiet });
    await cluster.await(["w2"], { waitForCompletion: true, timeoutSeconds: 5 });
    off();
    expect(again).toMatchObject({ name: "w2", index: before.index, engine: before.engine, size: before.size });
    expect(again.id).not.toBe(before.id);
    // The fresh kernel's record from its start; the old kernel's end is not announced (its record is replaced).
    expect(seen).toEqual(["starting", "running", "idle"]);
    expect((await cluster.list()).map((r) => [r.name, r.status])).toEqual([
      ["w1", "idle"],
      ["w2", "idle"],
      ["w3", "idle"],
    ]);
    expect(kernelOf("w2").env.GREETING).toBe("hi");
    // The startup code ran once on the fresh kernel; the old state is gone.
    expect((await execute("[globalThis.startups, typeof globalThis.state]", { cluster, targets: "w2", sink: quiet }))[0].value).toEqual([1, "undefined"]);
    const out = await map((x: number) => [x, (globalThis as { startups?: number }).startups], [1, 2, 3, 4, 5, 6], { cluster, targets: ["w2"], sink: quiet });
    expect(out).toEqual([1, 2, 3, 4, 5, 6].map((x) => [x, 1]));
  });

  it("restart refuses a worker it does not know, restarting nothing", async () => {
    void kernelOf("w2").die();
    await until(async () => (await cluster.list()).find((r) => r.name === "w2")?.status === "failed");
    const starts = backend.calls.filter((c) => c.startsWith("start")).length;
    await expect(cluster.restart(["w2", "w9"], { sink: quiet })).rejects.toMatchObject({ code: "unknown_worker" });
    expect(backend.calls.filter((c) => c.startsWith("start")).length).toBe(starts);
    expect(cluster.worker("w2").status).toBe("failed");
  });

  it('restart: "on-failure" restarts a lost worker in place, at most maxRestarts times; a crash loop ends failed with its reason', async () => {
    const notes: string[] = [];
    const sink: OutputSink = { ...quiet, stderr: (t) => void notes.push(t) };
    const [w] = await cluster.launch({ n: 1, engine: "sense-fast", keeper: false, sink, code: "globalThis.up = 1;", restart: "on-failure", maxRestarts: 2 });
    const idsSeen = [w.id];
    // The first restarted kernel finishes a request (the startup code check): the crashes in a row start again there.
    for (let k = 1; k <= 3; k++) {
      void (backend.kernels.get(idsSeen[idsSeen.length - 1]) as JsFakeKernel).die();
      await until(async () => {
        const r = (await cluster.list()).find((x) => x.name === w.name);
        return !!r && r.status === "idle" && !idsSeen.includes(r.id);
      });
      idsSeen.push((await cluster.list()).find((x) => x.name === w.name)!.id);
      if (k === 1) expect((await execute("globalThis.up", { cluster, targets: w.name, sink: quiet }))[0].value).toBe(1);
    }
    void (backend.kernels.get(idsSeen[3]) as JsFakeKernel).die();
    await until(async () => notes.some((n) => /failed again after 2 restarts in a row \(each kernel crashed within 60 s, before finishing any request\); it stays failed \(maxRestarts: 2\): its kernel died/.test(n)));
    expect((await cluster.list()).find((x) => x.name === w.name)).toMatchObject({ status: "failed", id: idsSeen[3], reason: expect.stringMatching(/its kernel died/) });
    expect(notes.filter((n) => /restarting worker/.test(n)).map((n) => /restart (\d) in a row/.exec(n)?.[1])).toEqual(["1", "1", "2"]);
  });

  it("maxRestarts counts crashes in a row: a kernel that ran 60 s, or finished a request, starts the count again", async () => {
    // Its own cluster, with a clock the test moves (no waiting for a minute to pass).
    let now = 1_000_000;
    const clocked = new Cluster({ backend, context: context(), hooks: { onShutdown: () => () => undefined, installProcessHooks: () => undefined }, clock: () => now });
    const notes: string[] = [];
    const sink: OutputSink = { ...quiet, stderr: (t) => void notes.push(t) };
    try {
      const [w] = await clocked.launch({ n: 1, engine: "sense-fast", keeper: false, sink, restart: "on-failure", maxRestarts: 1 });
      let id = w.id;
      /** Kills the worker's kernel; resolves with its fresh kernel's id once restarted and idle, or `undefined` once it stays failed. */
      const crash = async (): Promise<string | undefined> => {
        const before = notes.length;
        void (backend.kernels.get(id) as JsFakeKernel).die();
        await until(async () => {
          const r = (await clocked.list()).find((x) => x.name === w.name);
          return (!!r && r.status === "idle" && r.id !== id) || notes.slice(before).some((n) => /stays failed/.test(n));
        });
        const r = (await clocked.list()).find((x) => x.name === w.name)!;
        return r.status === "idle" ? (id = r.id) : undefined;
      };
      expect(await crash()).toBeDefined(); // 1 in a row: restarted
      now += 61_000; // ran healthy for a minute
      expect(await crash()).toBeDefined(); // 1 in a row again: restarted (counted since launch it would be the 2nd)
      expect((await execute("40 + 2", { cluster: clocked, targets: w.name, sink: quiet }))[0].value).toBe(42); // finished work
      expect(await crash()).toBeDefined();
      expect(await crash()).toBeUndefined(); // 2 in a row, within a minute and no request finished: a crash loop
      expect(notes.filter((n) => /restarting worker/.test(n))).toEqual(Array(3).fill(`Sense: restarting worker ${w.name} (restart 1 in a row of at most 1); its state is lost.\n`));
      expect(notes.at(-1)).toMatch(/failed again after 1 restart in a row .*it stays failed \(maxRestarts: 1\): its kernel died/);
      expect((await clocked.list()).find((x) => x.name === w.name)).toMatchObject({ status: "failed", id });
    } finally {
      await clocked.shutdown();
    }
  });

  it("refuses bad restart options, starting nothing", async () => {
    const starts = backend.calls.filter((c) => c.startsWith("start")).length;
    for (const bad of [{ restart: "always" }, { restart: "on-failure", maxRestarts: 0 }, { restart: "on-failure", maxRestarts: 1.5 }, { maxRestarts: 2 }]) {
      await expect(cluster.launch({ n: 1, engine: "sense-fast", keeper: false, sink: quiet, ...(bad as object) })).rejects.toMatchObject({ code: "bad_option" });
    }
    expect(backend.calls.filter((c) => c.startsWith("start")).length).toBe(starts);
  });

  it("stopWorkers with the server out of reach: the error is the caller's, and the channels of the workers asked for are closed (none keeps reconnecting to a server that is gone)", async () => {
    const gone = new RestError("unreachable", "the Jupyter Server did not answer (connection refused)", { method: "GET", url: "fake://backend/api/sessions" });
    const listing = jest.spyOn(backend, "listSessions").mockRejectedValue(gone);
    const deleting = jest.spyOn(backend, "stop").mockRejectedValue(gone);
    try {
      await expect(cluster.stop(["w2"])).rejects.toMatchObject({ code: "unreachable" });
      expect(["w1", "w2", "w3"].map((n) => kernelOf(n).disposed)).toEqual([false, true, false]);
      await expect(cluster.stop([])).rejects.toMatchObject({ code: "unreachable" });
      expect(["w1", "w2", "w3"].map((n) => kernelOf(n).disposed)).toEqual([true, true, true]);
    } finally {
      listing.mockRestore();
      deleting.mockRestore();
    }
  });

  it("says how a kernel's process ended, as the direct backend knows it", () => {
    expect(exitText("SIGKILL")).toMatch(/^its kernel was killed by SIGKILL/);
    expect(exitText("SIGABRT")).toMatch(/heap out of memory/);
    expect(exitText(3)).toBe("its kernel process exited with code 3");
    expect(exitText(0)).toMatch(/^its kernel process exited with code 0 \(/);
    expect(exitText("SIGTERM")).toBe("its kernel was ended by SIGTERM");
    expect(exitText("unknown")).toBe("its kernel process ended (how is unknown)");
  });
});

async function until(probe: () => Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((r) => setImmediate(r));
  }
}
