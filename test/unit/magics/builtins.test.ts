import { MagicRegistry } from "../../../src/magics/registry";
import { followWorkerEvents, registerBuiltins, type SenseCore } from "../../../src/magics/builtins";
import { runCell } from "../../../src/magics/run";
import { varsScope } from "../../../src/magics/expand";
import { defaultRegistry } from "../../../src/magics";
import type { WorkerRecord } from "../../../src/jupyter/schemas";
import type { MimeBundle, DisplayOptions, OutputSink } from "../../../src/display/sink";

function rec(over: Partial<WorkerRecord>): WorkerRecord {
  return { id: "id-1", name: "w1", engine: "sense-ts", size: "small", status: "starting", masterId: "m", startedAt: "2024-05-01T10:00:00Z", sessionId: "s", path: "p", index: 1, ...over };
}

async function until(cond: () => boolean, what: string, ms = 3_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise<void>((r) => setImmediate(r));
  }
}

function setup() {
  const calls: Record<string, unknown[]> = {};
  const note = (name: string, ...args: unknown[]) => ((calls[name] ??= []).push(args));
  let listed: WorkerRecord[] = [];
  let pools: ReturnType<SenseCore["workerPools"]> = [];
  const core: SenseCore = {
    install: async (pkgs, options) => {
      note("install", pkgs, { ...options, sink: typeof options.sink, signal: undefined });
      return { packages: pkgs, versions: { lodash: "4.17.21" }, cwd: "/proj", durationMs: 1000 };
    },
    launchWorkers: async (options) => {
      note("launchWorkers", { ...options, sink: typeof options.sink });
      return [rec({ id: "id-1" }), rec({ id: "id-2", name: "w2", index: 2 })];
    },
    listWorkers: async () => listed,
    stopWorkers: async (...ids) => {
      note("stopWorkers", ...ids);
      return [rec({ status: "stopped" })];
    },
    restartWorkers: async (ids, options) => {
      note("restartWorkers", ids, typeof options.sink);
      return [rec({ id: "id-9", name: "w2", index: 2, status: "running" })];
    },
    awaitWorkers: async (ids, options) => {
      note("awaitWorkers", ids, options);
      return { workers: [rec({ status: "running" })], failures: [rec({ id: "id-2", name: "w2", status: "failed", reason: "timeout" })] };
    },
    setWorkerPool: async (options) => {
      note("setWorkerPool", options);
      pools = options.n ? [{ engine: options.engine ?? "sense-ts", size: options.size ?? "small", folder: "", target: options.n, ready: options.n, starting: 0 }] : [];
      return pools[0] ?? { engine: "sense-ts", size: "small", folder: "", target: 0, ready: 0, starting: 0 };
    },
    workerPools: () => pools,
    getNetwork: () => ({ publicDns: "h", projectIp: "10.0.0.1", sshPassword: "sshsecret", publicPortMapping: { 80: 8080 } }),
    getAuth: () => ({ user: "tok123456789", password: "", source: "token", baseUrl: "http://127.0.0.1:8888/" }),
  };
  const registry = new MagicRegistry();
  registerBuiltins(registry, core, { intervalMs: 1, maxMs: 5_000 });
  const out: string[] = [];
  const err: string[] = [];
  const displays: { bundle: MimeBundle; options?: DisplayOptions }[] = [];
  const sink: OutputSink = { stdout: (t) => out.push(t), stderr: (t) => err.push(t), display: (bundle, options) => displays.push({ bundle, options }) };
  const ctx = { sink, scope: varsScope({ msg: "hello world" }), registry };
  return { calls, core, ctx, out, err, displays, setListed: (r: WorkerRecord[]) => (listed = r) };
}

describe("%sense_* builtins", () => {
  test("the default registry has every builtin", () => {
    for (const [k, n] of [["line", "sense_install"], ["cell", "sense_worker"], ["line", "sense_worker"], ["line", "sense_workers"], ["line", "sense_top"], ["line", "sense_stop"], ["line", "sense_restart"], ["line", "sense_await"], ["line", "sense_pool"], ["line", "sense_network"], ["line", "sense_auth"], ["line", "lsmagic"], ["line", "sense_help"]] as const) {
      expect(defaultRegistry.find(k, n)).toBeDefined();
    }
  });

  test("%sense_pool sets a warm pool and shows the pools as a table; bad input changes nothing", async () => {
    const s = setup();
    expect((await runCell("%sense_pool", s.ctx)).ok).toBe(true);
    expect(s.displays[0].bundle["text/plain"]).toMatch(/^no warm pool/);
    expect((await runCell("%sense_pool 4 --engine sense-fast --size medium", s.ctx)).ok).toBe(true);
    expect(s.calls.setWorkerPool).toEqual([[{ n: 4, engine: "sense-fast", size: "medium" }]]);
    const table = s.displays[1].bundle;
    expect(table["text/html"]).toContain("<caption");
    expect(table["text/plain"]).toMatch(/warm worker pool\n.*engine.*size.*folder.*target.*ready.*starting/);
    expect(table["text/plain"]).toMatch(/sense-fast\s+medium\s+\/\s+4\s+4\s+0/);
    for (const bad of ["%sense_pool -1", "%sense_pool 2.5", "%sense_pool two", "%sense_pool 1 2", "%sense_pool 1 --size huge", "%sense_pool 1 --bogus"]) {
      const o = await runCell(bad, s.ctx);
      expect(o.ok).toBe(false);
    }
    expect(s.calls.setWorkerPool).toHaveLength(1);
    expect(s.err.every((e) => /^UsageError: /.test(e) && !e.includes("    at "))).toBe(true);
    expect(s.err).toHaveLength(6);
  });

  test("%sense_install maps options onto flags and arguments", async () => {
    const s = setup();
    const o = await runCell("%sense_install lodash zod@4 -D --registry http://r/ --flag no-audit --arg omit=dev", s.ctx);
    expect(s.err).toEqual([]);
    expect(o.ok).toBe(true);
    expect(s.calls.install[0]).toEqual([["lodash", "zod@4"], { flags: ["D", "no-audit"], arguments: { omit: "dev", registry: "http://r/" }, sink: "object", signal: undefined }]);
    expect(s.displays[0].bundle["text/plain"]).toContain("Installed lodash, zod@4 into /proj in 1.0 s");
    expect((await runCell("%sense_install", s.ctx)).ok).toBe(false);
    expect(s.err[0]).toMatch(/^UsageError: %sense_install: missing PKG\nusage: %sense_install \[-D\] \[-E\] \[--registry URL\] \[--flag FLAG\]\.\.\. \[--arg K=V\]\.\.\. \[--cwd DIR\] PKG\.\.\.\n$/);
  });

  test("%%sense_worker shows a live table: a placeholder, the launched workers, then status updates", async () => {
    const s = setup();
    s.setListed([rec({ id: "id-1", status: "running" }), rec({ id: "id-2", name: "w2", status: "starting" })]);
    const o = await runCell("%%sense_worker -n 2 --size medium --env MSG=$msg --engine sense-js\nconsole.log(process.env.MSG)\n", s.ctx);
    expect(s.err).toEqual([]);
    expect(o).toMatchObject({ ok: true, value: undefined, displayed: false });
    expect(s.calls.launchWorkers[0]).toEqual([{ n: 2, size: "medium", engine: "sense-js", env: { MSG: "hello world" }, code: "console.log(process.env.MSG)\n", sink: "object" }]);
    const id = s.displays[0].options?.displayId;
    expect(id).toBeDefined();
    expect(s.displays[0]).toEqual({ bundle: expect.objectContaining({ "text/plain": "launching 2 workers..." }), options: { displayId: id } });
    expect(s.displays[1].options).toEqual({ displayId: id, update: true });
    expect(s.displays[1].bundle["text/plain"]).toMatch(/^2 workers · 2 starting/);
    await until(() => s.displays.some((d) => /2 workers · 1 starting · 1 running/.test(d.bundle["text/plain"])), "a running update");
    s.setListed([rec({ id: "id-1", status: "idle" }), rec({ id: "id-2", name: "w2", status: "failed", reason: "boom" })]);
    await until(() => s.displays.some((d) => /1 idle · 1 failed/.test(d.bundle["text/plain"])), "a settled update");
    expect(s.displays.slice(1).every((d) => d.options?.displayId === id && d.options?.update === true)).toBe(true);
  });

  test("%sense_worker as a line magic with --script; a failed launch updates the placeholder and fails the cell", async () => {
    const s = setup();
    s.setListed([rec({ id: "id-1", status: "idle" }), rec({ id: "id-2", status: "idle" })]);
    await runCell("%sense_worker --script start.ts", s.ctx);
    expect(s.calls.launchWorkers[0]).toEqual([{ n: 1, script: "start.ts", env: {}, sink: "object" }]);
    s.core.launchWorkers = async () => {
      throw new Error("no such kernelspec");
    };
    const o = await runCell("%sense_worker --engine nope", s.ctx);
    expect(o.ok).toBe(false);
    expect(s.err.join("")).toMatch(/^Error: no such kernelspec/);
    expect(s.displays.at(-1)?.bundle["text/plain"]).toBe("launch failed (see the error below)");
  });

  test("%sense_stop, %sense_await, %sense_workers", async () => {
    const s = setup();
    await runCell("%sense_stop w1 'id 2'", s.ctx);
    expect(s.calls.stopWorkers[0]).toEqual(["w1", "id 2"]);
    await runCell("%sense_stop", s.ctx);
    expect(s.calls.stopWorkers[1]).toEqual([]);
    await runCell("%sense_await --completion --timeout 2.5 w1", s.ctx);
    expect(s.calls.awaitWorkers[0]).toEqual([["w1"], { waitForCompletion: true, timeoutSeconds: 2.5 }]);
    await runCell("%sense_await", s.ctx);
    expect(s.calls.awaitWorkers[1]).toEqual([null, { waitForCompletion: false, timeoutSeconds: 600 }]);
    expect(s.displays.at(-1)?.bundle["text/plain"]).toMatch(/^2 workers · 1 running · 1 failed\n[\s\S]*timeout/);
    s.setListed([]);
    await runCell("%sense_workers", s.ctx);
    expect(s.displays.at(-1)?.bundle["text/plain"]).toMatch(/^no workers/);
    expect(s.err).toEqual([]);
  });

  test("%sense_restart restarts the workers named (none: every failed one) and shows their table", async () => {
    const s = setup();
    await runCell("%sense_restart w2 w3", s.ctx);
    await runCell("%sense_restart", s.ctx);
    expect(s.calls.restartWorkers).toEqual([
      [["w2", "w3"], "object"],
      [[], "object"],
    ]);
    expect(s.displays.at(-1)?.bundle["text/plain"]).toMatch(/^1 worker · 1 running\n[\s\S]*w2/);
    expect(s.err).toEqual([]);
  });

  test("%sense_restart shows the rows starting at once, then follows the fresh kernels (new id, same name) through running to idle", async () => {
    const s = setup();
    const listeners = new Set<(r: WorkerRecord) => void>();
    const emit = (r: WorkerRecord) => listeners.forEach((l) => l(r));
    s.core.onWorkerStatus = (l) => (listeners.add(l), () => void listeners.delete(l));
    s.setListed([rec({ id: "old-1", status: "idle" }), rec({ id: "old-2", name: "w2", index: 2, status: "failed", reason: "its kernel died" })]);
    s.core.restartWorkers = async () => {
      // What the cluster announces while it restarts w2: its fresh kernel from `starting`.
      emit(rec({ id: "new-2", name: "w2", index: 2, status: "starting" }));
      emit(rec({ id: "new-2", name: "w2", index: 2, status: "running" }));
      return [rec({ id: "new-2", name: "w2", index: 2, status: "running" })];
    };
    await runCell("%sense_restart", s.ctx);
    emit(rec({ id: "new-2", name: "w2", index: 2, status: "idle" }));
    const texts = () => s.displays.map((d) => String(d.bundle["text/plain"]));
    await until(() => /1 idle/.test(texts().at(-1) ?? ""), "the idle update");
    // Only the failed worker's row, starting from the first display (no reason left from its old kernel).
    expect(texts()[0]).toMatch(/^1 worker · 1 starting\n/);
    expect(texts()[0]).not.toMatch(/w1|its kernel died/);
    expect(texts().map((t) => /· 1 (\w+)/.exec(t)?.[1])).toEqual(["starting", "running", "idle"]);
    expect(texts().at(-1)).toMatch(/new-2/);
    expect(s.err).toEqual([]);
  });

  test("followWorkerEvents: a row follows a restart in place; each status of a worker is shown, a burst of others coalesced; an old kernel's late event is ignored", async () => {
    const listeners = new Set<(r: WorkerRecord) => void>();
    const emit = (r: WorkerRecord) => listeners.forEach((l) => l(r));
    const shown: string[] = [];
    const live = { id: "d", update: (b: unknown) => void shown.push(String((b as MimeBundle)["text/plain"])) };
    const stop = followWorkerEvents([rec({ id: "a", status: "idle" }), rec({ id: "b", name: "w2", index: 2, status: "failed" })], live, (l) => (listeners.add(l), () => void listeners.delete(l)), { intervalMs: 1 });
    // w2 restarted: its fresh kernel goes starting, running, idle in one burst, with w1 busy meanwhile.
    emit(rec({ id: "b2", name: "w2", index: 2, status: "starting" }));
    emit(rec({ id: "a", status: "running" }));
    emit(rec({ id: "b2", name: "w2", index: 2, status: "running" }));
    emit(rec({ id: "b2", name: "w2", index: 2, status: "idle" }));
    emit(rec({ id: "b", name: "w2", index: 2, status: "stopped" })); // the old kernel's, late
    await until(() => shown.some((t) => /w2 .*idle/.test(t)), "w2 idle");
    const w2 = shown.map((t) => /^\s*w2\s+(\S+)\s+\S+\s+\S+\s+(\w+)/m.exec(t)?.slice(1).join(" "));
    expect(w2).toEqual(["b2 starting", "b2 running", "b2 idle"]);
    expect(shown.at(-1)).toMatch(/^2 workers · 1 running · 1 idle/);
    stop();
  });

  test("%sense_workers --usage and %sense_top show CPU % and memory, — where a kernel did not answer", async () => {
    const s = setup();
    let asked = 0;
    s.core.workerUsage = async () => {
      asked++;
      return [{ record: rec({ status: "idle" }), usage: { kernelCpu: 97.25 + asked, kernelMemory: 150 * 1024 * 1024 } }, { record: rec({ id: "id-2", name: "w2", index: 2, status: "idle" }) }];
    };
    await runCell("%sense_workers --usage", s.ctx);
    const table = String(s.displays.at(-1)?.bundle["text/plain"]);
    expect(table).toMatch(/cpu %\s+memory/);
    expect(table).toMatch(/w1 .* 98\.3\s+150\.0 MiB/);
    expect(table).toMatch(/w2 .* —\s+—/);
    // Live: a first display, then updates of the same display id, until --seconds passed.
    const before = s.displays.length;
    await runCell("%sense_top --seconds 1.2 --interval 0.5", s.ctx);
    const shown = s.displays.slice(before);
    expect(shown[0].options?.update).toBeFalsy();
    expect(shown.length).toBeGreaterThanOrEqual(3);
    for (const d of shown.slice(1)) expect(d.options).toEqual(expect.objectContaining({ update: true, displayId: shown[0].options?.displayId }));
    expect(String(shown.at(-1)?.bundle["text/plain"])).toMatch(new RegExp(`w1 .* ${(97.25 + asked).toFixed(1)}`));
  });

  test("%sense_top runs until the cell is interrupted, then ends quietly with the last table shown", async () => {
    const s = setup();
    s.core.workerUsage = async () => [{ record: rec({ status: "idle" }), usage: { kernelCpu: 1, kernelMemory: 1024 * 1024 } }];
    const abort = new AbortController();
    const done = runCell("%sense_top --interval 0.5", { ...s.ctx, signal: abort.signal });
    await until(() => s.displays.length >= 3, "two updates", 10_000);
    abort.abort();
    await done;
    const shown = s.displays.length;
    await new Promise((r) => setTimeout(r, 700));
    expect(s.displays.length).toBe(shown); // no refresh after the interrupt
    expect(s.err).toEqual([]);
  });

  test("%sense_top refuses a bad --seconds or --interval and shows nothing", async () => {
    const s = setup();
    s.core.workerUsage = async () => [];
    for (const line of ["%sense_top --seconds 0", "%sense_top --seconds -3", "%sense_top --interval 0.1", "%sense_top --interval 99999"]) {
      await runCell(line, s.ctx);
    }
    expect(s.displays).toEqual([]);
    expect(s.err.join("")).toMatch(/--seconds takes a positive number/);
    expect(s.err.join("")).toMatch(/--interval takes a number of seconds from 0.5 to 3600/);
  });

  test("%sense_network and %sense_auth never show secrets (a token user is masked too)", async () => {
    const s = setup();
    await runCell("%sense_network\n%sense_auth", s.ctx);
    const all = JSON.stringify(s.displays);
    expect(all).not.toContain("sshsecret");
    expect(all).not.toContain("tok123456789");
    expect(all).not.toContain("6789");
    expect(s.displays[1].bundle["text/plain"]).toMatch(/token\s+\*\*\*/);
    expect(s.displays[1].bundle["text/plain"]).toContain("http://127.0.0.1:8888/");
  });
});

describe("%%sense_worker live table from status events", () => {
  test("updates in place on each status change, coalesces bursts, and stops following once all are stopped", async () => {
    const s = setup();
    const listeners = new Set<(r: WorkerRecord) => void>();
    const core: SenseCore = { ...s.core, onWorkerStatus: (l) => (listeners.add(l), () => listeners.delete(l)) };
    const registry = new MagicRegistry();
    registerBuiltins(registry, core, { intervalMs: 1 });
    const ctx = { ...s.ctx, registry };
    expect((await runCell("%%sense_worker -n 2\nconsole.log(1)\n", ctx)).ok).toBe(true);
    const id = s.displays[0].options?.displayId;
    const shown = () => s.displays.length;
    const before = shown();
    for (const l of listeners) l(rec({ id: "id-1", status: "idle" }));
    for (const l of listeners) l(rec({ id: "id-2", name: "w2", index: 2, status: "idle" }));
    await until(() => shown() > before, "an update");
    const last = s.displays[s.displays.length - 1];
    expect(last.options).toEqual({ displayId: id, update: true });
    expect(last.bundle["text/plain"]).toMatch(/w1 .* idle/);
    expect(last.bundle["text/plain"]).toMatch(/w2 .* idle/);
    // Both idle events became one update.
    expect(shown()).toBe(before + 1);
    for (const l of [...listeners]) l(rec({ id: "id-1", status: "stopped" }));
    for (const l of [...listeners]) l(rec({ id: "id-2", name: "w2", index: 2, status: "stopped" }));
    // The final state goes out at once, not after the coalescing delay: the cell that stopped the
    // workers is still running then, so a recorder (nbclient) keeps it.
    expect(s.displays[s.displays.length - 1].bundle["text/plain"]).toMatch(/2 workers · 2 stopped/);
    expect(listeners.size).toBe(0);
  });

  test("a worker that went idle before launchWorkers returned shows idle (no transition is missed)", async () => {
    const s = setup();
    const listeners = new Set<(r: WorkerRecord) => void>();
    const launch = s.core.launchWorkers;
    const core: SenseCore = {
      ...s.core,
      onWorkerStatus: (l) => (listeners.add(l), () => listeners.delete(l)),
      // The startup code finished while the launch was still returning: idle came first.
      launchWorkers: async (options) => {
        const records = await launch(options);
        for (const r of records) for (const l of [...listeners]) l({ ...r, status: "idle" });
        return records.map((r) => ({ ...r, status: "running" as const }));
      },
    };
    const registry = new MagicRegistry();
    registerBuiltins(registry, core, { intervalMs: 1 });
    expect((await runCell("%%sense_worker -n 2\nconsole.log(1)\n", { ...s.ctx, registry })).ok).toBe(true);
    expect(s.displays[s.displays.length - 1].bundle["text/plain"]).toMatch(/2 workers · 2 idle/);
    for (const l of [...listeners]) l(rec({ id: "id-1", status: "stopped" }));
    for (const l of [...listeners]) l(rec({ id: "id-2", name: "w2", index: 2, status: "stopped" }));
    await until(() => listeners.size === 0, "unsubscribe after all stopped");
  });
});
