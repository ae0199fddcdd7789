/**
 * A plain Node master with no Jupyter Server anywhere (the direct backend chosen automatically):
 * it launches, lists and stops workers, and the three cleanup layers hold: SIGTERM (hooks), the
 * keeper alone after a SIGKILL, and the workers' own watch of their master alone.
 */
import type { ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { DirectKernel, expectOk } from "../support/direct-kernel";
import { SessionStore } from "../../src/backends/direct/session-store";
import { buildWorkers } from "../fixtures/workers/build";
import { REPO, until, processAlive } from "../helpers/util";
import { masterReady, spawnMaster } from "../helpers/master";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "sense-direct-master-"));
const runtimeDir = path.join(tmp, "runtime");
const home = path.join(tmp, "project");
fs.mkdirSync(home);
const store = new SessionStore(runtimeDir);
const children: ChildProcess[] = [];
const figures: string[] = [];
let built: ReturnType<typeof buildWorkers>;

beforeAll(() => {
  built = buildWorkers();
});

afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  // Whatever a failed test left: its kernels' groups go, so nothing outlives the suite.
  for (const s of store.list()) {
    try {
      process.kill(-s.pid, "SIGKILL");
    } catch {
      /* gone */
    }
    store.remove(s.id);
  }
});

afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
  if (figures.length) console.log(figures.join("\n"));
});

async function startMaster(env: Record<string, string>): Promise<{ child: ChildProcess; ids: string[]; keeperPid: number | null; out: () => string; err: () => string }> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env };
  // No server can be found: no SENSE_*/JUPYTER* variables, no JupyterHub, not inside a kernel.
  for (const k of Object.keys(childEnv)) if (k.startsWith("SENSE_") || k.startsWith("JUPYTER") || k.startsWith("JPY_")) delete childEnv[k];
  Object.assign(childEnv, { JUPYTER_PATH: path.join(REPO, ".venv", "share", "jupyter"), JUPYTER_RUNTIME_DIR: runtimeDir, SENSE_PROJECT_HOME: home, SENSE_KEEPER_SCRIPT: built.keeper, ...env });
  const m = await spawnMaster(built.index, childEnv, children, { cwd: home, stdin: "pipe" });
  const data = masterReady(m);
  return { child: m.child, ids: data.ids, keeperPid: data.keeperPid, out: m.out, err: m.err };
}

const workerPids = (ids: string[]) => store.list().filter((s) => ids.includes(s.kernel.id)).map((s) => s.pid);

it("a plain Node script with no server launches, lists and stops workers, and ends with nothing left", async () => {
  const m = await startMaster({ MASTER_WORKERS: "2", MASTER_ENGINE: "python3", MASTER_THEN_STOP: "1" });
  const code = await new Promise<number | null>((resolve) => (m.child.exitCode !== null ? resolve(m.child.exitCode) : m.child.once("exit", resolve)));
  expect(code).toBe(0);
  expect(m.out()).toContain('LISTED [["w1","idle"],["w2","idle"]]');
  expect(m.out()).toContain('STOPPED [["w1","stopped"],["w2","stopped"]]');
  expect(m.out()).toContain("[w1] worker up\n");
  expect(m.out()).toContain("[w2] worker up\n");
  expect(store.list().filter((s) => m.ids.includes(s.kernel.id))).toEqual([]);
});

it("12 workers launched at once: no warning on the master's stderr (each start waits on the launch's one interrupt signal)", async () => {
  const m = await startMaster({ MASTER_WORKERS: "12", MASTER_ENGINE: "sense-fast", MASTER_CODE: "console.log('worker up')", MASTER_THEN_STOP: "1" });
  await new Promise<void>((resolve) => (m.child.exitCode !== null ? resolve() : m.child.once("exit", () => resolve())));
  expect(m.out()).toMatch(/STOPPED \[(\["w\d+","stopped"\],?){12}\]/);
  expect(m.err()).not.toMatch(/MaxListenersExceededWarning|memory leak/);
});

it("a plain Node master with no server launches workers itself; SIGTERM (hooks alone) stops them", async () => {
  const m = await startMaster({ SENSE_KEEPER: "0", SENSE_WATCHDOG: "0", MASTER_WORKERS: "2", MASTER_ENGINE: "python3" });
  expect(m.ids).toHaveLength(2);
  const pids = workerPids(m.ids);
  expect(pids).toHaveLength(2);
  expect(pids.every(processAlive)).toBe(true);
  // The workers' output reached the master's terminal, labelled.
  await until("labelled output", () => (/\[w1\] worker up/.test(m.out()) && /\[w2\] worker up/.test(m.out()) ? true : undefined), 30_000);
  m.child.kill("SIGTERM");
  await until("workers gone after SIGTERM", () => (pids.some(processAlive) || workerPids(m.ids).length ? undefined : true), 15_000);
});

it("the keeper alone: a SIGKILLed master's workers are gone within 2 s, with their session and connection files", async () => {
  const m = await startMaster({ SENSE_WATCHDOG: "0", MASTER_WORKERS: "2", MASTER_ENGINE: "sense-fast", MASTER_CODE: "console.log('worker up')" });
  expect(m.keeperPid).toEqual(expect.any(Number));
  const sessions = store.list().filter((s) => m.ids.includes(s.kernel.id));
  expect(sessions).toHaveLength(2);
  const t0 = Date.now();
  m.child.kill("SIGKILL");
  await until("workers, sessions and connection files gone", () => (sessions.some((s) => processAlive(s.pid) || fs.existsSync(s.connectionFile)) || workerPids(m.ids).length ? undefined : true), 10_000);
  const ms = Date.now() - t0;
  figures.push(`direct backend: master SIGKILL -> zero workers (keeper alone, 2 sense-fast): ${ms} ms`);
  expect(ms).toBeLessThan(2_000);
});

it.each(["python3", "sense-fast"])("the workers' own watch alone (no keeper): %s workers of a SIGKILLed master end themselves", async (engine) => {
  const m = await startMaster({ SENSE_KEEPER: "0", MASTER_WORKERS: "2", MASTER_ENGINE: engine, MASTER_CODE: engine === "python3" ? "print('worker up')" : "console.log('worker up')" });
  const pids = workerPids(m.ids);
  expect(pids).toHaveLength(2);
  const t0 = Date.now();
  m.child.kill("SIGKILL");
  await until("workers exited", () => (pids.some(processAlive) ? undefined : true), 30_000);
  figures.push(`direct backend: master SIGKILL -> ${engine} workers exited (their own parent watch alone): ${Date.now() - t0} ms`);
});

/** A sense-ts master kernel started from its kernelspec with no server, as nbclient, papermill or VS Code start one. */
async function startMasterKernel(): Promise<DirectKernel> {
  const env: Record<string, string> = { JUPYTER_PATH: path.join(REPO, ".venv", "share", "jupyter"), JUPYTER_RUNTIME_DIR: runtimeDir, SENSE_PROJECT_HOME: home, SENSE_KEEPER_SCRIPT: built.keeper };
  const paths = { env: { ...env, JUPYTER_DATA_DIR: path.join(tmp, "data") }, home: tmp, procRoot: "/proc" };
  return DirectKernel.start("sense-ts", { cwd: home, runtimeDir, paths, env, stdio: "ignore" });
}

/** Ms from now until none of the store's sessions of `masterId` (or their processes, or connection files) is left; throws after 10 s. */
async function directCleanupTime(masterId: string, known: ReturnType<SessionStore["list"]>): Promise<number> {
  const t0 = Date.now();
  const mine = () => store.list().filter((s) => s.name.startsWith(`sense:${masterId}:`));
  await until("zero worker sessions, processes and connection files", () => (mine().length || known.some((s) => processAlive(s.pid) || fs.existsSync(s.connectionFile)) ? undefined : true), 10_000);
  return Date.now() - t0;
}

describe("a sense-ts master kernel with no server, SIGKILLed (the keeper alone)", () => {
  const TRIALS = 3;
  const launchCell = (n: number, code: string) =>
    `import * as sense from "sense-tslab";\nconst ws = await sense.launchWorkers(${n}, { engine: "sense-fast", code: ${JSON.stringify(code)} });\nconsole.log("IDS " + JSON.stringify(ws.map((w) => w.id)) + " MASTER " + (await sense.getMaster()).id);`;

  it(`after launch, ${TRIALS} trials: every worker is gone within 2 s`, async () => {
    const times: number[] = [];
    for (let t = 0; t < TRIALS; t++) {
      const k = await startMasterKernel();
      const o = expectOk(await k.execute(launchCell(2, "setInterval(() => undefined, 1000); console.log('up')")));
      const text = o.iopub.filter((m) => m.header.msg_type === "stream").map((m) => String(m.content.text)).join("");
      const m = /IDS (\[.*\]) MASTER (\S+)/.exec(text);
      if (!m) throw new Error(`no IDS line in:\n${text}`);
      const ids = JSON.parse(m[1]) as string[];
      const known = store.list().filter((s) => ids.includes(s.kernel.id));
      expect(known).toHaveLength(2);
      expect(known.every((s) => processAlive(s.pid))).toBe(true);
      process.kill(k.pid, "SIGKILL");
      times.push(await directCleanupTime(m[2], known));
      await k.kill();
    }
    figures.push(`direct backend: sense-ts master kernel SIGKILL after launch (2 sense-fast) -> zero workers, ${TRIALS} trials: ${times.join(", ")} ms`);
    for (const ms of times) expect(ms).toBeLessThanOrEqual(2_000);
  });

  it(`mid-launch, ${TRIALS} trials: workers whose start was in flight go too`, async () => {
    const times: number[] = [];
    for (let t = 0; t < TRIALS; t++) {
      const k = await startMasterKernel();
      const before = new Set(store.list().map((s) => s.id));
      const running = k.execute(launchCell(4, "console.log('up')"));
      running.catch(() => undefined);
      // Killed once the first worker's session exists: the others are being started right now.
      const first = await until("a first worker session", () => store.list().find((s) => !before.has(s.id) && s.type === "sense-worker"), 60_000);
      const masterId = first.name.split(":")[1];
      process.kill(k.pid, "SIGKILL");
      const known = store.list().filter((s) => !before.has(s.id) && s.pid !== k.pid);
      times.push(await directCleanupTime(masterId, known));
      // A start in flight at the kill must not land a kernel after the sweep: watch a while.
      const watchUntil = Date.now() + 2_000;
      await until("the quiet period", () => {
        const late = store.list().filter((s) => !before.has(s.id) && s.pid !== k.pid);
        if (late.length) throw new Error(`worker session(s) ${late.map((s) => s.kernel.id).join(", ")} appeared after the cleanup`);
        return Date.now() >= watchUntil ? true : undefined;
      }, 5_000, 100);
      await k.kill();
    }
    figures.push(`direct backend: sense-ts master kernel SIGKILL mid-launch (4 sense-fast) -> zero workers, ${TRIALS} trials: ${times.join(", ")} ms`);
    for (const ms of times) expect(ms).toBeLessThanOrEqual(2_000);
  });
});
