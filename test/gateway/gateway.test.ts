/**
 * Through a real Jupyter Enterprise Gateway (3.3.0, its own .venv-eg, created by
 * scripts/setup-gateway.sh when missing) behind a real Jupyter Server (`--gateway-url`):
 * python3 and sense-ts kernels with output over the proxied websocket, kernel listing
 * (EG_LIST_KERNELS), which env crosses, sized kernelspecs and gatewayInfo from inside a kernel,
 * and the Node EG launcher under EG's DistributedProcessProxy (loopback host, so EG starts it
 * without SSH but with the full launcher contract: encrypted connection info, comm port
 * signals, shutdown). One EG + one server for the whole file.
 *
 * Leak checks: under a gateway the Jupyter Server's process table says nothing (kernels are
 * EG's), so "no kernel left" is EG's own list (GET <eg>/api/kernels) plus, because this EG is
 * local, the processes under EG's temporary folder.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { LocalGateway, startLocalGateway } from "../../harness/local-gateway";
import { processesUnder, waitForExit } from "../helpers/jupyter";
import { egKernels, okCell, printed } from "../helpers/cells";
import { allText, NotebookKernel, openNotebook } from "../helpers/kernel";
import { captureSink, REPO, until } from "../helpers/util";
import { RestClient } from "../../src/jupyter/rest";
import { gatewayInfo } from "../../src/jupyter/gateway";
import { awaitWorkers, launchWorkers, listWorkers, restartWorkers, stopWorkers } from "../../src/workers";
import { execute, gather, map, pull, push, scatter } from "../../src/remote";
import { itemsOf, work } from "../chaos/support";
import { kernelPid } from "../reliability/support";
import { runRequest } from "../../src/workers/request";
import { defaultCluster } from "../../src/workers/api";
import { resolveTargets } from "../../src/workers/targets";

let gw: LocalGateway;
let rest: RestClient;
const open: NotebookKernel[] = [];
const figures: string[] = [];


/**
 * Closes the notebook's websocket, deletes its session and stops the client's pollers (left
 * running, they keep the test process alive after the last test).
 */
async function close(nb: NotebookKernel): Promise<void> {
  await nb.close();
}

beforeAll(async () => {
  const t0 = Date.now();
  gw = await startLocalGateway({
    // debugging (SENSE_GATEWAY_TEST_LOGS): EG at DEBUG level (kernel env is logged with token/password/secret masked)
    egArgs: process.env.SENSE_GATEWAY_TEST_LOGS ? ["--log-level=DEBUG"] : [],
    server: { env: { KERNEL_SENSE_PROBE: "crossed", SENSE_NOT_ALLOWED_PROBE: "stays" } },
  });
  figures.push(`EG + gateway-pointed server up: ${Date.now() - t0} ms`);
  rest = new RestClient({ baseUrl: gw.server.url, token: gw.server.token });
});

afterEach(async () => {
  for (const nb of open.splice(0)) await close(nb);
  await until("EG has no kernels", async () => ((await egKernels(gw)).length === 0 ? true : undefined));
  await until("no kernel processes under EG", () => (processesUnder(gw.egBaseDir).filter((p) => p !== gw.egProcess.pid && p !== gw.server.pid).length === 0 ? true : undefined), 20_000);
});

afterAll(async () => {
  // SENSE_GATEWAY_TEST_LOGS=<folder>: keep EG's and the server's whole logs there (debugging)
  const logs = process.env.SENSE_GATEWAY_TEST_LOGS;
  if (logs && gw) {
    fs.mkdirSync(logs, { recursive: true });
    fs.writeFileSync(path.join(logs, "eg.log"), gw.egLog());
    fs.writeFileSync(path.join(logs, "server.log"), gw.server.log());
  }
  await gw?.stop();
  if (gw) expect(processesUnder(gw.egBaseDir)).toEqual([]);
  if (figures.length) console.log(figures.join("\n"));
});

test("a python3 kernel runs through the gateway; both the server and EG list it; env crosses as documented", async () => {
  const t0 = Date.now();
  const nb = await openNotebook(gw.server, "python3");
  open.push(nb);
  figures.push(`python3 kernel through EG: ${Date.now() - t0} ms to ready`);
  const r = await nb.run("import os, json; print(json.dumps({k: os.environ.get(k) for k in ['KERNEL_SENSE_PROBE', 'SENSE_NOT_ALLOWED_PROBE', 'KERNEL_GATEWAY', 'KERNEL_ID', 'SENSE_API_URL', 'KERNEL_WORKING_DIR']}))\nprint(os.getcwd())");
  expect(r.status).toBe("ok");
  const [envLine, cwd] = r.stdout.trim().split("\n");
  const env = JSON.parse(envLine) as Record<string, string | null>;
  expect(env.KERNEL_SENSE_PROBE).toBe("crossed"); // KERNEL_* always crosses
  expect(env.SENSE_NOT_ALLOWED_PROBE).toBeNull(); // anything else only when allow-listed on both sides
  expect(env.SENSE_API_URL).toBe(gw.server.url); // allow-listed (JUPYTER_GATEWAY_ALLOWED_ENVS + EG_CLIENT_ENVS)
  expect(env.KERNEL_GATEWAY).toBe("1");
  expect(env.KERNEL_ID).toBe(nb.kernelId);
  // The notebook's folder crosses as KERNEL_WORKING_DIR; EG 3.3 applies it only to container
  // kernels (EG_MIRROR_WORKING_DIRS), so a local or SSH kernel starts in EG's own folder.
  expect(env.KERNEL_WORKING_DIR).toBe(gw.server.rootDir);
  expect(cwd).toBe(fs.realpathSync(gw.egBaseDir));
  expect((await egKernels(gw)).map((k) => k.id)).toContain(nb.kernelId);
  expect((await rest.listKernels()).map((k) => k.id)).toContain(nb.kernelId);
  expect(gw.egLog()).not.toContain(gw.server.token);
  expect(gw.server.log()).not.toContain(gw.server.token);
  expect(gw.server.log()).not.toContain(gw.egToken);
});

test("a sized sense-ts kernel gets its KERNEL_CPUS/KERNEL_MEMORY and a V8 heap limit from its memory, and gatewayInfo tells it runs under a gateway", async () => {
  const nb = await openNotebook(gw.server, "sense-ts-medium");
  open.push(nb);
  const r = await nb.run(
    [
      'const sense = require("sense-tslab");',
      "const info = await sense.gatewayInfo(sense.getContext().rest);",
      'const heapMiB = Math.round(require("node:v8").getHeapStatistics().heap_size_limit / 2 ** 20);',
      "console.log(JSON.stringify({ cpus: process.env.KERNEL_CPUS, mem: process.env.KERNEL_MEMORY, heapMiB, gateway: info.gateway, evidence: info.evidence, sized: info.sizedSpecs }));",
    ].join("\n"),
  );
  expect(r.stderr).toBe("");
  const got = JSON.parse(r.stdout.trim()) as { cpus: string; mem: string; heapMiB: number; gateway: boolean; evidence: string[]; sized: Record<string, Record<string, string>> };
  expect(got).toEqual({
    cpus: "2",
    mem: "4096Mi",
    heapMiB: expect.any(Number),
    gateway: true,
    evidence: ["KERNEL_GATEWAY", "process_proxy"], // this EG also serves the launcher kernelspecs
    sized: { "sense-ts": { small: "sense-ts-small", medium: "sense-ts-medium", large: "sense-ts-large" } },
  });
  // the one limit a local kernel gets: V8's heap, 75 % of the size's 4096 MiB (NODE_OPTIONS in the sized kernelspec)
  expect(got.heapMiB).toBeGreaterThanOrEqual(3072);
  expect(got.heapMiB).toBeLessThan(3172);
  // From outside any kernel (a plain Node client) only the process-proxy kernelspecs tell.
  expect(await gatewayInfo(rest, {})).toMatchObject({ gateway: true, evidence: ["process_proxy"] });
  expect((await gatewayInfo(rest, { SENSE_GATEWAY: "0" })).gateway).toBe(false);
});

test("the Node EG launcher starts sense-ts under DistributedProcessProxy: output, interrupt, shutdown", async () => {
  const t0 = Date.now();
  const nb = await openNotebook(gw.server, "sense-ts-distributed");
  open.push(nb);
  figures.push(`sense-ts via the EG launcher: ${Date.now() - t0} ms to ready`);
  const r = await nb.run("console.log(`pid ${process.pid} ppid ${process.ppid}`, 6 * 7)");
  expect(r.status).toBe("ok");
  const m = /pid (\d+) ppid (\d+) 42/.exec(r.stdout);
  expect(m).not.toBeNull();
  const kernelPid = Number(m![1]);
  const launcherPid = Number(m![2]);
  expect(kernelPid).not.toBe(launcherPid);
  // EG launched the launcher, the launcher the kernel, and EG got the launcher's pid back
  expect(gw.egLog()).toMatch(new RegExp(`Kernel launched on '127\\.0\\.0\\.1', pid: ${launcherPid}, ID: ${nb.kernelId}`));
  // interrupt: the server → EG → comm port {"signum": 2} → the launcher, which signals the kernel
  const ti = Date.now();
  await nb.session.kernel!.interrupt();
  const kernelLog = path.join(gw.egBaseDir, "kernel-logs", `kernel-${nb.kernelId}.log`);
  await until("the launcher to get signal 2", () => (fs.readFileSync(kernelLog, "utf8").includes("signal 2 requested") ? true : undefined), 30_000);
  figures.push(`interrupt through EG to the launcher: ${Date.now() - ti} ms`);
  await close(nb);
  open.splice(open.indexOf(nb), 1);
  // the launcher lives exactly as long as the kernel, and both are gone after shutdown
  await until("launcher and kernel exit", () => (processesUnder(nb.kernelId).length === 0 ? true : undefined), 20_000);
});

/**
 * The workers acceptance with every kernel under the gateway: the master is a sense-ts notebook
 * kernel EG started, and so is every worker it launches (through the Jupyter Server, which sends
 * the sessions to EG). What a plain server's process table showed is checked on EG's own list
 * (GET <eg>/api/kernels) and, this EG being local, on the processes under its folder.
 */
describe("workers through the gateway (master and workers are EG kernels)", () => {
  beforeAll(() => {
    // zeromq importable in the project home, as `%sense_install zeromq` would leave it (no registry in tests)
    fs.mkdirSync(path.join(gw.server.rootDir, "node_modules"), { recursive: true });
    fs.symlinkSync(path.join(REPO, "node_modules", "zeromq"), path.join(gw.server.rootDir, "node_modules", "zeromq"));
  });

  /** Opens a sense-ts master notebook through the gateway and loads sense-tslab in it. */
  async function master(): Promise<NotebookKernel> {
    const t0 = Date.now();
    const nb = await openNotebook(gw.server, "sense-ts");
    open.push(nb);
    figures.push(`sense-ts master through EG: ${Date.now() - t0} ms to ready`);
    const r = await nb.run('import * as sense from "sense-tslab";\nconsole.log(process.cwd());');
    expect(r.status).toBe("ok");
    // the kernel moved to the notebook's folder (KERNEL_WORKING_DIR), so the project's packages import
    expect(r.stdout.trim()).toBe(gw.server.rootDir);
    return nb;
  }

  const egIds = async () => (await egKernels(gw)).map((k) => k.id).sort();

  test("the README example over ZeroMQ: 3 sense-ts workers ask, the master answers, their prints arrive labelled in the launching cell", async () => {
    const nb = await master();
    await okCell(nb, ['import * as zmq from "zeromq";', "const sock = new zmq.Reply();", "await sock.bind(`tcp://${sense.networkInfo().projectIp}:*`);", "const address = sock.lastEndpoint!;"].join("\n"));
    const t0 = Date.now();
    const launch = await okCell(
      nb,
      [
        "%%sense_worker -n 3 --size small --env SERVER=$address",
        'import * as zmq from "zeromq";',
        "const sock = new zmq.Request();",
        'console.log("Connecting to master...");',
        "sock.connect(process.env.SERVER!);",
        'await sock.send("Sense is so easy!");',
        "const [reply] = await sock.receive();",
        'console.log("Received reply:", reply.toString());',
      ].join("\n"),
    );
    figures.push(`%%sense_worker -n 3 (sense-ts workers through EG): ${Date.now() - t0} ms`);
    const answer = await okCell(nb, ["for (let i = 0; i < 3; i++) {", "  const [message] = await sock.receive();", '  console.log("Received request:", message.toString());', '  await sock.send("I agree.");', "}"].join("\n"));
    expect(answer.stdout.match(/Received request: Sense is so easy!/g)).toHaveLength(3);
    await okCell(nb, "%sense_await --completion --timeout 120");
    const text = allText(launch.outputs);
    for (const w of ["w1", "w2", "w3"]) {
      expect(text).toContain(`[${w}] Connecting to master...\n`);
      expect(text).toContain(`[${w}] Received reply: I agree.\n`);
    }
    // the three workers are EG kernels next to the master, and the server lists them as worker sessions
    const workers = (await rest.listSessions()).filter((s) => s.type === "sense-worker");
    expect(workers).toHaveLength(3);
    expect(await egIds()).toEqual([nb.kernelId, ...workers.map((s) => s.kernel!.id)].sort());
    const t1 = Date.now();
    await okCell(nb, "%sense_stop");
    figures.push(`%sense_stop (3 sense-ts workers through EG): ${Date.now() - t1} ms`);
    expect(await egIds()).toEqual([nb.kernelId]);
    await okCell(nb, "sock.close();");
    expect(allText(launch.outputs) + allText(answer.outputs)).not.toContain(gw.server.token);
  });

  test("env reaches python3 and sense-ts workers before their code; listWorkers from the master and from outside; stopWorkers one, unknown ids, all", async () => {
    const nb = await master();
    const py = ["import os", "for k in ['FOO', 'SENSE_MASTER_ID', 'SENSE_DASHBOARD_ID', 'SENSE_WORKER_NAME', 'SENSE_API_URL', 'SENSE_PROJECT_HOME', 'KERNEL_GATEWAY']: print(k + '=' + os.environ.get(k, '<unset>'))"].join("\n");
    const ts = "for (const k of ['FOO', 'SENSE_MASTER_ID', 'SENSE_DASHBOARD_ID', 'SENSE_WORKER_NAME', 'KERNEL_GATEWAY']) console.log(k + '=' + (process.env[k] ?? '<unset>'));";
    const launched = await okCell(
      nb,
      [
        `const pys = await sense.launchWorkers(2, { engine: "python3", env: { FOO: "bar baz" }, code: ${JSON.stringify(py)} });`,
        `const tss = await sense.launchWorkers(1, { env: { FOO: "qux" }, code: ${JSON.stringify(ts)} });`,
        "const all = [...pys, ...tss];",
        "const done = await sense.awaitWorkers(all, { waitForCompletion: true, timeoutSeconds: 120 });",
        'console.log("RESULT " + JSON.stringify({ failures: done.failures.length, workers: all.map((w) => ({ id: w.id, name: w.name, engine: w.engine, out: sense.workerOutput(w.id) })), listed: (await sense.listWorkers()).map((w) => w.name) }));',
      ].join("\n"),
    );
    type Got = { failures: number; workers: { id: string; name: string; engine: string; out: string }[]; listed: string[] };
    const got = printed<Got>(launched, "RESULT");
    expect(got.failures).toBe(0);
    // Behind the gateway a small sense-ts worker runs the sized kernelspec sense-ts-small (KERNEL_CPUS/KERNEL_MEMORY
    // in its env); python3 has no sized kernelspecs here, so it stays python3.
    expect(got.workers.map((w) => [w.name, w.engine])).toEqual([["w1", "python3"], ["w2", "python3"], ["w3", "sense-ts-small"]]);
    expect(got.listed).toEqual(["w1", "w2", "w3"]);
    for (const w of got.workers.slice(0, 2)) {
      expect(w.out).toBe(
        [`FOO=bar baz`, `SENSE_MASTER_ID=${nb.kernelId}`, `SENSE_DASHBOARD_ID=${w.id}`, `SENSE_WORKER_NAME=${w.name}`, `SENSE_API_URL=${gw.server.url}`, `SENSE_PROJECT_HOME=${gw.server.rootDir}`, "KERNEL_GATEWAY=1", ""].join("\n"),
      );
    }
    expect(got.workers[2].out).toBe([`FOO=qux`, `SENSE_MASTER_ID=${nb.kernelId}`, `SENSE_DASHBOARD_ID=${got.workers[2].id}`, "SENSE_WORKER_NAME=w3", "KERNEL_GATEWAY=1", ""].join("\n"));
    // every worker is an EG kernel; a process outside the kernels lists the same cluster
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
    figures.push(`stopWorkers(1 python3 worker through EG) + a refused stop + listWorkers: ${Date.now() - t0} ms`);
    expect(printed(stopped, "STOP")).toEqual({ one: "stopped", refused: "unknown_worker", listed: ["w2", "w3"] });
    expect(await egIds()).toEqual([nb.kernelId, got.workers[1].id, got.workers[2].id].sort());
    await okCell(nb, 'const rest = await sense.stopWorkers();\nconsole.log("REST " + JSON.stringify(rest.map((w) => w.status)));');
    expect(await egIds()).toEqual([nb.kernelId]);
    expect(allText(launched.outputs) + allText(stopped.outputs)).not.toContain(gw.server.token);
  });

  test("failing workers are reported failed: startup code that raises, and a worker whose process exits (EG restarts it; Sense deletes it)", async () => {
    const nb = await master();
    const r = await okCell(
      nb,
      [
        "const [raises] = await sense.launchWorkers(1, { code: 'throw new Error(\"boom\");' });",
        'const [exits] = await sense.launchWorkers(1, { engine: "python3", code: "import os; os._exit(3)" });',
        "const res = await sense.awaitWorkers([raises, exits], { waitForCompletion: true, timeoutSeconds: 120 });",
        'console.log("FAILED " + JSON.stringify({ ok: res.workers.length, failures: res.failures.map((f) => ({ id: f.id, name: f.name, status: f.status, reason: f.reason })), raisedOutput: sense.workerOutput(raises.id) }));',
      ].join("\n"),
    );
    const got = printed<{ ok: number; failures: { id: string; name: string; status: string; reason: string }[]; raisedOutput: string }>(r, "FAILED");
    expect(got.ok).toBe(0);
    expect(got.failures).toEqual([
      // tslab's error reply carries no ename/evalue: the error itself is in the worker's output
      { id: expect.any(String), name: "w1", status: "failed", reason: expect.stringMatching(/^startup code raised/) },
      { id: expect.any(String), name: "w2", status: "failed", reason: expect.stringContaining("restarted") },
    ]);
    expect(got.raisedOutput).toContain("boom");
    expect(allText(r.outputs)).toContain("[w1] ");
    expect(allText(r.outputs)).toContain("Sense: worker w2 failed");
    // the exited worker is deleted (EG no longer has it); the one whose code raised stays until stopped
    await until("EG to drop the exited worker", async () => ((await egIds()).includes(got.failures[1].id) ? undefined : true));
    expect(await egIds()).toEqual([nb.kernelId, got.failures[0].id].sort());
    await okCell(nb, "await sense.stopWorkers();");
    expect(await egIds()).toEqual([nb.kernelId]);
  });

  test("a SIGKILLed master: its keeper removes every worker from EG and every worker process", async () => {
    const nb = await master();
    const r = await okCell(
      nb,
      [
        // the watchdog off: the keeper alone (the watchdog is checked on a plain server)
        'const ws = await sense.launchWorkers(2, { engine: "python3", watchdog: false });',
        'console.log("MASTER " + JSON.stringify({ pid: process.pid, keeper: sense.keeperPid() ?? null, ids: ws.map((w) => w.id) }));',
      ].join("\n"),
    );
    const m = printed<{ pid: number; keeper: number | null; ids: string[] }>(r, "MASTER");
    expect(m.keeper).toEqual(expect.any(Number));
    expect(await egIds()).toEqual([nb.kernelId, ...m.ids].sort());
    const cmdline = (pid: number) => {
      try {
        return fs.readFileSync(`/proc/${pid}/cmdline`, "utf8");
      } catch {
        return ""; // exited meanwhile
      }
    };
    const workerProcs = () => processesUnder(gw.egBaseDir).filter((p) => m.ids.some((id) => cmdline(p).includes(id)));
    expect(workerProcs()).toHaveLength(2);
    const t0 = Date.now();
    process.kill(m.pid, "SIGKILL");
    await until("no worker kernel in EG and no worker process", async () => (workerProcs().length === 0 && !(await egIds()).some((id) => m.ids.includes(id)) ? true : undefined), 20_000);
    const ms = Date.now() - t0;
    figures.push(`master SIGKILL -> no worker in EG's list and no worker process (keeper, 2 python3 workers): ${ms} ms`);
    expect(ms).toBeLessThan(5_000);
    expect(await waitForExit(m.keeper!, 5_000)).toBe(true);
    expect((await rest.listSessions()).filter((s) => s.type === "sense-worker")).toEqual([]);
  });
});

describe("lost workers and restart through EG (#23)", () => {
  // From this process (a plain Node master) through the gateway-pointed server: every worker an EG kernel.
  const ctx = () => ({ endpoint: { baseUrl: gw.server.url, token: gw.server.token }, projectHome: gw.server.rootDir, serverRootDir: gw.server.rootDir });
  const items = itemsOf(20_000);
  const expected = items.map(work);

  afterEach(async () => {
    await stopWorkers({ context: ctx() });
  });

  test("a worker SIGKILLed mid-map: the map completes on the others, exact and in order (its extra wall time a figure); restartWorkers brings it back in place and map uses it", async () => {
    const sink = captureSink();
    const ws = await launchWorkers({ n: 3, engine: "sense-ts", keeper: false, context: ctx(), sink, env: { CHAOS_TAG: "tagged" }, code: 'console.log("startup of", process.env.SENSE_WORKER_NAME, "tag", process.env.CHAOS_TAG);' });
    await awaitWorkers(ws, { waitForCompletion: true, timeoutSeconds: 120, context: ctx() });
    const timed = async (during: () => Promise<void>) => {
      const t0 = performance.now();
      const [out] = await Promise.all([map(work, items, { targets: ws, context: ctx(), sink, progress: false }), during()]);
      expect(out.length).toBe(items.length);
      expect(out.findIndex((r, i) => r !== expected[i])).toBe(-1);
      return performance.now() - t0;
    };
    const baseline = await timed(async () => undefined);
    const victim = ws[1];
    let killedAt = 0;
    const t0Loss = performance.now();
    const lossMs = await timed(async () => {
      await new Promise((r) => setTimeout(r, baseline / 3));
      process.kill(kernelPid(victim.id), "SIGKILL");
      killedAt = performance.now() - t0Loss;
    });
    // The kill landed while the map ran (the trial is not vacuous).
    expect(killedAt).toBeGreaterThan(0);
    expect(killedAt).toBeLessThan(lossMs);
    figures.push(`map of ${items.length} items on 3 sense-ts EG workers: ${Math.round(baseline)} ms; one SIGKILLed at a third: ${Math.round(lossMs)} ms (extra ${Math.round(lossMs - baseline)} ms)`);
    // EG restarts the dead kernel; Sense marks the worker failed, with its reason, and deletes it.
    const failed = await until("the killed worker listed failed", async () => (await listWorkers({ context: ctx() })).find((r) => r.name === victim.name && r.status === "failed"), 60_000);
    expect(failed.reason).toMatch(/its kernel/);
    await until("EG to drop the killed worker's kernel", async () => ((await egKernels(gw)).some((k) => k.id === victim.id) ? undefined : true), 30_000);

    const out = captureSink();
    const t0 = Date.now();
    const [back] = await restartWorkers({ context: ctx(), sink: out });
    expect(back).toMatchObject({ name: victim.name, index: victim.index });
    expect(back.id).not.toBe(victim.id);
    await awaitWorkers([back], { waitForCompletion: true, timeoutSeconds: 120, context: ctx() });
    figures.push(`restartWorkers of 1 sense-ts EG worker, until idle: ${Date.now() - t0} ms`);
    // Its env and startup code again (by its output); a fresh EG kernel in its place.
    expect(out.text()).toContain(`[${victim.name}] startup of ${victim.name} tag tagged\n`);
    expect((await egKernels(gw)).map((k) => k.id)).toContain(back.id);
    expect((await listWorkers({ context: ctx() })).map((r) => [r.name, r.status])).toEqual(ws.map((w) => [w.name, "idle"]));
    const got = await map((x: number) => [x, process.env.SENSE_WORKER_NAME], itemsOf(30), { targets: [back], context: ctx(), sink, progress: false });
    expect(got).toEqual(itemsOf(30).map((x) => [x, victim.name]));
  });
});

describe("values of any size through EG (#22)", () => {
  const ctx = () => ({ endpoint: { baseUrl: gw.server.url, token: gw.server.token }, projectHome: gw.server.rootDir, serverRootDir: gw.server.rootDir });
  const MiB = 2 ** 20;

  afterEach(async () => {
    await stopWorkers({ context: ctx() });
  });

  /** 24 MiB pushed, summed, pulled, scattered and gathered on 2 sense-ts EG workers. */
  async function anySize(): Promise<void> {
    const sink = captureSink();
    const ws = await launchWorkers({ n: 2, engine: "sense-ts", keeper: false, context: ctx(), sink });
    await awaitWorkers(ws, { waitForCompletion: true, timeoutSeconds: 120, context: ctx() });
    const value = new Float64Array((24 * MiB) / 8).map((_, i) => i * 0.5 - 7);
    await push({ big: value }, { targets: ws, context: ctx(), sink });
    const sums = await execute("let s = 0; for (const x of big) s += x; [big.length, s]", { targets: ws, context: ctx(), sink });
    let want = 0;
    for (const x of value) want += x;
    expect(sums.map((r) => r.value)).toEqual([[value.length, want], [value.length, want]]);
    const back = (await pull("big", { targets: ws[1], context: ctx(), sink }))[0] as Float64Array;
    // (over the data channel it is made in this test's realm; from a message, in Node's: v8.deserialize)
    expect(Object.prototype.toString.call(back)).toBe("[object Float64Array]");
    expect(Buffer.from(back.buffer, back.byteOffset, back.byteLength).equals(Buffer.from(value.buffer))).toBe(true);
    // An odd length: the first worker gets the extra item.
    const odd = value.subarray(0, value.length - 1);
    await scatter("part", odd, { targets: ws, context: ctx(), sink });
    const lengths = await execute("part.length", { targets: ws, context: ctx(), sink });
    expect(lengths.map((r) => r.value)).toEqual([Math.ceil(odd.length / 2), Math.floor(odd.length / 2)]);
    const joined = (await gather("part", { targets: ws, context: ctx(), sink })) as Float64Array;
    expect(Buffer.from(joined.buffer, joined.byteOffset, joined.byteLength).equals(Buffer.from(odd.buffer, odd.byteOffset, odd.byteLength))).toBe(true);
  }

  test("a 24 MiB value (over the websocket limit) pushed, pulled, scattered and gathered on 2 sense-ts EG workers comes back exact", async () => {
    await anySize();
  });

  // A worker that cannot reach the master's data channel (NAT): pushes go in staged pieces, and
  // answers too (the worker keeps a big answer, the master fetches its pieces). Before, the Jupyter
  // Server's websocket client to EG (10 MiB a message) dropped the pull's reply: it hung for ever.
  test("the same with the data channel off (SENSE_DATA_CHANNEL=messages): answers come back in pieces under EG's websocket limit", async () => {
    process.env.SENSE_DATA_CHANNEL = "messages";
    try {
      await anySize();
    } finally {
      delete process.env.SENSE_DATA_CHANNEL;
    }
  }, 300_000);

  // A reply too big for the server's websocket client to EG, not through the runtime (a raw user
  // expression of 12 MiB): the kernel goes idle and the reply never comes. It ends as ReplyLost,
  // naming why, within the bounded wait after the idle; the worker answers the next request.
  test("a reply dropped on the way to the master ends as ReplyLost soon after its kernel's idle, not a hang", async () => {
    const sink = captureSink();
    const [w] = await launchWorkers({ n: 1, engine: "python3", keeper: false, context: ctx(), sink });
    await awaitWorkers([w], { waitForCompletion: true, timeoutSeconds: 120, context: ctx() });
    const [t] = await resolveTargets(defaultCluster(), [w], ctx());
    const t0 = performance.now();
    const o = await runRequest(t.worker, { code: "", silent: true, storeHistory: false, stopOnError: false, what: "a big reply", reply: "'x' * (12 * 2**20)" }, { sink: null, replyAfterIdleMs: 5_000 });
    const ms = performance.now() - t0;
    expect(o.status).toBe("error");
    expect(o.error).toMatchObject({ ename: "ReplyLost", evalue: expect.stringContaining("its reply did not come within 5 s") });
    expect(ms).toBeLessThan(60_000);
    figures.push(`a 12 MiB reply dropped through EG: ReplyLost after ${Math.round(ms)} ms (bounded wait 5 s after the idle)`);
    const [next] = await execute("6 * 7", { targets: w, context: ctx(), sink });
    expect(next.value).toBe(42);
  }, 120_000);
});
