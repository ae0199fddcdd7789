/**
 * Launches through a Cluster against the fake Jupyter Server (test/support/fake-jupyter.ts):
 * option validation (nothing started on bad input: the fake proves no POST), request order of
 * results, the size table, gateway-sized kernelspecs and the warm pool. The kernel side is a
 * fake connection that plays the preamble (reads and deletes the env file).
 */
import { serverRest } from "../../../src/jupyter/context-input";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { Kernel } from "@jupyterlab/services";
import { Cluster, configureSizes, decodeWorkerTag, JupyterServerBackend, SIZES, WorkerContextInput } from "../../../src/workers";
import type { MimeBundle, OutputSink } from "../../../src/display/sink";
import { RestClient } from "../../../src/jupyter/rest";
import { FakeJupyter, startFakeJupyter } from "../../support/fake-jupyter";
import { readPreambleEnv } from "../../support/fake-backend";

const TOKEN = "unit-secret-token";

function sinkRecorder(): OutputSink & { log: string[] } {
  const log: string[] = [];
  return { log, stdout: (t) => void log.push(`out:${t}`), stderr: (t) => void log.push(`err:${t}`), display: (b: MimeBundle) => void log.push(`display:${b["text/plain"]}`) };
}

/** A fake kernel connection: `info` resolves; each execute reads the env file if it is the preamble. */
function fakeConnector(envs: Record<string, Record<string, string>>) {
  return (_endpoint: unknown, model: { id: string; name: string }) => {
    const noop = { connect: () => true, disconnect: () => true };
    let n = 0;
    return {
      info: Promise.resolve({}),
      iopubMessage: noop,
      statusChanged: noop,
      dispose: () => undefined,
      requestExecute: (content: { code: string }) => {
        const msgId = `${model.id}-${n++}`;
        const env = readPreambleEnv(content.code);
        if (env) envs[model.id] = env;
        return { msg: { header: { msg_id: msgId } }, done: Promise.resolve({ content: { status: "ok" } }) };
      },
    } as unknown as Kernel.IKernelConnection;
  };
}

describe("launchWorkers against a faked server", () => {
  let home: string;
  let context: WorkerContextInput;
  let fake: FakeJupyter;
  let BASE = "";
  let seen: FakeJupyter["seen"];
  let cluster: Cluster;
  const envs: Record<string, Record<string, string>> = {};
  const noHooks = { onShutdown: () => () => undefined, installProcessHooks: () => undefined };
  type LaunchArgs = Parameters<Cluster["launch"]>[0];
  function launchWorkers(n: number, o: LaunchArgs): ReturnType<Cluster["launch"]>;
  function launchWorkers(o: LaunchArgs): ReturnType<Cluster["launch"]>;
  function launchWorkers(a: number | LaunchArgs, o?: LaunchArgs): ReturnType<Cluster["launch"]> {
    return typeof a === "number" ? cluster.launch({ ...o, n: a }) : cluster.launch(a);
  }
  const setWorkerPool = (o: Parameters<Cluster["setPool"]>[0]) => cluster.setPool(o);
  const workerPools = () => cluster.pools();

  beforeAll(async () => {
    fake = await startFakeJupyter();
    BASE = fake.baseUrl;
    seen = fake.seen;
  });
  beforeEach(() => {
    seen.length = 0;
    home = fs.mkdtempSync(path.join(os.tmpdir(), "sense-unit-"));
    fs.writeFileSync(path.join(home, "start.py"), "print(1)\n");
    context = { endpoint: { baseUrl: BASE, token: TOKEN }, projectHome: home, serverRootDir: home, dashboardId: "process-1-unit", masterId: "process-1-unit" };
    cluster = new Cluster({ backend: (ctx) => new JupyterServerBackend(serverRest(ctx), { connect: fakeConnector(envs) }), hooks: noHooks });
  });
  afterEach(async () => {
    // a failed pool test must not leave pooled kernels for the next test to adopt
    for (const p of workerPools()) await setWorkerPool({ n: 0, engine: p.engine, size: p.size, keeper: false, context });
    fake.handler = () => undefined;
    configureSizes(null);
    fs.rmSync(home, { recursive: true, force: true });
  });
  afterAll(() => fake.close());

  const specs = { default: "python3", kernelspecs: { python3: { name: "python3", spec: { display_name: "Python 3", language: "python" } }, ir: { name: "ir", spec: { display_name: "R", language: "R" } } } };

  it.each([
    ["n = 0", { n: 0 }, "bad_option"],
    ["n = 1.5", { n: 1.5 }, "bad_option"],
    ["n over maxWorkers", { n: 5, maxWorkers: 4 }, "bad_option"],
    ["unknown size", { n: 1, size: "huge" }, "bad_option"],
    ["bad env name", { n: 1, env: { "A-B": "x" } }, "bad_option"],
    ["non-string env value", { n: 1, env: { A: 1 } }, "bad_option"],
    ["unknown option", { n: 1, cpus: 4 }, "bad_option"],
    ["script escaping the project home", { n: 1, script: "../../etc/passwd" }, "bad_option"],
    ["absolute script", { n: 1, script: "/etc/passwd" }, "bad_option"],
    ["missing script", { n: 1, startup_script: "nope.py" }, "script_not_found"],
    ["unknown engine", { n: 1, engine: "cobol" }, "unknown_engine"],
    ["engine without a preamble language", { n: 1, engine: "ir" }, "unknown_engine"],
  ])("%s is refused and nothing is started", async (_label, options, code) => {
    fake.handler = (r) => (r.method === "GET" && r.url === "/api/kernelspecs" ? { status: 200, body: specs } : undefined);
    await expect(launchWorkers({ engine: "python3", keeper: false, context, ...(options as object) } as LaunchArgs)).rejects.toMatchObject({ code });
    expect(seen.filter((r) => r.method !== "GET")).toEqual([]);
  });

  it("a NaN count or timeout is named NaN in the message, not null", async () => {
    fake.handler = (r) => (r.method === "GET" && r.url === "/api/kernelspecs" ? { status: 200, body: specs } : undefined);
    await expect(launchWorkers({ n: NaN, engine: "python3", keeper: false, context })).rejects.toMatchObject({ code: "bad_option", message: expect.stringMatching(/^n must be an integer from 1 to \d+, not NaN$/) });
    await expect(launchWorkers({ n: 1, startTimeoutSeconds: NaN, engine: "python3", keeper: false, context })).rejects.toMatchObject({ code: "bad_option", message: expect.stringMatching(/number of seconds, not NaN$/) });
    expect(seen.filter((r) => r.method !== "GET")).toEqual([]);
  });

  it.each([
    ["n = -1", { n: -1 }, "bad_option"],
    ["n = 1.5", { n: 1.5 }, "bad_option"],
    ["n missing", {}, "bad_option"],
    ["unknown size", { n: 1, size: "huge" }, "bad_option"],
    ["a launch-only option", { n: 1, code: "print(1)" }, "bad_option"],
    ["unknown engine", { n: 1, engine: "cobol" }, "unknown_engine"],
  ])("setWorkerPool: %s is refused and nothing is started", async (_label, options, code) => {
    fake.handler = (r) => (r.method === "GET" && r.url === "/api/kernelspecs" ? { status: 200, body: specs } : undefined);
    await expect(setWorkerPool({ engine: "python3", keeper: false, context, ...(options as object) } as Parameters<typeof setWorkerPool>[0])).rejects.toMatchObject({ code });
    expect(seen.filter((r) => r.method !== "GET")).toEqual([]);
    expect(workerPools()).toEqual([]);
  });

  it("behind a gateway a sized worker starts the sized kernelspec; elsewhere the engine itself", async () => {
    const sized = {
      default: "python3",
      kernelspecs: {
        ...specs.kernelspecs,
        "python3-medium": { name: "python3-medium", spec: { display_name: "Python 3 (medium)", language: "python", env: { KERNEL_CPUS: "2", KERNEL_MEMORY: "4096Mi" }, metadata: { process_proxy: { class_name: "enterprise_gateway.services.processproxies.processproxy.LocalProcessProxy" } } } },
      },
    };
    let made = 0;
    fake.handler = (r) => {
      if (r.method === "GET" && r.url === "/api/kernelspecs") return { status: 200, body: sized };
      if (r.method === "GET" && r.url === "/api/sessions") return { status: 200, body: [] };
      if (r.method === "POST" && r.url === "/api/sessions") {
        const b = r.body as { name: string; path: string; type: string; kernel: { name: string } };
        made++;
        return { status: 201, body: { id: `s${made}`, path: b.path, name: b.name, type: b.type, kernel: { id: `k${made}`, name: b.kernel.name } } };
      }
      if (r.method === "PATCH") return { status: 200, body: { id: "x", path: "p", name: "n", type: "sense-worker", kernel: null } };
      return undefined;
    };
    const kernelNames = () => seen.filter((r) => r.method === "POST").map((r) => (r.body as { kernel: { name: string } }).kernel.name);
    // a process_proxy in the kernelspecs says "gateway": medium → python3-medium, small (no sized spec) → python3
    await launchWorkers({ n: 1, engine: "python3", size: "medium", keeper: false, sink: sinkRecorder(), context });
    await launchWorkers({ n: 1, engine: "python3", keeper: false, sink: sinkRecorder(), context });
    expect(kernelNames()).toEqual(["python3-medium", "python3"]);
    // no gateway: the same request keeps the engine (sizes are advisory)
    delete (sized.kernelspecs["python3-medium"].spec as { metadata?: unknown }).metadata;
    seen.length = 0;
    await launchWorkers({ n: 1, engine: "python3", size: "medium", keeper: false, sink: sinkRecorder(), context });
    expect(kernelNames()).toEqual(["python3"]);
  });

  it("a launch takes pooled kernels first, ships the worker's env to them, and refills the pool", async () => {
    let made = 0;
    const patched: { id: string; body: { name: string; type: string; path: string } }[] = [];
    fake.handler = (r) => {
      if (r.method === "GET" && r.url === "/api/kernelspecs") return { status: 200, body: specs };
      if (r.method === "GET" && r.url === "/api/sessions") return { status: 200, body: [] };
      if (r.method === "POST" && r.url === "/api/sessions") {
        const b = r.body as { name: string; path: string; type: string };
        made++;
        return { status: 201, body: { id: `s${made}`, path: b.path, name: b.name, type: b.type, kernel: { id: `k${made}`, name: "python3" } } };
      }
      if (r.method === "PATCH") {
        const body = r.body as { name: string; type: string; path: string };
        // status updates PATCH only the name; adoption also sets type and path
        if (body.type) patched.push({ id: r.url.split("/").pop() ?? "", body });
        return { status: 200, body: { id: r.url.split("/").pop(), ...body, kernel: null } };
      }
      if (r.method === "DELETE") return { status: 204 };
      return undefined;
    };
    const info = await setWorkerPool({ n: 2, engine: "python3", keeper: false, context });
    expect(info).toMatchObject({ engine: "python3", size: "small", target: 2, ready: 2, starting: 0 });
    const posts = () => seen.filter((r) => r.method === "POST").map((r) => r.body as { type: string; name: string });
    expect(posts().map((b) => b.type)).toEqual(["sense-pool", "sense-pool"]);
    expect(posts()[0].name).toMatch(/^sense-pool:process-1-unit:python3:small:\d+$/);
    // the pooled kernels got the master's env (and a watchdog), not a worker's
    expect(envs.k1).toMatchObject({ SENSE_MASTER_ID: "process-1-unit", SENSE_DASHBOARD_ID: "k1", SENSE_SESSION_ID: "s1", SENSE_API_TOKEN: TOKEN });
    expect(envs.k1.SENSE_WORKER_NAME).toBeUndefined();

    const sink = sinkRecorder();
    const ws = await launchWorkers({ n: 3, engine: "python3", env: { JOB: "x" }, keeper: false, sink, context });
    // two adopted (PATCHed into worker sessions), one started cold
    expect(ws.map((w) => w.id).sort()).toEqual(["k1", "k2", "k3"]);
    expect(patched.map((p) => p.id).sort()).toEqual(["s1", "s2"]);
    for (const p of patched) {
      expect(p.body.type).toBe("sense-worker");
      expect(p.body.path).toMatch(/^\.sense-worker-/);
      expect(decodeWorkerTag(p.body.name)).toMatchObject({ masterId: "process-1-unit", status: "starting" });
    }
    for (const w of ws) expect(envs[w.id]).toMatchObject({ JOB: "x", SENSE_WORKER_NAME: w.name, SENSE_DASHBOARD_ID: w.id });
    // the pool refills itself to 2 (two new kernels)
    const full = await setWorkerPool({ n: 2, engine: "python3", keeper: false, context });
    expect(full).toMatchObject({ ready: 2, starting: 0 });
    expect(posts().filter((b) => b.type === "sense-pool")).toHaveLength(4);
    await setWorkerPool({ n: 0, engine: "python3", keeper: false, context });
    expect(workerPools()).toEqual([]);
    expect(seen.filter((r) => r.method === "DELETE").map((r) => r.url).sort()).toEqual(["/api/sessions/s4", "/api/sessions/s5"]);
  });

  it("a session create may take as long as the launch's start timeout (a gateway answers it once the kernel's container runs), not the REST client's per-request timeout", async () => {
    // a client whose own timeout (30 s by default) is shorter than the create takes
    const quick = new Cluster({ backend: () => new JupyterServerBackend(new RestClient({ baseUrl: BASE, token: TOKEN }, { timeoutMs: 200 }), { connect: fakeConnector(envs) }), hooks: noHooks });
    fake.handler = (r) => {
      if (r.method === "GET" && r.url === "/api/kernelspecs") return { status: 200, body: specs };
      if (r.method === "GET" && r.url === "/api/sessions") return { status: 200, body: [] };
      if (r.method === "POST" && r.url === "/api/sessions") {
        const b = r.body as { path: string; name: string; type: string };
        return { status: 201, delayMs: 600, body: { id: "s1", path: b.path, name: b.name, type: b.type, kernel: { id: "k1", name: "python3" } } };
      }
      if (r.method === "PATCH") return { status: 200, body: { id: "s1", path: "p", name: (r.body as { name: string }).name, type: "sense-worker", kernel: null } };
      if (r.method === "DELETE") return { status: 204 };
      return undefined;
    };
    const [w] = await quick.launch({ n: 1, engine: "python3", keeper: false, startTimeoutSeconds: 5, context, sink: sinkRecorder() });
    expect(w).toMatchObject({ id: "k1", status: "idle" });
    await quick.shutdown();
    expect(seen.filter((r) => r.method === "DELETE").map((r) => r.url)).toEqual(["/api/sessions/s1"]);
    // the start timeout is the create's deadline too
    await expect(quick.launch({ n: 1, engine: "python3", keeper: false, startTimeoutSeconds: 0.3, context, sink: sinkRecorder() })).rejects.toMatchObject({
      message: expect.stringContaining(`gave no answer to POST ${BASE}api/sessions within 0.3 s`),
    });
  });

  it("32 workers claim their names with one shared session listing, not one listing each (O(N²) on the server)", async () => {
    const sessions = new Map<string, { id: string; path: string; name: string; type: string; kernel: { id: string; name: string } | null }>();
    let listings = 0;
    let created = 0;
    fake.handler = (r) => {
      if (r.method === "GET" && r.url === "/api/kernelspecs") return { status: 200, body: specs };
      if (r.method === "GET" && r.url === "/api/sessions") {
        // The launch's own first listing (free indices) comes before any worker exists.
        if (created > 0) listings++;
        return { status: 200, body: [...sessions.values()] };
      }
      if (r.method === "POST" && r.url === "/api/sessions") {
        const b = r.body as { path: string; name: string; type: string };
        const n = ++created;
        const model = { id: `s${n}`, path: b.path, name: b.name, type: b.type, kernel: { id: `k${n}`, name: "python3" } };
        sessions.set(model.id, model);
        return { status: 201, body: model };
      }
      if (r.method === "PATCH") {
        const id = r.url.split("/").pop() ?? "";
        const model = sessions.get(id);
        if (model) model.name = (r.body as { name: string }).name;
        return { status: 200, body: model ?? { id, path: "p", name: (r.body as { name: string }).name, type: "sense-worker", kernel: null } };
      }
      return undefined;
    };
    const records = await launchWorkers(32, { engine: "python3", keeper: false, context, sink: sinkRecorder(), maxWorkers: 32 });
    expect(new Set(records.map((r) => r.name)).size).toBe(32);
    // One listing, taken once every worker had its session, serves all 32.
    expect(listings).toBe(1);
  });

  it("starts workers concurrently and returns them in request order, with the env (and overridden size) delivered", async () => {
    configureSizes({ small: { cpu: 0.5, memoryMiB: 512 } });
    expect(SIZES.small).toEqual({ cpu: 0.5, memoryMiB: 512 });
    expect(() => configureSizes({ small: { cpu: -1 } })).toThrow(expect.objectContaining({ code: "bad_option" }));
    expect(SIZES.small).toEqual({ cpu: 0.5, memoryMiB: 512 });

    // the first request is answered last: the results must still come back in request order
    const answered: number[] = [];
    const delays = [300, 150, 0];
    let posts = 0;
    fake.handler = (r) => {
      if (r.method === "GET" && r.url === "/api/kernelspecs") return { status: 200, body: specs };
      if (r.method === "GET" && r.url === "/api/sessions") {
        return { status: 200, body: [{ id: "s-old", path: "x", name: "sense:process-1-unit:7:small:1:stopped", type: "sense-worker", kernel: null }] };
      }
      if (r.method === "POST" && r.url === "/api/sessions") {
        const b = r.body as { path: string; name: string; type: string; kernel: { name: string } };
        expect(b.type).toBe("sense-worker");
        expect(b.kernel).toEqual({ name: "python3" });
        expect(b.name).not.toContain(TOKEN);
        const idx = Number(b.name.split(":")[2]);
        const delayMs = delays[posts++];
        setTimeout(() => answered.push(idx), delayMs);
        return { status: 201, delayMs, body: { id: `s${idx}`, path: b.path, name: b.name, type: b.type, kernel: { id: `k${idx}`, name: "python3" } } };
      }
      if (r.method === "PATCH") {
        return { status: 200, body: { id: r.url.split("/").pop(), path: "p", name: (r.body as { name: string }).name, type: "sense-worker", kernel: null } };
      }
      return undefined;
    };
    const records = await launchWorkers(3, { engine: "sense-ipython-engine", keeper: false, env: { SERVER: "tcp://10.0.0.1:5555" }, context, sink: sinkRecorder() });
    expect(records.map((r) => r.index)).toEqual([8, 9, 10]);
    expect(records.map((r) => r.id)).toEqual(["k8", "k9", "k10"]);
    expect(records.map((r) => r.name)).toEqual(["w8", "w9", "w10"]);
    expect(records.every((r) => r.status === "idle")).toBe(true);
    expect(answered).toEqual([10, 9, 8]);
    expect(seen.filter((r) => r.method === "PATCH")).toHaveLength(3);
    expect(envs.k9).toMatchObject({ SERVER: "tcp://10.0.0.1:5555", SENSE_MASTER_ID: "process-1-unit", SENSE_DASHBOARD_ID: "k9", SENSE_SESSION_ID: "s9", SENSE_WORKER_NAME: "w9", SENSE_API_URL: BASE, SENSE_API_TOKEN: TOKEN, SENSE_PROJECT_HOME: home, SENSE_WORKER_CPUS: "0.5", SENSE_WORKER_MEMORY_MB: "512" });
    expect(fs.readdirSync(path.join(home, ".sense"))).toEqual([]);
  });
});
