/**
 * When a master dies at the worst moment: its workers spinning in a busy loop with the keeper
 * killed first (only the in-kernel watchdog is left to end them), on every Sense JavaScript kernel
 * and on Python. Masters are plain Node processes (test/fixtures/workers/master.js) on a real
 * Jupyter Server; every trial ends with the worker's process and session gone.
 */
import { ChildProcess, spawn } from "node:child_process";
import * as path from "node:path";
import { buildWorkers } from "../fixtures/workers/build";
import { JupyterServer, startJupyterServer, waitForExit } from "../helpers/jupyter";
import { RestClient } from "../../src/rest";
import { stopKeeper } from "../../src/workers";
import { Figures, kernelPids, SecretScan, trace, until } from "./support";

const figures = new Figures("master gone");
const scan = new SecretScan();
let server: JupyterServer;
let rest: RestClient;
let logStart = 0;
const children: ChildProcess[] = [];
const MASTER_JS = path.join(__dirname, "..", "fixtures", "workers", "master.js");

beforeAll(async () => {
  server = await startJupyterServer();
  logStart = server.log().length;
  rest = new RestClient({ baseUrl: server.url, token: server.token });
});

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  await stopKeeper();
  if (server) {
    scan.add("server log", server.log().slice(logStart));
    await server.stop();
  }
  figures.flush();
  expect(scan.leaks(server ? [server.token] : [])).toEqual([]);
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
