/**
 * The Sense kernel over a session's life: packages installed while it runs (from outside the
 * kernel with npm, and with %sense_install) import in the next cell, and shutdown/restart run
 * the lifecycle hooks and end the process promptly.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { isAlive, JupyterServer, startJupyterServer, waitForExit } from "../helpers/jupyter";
import { CellResult, NotebookKernel, openNotebook } from "../helpers/kernel";

let server: JupyterServer;
const open: NotebookKernel[] = [];
const figures: Record<string, number> = {};

beforeAll(async () => {
  server = await startJupyterServer();
});

afterAll(async () => {
  for (const k of open) await k.shutdown();
  await server?.stop();
  console.log(`sense-ts lifecycle figures: ${JSON.stringify(figures)}`);
});

async function notebookIn(folder: string): Promise<NotebookKernel> {
  fs.mkdirSync(path.join(server.rootDir, folder), { recursive: true });
  const k = await openNotebook(server, "sense-ts", `${folder}/nb.ipynb`);
  open.push(k);
  return k;
}

/** npm from outside the kernel, argv array, into `folder` under the server root. */
function npmInstall(folder: string, ...pkgs: string[]): void {
  const r = spawnSync("npm", ["install", "--no-audit", "--no-fund", "--loglevel=error", ...pkgs], {
    cwd: path.join(server.rootDir, folder),
    encoding: "utf8",
    timeout: 120_000,
  });
  if (r.status !== 0) throw new Error(`npm install ${pkgs.join(" ")} failed: ${r.stderr}`);
}

/** The pid of a kernel process, found by its connection file name on the command line. */
function kernelPid(kernelId: string): number {
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (fs.readFileSync(`/proc/${entry}/cmdline`, "utf8").includes(`kernel-${kernelId}.json`)) return Number(entry);
    } catch {
      /* gone */
    }
  }
  throw new Error(`no process for kernel ${kernelId}`);
}

/** The cell succeeded with no stderr and, when given, `result` as its last expression's text/plain. */
function expectOk(r: CellResult, result?: string): void {
  expect({ status: r.status, stderr: r.stderr, error: r.error }).toEqual({ status: "ok", stderr: "", error: undefined });
  if (result !== undefined) expect(r.result).toBe(result);
}

describe("installing packages during a session", () => {
  it("imports packages installed by npm from outside the kernel, with no 'pending rebuildTimer'", async () => {
    const dir = "inst";
    fs.mkdirSync(path.join(server.rootDir, dir), { recursive: true });
    fs.writeFileSync(path.join(server.rootDir, dir, "package.json"), JSON.stringify({ name: "inst", version: "1.0.0", private: true }));
    npmInstall(dir, "ms@2.1.3");
    const nb = await notebookIn(dir);
    expectOk(await nb.run('import ms from "ms";\nconst before: number = 1;\nms(60000)'), "'1m'");

    // Installed while the compiler watches node_modules: the very next cell imports it.
    npmInstall(dir, "is-number@7.0.0");
    expectOk(await nb.run('import isNumber from "is-number";\nisNumber(5) && before === 1'), "true");

    // Another install, then cells keep compiling while TypeScript's watchers catch up (they
    // fire 1-3 s later: stock tslab fails every cell from then on).
    npmInstall(dir, "is-odd@3.0.1");
    const until = Date.now() + 4_000;
    let n = 0;
    while (Date.now() < until) {
      expectOk(await nb.run(`${n} + before`), `${n + 1}`);
      n++;
    }
    expectOk(await nb.run('import isOdd from "is-odd";\nisOdd(3)'), "true");
    // Declarations of earlier cells survived every rebuild, and types are still checked.
    const bad = await nb.run("const s: string = before;");
    expect(bad.status).toBe("error");
    expect(bad.error?.evalue).toMatch(/not assignable to type 'string'/);
    // The kernel did rebuild its compiler (it says so in its own log, the server's output).
    expect(server.log()).toMatch(/sense: rebuilding the node converter \((watcher|node_modules changed|pending rebuildTimer)/);
  });

  it("imports a package installed with %sense_install in the next cell", async () => {
    const dir = "magic-inst";
    fs.mkdirSync(path.join(server.rootDir, dir), { recursive: true });
    fs.writeFileSync(path.join(server.rootDir, dir, "package.json"), JSON.stringify({ name: "magic-inst", version: "1.0.0", private: true }));
    npmInstall(dir, "ms@2.1.3");
    const nb = await notebookIn(dir);
    expectOk(await nb.run('import ms from "ms";\nms(1000)'), "'1s'");
    const inst = await nb.run("%sense_install is-number@7.0.0");
    expect(inst.status).toBe("ok");
    // %sense_install installs into the project home (the server's root), above the notebook's folder.
    expect(fs.existsSync(path.join(server.rootDir, "node_modules", "is-number", "package.json"))).toBe(true);
    expectOk(await nb.run('import isNumber from "is-number";\nisNumber("7")'), "true");
  });
});

describe("shutdown and restart", () => {
  const hookCell = (marker: string) =>
    [
      'const lc = require("sense-tslab/dist/src/lifecycle");',
      'const fs = require("fs");',
      // A live timer keeps Node's event loop busy, as a worker websocket would.
      "setInterval(() => undefined, 1000);",
      `lc.onShutdown(async () => { await new Promise((r) => setTimeout(r, 100)); fs.writeFileSync(${JSON.stringify(marker)}, "hooks ran"); });`,
    ].join("\n");

  it("runs the lifecycle hooks on restart, and the session keeps working", async () => {
    const nb = await notebookIn("restart");
    const marker = path.join(server.baseDir, "restart-hook.txt");
    expectOk(await nb.run(hookCell(marker)));
    const pid = kernelPid(nb.kernelId);
    const t0 = Date.now();
    await nb.session.kernel!.restart();
    expect(await waitForExit(pid, 10_000)).toBe(true);
    figures.restartMs = Date.now() - t0;
    expect(fs.readFileSync(marker, "utf8")).toBe("hooks ran");
    const after = await nb.run("1 + 1");
    expectOk(after, "2");
  });

  it("runs the lifecycle hooks on shutdown, and the process exits promptly", async () => {
    const nb = await notebookIn("shutdown");
    const marker = path.join(server.baseDir, "shutdown-hook.txt");
    expectOk(await nb.run(hookCell(marker)));
    const pid = kernelPid(nb.kernelId);
    expect(isAlive(pid)).toBe(true);
    const t0 = Date.now();
    await nb.shutdown();
    expect(await waitForExit(pid, 10_000)).toBe(true);
    figures.shutdownToExitMs = Date.now() - t0;
    expect(fs.readFileSync(marker, "utf8")).toBe("hooks ran");
    // The test server's shutdown_wait_time is 2 s: Jupyter sends SIGTERM at 1 s. Exiting on our
    // own means well before that (hooks here take ~100 ms).
    expect(figures.shutdownToExitMs).toBeLessThan(1_000);
    // A normal shutdown leaves nothing in the log; no request went unanswered.
    expect(server.log()).not.toMatch(/converter \(closed\)|unknown msg_type|loop ended|send failed/);
  });
});
