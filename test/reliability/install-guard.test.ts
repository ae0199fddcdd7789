/**
 * The install guard with the real npm against a fake registry on loopback: options that would
 * move the install (npm's short flags and abbreviations too) and tarball paths are refused before
 * npm runs, and change nothing anywhere; allowed options still install into the project home; an
 * npm network failure keeps the line that says what failed.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { install } from "../../src/platform/npm-install";
import { closedPort, FakeRegistry, packPackage, startFakeRegistry } from "./fake-registry";
import { captureSink, Figures } from "./support";

const figures = new Figures("install guard");
const PKG = "sense-fake-pkg";
let dir: string;
let home: string;
let elsewhere: string;
let globalPrefix: string;
let registry: FakeRegistry;
let tarball: string;
let env: NodeJS.ProcessEnv;
const PKG_JSON = JSON.stringify({ name: "guard-project", version: "1.0.0", private: true }, null, 2) + "\n";

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "sense-install-guard-"));
  home = path.join(dir, "home");
  elsewhere = path.join(dir, "elsewhere");
  globalPrefix = path.join(dir, "global");
  for (const d of [home, elsewhere, globalPrefix]) fs.mkdirSync(d);
  tarball = packPackage(dir, PKG, "1.0.0", "fake value");
  registry = await startFakeRegistry(PKG, "1.0.0", tarball);
  // npm's global prefix, cache and user config live in this test's folder: a guard that fails
  // here installs into a temporary folder, never into the machine's global node_modules.
  const userconfig = path.join(dir, "npmrc");
  fs.writeFileSync(userconfig, `prefix=${globalPrefix}\ncache=${path.join(dir, "cache")}\n`);
  env = { PATH: process.env.PATH, HOME: dir, npm_config_userconfig: userconfig };
});

afterAll(async () => {
  await registry?.close();
  fs.rmSync(dir, { recursive: true, force: true });
  figures.flush();
});

beforeEach(() => {
  fs.rmSync(path.join(home, "node_modules"), { recursive: true, force: true });
  fs.rmSync(path.join(home, "package-lock.json"), { force: true });
  fs.writeFileSync(path.join(home, "package.json"), PKG_JSON);
});

/** Every file under `root` (relative paths), for "nothing changed" checks. */
function tree(root: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      out.push(path.relative(root, p));
      if (e.isDirectory()) walk(p);
    }
  };
  walk(root);
  return out.sort();
}

async function refused(run: () => Promise<unknown>): Promise<{ code?: string; message: string }> {
  const e = await run().then(
    () => undefined,
    (err: unknown) => err as { code?: string; message: string },
  );
  if (!e) throw new Error("the install was not refused");
  return e;
}

it("allowed options (shorthands included) install into the project home from the registry given", async () => {
  const sink = captureSink();
  const result = await install(PKG, { cwd: home, flags: ["D", "E"], arguments: { registry: registry.url, "fetch-retries": 0 }, env, sink });
  expect(result.cwd).toBe(home);
  expect(result.versions).toEqual({ [PKG]: "1.0.0" });
  const pkg = JSON.parse(fs.readFileSync(path.join(home, "package.json"), "utf8")) as { devDependencies?: Record<string, string> };
  expect(pkg.devDependencies).toEqual({ [PKG]: "1.0.0" });
  expect(fs.existsSync(path.join(home, "node_modules", PKG, "index.js"))).toBe(true);
  expect(tree(globalPrefix)).toEqual([]);
  expect(registry.requests).toContain(`/${PKG}`);
});

const HOLES: [string, Record<string, string | boolean>, string[]][] = [
  ["-C (npm's --prefix)", { C: "ELSEWHERE" }, []],
  ["-L global (npm's --location)", { L: "global" }, []],
  ["--prefi (abbreviates --prefix)", { prefi: "ELSEWHERE" }, []],
  ["--locat global (abbreviates --location)", { locat: "global" }, []],
  ["--glob (abbreviates --global)", {}, ["glob"]],
  ["-g", {}, ["g"]],
  ["--local-prefix", { "local-prefix": "ELSEWHERE" }, []],
  ["--userconfig", { userconfig: "ELSEWHERE/npmrc" }, []],
];

it.each(HOLES)("%s is refused before npm runs; nothing is installed anywhere", async (_label, rawArgs, flags) => {
  const args = Object.fromEntries(Object.entries(rawArgs).map(([k, v]) => [k, typeof v === "string" ? v.replace("ELSEWHERE", elsewhere) : v]));
  const before = registry.requests.length;
  const e = await refused(() => install(PKG, { cwd: home, flags, arguments: { ...args, registry: registry.url, "fetch-retries": 0 }, env, sink: captureSink() }));
  expect(e.code).toBe("bad_option");
  expect(e.message).toMatch(/not one install\(\) passes on/);
  expect(registry.requests.length).toBe(before);
  expect(tree(elsewhere)).toEqual([]);
  expect(tree(globalPrefix)).toEqual([]);
  expect(fs.readFileSync(path.join(home, "package.json"), "utf8")).toBe(PKG_JSON);
  expect(fs.existsSync(path.join(home, "node_modules"))).toBe(false);
});

it.each(["evil.tgz", "evil.tar", "evil.tar.gz", `${PKG}@1.0.0.tgz`])("the tarball path %s is refused; package.json keeps no file: entry", async (spec) => {
  // A real tarball at that path: npm would install it.
  fs.copyFileSync(tarball, path.join(home, spec.replace(`${PKG}@`, "")));
  try {
    const e = await refused(() => install(spec, { cwd: home, arguments: { registry: registry.url }, env, sink: captureSink() }));
    expect(e.code).toBe("bad_package");
    expect(e.message).toMatch(/tarball/);
    expect(fs.readFileSync(path.join(home, "package.json"), "utf8")).toBe(PKG_JSON);
    expect(fs.existsSync(path.join(home, "node_modules"))).toBe(false);
  } finally {
    fs.rmSync(path.join(home, spec.replace(`${PKG}@`, "")), { force: true });
  }
});

it("a registry that refuses connections: the error keeps npm's 'request to ... failed' line, not only stack frames", async () => {
  const port = await closedPort();
  const t0 = Date.now();
  const e = await refused(() => install(PKG, { cwd: home, arguments: { registry: `http://127.0.0.1:${port}/`, "fetch-retries": 0 }, env, sink: captureSink() }));
  figures.add("install against a closed registry port -> install_failed", Date.now() - t0, "ms");
  expect(e.code).toBe("install_failed");
  expect(e.message).toContain(`request to http://127.0.0.1:${port}/${PKG} failed`);
  expect(e.message).toMatch(/ECONNREFUSED/);
  expect(e.message).not.toMatch(/^npm error\s+at /m);
  expect(fs.readFileSync(path.join(home, "package.json"), "utf8")).toBe(PKG_JSON);
  figures.add("option holes / tarball specs refused before npm ran", `${HOLES.length} / 4`, "cases", "all, nothing installed anywhere");
});
