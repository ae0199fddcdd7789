/**
 * When a master dies at the worst moment: SIGKILLed the moment a worker's env file appears (no
 * file with the token may exist, or stay, under the project or runtime folders); its workers
 * spinning in a busy loop with the keeper killed first (only the in-kernel watchdog is left to end
 * them), on every Sense JavaScript kernel and on Python. Masters are plain Node processes (test/fixtures/workers/master.js) on a real
 * Jupyter Server; every trial ends with the worker's process and session gone.
 */
import { ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { buildWorkers } from "../fixtures/workers/build";
import { JupyterServer, waitForExit } from "../helpers/jupyter";
import type { RestClient } from "../../src/jupyter/rest";
import { launchWorkers, stopKeeper, stopWorkers } from "../../src/workers";
import { captureSink, FAST_ENGINE, Figures, kernelPids, SecretScan, trace, until } from "./support";
import { scannedServer } from "../helpers/scanned-server";

const figures = new Figures("master gone");
const scan = new SecretScan();
let server: JupyterServer;
let rest: RestClient;
const children: ChildProcess[] = [];
const MASTER_JS = path.join(__dirname, "..", "fixtures", "workers", "master.js");

scannedServer({
  scan,
  figures,
  started: (s, r) => {
    server = s;
    rest = r;
  },
  cleanup: async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    await stopKeeper();
  },
});

/** A plain Node master launching `n` workers of `engine` running `code`; resolves with what it printed on READY. */
async function startMaster(engine: string, code: string, extra: Record<string, string> = {}): Promise<{ child: ChildProcess; ids: string[]; keeperPid: number | null; out: () => string }> {
  const built = buildWorkers();
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    SENSE_API_URL: server.url,
    SENSE_API_TOKEN: server.token,
    SENSE_PROJECT_HOME: server.rootDir,
    SENSE_KEEPER_SCRIPT: built.keeper,
    MASTER_ENGINE: engine,
    MASTER_WORKERS: "1",
    MASTER_CODE: code,
    MASTER_WAIT: "0",
    ...extra,
  };
  const child = spawn(process.execPath, [MASTER_JS, built.index], { env, stdio: ["ignore", "pipe", "pipe"] });
  children.push(child);
  let out = "";
  child.stdout?.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (out += d.toString()));
  const ready = await until("READY from the master", () => (/^READY (.*)$/m.exec(out)?.[1] ?? (child.exitCode !== null ? `EXIT ${child.exitCode} ${out}` : undefined)), 90_000, 50);
  if (ready.startsWith("EXIT")) throw new Error(`the master failed: ${ready}`);
  const r = JSON.parse(ready) as { ids: string[]; keeperPid: number | null };
  return { child, ids: r.ids, keeperPid: r.keeperPid, out: () => out };
}

const BUSY: [string, string][] = [
  ["sense-fast", "for (;;) {}"],
  ["sense-ts", "for (;;) {}"],
  ["sense-js", "for (;;) {}"],
  ["python3", "while True:\n    pass"],
];

describe("a worker in a busy loop, keeper killed, then master killed", () => {
  it.each(BUSY)("%s: the watchdog ends the worker's process and session", async (engine, code) => {
    const m = await startMaster(engine, code);
    const [id] = m.ids;
    // The worker runs the busy loop now (its kernel reports busy, and keeps burning CPU).
    await until("the worker kernel to be busy", async () => ((await rest.getKernel(id)).execution_state === "busy" ? true : undefined), 60_000, 100);
    expect(kernelPids([id])).toHaveLength(1);
    expect(m.keeperPid).toBeGreaterThan(0);
    process.kill(m.keeperPid!, "SIGKILL");
    await waitForExit(m.keeperPid!, 10_000);
    trace(`${engine}: keeper killed, killing the master`);
    const t0 = Date.now();
    m.child.kill("SIGKILL");
    await until(`the busy ${engine} worker's process to end`, () => (kernelPids([id]).length === 0 ? true : undefined), 60_000, 100);
    const ms = Date.now() - t0;
    await until("its session to be gone", async () => ((await rest.listSessions()).some((s) => s.kernel?.id === id) ? undefined : true), 30_000, 100);
    figures.add(`busy ${engine} worker, keeper then master SIGKILLed -> worker process gone`, ms, "ms", "<= 15000 (was: never, for JS kernels)");
    expect(ms).toBeLessThanOrEqual(15_000);
    scan.add(`${engine} master output`, m.out());
  });
});

describe("a stopped master (SIGSTOP), by design (docs/reliability.md, \"A stopped master\")", () => {
  it("keeps its workers while stopped and after SIGCONT; killed while stopped, its workers go", async () => {
    const m = await startMaster(FAST_ENGINE, "console.log('up')");
    const [id] = m.ids;
    const master = m.child.pid!;
    expect(m.keeperPid).toBeGreaterThan(0);
    process.kill(master, "SIGSTOP");
    try {
      // Not a wait for something to happen: the check is that nothing does, over 5 s = 50 polls
      // of the keeper (100 ms) and 5 of the worker's watchdog (1 s).
      const watchUntil = Date.now() + 5_000;
      let looks = 0;
      while (Date.now() < watchUntil) {
        expect(kernelPids([id])).toHaveLength(1);
        expect((await rest.listSessions()).some((s) => s.kernel?.id === id)).toBe(true);
        looks++;
        await new Promise((r) => setTimeout(r, 250));
      }
      expect(looks).toBeGreaterThan(5);
      process.kill(master, "SIGCONT");
      expect(m.child.exitCode).toBeNull();
      process.kill(master, "SIGSTOP");
    } catch (e) {
      process.kill(master, "SIGCONT");
      throw e;
    }
    // The way out: kill the master (SIGKILL ends a stopped process); the keeper then cleans up.
    const t0 = Date.now();
    m.child.kill("SIGKILL");
    await until("the stopped master's worker process to end", () => (kernelPids([id]).length === 0 ? true : undefined), 30_000, 100);
    await until("its session to be gone", async () => ((await rest.listSessions()).some((s) => s.kernel?.id === id) ? undefined : true), 30_000, 100);
    figures.add("stopped master: worker kept 5 s; master SIGKILLed while stopped -> worker gone", Date.now() - t0, "ms", "<= 15000");
    scan.add("stopped master output", m.out());
  });
});

/** Every file under `root` holding `secret` (Jupyter's own jpserver-* files hold the token by design). */
function filesHolding(root: string, secret: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && !/^jpserver-/.test(e.name)) {
        try {
          if (fs.readFileSync(p).includes(secret)) out.push(p);
        } catch {
          /* removed while we looked */
        }
      }
    }
  };
  walk(root);
  return out;
}

const envFiles = (dir: string) => (fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.startsWith("env-")) : []);

/** Starts a master and SIGKILLs it the moment its first env file appears; returns what the file held then. */
async function killAtEnvFile(extra: Record<string, string>): Promise<{ held: Buffer[]; masterPid: number }> {
  const dir = path.join(server.rootDir, ".sense");
  fs.mkdirSync(dir, { recursive: true });
  const held: Buffer[] = [];
  const built = buildWorkers();
  // The watch starts right after the spawn, long before the master (loading its modules, creating a session) writes.
  const child = spawn(process.execPath, [MASTER_JS, built.index], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, SENSE_API_URL: server.url, SENSE_API_TOKEN: server.token, SENSE_PROJECT_HOME: server.rootDir, SENSE_KEEPER_SCRIPT: built.keeper, MASTER_ENGINE: "sense-ts", MASTER_WORKERS: "2", MASTER_CODE: "console.log('up')", MASTER_WAIT: "0", ...extra },
    stdio: ["ignore", "ignore", "ignore"],
  });
  children.push(child);
  let killed = false;
  const watcher = fs.watch(dir, () => {
    const found = envFiles(dir);
    if (killed || !found.length) return;
    killed = true;
    child.kill("SIGKILL");
    watcher.close();
    for (const f of found) {
      try {
        held.push(fs.readFileSync(path.join(dir, f)));
      } catch {
        /* already gone */
      }
    }
  });
  try {
    await until("an env file to appear and the master to be killed", () => (killed ? true : child.exitCode !== null ? Promise.reject(new Error("the master exited before writing an env file")) : undefined), 90_000, 20);
  } finally {
    watcher.close();
  }
  return { held, masterPid: child.pid! };
}

/** Deletes every session (workers a killed keeper-less master left half-started) and waits for their processes. */
async function deleteAllSessions(): Promise<void> {
  const sessions = await rest.listSessions();
  const ids = sessions.map((s) => s.kernel?.id ?? "").filter(Boolean);
  for (const s of sessions) await rest.deleteSession(s.id).catch(() => undefined);
  await until("the left workers' processes to end", () => (kernelPids(ids).length === 0 ? true : undefined), 30_000, 100);
}

describe("master SIGKILLed the moment a worker's env file appears", () => {
  it("the file never holds the token, and the keeper removes it within seconds", async () => {
    const { held } = await killAtEnvFile({});
    expect(held.length).toBeGreaterThan(0);
    for (const bytes of held) expect(bytes.includes(server.token)).toBe(false);
    const t0 = Date.now();
    await until("no env file under the project", () => (envFiles(path.join(server.rootDir, ".sense")).length === 0 ? true : undefined), 10_000, 50);
    figures.add("master SIGKILLed at env file creation -> env file removed (keeper)", Date.now() - t0, "ms", "<= 10000; the file never held the token");
    expect(filesHolding(server.rootDir, server.token)).toEqual([]);
    expect(filesHolding(server.runtimeDir, server.token)).toEqual([]);
    // The keeper removes the half-started workers too.
    await until("no worker session", async () => ((await rest.listSessions()).length === 0 ? true : undefined), 30_000, 100);
  });

  it("without a keeper the file still holds no token, and the next launch sweeps it", async () => {
    const { held, masterPid } = await killAtEnvFile({ SENSE_KEEPER: "0" });
    for (const bytes of held) expect(bytes.includes(server.token)).toBe(false);
    await waitForExit(masterPid, 10_000);
    expect(filesHolding(server.rootDir, server.token)).toEqual([]);
    expect(filesHolding(server.runtimeDir, server.token)).toEqual([]);
    const context = { endpoint: { baseUrl: server.url, token: server.token }, projectHome: server.rootDir, serverRootDir: server.rootDir, dashboardId: `process-sweep-${process.pid}` };
    const ws = await launchWorkers(1, { engine: FAST_ENGINE, code: "", keeper: false, sink: captureSink(), context });
    expect(envFiles(path.join(server.rootDir, ".sense"))).toEqual([]);
    figures.add("master without keeper SIGKILLed at env file creation -> file swept by the next launch", "yes", "", "no token in any file at any time");
    await stopWorkers(...ws.map((w) => w.id), { context });
    await deleteAllSessions();
  });
});
