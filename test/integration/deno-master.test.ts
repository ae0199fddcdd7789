/**
 * A Deno master: Sense imported in Deno's own Jupyter kernel (`import * as sense from
 * "sense-tslab"` in a folder whose package.json and node_modules have the package), started
 * through a real Jupyter Server: context, tables as the last expression, 3 Deno and 2 sense-ts
 * workers with labelled output, `execute`/`map`/`push`/`pull`, the magics, `stopWorkers` one and
 * all; then the cleanup layers when the Deno master kernel is SIGKILLed (three trials, timed) or
 * shut down, and the keeper run by deno where there is no node.
 * After the suite: no session, no kernel, no process left.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { JupyterServer, processesUnder, startJupyterServer, VENV } from "../helpers/jupyter";
import { CellResult, NotebookKernel, openNotebook, shownText } from "../helpers/kernel";
import { RestClient } from "../../src/jupyter/rest";
import { REPO, until } from "../helpers/util";

let server: JupyterServer;
let rest: RestClient;
const notebooks: NotebookKernel[] = [];
const figures: string[] = [];

/** A Deno notebook in the server's root (its package.json and node_modules/sense-tslab). */
async function denoNotebook(): Promise<NotebookKernel> {
  const nb = await openNotebook(server, "deno");
  notebooks.push(nb);
  const r = await cell(nb, 'import * as sense from "sense-tslab";');
  expect(r.status).toBe("ok");
  return nb;
}

/**
 * Runs `code` in `nb` and waits until the kernel has answered one more request: Deno's kernel
 * sends some of a cell's output after its idle (README, "In a Deno notebook").
 */
async function cell(nb: NotebookKernel, code: string): Promise<CellResult> {
  const r = await nb.run(code);
  await nb.settle();
  return r;
}

/** The pid of a kernel's process (its argv names `kernel-<id>.json`). */
function kernelPid(kernelId: string): number {
  const pid = processesUnder(server.baseDir).find((p) => {
    try {
      return fs.readFileSync(`/proc/${p}/cmdline`, "utf8").includes(`kernel-${kernelId}.json`);
    } catch {
      return false;
    }
  });
  if (pid === undefined) throw new Error(`no process for kernel ${kernelId}`);
  return pid;
}

/**
 * The cell's execute_result bundle. Deno's kernel may publish it after its idle status (the
 * cell's reply can come first): wait for it.
 */
async function resultOf(r: CellResult): Promise<Record<string, unknown>> {
  return until("the cell's execute_result", () => {
    const o = r.outputs.find((x) => x.type === "execute_result");
    return o && o.type === "execute_result" ? o.data : undefined;
  });
}

/** The JSON a cell printed on a `JSON <json>` line. */
function printed<T>(r: CellResult): T {
  const m = /^JSON (.*)$/m.exec(r.stdout);
  if (!m) throw new Error(`no JSON line in ${JSON.stringify(r.outputs)}`);
  return JSON.parse(m[1]) as T;
}

/** The text of a cell's outputs (streams, displays at their latest, results, errors). */
function text(r: { outputs: Parameters<typeof shownText>[0] }): string {
  return shownText(r.outputs) + JSON.stringify(r.outputs.filter((o) => o.type === "execute_result" || o.type === "error"));
}

beforeAll(async () => {
  server = await startJupyterServer();
  rest = new RestClient({ baseUrl: server.url, token: server.token });
  fs.writeFileSync(path.join(server.rootDir, "package.json"), JSON.stringify({ name: "deno-project", private: true, dependencies: { "sense-tslab": `file:${REPO}` } }));
  fs.mkdirSync(path.join(server.rootDir, "node_modules"));
  fs.symlinkSync(REPO, path.join(server.rootDir, "node_modules", "sense-tslab"));
});

afterAll(async () => {
  for (const nb of notebooks) await nb.close().catch(() => undefined);
  for (const s of (await rest?.listSessions()) ?? []) await rest.deleteSession(s.id).catch(() => undefined);
  const marker = server?.baseDir;
  await server?.stop();
  if (marker) expect(processesUnder(marker)).toEqual([]);
  if (figures.length) console.log(figures.join("\n"));
});

describe("Sense in a Deno notebook", () => {
  let nb: NotebookKernel;
  beforeAll(async () => {
    nb = await denoNotebook();
  });

  it("knows it runs in Deno and shows the API's results as tables", async () => {
    const ctx = await cell(nb, 'const ctx = sense.getContext();\nconsole.log("JSON " + JSON.stringify([ctx.runtime, ctx.backend, ctx.kernelId]))');
    expect(ctx.status).toBe("ok");
    expect(printed(ctx)).toEqual(["deno", "server", nb.kernelId]);
    const net = await cell(nb, 'sense.getNetwork({ env: { SENSE_PROJECT_IP: "10.1.2.3", SENSE_PORT1: "8080", SENSE_PUBLIC_PORT1: "31000" } })');
    expect(String((await resultOf(net))["text/html"])).toMatch(/<table[\s\S]*10\.1\.2\.3[\s\S]*31000/);
  });

  it("launches 3 Deno and 2 sense-ts workers with labelled output, runs execute/map/push/pull on the Deno ones, shows them with the magic, stops one and all", async () => {
    const launch = await cell(nb, 
      [
        'const deno = await sense.launchWorkers(3, { engine: "deno", code: "const me: string = Deno.env.get(\\"SENSE_WORKER_NAME\\")!;\\nconsole.log(\\"deno up\\", me);" });',
        'const ts = await sense.launchWorkers(2, { engine: "sense-ts", code: "console.log(\\"ts up\\", process.env.SENSE_WORKER_NAME);" });',
        "await sense.awaitWorkers(null, { waitForCompletion: true, timeoutSeconds: 120 });",
        "await sense.listWorkers()",
      ].join("\n"),
    );
    expect(launch.status).toBe("ok");
    const out = text(launch);
    for (const w of ["w1", "w2", "w3"]) expect(out).toContain(`[${w}] deno up ${w}\n`);
    for (const w of ["w4", "w5"]) expect(out).toContain(`[${w}] ts up ${w}\n`);
    // the list, the cell's last expression, is a table
    expect(String((await resultOf(launch))["text/html"])).toMatch(/<table[\s\S]*5 workers/);

    const ex = await cell(nb, 'const rs = await sense.execute("console.log(\\"hi from\\", Deno.env.get(\\"SENSE_WORKER_NAME\\"));\\n6 * 7", { targets: deno });\nconsole.log("JSON " + JSON.stringify(rs.map((r) => r.value)))');
    expect(ex.status).toBe("ok");
    for (const w of ["w1", "w2", "w3"]) expect(text(ex)).toContain(`[${w}] hi from ${w}\n`);
    expect(printed(ex)).toEqual([42, 42, 42]);

    const vals = await cell(nb, 
      [
        'await sense.push({ table: new Map([["k", new Set([1n])]]) }, { targets: deno });',
        'const pulled = await sense.pull("table", { targets: deno });',
        "const mapped = await sense.map((x: number) => x * 2, [1, 2, 3, 4, 5, 6], { targets: deno });",
        'console.log("JSON " + JSON.stringify([pulled.every((t) => t instanceof Map && (t.get("k") as Set<bigint>).has(1n)), mapped]))',
      ].join("\n"),
    );
    expect(vals.status).toBe("ok");
    expect(printed(vals)).toEqual([true, [2, 4, 6, 8, 10, 12]]);

    const magic = await cell(nb, "await sense.magic`%sense_workers`");
    expect(magic.status).toBe("ok");
    expect(shownText(magic.outputs)).toMatch(/5 workers · 5 idle/);

    const stop = await cell(nb, 'const one = await sense.stopWorkers(deno[0]);\nconst all = await sense.stopWorkers();\nconsole.log("JSON " + JSON.stringify([one.map((w) => w.name), all.map((w) => w.status), (await sense.listWorkers()).length]))');
    expect(stop.status).toBe("ok");
    expect(printed(stop)).toEqual([["w1"], ["stopped", "stopped", "stopped", "stopped"], 0]);
  });
});

describe("install from a Deno master", () => {
  it("installs with the npm of the Node on PATH into the project; the next Deno cell and a Deno worker import it", async () => {
    const nb = await denoNotebook();
    const inst = await cell(nb, 'const installed = await sense.install("is-number");\nconsole.log("JSON " + JSON.stringify(installed.versions))');
    expect(inst.status).toBe("ok");
    expect(printed<Record<string, string>>(inst)["is-number"]).toMatch(/^\d+\.\d+\.\d+/);
    const next = await cell(nb, 'import isNumber from "is-number";\nconsole.log("JSON " + JSON.stringify([isNumber(5), isNumber("x")]))');
    expect(next.status).toBe("ok");
    expect(printed(next)).toEqual([true, false]);
    const onWorker = await cell(nb, 
      'const [dw] = await sense.launchWorkers(1, { engine: "deno" });\nconst got = await sense.execute("const { default: isNum } = await import(\\"is-number\\");\\nisNum(3)", { targets: [dw] });\nawait sense.stopWorkers(dw);\nconsole.log("JSON " + JSON.stringify(got.map((r) => r.value)))',
    );
    expect(onWorker.status).toBe("ok");
    expect(printed(onWorker)).toEqual([true]);
    await nb.close();
  });
});

describe("cleanup when the Deno master goes", () => {
  /** Opens a Deno master, launches a Deno and a python3 worker; resolves with their kernel ids. */
  async function masterWithWorkers(): Promise<{ nb: NotebookKernel; ids: string[]; keeperPid: number }> {
    const nb = await denoNotebook();
    const r = await cell(nb, 
      'const a = await sense.launchWorkers(1, { engine: "deno" });\nconst b = await sense.launchWorkers(1, { engine: "python3" });\nconsole.log("JSON " + JSON.stringify({ ids: [...a, ...b].map((w) => w.id), keeper: sense.keeperPid() }))',
    );
    expect(r.status).toBe("ok");
    const got = printed<{ ids: string[]; keeper: number }>(r);
    expect(got.ids).toHaveLength(2);
    return { nb, ids: got.ids, keeperPid: got.keeper };
  }

  const workersGone = async (ids: string[]) => {
    const kernels = (await rest.listKernels()).map((k) => k.id);
    return ids.every((id) => !kernels.includes(id)) && ids.every((id) => !processesUnder(server.baseDir).some((p) => fs.existsSync(`/proc/${p}/cmdline`) && fs.readFileSync(`/proc/${p}/cmdline`, "utf8").includes(`kernel-${id}.json`)));
  };

  it("SIGKILLing the Deno master kernel removes every worker (three trials, timed)", async () => {
    const times: number[] = [];
    for (let trial = 0; trial < 3; trial++) {
      const { nb, ids, keeperPid } = await masterWithWorkers();
      // With node on PATH the keeper runs on node (not on the `node` link to deno that Deno puts on its children's PATH).
      expect(fs.readlinkSync(`/proc/${keeperPid}/exe`)).toBe(fs.realpathSync(process.execPath));
      const t0 = Date.now();
      process.kill(kernelPid(nb.kernelId), "SIGKILL");
      await until("the killed master's workers gone", async () => ((await workersGone(ids)) ? true : undefined), 20_000);
      times.push(Date.now() - t0);
      await nb.close().catch(() => undefined);
    }
    figures.push(`Deno master SIGKILL -> its deno + python3 workers gone (all layers): ${times.join(", ")} ms`);
    for (const t of times) expect(t).toBeLessThan(10_000);
  });

  it("shutting the Deno master kernel down removes its workers", async () => {
    const { nb, ids } = await masterWithWorkers();
    const t0 = Date.now();
    await rest.deleteSession(nb.session.id);
    await until("the shut-down master's workers gone", async () => ((await workersGone(ids)) ? true : undefined), 20_000);
    figures.push(`Deno master shut down -> its workers gone: ${Date.now() - t0} ms`);
  });

  it("restarting the Deno master kernel removes its workers", async () => {
    const { nb, ids } = await masterWithWorkers();
    const t0 = Date.now();
    await rest.restartKernel(nb.kernelId);
    await until("the restarted master's workers gone", async () => ((await workersGone(ids)) ? true : undefined), 20_000);
    figures.push(`Deno master restarted -> its workers gone: ${Date.now() - t0} ms`);
    await nb.close().catch(() => undefined);
  });

  it("where only deno exists, the keeper runs on deno and removes the workers of a SIGKILLed Deno script master", async () => {
    const script = path.join(server.rootDir, "master.ts");
    fs.writeFileSync(
      script,
      'import * as sense from "sense-tslab";\nconst ws = await sense.launchWorkers(2, { engine: "python3", watchdog: false });\nconsole.log("READY " + JSON.stringify({ ids: ws.map((w) => w.id), keeper: sense.keeperPid() }));\nawait new Promise(() => {});\n',
    );
    const env: NodeJS.ProcessEnv = { PATH: `${path.join(VENV, "bin")}:/usr/sbin:/sbin`, HOME: process.env.HOME, DENO_NO_UPDATE_CHECK: "1", SENSE_API_URL: server.url, SENSE_API_TOKEN: server.token, SENSE_PROJECT_HOME: server.rootDir };
    // no node on that PATH (deno is in .venv/bin)
    expect(fs.existsSync(path.join(VENV, "bin", "node"))).toBe(false);
    const child = spawn(path.join(VENV, "bin", "deno"), ["run", "--allow-all", "--no-prompt", script], { cwd: server.rootDir, env, stdio: ["ignore", "pipe", "pipe"] });
    try {
      let out = "";
      child.stderr.on("data", (d: Buffer) => (out += d.toString()));
      const line = await new Promise<string>((resolve, reject) => {
        child.stdout.on("data", (d: Buffer) => {
          out += d.toString();
          const m = /^READY .*$/m.exec(out);
          if (m) resolve(m[0]);
        });
        child.on("exit", (code) => reject(new Error(`master exited (${code}) before READY:\n${out}`)));
      });
      const got = JSON.parse(line.slice("READY ".length)) as { ids: string[]; keeper: number };
      expect(fs.readlinkSync(`/proc/${got.keeper}/exe`)).toBe(fs.realpathSync(path.join(VENV, "bin", "deno")));
      expect(fs.readFileSync(`/proc/${got.keeper}/cmdline`, "utf8") + fs.readFileSync(`/proc/${got.keeper}/environ`, "utf8")).not.toContain(server.token);
      const t0 = Date.now();
      child.kill("SIGKILL");
      await until("the script master's workers gone", async () => ((await workersGone(got.ids)) ? true : undefined), 20_000);
      figures.push(`Deno script master SIGKILL -> 2 python3 workers gone (keeper on deno, no watchdog): ${Date.now() - t0} ms`);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    }
  });
});
