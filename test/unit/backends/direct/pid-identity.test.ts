/**
 * Issue #24 item 9: the direct backend signals `-pid` of another process's kernel only while the
 * pid is still that kernel (its start time, recorded at launch, matches). A session whose pid now
 * belongs to an unrelated process (here: a `sleep` this test starts as its own process group
 * leader, entered in the store with a wrong start time) is treated as gone: its session is
 * removed and the unrelated group is never signalled, by `stop`, `interrupt` or the keeper.
 */
import { ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { DirectBackend } from "../../../../src/backends/direct/backend";
import { kernelState, SessionStore, StoredSession } from "../../../../src/backends/direct/session-store";
import { processStartTime, sameProcess } from "../../../../src/util/pid";
import { cleanUp } from "../../../../src/workers/cleanup/keeper";
import { encodeWorkerTag } from "../../../../src/workers/session-tags";

let tmp: string;
const children: ChildProcess[] = [];

/** An unrelated process that leads its own process group (as a kernel does), alive until the test ends it. */
async function sleeper(): Promise<number> {
  const c = spawn("sleep", ["300"], { detached: true, stdio: "ignore" });
  children.push(c);
  await new Promise<void>((resolve, reject) => c.once("spawn", resolve).once("error", reject));
  return c.pid as number;
}

/**
 * Ends `pid` with SIGTERM and resolves with the signal it died of: SIGTERM when nothing signalled
 * it before, else the earlier signal (a SIGKILL or SIGINT sent first is what it exits with, even
 * if it had not been scheduled yet: no waiting and guessing).
 */
function endedBy(pid: number): Promise<NodeJS.Signals | null> {
  const c = children.find((x) => x.pid === pid)!;
  const exit = exitOf(pid);
  c.kill("SIGTERM");
  return exit;
}

/** Resolves when `pid` has exited (its exit event; a SIGKILLed child is reaped by Node). */
function exitOf(pid: number): Promise<NodeJS.Signals | null> {
  const c = children.find((x) => x.pid === pid)!;
  if (c.exitCode !== null || c.signalCode !== null) return Promise.resolve(c.signalCode);
  return new Promise((resolve) => c.once("exit", (_code, signal) => resolve(signal)));
}

function record(id: string, pid: number, pidStart: string | undefined): StoredSession {
  return {
    id,
    path: `.sense/${id}`,
    name: encodeWorkerTag({ masterId: "m-identity", index: 1, size: "small", startedAtMs: Date.now(), status: "running" }),
    type: "sense-worker",
    kernel: { id: `k-${id}`, name: "python3" },
    pid,
    ...(pidStart !== undefined ? { pidStart } : {}),
    ownerPid: process.pid,
    connectionFile: path.join(tmp, `kernel-k-${id}.json`),
    startedAt: new Date().toISOString(),
  };
}

beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "sense-pid-identity-"));
});
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  fs.rmSync(tmp, { recursive: true, force: true });
});

test("a process's start time is read from /proc (a command name with spaces and ')' included) and tells a reused pid", async () => {
  const pid = await sleeper();
  const start = processStartTime(pid);
  expect(start).toMatch(/^proc:\d+$/);
  expect(sameProcess(pid, start)).toBe(true);
  expect(sameProcess(pid, "proc:1")).toBe(false);
  expect(sameProcess(pid, undefined)).toBe(false);

  const fake = path.join(tmp, "proc");
  fs.mkdirSync(path.join(fake, String(pid)), { recursive: true });
  const fields = ["S", ...Array.from({ length: 18 }, (_, i) => String(i + 4)), "777", "23", "24"];
  fs.writeFileSync(path.join(fake, String(pid), "stat"), `${pid} (a) b (c) ${fields.join(" ")}\n`);
  expect(processStartTime(pid, fake)).toBe("proc:777");
  expect(processStartTime(999_999_999, fake)).toBeUndefined();
});

test.each([
  ["a wrong start time", "proc:1"],
  ["no start time (an older record)", undefined],
])("stop of a session whose pid is an unrelated process group (%s) does not signal it and removes the session", async (_what, pidStart) => {
  const pid = await sleeper();
  const backend = new DirectBackend({ root: tmp, runtimeDir: tmp, stdio: "ignore" });
  backend.store.put(record("s-reused", pid, pidStart));

  await backend.stop("s-reused");
  expect(backend.store.get("s-reused")).toBeUndefined();
  expect(await endedBy(pid)).toBe("SIGTERM");
});

test("interrupt of such a session is not_found and sends no SIGINT", async () => {
  const pid = await sleeper();
  const backend = new DirectBackend({ root: tmp, runtimeDir: tmp, stdio: "ignore" });
  backend.store.put(record("s-int", pid, "proc:1"));
  await expect(backend.interrupt("k-s-int")).rejects.toMatchObject({ code: "not_found" });
  expect(backend.store.get("s-int")).toBeUndefined();
  expect(await endedBy(pid)).toBe("SIGTERM");
});

test("the kernel recorded (start time matching) is still ended by stop", async () => {
  const pid = await sleeper();
  const backend = new DirectBackend({ root: tmp, runtimeDir: tmp, stdio: "ignore" });
  backend.store.put(record("s-same", pid, processStartTime(pid)));
  await backend.stop("s-same");
  expect(await exitOf(pid)).toBe("SIGKILL");
  expect(backend.store.get("s-same")).toBeUndefined();
});

test("listing drops a session whose pid was reused, though its owner lives", async () => {
  const pid = await sleeper();
  const store = new SessionStore(tmp);
  const s = record("s-list", pid, "proc:1");
  expect(kernelState(s)).toBe("reused");
  expect(kernelState({ pid, pidStart: processStartTime(pid) })).toBe("alive");
  store.put(s);
  expect(store.list()).toEqual([]);
  expect(store.get("s-list")).toBeUndefined();
  expect(await endedBy(pid)).toBe("SIGTERM");
});

test("the keeper's direct cleanup never signals a reused pid's group", async () => {
  const reused = await sleeper();
  const mine = await sleeper();
  const store = new SessionStore(tmp);
  store.put(record("s-keep-reused", reused, "proc:1"));
  store.put(record("s-keep-mine", mine, processStartTime(mine)));
  await cleanUp({ baseUrl: "", token: "", masterId: "m-identity", masterPid: process.pid, sessionStore: store.dir }, new Set());
  expect(await exitOf(mine)).toBe("SIGKILL");
  expect(await endedBy(reused)).toBe("SIGTERM");
  expect(fs.readdirSync(store.dir).filter((n) => n.endsWith(".json"))).toEqual([]);
});
