/**
 * Deno workers (`engine: "deno"`: Deno's own Jupyter kernel, `deno jupyter --kernel`, from the
 * project's .venv) launched by a plain Node master (this jest process), through a real Jupyter
 * Server and with no server (the direct backend): the environment before the TypeScript startup
 * code, labelled output, statuses, `execute`/`map`/`push`/`pull` (Deno's kernel answers no
 * `user_expressions`: values come back as its execute_result), `stopWorkers` one and all, and the
 * watchdog (cleanup layer 3) ending the workers of a SIGKILLed master.
 * After the suite: no session, no kernel, no process left.
 */
import type { ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import { JupyterServer, processesUnder, startJupyterServer } from "../helpers/jupyter";
import { openNotebook, shownText } from "../helpers/kernel";
import { RestClient } from "../../src/jupyter/rest";
import { launchWorkers, listWorkers, stopWorkers, WorkerContextInput } from "../../src/workers";
import { execute, map, pull, push } from "../../src/remote";
import { isRemoteError } from "../../src/errors";
import type { WorkerRecord } from "../../src/jupyter/schemas";
import { buildWorkers } from "../fixtures/workers/build";
import { captureSink, CaptureSink, until } from "../helpers/util";
import { directMachine } from "../helpers/direct-machine";
import { spawnMaster } from "../helpers/master";

/** A /proc file of `pid`, or "" when it has gone. */
function procField(pid: string, name: string): string {
  try {
    return fs.readFileSync(`/proc/${pid}/${name}`, "utf8");
  } catch {
    return "";
  }
}
// TypeScript the Deno kernel strips (an annotation and a non-null assertion): env is loaded before it runs.
const STARTUP = 'const who: string = Deno.env.get("SENSE_WORKER_NAME")!;\nconsole.log("up", who, typeof Deno.version.deno);';

describe("Deno workers through a Jupyter Server", () => {
  let server: JupyterServer;
  let rest: RestClient;
  let context: WorkerContextInput;
  let deno: WorkerRecord[];
  let sink: CaptureSink;
  const children: ChildProcess[] = [];
  const figures: string[] = [];

  beforeAll(async () => {
    server = await startJupyterServer();
    rest = new RestClient({ baseUrl: server.url, token: server.token });
    context = { endpoint: { baseUrl: server.url, token: server.token }, projectHome: server.rootDir, serverRootDir: server.rootDir };
    sink = captureSink();
    deno = await launchWorkers({ n: 3, engine: "deno", code: STARTUP, keeper: false, context, sink });
  });

  afterAll(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    if (context) await stopWorkers({ context });
    if (rest) expect(await rest.listSessions()).toEqual([]);
    const marker = server?.baseDir;
    await server?.stop();
    if (marker) expect(processesUnder(marker)).toEqual([]);
    if (figures.length) console.log(figures.join("\n"));
  });

  it("runs the TypeScript startup code after the environment, its output labelled, and reports statuses", async () => {
    await until("every worker's startup line", () => (deno.every((w) => sink.text().includes(`[${w.name}] up ${w.name} string\n`)) ? true : undefined), 60_000);
    const listed = await listWorkers({ context });
    expect(listed.map((w) => [w.name, w.engine])).toEqual(deno.map((w) => [w.name, "deno"]));
    await until("all idle", async () => ((await listWorkers({ context })).every((w) => w.status === "idle") ? true : undefined), 30_000);
    // Each Deno worker started the watchdog as a bash sentinel, its child (the token on its stdin only).
    for (const w of deno) {
      const kernel = processesUnder(server.baseDir).find((p) => fs.readFileSync(`/proc/${p}/cmdline`, "utf8").includes(`kernel-${w.id}.json`));
      const sentinels = fs.readdirSync("/proc").filter((p) => /^\d+$/.test(p) && procField(p, "stat").split(") ")[1]?.split(" ")[1] === String(kernel) && procField(p, "cmdline").includes("sense-watchdog"));
      expect(sentinels).toHaveLength(1);
      expect(procField(sentinels[0], "cmdline") + procField(sentinels[0], "environ")).not.toContain(server.token);
    }
  });

  it("execute returns values as data (and inexact ones as text), output labelled, errors per worker", async () => {
    const out = captureSink();
    const r = await execute('const n: number = Number(Deno.env.get("SENSE_WORKER_NAME")!.slice(1));\nconsole.log("hi from", n);\n({ n, sq: n * n, list: [1, "two", null] })', { targets: deno, sink: out, context });
    expect(r.map((x) => x.status)).toEqual(["ok", "ok", "ok"]);
    expect(r.map((x) => x.value)).toEqual(deno.map((w) => ({ n: w.index, sq: w.index * w.index, list: [1, "two", null] })));
    for (const w of deno) expect(out.text()).toContain(`[${w.name}] hi from ${w.index}\n`);
    const [m] = await execute("new Map([[1, 2]])", { targets: [deno[0]], sink: out, context });
    expect(m.value).toBe("Map(1) { 1 => 2 }");
    const e = await execute("throw new RangeError('bad ' + 1)", { targets: [deno[1]], sink: out, context }).then(
      () => undefined,
      (x: unknown) => x,
    );
    expect(isRemoteError(e) && e.failures).toEqual([expect.objectContaining({ worker: deno[1].name, ename: "RangeError", evalue: "bad 1" })]);
  });

  it("a timeout interrupts a Deno worker's busy cell (by message: SIGINT would end Deno's kernel) and the worker keeps its state", async () => {
    const out = captureSink();
    await execute("globalThis.kept = 7", { targets: [deno[2]], sink: out, context });
    const [r] = await execute("for (;;) {}", { targets: [deno[2]], sink: out, context, timeoutSeconds: 1.5, raiseOnError: false });
    expect(r.status).toBe("timeout");
    const [after] = await execute("(globalThis as { kept?: number }).kept", { targets: [deno[2]], sink: out, context });
    expect(after).toMatchObject({ status: "ok", value: 7 });
  });

  it("push and pull carry structured values (v8) and map runs a function over items on every worker", async () => {
    const out = captureSink();
    const table = new Map<string, unknown>([["a", 1], ["when", new Date(0)], ["big", 2n ** 70n], ["set", new Set([1, 2])]]);
    await push({ table, k: 3 }, { targets: deno, sink: out, context });
    expect(await pull("table", { targets: deno, sink: out, context })).toEqual([table, table, table]);
    await execute("table.set('who', Deno.env.get('SENSE_WORKER_NAME'))", { targets: deno, sink: out, context });
    expect((await pull(["table", "k"], { targets: [deno[2]], sink: out, context }))[0]).toEqual({ table: new Map([...table, ["who", deno[2].name]]), k: 3 });
    // Many chunks, two in flight per worker: Deno's kernel would give one chunk's answer to the next.
    const items = Array.from({ length: 48 }, (_, i) => ({ i, tags: new Set([i]) }));
    const r = await map((x: { i: number; tags: Set<number> }, index: number) => ({ sq: BigInt(x.i) ** 2n, tag: [...x.tags][0], index, deno: typeof (globalThis as { Deno?: unknown }).Deno }), items, {
      targets: deno,
      sink: out,
      context,
    });
    expect(r).toEqual(items.map((x, i) => ({ sq: BigInt(x.i) ** 2n, tag: x.i, index: i, deno: "object" })));
  });

  it.each([
    ["idle", STARTUP, "1"],
    ["busy (`for (;;) {}`)", "for (;;) {}", "0"],
  ])("the watchdog (layer 3 alone) ends the %s Deno workers of a SIGKILLed plain Node master", async (what, code, wait) => {
    const built = buildWorkers();
    const childEnv: NodeJS.ProcessEnv = { ...process.env };
    for (const k of Object.keys(childEnv)) if (k.startsWith("SENSE_") || k.startsWith("JUPYTER")) delete childEnv[k];
    Object.assign(childEnv, { SENSE_API_URL: server.url, SENSE_API_TOKEN: server.token, SENSE_PROJECT_HOME: server.rootDir, SENSE_KEEPER: "0", MASTER_WORKERS: "2", MASTER_ENGINE: "deno", MASTER_CODE: code, MASTER_WAIT: wait, SENSE_WATCHDOG_INTERVAL_MS: "250" });
    const { child, line } = await spawnMaster(built.index, childEnv, children);
    expect(line).toMatch(/^READY /);
    const ids = (JSON.parse(line.slice("READY ".length)) as { ids: string[] }).ids;
    expect(ids).toHaveLength(2);
    const mine = async () => (await rest.listKernels()).filter((k) => ids.includes(k.id));
    expect(await mine()).toHaveLength(2);
    const t0 = Date.now();
    child.kill("SIGKILL");
    await until("the master's Deno workers gone", async () => ((await mine()).length === 0 ? true : undefined), 20_000);
    await until("their processes gone", () => (ids.every((id) => !processesUnder(server.baseDir).some((p) => fs.existsSync(`/proc/${p}/cmdline`) && fs.readFileSync(`/proc/${p}/cmdline`, "utf8").includes(`kernel-${id}.json`))) ? true : undefined), 20_000);
    figures.push(`plain Node master SIGKILL -> its 2 ${what} Deno workers' kernels and processes gone (watchdog alone): ${Date.now() - t0} ms`);
  });

  it("a Sense TypeScript master launches Deno workers and runs execute and map on them", async () => {
    const nb = await openNotebook(server, "sense-ts");
    try {
      const r = await nb.run(
        [
          'import * as sense from "sense-tslab";',
          'const d = await sense.launchWorkers(2, { engine: "deno", code: ' + JSON.stringify(STARTUP) + " });",
          "await sense.awaitWorkers(d, { waitForCompletion: true, timeoutSeconds: 120 });",
          'const values = (await sense.execute("Deno.env.get(\'SENSE_WORKER_NAME\') + \':\' + typeof Deno.version.deno", { targets: d })).map((x) => x.value);',
          "const doubled = await sense.map((x: number) => x * 2, [1, 2, 3, 4], { targets: d });",
          'console.log("JSON " + JSON.stringify({ names: d.map((w) => w.name), values, doubled }));',
          "await sense.stopWorkers(...d);",
        ].join("\n"),
      );
      expect(r.status).toBe("ok");
      const m = /^JSON (.*)$/m.exec(r.stdout);
      const got = JSON.parse(m ? m[1] : "null") as { names: string[]; values: string[]; doubled: number[] };
      expect(got.values).toEqual(got.names.map((n) => `${n}:string`));
      expect(got.doubled).toEqual([2, 4, 6, 8]);
      for (const n of got.names) expect(shownText(r.outputs)).toContain(`[${n}] up ${n} string\n`);
    } finally {
      await nb.close();
    }
  });

  it("stopWorkers stops one Deno worker, then all", async () => {
    const [one] = await stopWorkers(deno[0], { context });
    expect(one).toMatchObject({ name: deno[0].name, status: "stopped" });
    expect((await listWorkers({ context })).map((w) => w.name)).toEqual([deno[1].name, deno[2].name]);
    const rest2 = await stopWorkers({ context });
    expect(rest2.map((w) => w.status)).toEqual(["stopped", "stopped"]);
    expect(await listWorkers({ context })).toEqual([]);
  });
});

describe("Deno workers with no server (direct backend)", () => {
  // the project's kernelspecs (deno among them) are registered into .venv
  const { context } = directMachine("deno-direct");

  it("launches, runs execute/push/pull/map on, and stops a Deno worker started directly", async () => {
    const sink = captureSink();
    const [w] = await launchWorkers({ n: 1, engine: "deno", code: STARTUP, keeper: false, context, sink });
    await until("the startup line", () => (sink.text().includes(`[${w.name}] up ${w.name} string\n`) ? true : undefined), 60_000);
    const [r] = await execute("6 * 7", { targets: [w], sink, context });
    expect(r).toMatchObject({ status: "ok", value: 42 });
    await push({ s: new Set(["x"]) }, { targets: [w], sink, context });
    expect(await pull("s", { targets: [w], sink, context })).toEqual([new Set(["x"])]);
    expect(await map((x: number) => x + 1, [1, 2, 3], { targets: [w], sink, context })).toEqual([2, 3, 4]);
    // Three workers, many chunks, two in flight per worker: Deno's kernel parents an
    // execute_result to the last request it got, so a chunk would take the one before it's answer.
    const more = await launchWorkers({ n: 2, engine: "deno", keeper: false, context, sink });
    const items = Array.from({ length: 30 }, (_, i) => i);
    expect(await map((x: number) => x * 3, items, { targets: [w, ...more], sink, context })).toEqual(items.map((x) => x * 3));
    expect((await stopWorkers({ context })).map((x) => x.status)).toEqual(["stopped", "stopped", "stopped"]);
  });
});
