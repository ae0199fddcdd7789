import { createHash } from "node:crypto";
import * as fs from "node:fs";
import { createRequire } from "node:module";
import * as path from "node:path";
import { InstallError } from "../../src/errors";
import { install } from "../../src/platform/npm-install";
import type { OutputSink } from "../../src/display/sink";
import { JupyterServer, processesUnder, startJupyterServer } from "../helpers/jupyter";
import { NotebookKernel, openNotebook } from "../helpers/kernel";
import { DIST, ensureBuilt, pyRunNode } from "../helpers/util";

/** package.json, the lock file and everything under node_modules, each with a content hash. */
function projectState(dir: string): string[] {
  const out: string[] = [];
  const visit = (p: string) => {
    const rel = path.relative(dir, p);
    const st = fs.lstatSync(p);
    if (st.isSymbolicLink()) out.push(`${rel} -> ${fs.readlinkSync(p)}`);
    else if (st.isDirectory()) {
      out.push(`${rel}/`);
      for (const e of fs.readdirSync(p)) visit(path.join(p, e));
    } else out.push(`${rel} ${createHash("sha256").update(fs.readFileSync(p)).digest("hex")}`);
  };
  for (const top of ["package.json", "package-lock.json", "node_modules"]) {
    if (fs.existsSync(path.join(dir, top))) visit(path.join(dir, top));
  }
  return out.sort();
}

function collectingSink(): OutputSink & { text: string } {
  const sink = {
    text: "",
    stdout: (t: string) => void (sink.text += t),
    stderr: (t: string) => void (sink.text += t),
    display: () => undefined,
  };
  return sink;
}

describe("install into a real project home", () => {
  let server: JupyterServer;
  const notebooks: NotebookKernel[] = [];
  beforeAll(async () => {
    ensureBuilt(["platform/npm-install", "jupyter/context", "errors", "jupyter/rest", "jupyter/schemas"]);
    server = await startJupyterServer();
  });
  afterAll(async () => {
    for (const nb of notebooks) await nb.shutdown();
    await server?.stop();
  });

  it("installs from inside a kernel into the server's root; this process and a new kernel can require it", async () => {
    const nb = await openNotebook(server, "python3");
    notebooks.push(nb);
    // No cwd: the project home is discovered from the kernel (the server's root_dir).
    const script = `
      const { install } = require(${JSON.stringify(path.join(DIST, "platform", "npm-install.js"))});
      const { getContext } = require(${JSON.stringify(path.join(DIST, "jupyter", "context.js"))});
      install("is-number").then((r) => {
        const isNumber = require("module").createRequire(require("path").join(getContext().projectHome, "x.js"))("is-number");
        console.log("RESULT " + JSON.stringify({ cwd: r.cwd, versions: r.versions, added: r.added, printed: require("util").inspect(r), works: isNumber(5) && !isNumber("x") }));
      }, (e) => { console.log("FAILED " + e.code + " " + e.message); process.exitCode = 1; });
    `;
    const r = await nb.run(pyRunNode(script));
    expect(r.stdout).toContain("EXIT 0");
    const line = r.stdout.split("\n").find((l) => l.startsWith("RESULT "));
    expect(line).toBeDefined();
    const res = JSON.parse(line!.slice("RESULT ".length)) as { cwd: string; versions: Record<string, string>; added: string[]; printed: string; works: boolean };
    expect(fs.realpathSync(res.cwd)).toBe(fs.realpathSync(server.rootDir));
    expect(res.versions["is-number"]).toMatch(/^\d+\.\d+\.\d+/);
    expect(res.added).toEqual(["is-number"]);
    expect(res.printed).toMatch(/^Installed is-number@\d+\.\d+\.\d+ into /);
    expect(res.works).toBe(true);
    // npm's progress was streamed (here: into the child's stdout, which the kernel echoed)
    expect(r.stdout).toMatch(/added 1 package/);
    expect(JSON.parse(fs.readFileSync(path.join(server.rootDir, "package.json"), "utf8"))).toMatchObject({ name: "sense-project", private: true, dependencies: { "is-number": expect.any(String) } });

    // this (test) process, with no restart
    const isNumber = createRequire(path.join(server.rootDir, "x.js"))("is-number") as (v: unknown) => boolean;
    expect(isNumber(42)).toBe(true);

    // a kernel started afterwards
    const nb2 = await openNotebook(server, "python3");
    notebooks.push(nb2);
    const r2 = await nb2.run(pyRunNode(`console.log("REQUIRED " + require("is-number")(7))`));
    expect(r2.stdout).toContain("REQUIRED true");
    expect(r2.stdout).toContain("EXIT 0");
  });

  it("a package that does not exist fails with install_failed and changes nothing", async () => {
    const before = projectState(server.rootDir);
    expect(before).toContain("node_modules/is-number/");
    const sink = collectingSink();
    let caught: unknown;
    try {
      await install("this-package-does-not-exist-sense-xyz", { cwd: server.rootDir, sink });
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(InstallError);
    const err = caught as InstallError;
    expect(err.code).toBe("install_failed");
    expect(err.message).toMatch(/E404/);
    expect(err.message).not.toContain(server.token);
    expect(sink.text).toMatch(/npm error/);
    expect(projectState(server.rootDir)).toEqual(before);
  });

  it("a failed install into a fresh folder leaves it empty", async () => {
    const fresh = fs.mkdtempSync(path.join(server.baseDir, "fresh-"));
    await expect(install("this-package-does-not-exist-sense-xyz", { cwd: fresh, sink: collectingSink() })).rejects.toMatchObject({ code: "install_failed" });
    expect(fs.readdirSync(fresh)).toEqual([]);
  });

  it("leaves no kernel process behind", async () => {
    for (const nb of notebooks.splice(0)) await nb.shutdown();
    expect(processesUnder(server.baseDir).filter((p) => p !== server.pid)).toEqual([]);
  });
});
