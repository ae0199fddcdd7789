/**
 * The package as npm ships it. A fresh copy of the repository (the files git tracks or would
 * track, as a clone has them, with this checkout's node_modules as `npm ci` made them) is packed
 * with `npm pack`, whose `prepack` builds it; the tarball is checked (what ships, what does not,
 * its size), installed into a fresh project, its kernels registered from that install
 * (`npx sense-tslab install --prefix ...`), and a notebook there launches workers with the
 * installed kernels, on a real Jupyter Server.
 */
import { spawnSync, SpawnSyncReturns } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { RestClient } from "../../src/jupyter/rest";
import { JupyterServer, startJupyterServer } from "../helpers/jupyter";
import { allText, NotebookKernel, openNotebook } from "../helpers/kernel";
import { REPO } from "../helpers/util";

const MAX_UNPACKED_BYTES = 1.5 * 1024 * 1024;

interface PackResult {
  filename: string;
  unpackedSize: number;
  files: { path: string; size: number }[];
}

/** Runs a command (argv array, no shell); throws with its output when it fails. */
function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env): SpawnSyncReturns<string> {
  const r = spawnSync(cmd, args, { cwd, env, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (${r.status ?? r.signal}):\n${r.stdout}\n${r.stderr}`);
  return r;
}

/** Copies the files of the checkout that a clone has (tracked, or untracked and not ignored) into `dest`. */
function copyCheckout(dest: string): void {
  const list = run("git", ["ls-files", "-z", "--cached", "--others", "--exclude-standard"], REPO).stdout.split("\0").filter(Boolean);
  for (const rel of list) {
    const from = path.join(REPO, rel);
    if (!fs.existsSync(from)) continue; // deleted in the working tree, not yet committed
    fs.mkdirSync(path.dirname(path.join(dest, rel)), { recursive: true });
    fs.copyFileSync(from, path.join(dest, rel));
  }
  fs.symlinkSync(path.join(REPO, "node_modules"), path.join(dest, "node_modules"), "dir");
  // The panel's build packages (scripts/build-labextension.sh installs them when missing).
  const labModules = path.join(REPO, "labextension", "node_modules");
  if (fs.existsSync(labModules)) fs.symlinkSync(labModules, path.join(dest, "labextension", "node_modules"), "dir");
}

describe("the npm package", () => {
  let tmp: string;
  let pack: PackResult;
  let server: JupyterServer | undefined;
  let nb: NotebookKernel | undefined;

  beforeAll(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "sense-package-"));
    const clone = path.join(tmp, "clone");
    copyCheckout(clone);
    expect(fs.existsSync(path.join(clone, "dist"))).toBe(false);
    // `npm pack` runs `prepack`: the tarball is built from sources, as from a fresh clone after `npm ci`.
    const out = run("npm", ["pack", "--json", "--loglevel=error", "--pack-destination", tmp], clone).stdout;
    pack = (JSON.parse(out.slice(out.indexOf("["))) as PackResult[])[0];
  });
  afterAll(async () => {
    await nb?.shutdown();
    await server?.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("ships the built package, LICENSE and docs only: no tests, CI, bench, harness, sources or source maps; under 1.5 MB unpacked", () => {
    const files = pack.files.map((f) => f.path);
    for (const must of ["package.json", "LICENSE", "README.md", "dist/src/index.js", "dist/src/index.d.ts", "dist/src/cli.js", "dist/src/workers/cleanup/keeper.js", "dist/kernel-extension/kernel.js", "dist/kernel-extension/fast-kernel.js", "dist/labextension/package.json"]) {
      expect(files).toContain(must);
    }
    const unexpected = files.filter((f) => !/^(package\.json|LICENSE|README\.md|docs\/[^/]+\.md|dist\/(src|kernel-extension)\/.+\.(js|d\.ts)|dist\/labextension\/(package\.json|static\/[^/]+\.(js|json)))$/.test(f));
    expect(unexpected).toEqual([]);
    expect(files.filter((f) => /^(test|\.ci|bench|scripts|harness|deploy|python|notebooks)\//.test(f) || f.endsWith(".map"))).toEqual([]);
    expect(pack.unpackedSize).toBeLessThan(MAX_UNPACKED_BYTES);
    const manifest = JSON.parse(fs.readFileSync(path.join(REPO, "package.json"), "utf8")) as { license: string };
    expect(manifest.license).toBe("MIT");
    expect(fs.readFileSync(path.join(REPO, "LICENSE"), "utf8")).toMatch(/^MIT License/);
  });

  it("installs into a fresh project, registers its kernels from that install, and a notebook there launches workers", async () => {
    const project = path.join(tmp, "project");
    const prefix = path.join(tmp, "prefix");
    fs.mkdirSync(project);
    fs.writeFileSync(path.join(project, "package.json"), JSON.stringify({ name: "fresh-project", version: "1.0.0", private: true }));
    run("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error", path.join(tmp, pack.filename)], project);
    const installed = path.join(project, "node_modules", "sense-tslab");
    expect(fs.existsSync(path.join(installed, "dist", "kernel-extension", "kernel.js"))).toBe(true);
    const reg = run("npx", ["--no-install", "sense-tslab", "install", "--prefix", prefix], project);
    expect(reg.stdout).toMatch(/installed sense-ts in /);
    // The Sense panel, registered where JupyterLab loads prebuilt extensions from.
    expect(reg.stdout).toMatch(/installed the JupyterLab panel in /);
    const panel = path.join(prefix, "share", "jupyter", "labextensions", "sense-tslab-panel");
    expect((JSON.parse(fs.readFileSync(path.join(panel, "package.json"), "utf8")) as { name: string }).name).toBe("sense-tslab-panel");
    expect(fs.readdirSync(path.join(panel, "static")).some((f) => f.startsWith("remoteEntry."))).toBe(true);

    // The server finds the kernels of that prefix first (JUPYTER_PATH comes before the project's .venv).
    server = await startJupyterServer({ rootDir: project, env: { JUPYTER_PATH: path.join(prefix, "share", "jupyter") } });
    const rest = new RestClient({ baseUrl: server.url, token: server.token });
    const specs = await rest.kernelspecs();
    for (const name of ["sense-ts", "sense-fast"]) {
      const argv = specs.kernelspecs[name]?.spec.argv ?? [];
      expect(argv[1]).toBe(path.join(fs.realpathSync(installed), "dist", "kernel-extension", name === "sense-ts" ? "kernel.js" : "fast-kernel.js"));
    }

    nb = await openNotebook(server, "sense-ts", "fresh.ipynb");
    let r = await nb.run('require.resolve("sense-tslab")');
    expect(r.status).toBe("ok");
    expect(allText(r.outputs)).toContain(path.join(fs.realpathSync(installed), "dist", "src", "index.js"));
    r = await nb.run('%%sense_worker -n 2 --engine sense-fast\nconsole.log("from the tarball: " + process.env.SENSE_WORKER_NAME);');
    expect(r.status).toBe("ok");
    expect((await nb.run("%sense_await --completion --timeout 60")).status).toBe("ok");
    const text = allText(r.outputs);
    expect(text).toMatch(/\[w1\] from the tarball: w1/);
    expect(text).toMatch(/\[w2\] from the tarball: w2/);
    expect((await nb.run("%sense_stop")).status).toBe("ok");
    expect((await rest.listSessions()).filter((s) => s.type === "sense-worker")).toEqual([]);
  });
});
