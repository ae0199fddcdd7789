/**
 * Workers in real containers: a real Enterprise Gateway (3.3, .venv-eg) whose kernelspecs run each
 * Sense kernel in its own container of the Sense kernel image (deploy/docker) through EG's Docker
 * process proxy (`sense_eg.docker_proxy.SenseDockerProcessProxy`, `python/sense_eg/launch_docker.py`),
 * behind a real Jupyter Server. The master is a container kernel, and so is every worker. Host
 * networking on loopback (no bridge); the project home is mounted into every container.
 *
 * Run with `npm run test:containers` (root: installs docker.io and debootstrap, starts dockerd
 * without a bridge when none runs, builds the image, removes everything afterwards).
 *
 * Leak checks: EG's own kernel list is empty after each test and no container of EG's is left,
 * running or not; after the file, the engine holds exactly the containers, volumes and networks it
 * held before.
 */
import { egKernels, okCell, printed } from "../helpers/cells";
import { allText, NotebookKernel, openNotebook } from "../helpers/kernel";
import { REPO, until } from "../helpers/util";
import * as fs from "node:fs";
import * as path from "node:path";
import { RestClient } from "../../src/jupyter/rest";
import { listWorkers } from "../../src/workers";
import { DockerGateway, engineState, hostPid, inspect, kernelContainers, startDockerGateway } from "./docker";

let gw: DockerGateway;
let rest: RestClient;
let before: ReturnType<typeof engineState>;
const open: NotebookKernel[] = [];
const figures: string[] = [];

const egIds = async () => (await egKernels(gw)).map((k) => k.id).sort();

beforeAll(async () => {
  before = engineState();
  const t0 = Date.now();
  gw = await startDockerGateway();
  figures.push(`EG (Docker kernelspecs) + gateway-pointed server up: ${Date.now() - t0} ms`);
  rest = new RestClient({ baseUrl: gw.server.url, token: gw.server.token });
  // zeromq in the project home, as `%sense_install zeromq` would leave it (no registry in tests);
  // a copy, not a link: a link to the repository would dangle inside the containers
  copyPackage("zeromq", path.join(gw.server.rootDir, "node_modules"));
  chownTree(gw.server.rootDir);
});

/** Copies `name` and its dependencies (as npm hoisted them) from the repository's node_modules into `dest`. */
function copyPackage(name: string, dest: string, seen = new Set<string>()): void {
  if (seen.has(name)) return;
  seen.add(name);
  const from = path.join(REPO, "node_modules", name);
  fs.cpSync(from, path.join(dest, name), { recursive: true, dereference: true });
  const pkg = JSON.parse(fs.readFileSync(path.join(from, "package.json"), "utf8")) as { dependencies?: Record<string, string> };
  for (const dep of Object.keys(pkg.dependencies ?? {})) copyPackage(dep, dest, seen);
}

/** The kernels' user owns the project home's contents too (the copy above was made as root). */
function chownTree(dir: string): void {
  for (const entry of fs.readdirSync(dir, { recursive: true, withFileTypes: false }) as string[]) fs.lchownSync(path.join(dir, entry), 1000, 100);
}

afterEach(async () => {
  for (const nb of open.splice(0)) await nb.close();
  await until("EG has no kernels", async () => ((await egKernels(gw)).length === 0 ? true : undefined), 60_000);
  await until("no kernel container left", () => (kernelContainers().length === 0 ? true : undefined), 30_000);
});

afterAll(async () => {
  const logs = process.env.SENSE_CONTAINERS_TEST_LOGS;
  if (logs && gw) {
    fs.mkdirSync(logs, { recursive: true });
    fs.writeFileSync(path.join(logs, "eg.log"), gw.egLog());
    fs.writeFileSync(path.join(logs, "server.log"), gw.server.log());
  }
  await gw?.stop();
  // nothing the run created is left: no container (running or exited), volume or network
  expect(engineState()).toEqual(before);
  if (figures.length) console.log(figures.join("\n"));
});

/** Opens a sense-ts master notebook (a container kernel) and loads sense-tslab in it. */
async function master(): Promise<NotebookKernel> {
  const t0 = Date.now();
  const nb = await openNotebook(gw.server, "sense-ts");
  open.push(nb);
  figures.push(`sense-ts master container: ${Date.now() - t0} ms from session request to kernel ready`);
  const r = await nb.run('import * as sense from "sense-tslab";\nconsole.log(process.cwd(), process.getuid!());');
  if (r.status !== "ok") throw new Error(`master cell failed:\n${allText(r.outputs)}`);
  expect(r.stdout.trim()).toBe(`${gw.server.rootDir} 1000`);
  // the master runs in a container of the image, on the host network, with no limits (unsized)
  const [cid] = kernelContainers(nb.kernelId);
  expect(inspect(cid).HostConfig).toMatchObject({ NetworkMode: "host", Memory: 0, CpuQuota: 0 });
  return nb;
}

/** The token must be nowhere `docker inspect` looks: not in Config.Env, Config.Cmd, Args, or anywhere else. */
function expectNoSecretsInInspect(kernelId: string): void {
  for (const cid of kernelContainers(kernelId)) {
    const raw = JSON.stringify(inspect(cid));
    expect(raw).not.toContain(gw.server.token);
    expect(raw).not.toContain(gw.egToken);
    expect(raw).not.toContain("SENSE_API_TOKEN");
    const c = inspect(cid);
    expect(c.Config.Cmd ?? []).toEqual([]);
    expect((c.Config.Env ?? []).map((e) => e.split("=")[0]).sort()).toEqual(["HOME", "NODE_ENV", "PATH", "SENSE_IMAGE"]);
  }
}

const limitsProbe = [
  'const fs = require("fs");',
  'const r = (f: string) => { try { return fs.readFileSync(f, "utf8").trim(); } catch { return null; } };',
  'console.log("LIMITS " + JSON.stringify({ quota: r("/sys/fs/cgroup/cpu/cpu.cfs_quota_us") ?? r("/sys/fs/cgroup/cpu.max"), period: r("/sys/fs/cgroup/cpu/cpu.cfs_period_us"), memory: r("/sys/fs/cgroup/memory/memory.limit_in_bytes") ?? r("/sys/fs/cgroup/memory.max"), swap: r("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes"), heapMiB: Math.round(require("v8").getHeapStatistics().heap_size_limit / 2 ** 20), uid: process.getuid?.(), token: process.env.SENSE_API_TOKEN ? "set" : "unset", cpus: process.env.KERNEL_CPUS, mem: process.env.KERNEL_MEMORY }));',
].join("\n");

test("each size is a real container limit: CPU quota, memory limit and V8 heap seen from inside the worker; no secret in docker inspect", async () => {
  const nb = await master();
  const r = await okCell(
    nb,
    [
      `const sized = await Promise.all((["small", "medium", "large"] as const).map((size) => sense.launchWorkers(1, { startTimeoutSeconds: 300, engine: "sense-js", size, code: ${JSON.stringify(limitsProbe)} })));`,
      "const ws = sized.flat();",
      "const done = await sense.awaitWorkers(ws, { waitForCompletion: true, timeoutSeconds: 180 });",
      'console.log("RESULT " + JSON.stringify({ failures: done.failures.length, workers: ws.map((w) => ({ id: w.id, engine: w.engine, out: sense.workerOutput(w.id) })) }));',
    ].join("\n"),
  );
  type Got = { failures: number; workers: { id: string; engine: string; out: string }[] };
  const got = printed<Got>(r, "RESULT");
  expect(got.failures).toBe(0);
  expect(got.workers.map((w) => w.engine)).toEqual(["sense-js-small", "sense-js-medium", "sense-js-large"]);
  const expected = { small: [1, 2048], medium: [2, 4096], large: [4, 8192] } as const;
  for (const [i, size] of (["small", "medium", "large"] as const).entries()) {
    const w = got.workers[i];
    const limits = JSON.parse(/LIMITS (.*)/.exec(w.out)![1]) as Record<string, string | number | null>;
    figures.push(`${size} worker, from inside its container: ${JSON.stringify(limits)}`);
    const [cpus, mib] = expected[size];
    expect(limits.quota).toBe(String(cpus * 100_000));
    expect(limits.period).toBe("100000");
    expect(limits.memory).toBe(String(mib * 2 ** 20));
    // V8's heap: 75 % of the memory limit (src/platform/heap-limit.ts) plus V8's young generation
    expect(limits.heapMiB).toBeGreaterThanOrEqual(mib * 0.75);
    expect(limits.heapMiB).toBeLessThan(mib * 0.75 + 100);
    expect(limits).toMatchObject({ uid: 1000, token: "set", cpus: String(cpus), mem: `${mib}Mi` });
    expectNoSecretsInInspect(w.id);
  }
  expectNoSecretsInInspect(nb.kernelId);
  // and none in any process's argv on this machine (the launch script and docker get no secret either)
  for (const name of fs.readdirSync("/proc").filter((n) => /^\d+$/.test(n))) {
    let cmdline: string;
    try {
      cmdline = fs.readFileSync(`/proc/${name}/cmdline`, "utf8");
    } catch {
      continue;
    }
    expect(cmdline).not.toContain(gw.server.token);
  }
  await okCell(nb, "await sense.stopWorkers();");
  expect(await egIds()).toEqual([nb.kernelId]);
});

test("the README example over ZeroMQ with 4 container workers: they ask, the master answers, their prints arrive labelled in the launching cell", async () => {
  const nb = await master();
  await okCell(nb, ['import * as zmq from "zeromq";', "const sock = new zmq.Reply();", "await sock.bind(`tcp://${sense.networkInfo().projectIp}:*`);", "const address = sock.lastEndpoint!;"].join("\n"));
  const t0 = Date.now();
  let firstOutput = 0;
  const launch = await okCell(
    nb,
    [
      "%%sense_worker -n 4 --size small --env SERVER=$address",
      'import * as zmq from "zeromq";',
      "const sock = new zmq.Request();",
      'console.log("Connecting to master...");',
      "sock.connect(process.env.SERVER!);",
      'await sock.send("Sense is so easy!");',
      "const [reply] = await sock.receive();",
      'console.log("Received reply:", reply.toString());',
    ].join("\n"),
    (o) => {
      // A stream while the cell runs, or (the cell ended first) an update of its late display.
      const text = o.type === "stream" ? o.text : o.type === "error" ? "" : String(o.data["text/plain"] ?? "");
      if (!firstOutput && /\[w\d\] /.test(text)) firstOutput = Date.now();
    },
  );
  const cellDone = Date.now() - t0;
  const answer = await okCell(nb, ["for (let i = 0; i < 4; i++) {", "  const [message] = await sock.receive();", '  console.log("Received request:", message.toString());', '  await sock.send("I agree.");', "}"].join("\n"));
  expect(answer.stdout.match(/Received request: Sense is so easy!/g)).toHaveLength(4);
  await okCell(nb, "%sense_await --completion --timeout 180");
  // The workers print after their launching cell returned: the first line is known only now.
  figures.push(`%%sense_worker -n 4 (sense-ts-small containers): cell done ${cellDone} ms, first worker output in the master ${firstOutput ? firstOutput - t0 : "n/a"} ms`);
  const text = allText(launch.outputs);
  for (const w of ["w1", "w2", "w3", "w4"]) {
    expect(text).toContain(`[${w}] Connecting to master...\n`);
    expect(text).toContain(`[${w}] Received reply: I agree.\n`);
  }
  const workers = (await rest.listSessions()).filter((s) => s.type === "sense-worker");
  expect(workers).toHaveLength(4);
  // every worker is a container of its own, limited as `small`
  for (const s of workers) {
    const [cid] = kernelContainers(s.kernel!.id);
    expect(inspect(cid).HostConfig).toMatchObject({ NetworkMode: "host", Memory: 2048 * 2 ** 20, CpuQuota: 100_000, CpuPeriod: 100_000 });
  }
  expect(await egIds()).toEqual([nb.kernelId, ...workers.map((s) => s.kernel!.id)].sort());
  const t1 = Date.now();
  await okCell(nb, "%sense_stop");
  figures.push(`%sense_stop (4 worker containers): ${Date.now() - t1} ms`);
  expect(await egIds()).toEqual([nb.kernelId]);
  await until("the worker containers to be gone", () => (kernelContainers().length === 1 ? true : undefined), 30_000);
  await okCell(nb, "sock.close();");
  expect(allText(launch.outputs) + allText(answer.outputs)).not.toContain(gw.server.token);
});

test("env reaches container workers before their code; listWorkers from the master and from outside; stopWorkers one, unknown ids, all", async () => {
  const nb = await master();
  const ts = "for (const k of ['FOO', 'SENSE_MASTER_ID', 'SENSE_DASHBOARD_ID', 'SENSE_WORKER_NAME', 'KERNEL_GATEWAY']) console.log(k + '=' + (process.env[k] ?? '<unset>'));";
  const launched = await okCell(
    nb,
    [
      `const tss = await sense.launchWorkers(2, { startTimeoutSeconds: 300, env: { FOO: "bar baz" }, code: ${JSON.stringify(ts)} });`,
      `const jss = await sense.launchWorkers(1, { startTimeoutSeconds: 300, engine: "sense-js", env: { FOO: "qux" }, code: ${JSON.stringify(ts)} });`,
      "const all = [...tss, ...jss];",
      "const done = await sense.awaitWorkers(all, { waitForCompletion: true, timeoutSeconds: 180 });",
      'console.log("RESULT " + JSON.stringify({ failures: done.failures.length, workers: all.map((w) => ({ id: w.id, name: w.name, engine: w.engine, out: sense.workerOutput(w.id) })), listed: (await sense.listWorkers()).map((w) => w.name) }));',
    ].join("\n"),
  );
  type Got = { failures: number; workers: { id: string; name: string; engine: string; out: string }[]; listed: string[] };
  const got = printed<Got>(launched, "RESULT");
  expect(got.failures).toBe(0);
  expect(got.workers.map((w) => [w.name, w.engine])).toEqual([["w1", "sense-ts-small"], ["w2", "sense-ts-small"], ["w3", "sense-js-small"]]);
  expect(got.listed).toEqual(["w1", "w2", "w3"]);
  for (const [i, w] of got.workers.entries()) {
    expect(w.out).toBe([`FOO=${i < 2 ? "bar baz" : "qux"}`, `SENSE_MASTER_ID=${nb.kernelId}`, `SENSE_DASHBOARD_ID=${w.id}`, `SENSE_WORKER_NAME=${w.name}`, "KERNEL_GATEWAY=1", ""].join("\n"));
    expect(kernelContainers(w.id)).toHaveLength(1);
  }
  expect(await egIds()).toEqual([nb.kernelId, ...got.workers.map((w) => w.id)].sort());
  const outside = { endpoint: { baseUrl: gw.server.url, token: gw.server.token }, masterId: nb.kernelId, dashboardId: "outside-client" };
  expect((await listWorkers({ context: outside })).map((w) => [w.name, w.status])).toEqual([["w1", "idle"], ["w2", "idle"], ["w3", "idle"]]);

  const t0 = Date.now();
  const stopped = await okCell(
    nb,
    [
      'const [one] = await sense.stopWorkers("w1");',
      'const refused = await sense.stopWorkers("w2", "nope-1").then(() => "stopped", (e) => e.code);',
      'console.log("STOP " + JSON.stringify({ one: one.status, refused, listed: (await sense.listWorkers()).map((w) => w.name) }));',
    ].join("\n"),
  );
  figures.push(`stopWorkers(1 container worker) + a refused stop + listWorkers: ${Date.now() - t0} ms`);
  expect(printed(stopped, "STOP")).toEqual({ one: "stopped", refused: "unknown_worker", listed: ["w2", "w3"] });
  expect(await egIds()).toEqual([nb.kernelId, got.workers[1].id, got.workers[2].id].sort());
  await until("w1's container to be gone", () => (kernelContainers(got.workers[0].id).length === 0 ? true : undefined), 30_000);
  await okCell(nb, "await sense.stopWorkers();");
  expect(await egIds()).toEqual([nb.kernelId]);
  expect(allText(launched.outputs) + allText(stopped.outputs)).not.toContain(gw.server.token);
});

test("failing container workers: startup code that raises, a process that exits, and workers beyond their small memory limit end failed, the memory ones saying so", async () => {
  const nb = await master();
  const t0 = Date.now();
  const r = await okCell(
    nb,
    [
      "const [raises] = await sense.launchWorkers(1, { startTimeoutSeconds: 300, code: 'throw new Error(\"boom\");' });",
      'const [exits] = await sense.launchWorkers(1, { startTimeoutSeconds: 300, engine: "sense-js", code: "process.exit(3)" });',
      // off the JavaScript heap (Buffers): only the container's memory limit stops it
      'const [buffers] = await sense.launchWorkers(1, { startTimeoutSeconds: 300, engine: "sense-js", size: "small", code: "const keep = []; for (;;) keep.push(Buffer.alloc(64 * 2 ** 20, 1));" });',
      // on the JavaScript heap: V8's limit (75 % of the size's memory) stops it first
      'const [heap] = await sense.launchWorkers(1, { startTimeoutSeconds: 300, engine: "sense-js", size: "small", code: "const keep = []; for (;;) keep.push(new Array(2 ** 20).fill(1.5));" });',
      "const res = await sense.awaitWorkers([raises, exits, buffers, heap], { waitForCompletion: true, timeoutSeconds: 180 });",
      'console.log("FAILED " + JSON.stringify({ ok: res.workers.length, failures: res.failures.map((f) => ({ id: f.id, name: f.name, status: f.status, reason: f.reason })), raisedOutput: sense.workerOutput(raises.id) }));',
    ].join("\n"),
  );
  figures.push(`4 failing container workers reported: ${Date.now() - t0} ms`);
  const got = printed<{ ok: number; failures: { id: string; name: string; status: string; reason: string }[]; raisedOutput: string }>(r, "FAILED");
  figures.push(`memory failures: ${JSON.stringify(got.failures.slice(2).map((f) => f.reason))}`);
  expect(got.ok).toBe(0);
  expect(got.failures).toEqual([
    { id: expect.any(String), name: "w1", status: "failed", reason: expect.stringMatching(/^startup code raised/) },
    { id: expect.any(String), name: "w2", status: "failed", reason: expect.stringContaining("restarted") },
    { id: expect.any(String), name: "w3", status: "failed", reason: expect.stringMatching(/^out of memory: the kernel was killed at its container's memory limit of 2048 MiB/) },
    { id: expect.any(String), name: "w4", status: "failed", reason: expect.stringMatching(/^out of memory: the JavaScript heap reached its limit \(1536 MiB, from the container's memory limit of 2048 MiB\)/) },
  ]);
  expect(got.raisedOutput).toContain("boom");
  expect(allText(r.outputs)).toContain("Sense: worker w3 failed: out of memory");
  // the notes were taken: nothing left in the project's .sense folder for them
  for (const f of got.failures) expect(fs.existsSync(path.join(gw.server.rootDir, ".sense", `exit-${f.id}.json`))).toBe(false);
  await until("EG to drop the ended workers", async () => ((await egIds()).length === 2 ? true : undefined), 60_000);
  expect(await egIds()).toEqual([nb.kernelId, got.failures[0].id].sort());
  await okCell(nb, "await sense.stopWorkers();");
  expect(await egIds()).toEqual([nb.kernelId]);
});

test("a SIGKILLed master container kernel: every worker container of that master is gone within 5 s", async () => {
  const nb = await master();
  const r = await okCell(
    nb,
    [
      'const ws = await sense.launchWorkers(2, { startTimeoutSeconds: 300, engine: "sense-js", watchdog: false });',
      'console.log("MASTER " + JSON.stringify({ pid: process.pid, keeper: sense.keeperPid() ?? null, ids: ws.map((w) => w.id) }));',
    ].join("\n"),
  );
  const m = printed<{ pid: number; keeper: number | null; ids: string[] }>(r, "MASTER");
  expect(m.keeper).toEqual(expect.any(Number));
  for (const id of m.ids) expect(kernelContainers(id)).toHaveLength(1);
  const [masterContainer] = kernelContainers(nb.kernelId);
  const pid = hostPid(masterContainer, m.pid);
  expect(pid).toEqual(expect.any(Number));
  const t0 = Date.now();
  process.kill(pid!, "SIGKILL");
  await until("no worker container and no worker kernel in EG", async () => (m.ids.every((id) => kernelContainers(id).length === 0) && !(await egIds()).some((id) => m.ids.includes(id)) ? true : undefined), 30_000);
  const ms = Date.now() - t0;
  figures.push(`master SIGKILL -> every worker container of that master gone (keeper, 2 sense-js workers): ${ms} ms`);
  expect(ms).toBeLessThan(5_000);
  expect((await rest.listSessions()).filter((s) => s.type === "sense-worker")).toEqual([]);
});
