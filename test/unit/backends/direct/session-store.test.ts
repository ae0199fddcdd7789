import { fork, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { sessionModelOf, SessionStore, StoredSession } from "../../../../src/backends/direct/session-store";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "sense-store-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

// A pid that is certainly gone: a child that has exited and been reaped.
const deadPid = spawnSync(process.execPath, ["-e", "0"]).pid as number;

function session(id: string, pid = process.pid, ownerPid = process.pid): StoredSession {
  return { id, path: tmp, name: `sense:m1:${id}`, type: "sense-worker", kernel: { id: `k-${id}`, name: "python3" }, pid, ownerPid, connectionFile: path.join(tmp, `kernel-k-${id}.json`), startedAt: new Date(Date.now()).toISOString() };
}

test("sessions are written whole, listed, replaced atomically and removed; the folder is 0700", () => {
  const store = new SessionStore(path.join(tmp, "a"));
  store.put(session("s1"));
  store.put(session("s2"));
  expect(fs.statSync(store.dir).mode & 0o777).toBe(0o700);
  expect(store.list().map((s) => s.id).sort()).toEqual(["s1", "s2"]);
  store.put({ ...session("s1"), name: "sense:m1:retagged" });
  expect(store.get("s1")?.name).toBe("sense:m1:retagged");
  expect(fs.readdirSync(store.dir).filter((n) => n.endsWith(".tmp"))).toEqual([]);
  store.remove("s2");
  expect(store.list().map((s) => s.id)).toEqual(["s1"]);
  // A torn or foreign file is passed over.
  fs.writeFileSync(path.join(store.dir, "junk.json"), "{");
  expect(store.list()).toHaveLength(1);
  expect(sessionModelOf(store.get("s1") as StoredSession)).toMatchObject({ id: "s1", type: "sense-worker", kernel: { id: "k-s1", execution_state: "idle" } });
});

test("a session whose kernel and owner are both gone is pruned; one with a live owner is kept as dead", () => {
  const store = new SessionStore(path.join(tmp, "b"));
  store.put(session("orphan", deadPid, deadPid));
  store.put(session("crashed", deadPid, process.pid));
  expect(store.list().map((s) => s.id)).toEqual(["crashed"]);
  expect(store.get("orphan")).toBeUndefined();
  expect(sessionModelOf(store.get("crashed") as StoredSession).kernel?.execution_state).toBe("dead");
});

test("ids that could leave the folder are refused, and nothing is written", () => {
  const store = new SessionStore(path.join(tmp, "c"));
  expect(() => store.put(session("../evil"))).toThrow();
  expect(() => store.remove("a/b")).toThrow(/unsafe/);
  expect(fs.existsSync(path.join(tmp, "evil.json"))).toBe(false);
});

test("of processes racing for the same claims, exactly one wins each", async () => {

  const mod = path.resolve(__dirname, "../../../../dist/src/backends/direct/session-store.js");
  if (!fs.existsSync(mod)) throw new Error("build first: dist/src/backends/direct/session-store.js is missing");
  const script = path.join(tmp, "claim.js");
  fs.writeFileSync(script, `const { SessionStore } = require(${JSON.stringify(mod)}); const s = new SessionStore(process.argv[2]); const won = []; for (let i = 1; i <= 40; i++) if (s.claim("index:m1:" + i)) won.push(i); process.send(won);`);
  const runs = await Promise.all(
    [0, 1, 2, 3].map(
      () =>
        new Promise<number[]>((resolve, reject) => {
          const c = fork(script, [path.join(tmp, "d")]);
          c.once("message", (m) => resolve(m as number[]));
          c.once("error", reject);
        }),
    ),
  );
  expect(runs.flat().sort((a, b) => a - b)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
});
