import { fork } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ClusterRegistry, registryDir, RegistryEntry } from "../../src/direct/registry";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "sense-registry-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function entry(id: string, index: number, status: RegistryEntry["record"]["status"] = "running"): RegistryEntry {
  return {
    record: { id, name: `w${index}`, engine: "python3", size: "small", status, masterId: "m1", startedAt: new Date(0).toISOString(), sessionId: id, path: tmp, index },
    pid: 4242,
  };
}

test("members are written whole, listed by index, replaced atomically and removed; the folder is 0700", () => {
  const reg = new ClusterRegistry(registryDir(tmp, "m1")).ensure();
  expect(fs.statSync(reg.dir).mode & 0o777).toBe(0o700);
  reg.put(entry("k2", 2));
  reg.put(entry("k1", 1));
  reg.putMaster({ ...entry("m1", 0), record: { ...entry("m1", 0).record, masterId: "" } });
  expect(reg.workers().map((e) => e.record.name)).toEqual(["w1", "w2"]);
  reg.put(entry("k1", 1, "idle"));
  expect(reg.workers()[0].record.status).toBe("idle");
  // No temporary file is left beside the records.
  expect(fs.readdirSync(reg.dir).filter((n) => n.endsWith(".tmp"))).toEqual([]);
  reg.remove("k2");
  expect(reg.workers().map((e) => e.record.id)).toEqual(["k1"]);
  expect(reg.master()?.record.id).toBe("m1");
  // A torn or foreign file is passed over, not fatal.
  fs.writeFileSync(path.join(reg.dir, "junk.json"), "{");
  expect(reg.workers()).toHaveLength(1);
  reg.destroy();
  expect(fs.existsSync(reg.dir)).toBe(false);
  expect(reg.workers()).toEqual([]);
});

test("ids that could leave the folder are refused", () => {
  expect(() => registryDir(tmp, "../x")).toThrow(/unsafe/);
  const reg = new ClusterRegistry(registryDir(tmp, "m2")).ensure();
  expect(() => reg.put(entry("../../evil", 1))).toThrow(/unsafe/);
  expect(() => reg.remove("a/b")).toThrow(/unsafe/);
});

test("launch indexes claimed by several processes at once are all different", async () => {
  const reg = new ClusterRegistry(registryDir(tmp, "m3")).ensure();
  const script = path.join(tmp, "claim.js");
  const mod = path.resolve(__dirname, "../../dist/src/direct/registry.js");
  fs.writeFileSync(script, `const { ClusterRegistry } = require(${JSON.stringify(mod)}); const r = new ClusterRegistry(process.argv[2]); const got = []; for (let i = 0; i < 20; i++) got.push(r.claimIndex()); process.send(got);`);
  if (!fs.existsSync(mod)) throw new Error("build first: dist/src/direct/registry.js is missing");
  const runs = await Promise.all(
    [0, 1, 2, 3].map(
      () =>
        new Promise<number[]>((resolve, reject) => {
          const c = fork(script, [reg.dir]);
          c.once("message", (m) => resolve(m as number[]));
          c.once("error", reject);
        }),
    ),
  );
  const all = runs.flat();
  expect(all).toHaveLength(80);
  expect(new Set(all).size).toBe(80);
  expect(Math.max(...all)).toBe(80);
});
