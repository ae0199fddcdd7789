/**
 * The Sense panel's pieces that run outside a browser: its session-tag reader agrees with the
 * package's tag grammar (src/workers/session-tags.ts), and `sense-tslab install` / `uninstall`
 * put the prebuilt extension into `labextensions/` and take only it away.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { decodeWorkerTag as panelWorkerTag, poolMasterId } from "../../labextension/src/tags";
import { addMasterWorkers, clustersOf, possibleMasters, stopRoute } from "../../labextension/src/model";
import { decodePoolTag, decodeWorkerTag, encodePoolTag, encodeWorkerTag } from "../../src/workers/session-tags";
import { installLabextension, LABEXTENSION_NAME, labextensionsDirBeside, uninstallLabextension } from "../../src/labextension";
import { commands } from "../../src/cli";

describe("the panel's tag reader", () => {
  it("reads every tag the package writes, and refuses what the package refuses", () => {
    for (const status of ["starting", "running", "idle", "failed", "stopped"] as const) {
      for (const size of ["small", "medium", "large"] as const) {
        const tag = { masterId: "8d4f-a_b.c", index: 12, size, startedAtMs: 1_700_000_000_123, status };
        expect(panelWorkerTag(encodeWorkerTag(tag))).toEqual(tag);
      }
    }
    expect(poolMasterId(encodePoolTag({ masterId: "m-1", engine: "sense-fast", size: "large", startedAtMs: 5 }))).toBe("m-1");
    const names = ["sense:m:1:small:5:running", "sense:m:1:huge:5:running", "sense:m:x:small:5:idle", "sense:m:1:small:5:bogus", "sense:m:1:small:5", "sense:m/x:1:small:5:idle", "notebook.ipynb", "", "sense-pool:m:e:small:1", "sense-pool:m:e:tiny:1", "sense-pool:m:e:small:x"];
    for (const n of names) {
      expect(panelWorkerTag(n) !== null).toBe(decodeWorkerTag(n) !== null);
      expect(poolMasterId(n)).toBe(decodePoolTag(n)?.masterId ?? null);
    }
  });
});

describe("the panel's failed workers (from their masters)", () => {
  const kernel = (id: string, name: string) => ({ id, name, execution_state: "idle", last_activity: "", connections: 1 });
  const sessions = [
    { id: "nb", path: "a.ipynb", name: "a.ipynb", type: "notebook", kernel: kernel("m1", "sense-js") },
    { id: "nb2", path: "b.ipynb", name: "b.ipynb", type: "notebook", kernel: kernel("m2", "sense-ts") },
    { id: "py", path: "c.ipynb", name: "c.ipynb", type: "notebook", kernel: kernel("p", "python3") },
    { id: "s1", path: ".sense-worker-1", name: encodeWorkerTag({ masterId: "m1", index: 1, size: "small", startedAtMs: 1, status: "idle" }), type: "sense-worker", kernel: kernel("k1", "sense-fast") },
    { id: "s3", path: ".sense-worker-3", name: encodeWorkerTag({ masterId: "m1", index: 3, size: "small", startedAtMs: 1, status: "failed" }), type: "sense-worker", kernel: kernel("k3", "sense-fast") },
  ];
  const failed = (name: string, kernelId: string) => ({ name, kernelId, engine: "sense-fast", size: "small", status: "failed", reason: `${name} was killed`, startedAtMs: 1, restartable: true });

  it("asks every Sense notebook or console kernel (not workers, not other languages)", () => {
    expect(possibleMasters(sessions as never)).toEqual([
      { id: "m1", name: "sense-js" },
      { id: "m2", name: "sense-ts" },
    ]);
  });

  it("adds a failed worker whose session is gone in index order, a reason to a row it names, and a cluster whose workers all failed", () => {
    const clusters = clustersOf(sessions as never);
    addMasterWorkers(clusters, sessions as never, "m1", [failed("w2", "k2"), failed("w3", "k3"), failed("w1", "old-k1")]);
    expect(clusters[0].workers.map((w) => [w.name, w.status, w.reason ?? "", !!w.gone])).toEqual([
      ["w1", "idle", "", false], // a session holds w1 (restarted): it is the truth
      ["w2", "failed", "w2 was killed", true],
      ["w3", "failed", "w3 was killed", false],
    ]);
    addMasterWorkers(clusters, sessions as never, "m2", [failed("w1", "gone")]);
    expect(clusters[1]).toMatchObject({ masterId: "m2", master: { path: "b.ipynb", kernelName: "sense-ts" }, workers: [{ name: "w1", status: "failed", gone: true }] });
    addMasterWorkers(clusters, sessions as never, "m3", []);
    expect(clusters).toHaveLength(2);
  });
});

describe("installing the panel", () => {
  let tmp: string;
  beforeEach(() => (tmp = fs.mkdtempSync(path.join(os.tmpdir(), "sense-labext-"))));
  afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

  function fakeBuild(): string {
    const src = path.join(tmp, "build");
    fs.mkdirSync(path.join(src, "static"), { recursive: true });
    fs.writeFileSync(path.join(src, "package.json"), JSON.stringify({ name: LABEXTENSION_NAME }));
    fs.writeFileSync(path.join(src, "static", "remoteEntry.1.js"), "// entry");
    return src;
  }

  it("copies the build into labextensions/ beside kernels/, replacing an older copy, and uninstall removes it", () => {
    const dir = labextensionsDirBeside(path.join(tmp, "share", "jupyter", "kernels"));
    expect(dir).toBe(path.join(tmp, "share", "jupyter", "labextensions"));
    const src = fakeBuild();
    fs.mkdirSync(path.join(dir, LABEXTENSION_NAME, "static"), { recursive: true });
    fs.writeFileSync(path.join(dir, LABEXTENSION_NAME, "package.json"), JSON.stringify({ name: LABEXTENSION_NAME }));
    fs.writeFileSync(path.join(dir, LABEXTENSION_NAME, "static", "old.js"), "");
    expect(installLabextension(dir, src)).toEqual({ dir: path.join(dir, LABEXTENSION_NAME), changed: true });
    expect(fs.readdirSync(path.join(dir, LABEXTENSION_NAME, "static"))).toEqual(["remoteEntry.1.js"]);
    expect(fs.readdirSync(dir)).toEqual([LABEXTENSION_NAME]); // no temporary folder left
    expect(uninstallLabextension(dir).changed).toBe(true);
    expect(fs.existsSync(path.join(dir, LABEXTENSION_NAME))).toBe(false);
    expect(uninstallLabextension(dir).changed).toBe(false);
  });

  it("leaves a foreign folder of the same name alone, and installs nothing without a build", () => {
    const dir = path.join(tmp, "labextensions");
    fs.mkdirSync(path.join(dir, LABEXTENSION_NAME), { recursive: true });
    fs.writeFileSync(path.join(dir, LABEXTENSION_NAME, "package.json"), JSON.stringify({ name: "someone-else" }));
    expect(uninstallLabextension(dir).changed).toBe(false);
    expect(fs.existsSync(path.join(dir, LABEXTENSION_NAME, "package.json"))).toBe(true);
    expect(installLabextension(path.join(tmp, "other"), path.join(tmp, "no-build")).changed).toBe(false);
    expect(fs.existsSync(path.join(tmp, "other"))).toBe(false);
  });

  it("sense-tslab install --prefix registers kernels and panel; uninstall removes both", async () => {
    const prefix = path.join(tmp, "prefix");
    let out = "";
    const io = { out: (t: string) => void (out += t), err: (t: string) => void (out += t) };
    expect(await commands.install.run(["--prefix", prefix], io as never)).toBe(0);
    const panel = path.join(prefix, "share", "jupyter", "labextensions", LABEXTENSION_NAME);
    expect(out).toContain(`installed the JupyterLab panel in ${panel}`);
    expect(fs.existsSync(path.join(panel, "package.json"))).toBe(true);
    out = "";
    expect(await commands.uninstall.run(["--prefix", prefix], io as never)).toBe(0);
    expect(out).toContain(`removed the JupyterLab panel from ${panel}`);
    expect(fs.existsSync(panel)).toBe(false);
  });
});

describe("how the panel stops a worker", () => {
  const master = { sessionId: "nb", path: "a.ipynb", kernelName: "sense-ts", executionState: "idle" };
  it("a failed worker goes to its master even while its session still exists (its master is deleting the lost kernel); others by their session", () => {
    // Deleting a failed worker's session from the panel left its master's record `failed` for ever,
    // and the row with it, once the master's own delete of the lost kernel was done.
    expect(stopRoute({ master }, { status: "failed", gone: false, restartable: true })).toBe("master");
    expect(stopRoute({ master }, { status: "failed", gone: true, restartable: true })).toBe("master");
    expect(stopRoute({ master }, { status: "idle" })).toBe("session");
    expect(stopRoute({ master }, { status: "running", gone: false, restartable: true })).toBe("session");
    // A failed worker its master did not report (it does not hold it), or whose master is no kernel
    // here (headless), cannot be stopped by asking: its session is deleted.
    expect(stopRoute({ master }, { status: "failed", gone: false })).toBe("session");
    expect(stopRoute({}, { status: "failed", gone: false, restartable: true })).toBe("session");
    expect(stopRoute({}, { status: "failed", gone: true })).toBe("master");
  });
});
