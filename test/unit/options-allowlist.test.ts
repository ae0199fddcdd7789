/**
 * Issue #24 item 4: every public call that takes an options object refuses a key it does not know
 * (`bad_option`, one allowlist helper for all), and `stopWorkers` reads a last object as options
 * only when it holds nothing but option keys: `stopWorkers({})`, `{ name: "w1" }`, `{ ids: [...] }`
 * used to be read as empty options and stopped every worker.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { OutputSink } from "../../src/display/sink";
import { captureSink, createMagicTag, discover, discoverRun, getAuth, getNetwork, install, launchWorkers, restartWorkers, runMagic, stopWorkers } from "../../src";
import { Cluster } from "../../src/workers";
import { defaultCluster } from "../../src/workers/api";
import { checkOptionKeys } from "../../src/util/check-options";
import { FakeBackend } from "../support/fake-backend";

const quiet: OutputSink = { stdout: () => undefined, stderr: () => undefined, display: () => undefined };

describe("stopWorkers reads a last object as options only when it is one", () => {
  let home: string;
  let backend: FakeBackend;
  let cluster: Cluster;

  beforeEach(() => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), "sense-stop-grammar-"));
    backend = new FakeBackend();
    cluster = new Cluster({
      backend,
      context: { endpoint: { baseUrl: "http://127.0.0.1:1/", token: "tok" }, projectHome: home, dashboardId: "process-7-fake", masterId: "process-7-fake" },
      hooks: { onShutdown: () => () => undefined, installProcessHooks: () => undefined },
    });
    // The functional API's default cluster stops through this fake one.
    jest.spyOn(defaultCluster(), "stop").mockImplementation((refs, options) => cluster.stop(refs, options));
  });
  afterEach(async () => {
    jest.restoreAllMocks();
    await cluster.shutdown();
    fs.rmSync(home, { recursive: true, force: true });
  });

  const stops = () => backend.calls.filter((c) => c.startsWith("stop"));

  it.each([
    ["{}", {}, /stopWorkers\(\) to stop every worker/],
    ["{ name: 'w1' }", { name: "w1" }, /\{ name \} is neither a worker record .* nor options/],
    ["{ ids: [...] }", { ids: ["w1"] }, /\{ ids \} is neither/],
    ["{ context, extra }", { context: undefined, force: true }, /\{ context, force \} is neither/],
  ])("stopWorkers(%s) is refused and stops nothing", async (_what, arg, message) => {
    await cluster.launch({ n: 2, engine: "python3", keeper: false, sink: quiet });
    const err = stopWorkers(arg as never);
    await expect(err).rejects.toMatchObject({ name: "UsageError", code: "bad_option" });
    await expect(err).rejects.toThrow(message);
    expect(stops()).toEqual([]);
    expect((await cluster.list()).map((r) => r.name)).toEqual(["w1", "w2"]);
  });

  it.each([
    ["{}", {}, /restartWorkers\(\) to restart every failed worker/],
    ["{ name: 'w1' }", { name: "w1" }, /restartWorkers: \{ name \} is neither a worker record .* nor options \(known: context, sink\)/],
  ])("restartWorkers(%s) is refused and restarts nothing", async (_what, arg, message) => {
    await cluster.launch({ n: 1, engine: "python3", keeper: false, sink: quiet });
    const restart = jest.spyOn(defaultCluster(), "restart");
    const calls = backend.calls.length;
    await expect(restartWorkers(arg as never)).rejects.toThrow(message);
    expect(restart).not.toHaveBeenCalled();
    expect(backend.calls.slice(calls)).toEqual([]);
    await expect(cluster.restart([], { force: true } as never)).rejects.toThrow(/restartWorkers: unknown option force; known: context, sink/);
  });

  it("a record, ids and a last { context } still work; stopWorkers() still stops all", async () => {
    const [w1] = await cluster.launch({ n: 3, engine: "python3", keeper: false, sink: quiet });
    const ctx = { endpoint: { baseUrl: "http://127.0.0.1:1/", token: "tok" }, projectHome: home, dashboardId: "process-7-fake", masterId: "process-7-fake" };
    expect((await stopWorkers(w1)).map((r) => r.name)).toEqual(["w1"]);
    expect((await stopWorkers("w2", { context: ctx })).map((r) => r.name)).toEqual(["w2"]);
    expect((await stopWorkers()).map((r) => [r.name, r.status])).toEqual([["w3", "stopped"]]);
    expect(await cluster.list()).toEqual([]);
  });

  it("the cluster's own calls refuse unknown option keys before doing anything", async () => {
    await cluster.launch({ n: 1, engine: "python3", keeper: false, sink: quiet });
    const calls = backend.calls.length;
    await expect(cluster.stop([], { ids: ["w1"] } as never)).rejects.toThrow(/stopWorkers: unknown option ids; known: context/);
    await expect(cluster.list({ contxt: {} } as never)).rejects.toMatchObject({ code: "bad_option" });
    await expect(cluster.master({ context: undefined, verbose: true } as never)).rejects.toThrow(/getMaster: unknown option verbose/);
    await expect(cluster.await([], { timeout: 5 } as never)).rejects.toThrow(/awaitWorkers: unknown option timeout; known: waitForCompletion, timeoutSeconds, context, pollMs/);
    await expect(cluster.setPool({ n: 1, engine: "python3", cpus: 2 } as never)).rejects.toThrow(/setWorkerPool: unknown option cpus/);
    await expect(cluster.launch({ n: 1, engine: "python3", sink: quiet, colour: "red" } as never)).rejects.toThrow(/launchWorkers: unknown option colour/);
    expect(backend.calls.slice(calls)).toEqual([]);
    expect((await cluster.list()).map((r) => r.name)).toEqual(["w1"]);
  });

  it("launchWorkers(n, options) refuses a non-object and a second n", async () => {
    await expect(launchWorkers(1, "big" as never)).rejects.toMatchObject({ code: "bad_option" });
    await expect(launchWorkers(1, { n: 3 })).rejects.toThrow(/n is given twice/);
    expect(backend.calls).toEqual([]);
  });
});

describe("the rest of the public API refuses unknown option keys", () => {
  it.each([
    ["getAuth", () => getAuth({ evn: {} } as never)],
    ["getNetwork", () => getNetwork({ env: {}, hostnme: "h" } as never)],
    ["discover", () => discover({ baseurl: "http://x/" } as never)],
    ["discoverRun", () => discoverRun({ backend: "direct" } as never)],
    ["captureSink", () => captureSink({ cell: undefined } as never)],
    ["createMagicTag", () => createMagicTag({ var: {} } as never)],
  ])("%s", (call, f) => {
    expect(f).toThrow(expect.objectContaining({ code: "bad_option", message: expect.stringMatching(new RegExp(`^${call}: unknown option`)) }));
  });

  it("runMagic and install reject (their results are promises) and run nothing", async () => {
    await expect(runMagic("%lsmagic", { variables: {} } as never)).rejects.toThrow(/^runMagic: unknown option variables/);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sense-install-keys-"));
    try {
      // npmCommand would fail loudly if it ran; the refusal comes first and nothing is written.
      await expect(install("left-pad", { cwd: dir, flag: ["D"], npmCommand: ["/nonexistent/npm"] } as never)).rejects.toThrow(/^install: unknown option flag; known: flags, /);
      expect(fs.readdirSync(dir)).toEqual([]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("checkOptionKeys refuses a non-object and names unknown keys", () => {
    expect(() => checkOptionKeys(null, ["a"], "f")).toThrow("f takes an options object, not null");
    expect(() => checkOptionKeys([], ["a"], "f")).toThrow("f takes an options object, not an array");
    expect(() => checkOptionKeys({ a: 1, b: 2, c: 3 }, ["a"], "f")).toThrow(expect.objectContaining({ message: "f: unknown options b, c; known: a", details: { unknown: ["b", "c"], known: ["a"] } }));
    expect(() => checkOptionKeys({ a: undefined }, ["a"], "f")).not.toThrow();
  });
});
