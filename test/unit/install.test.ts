import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { inspect } from "node:util";
import { InstallError, UsageError } from "../../src/errors";
import { InstallEvent, Installer, defaultInstaller, expandFlags, install, onInstalled, validatePackageSpec } from "../../src/platform/npm-install";
import type { OutputSink } from "../../src/display/sink";

describe("expandFlags", () => {
  it("expands to npm's full option names, never a short or abbreviated one", () => {
    expect(expandFlags(["D", "save-exact"])).toEqual(["--save-dev", "--save-exact"]);
    expect(expandFlags(["E", "O", "P", "S", "B", "f", "no-save"])).toEqual(["--save-exact", "--save-optional", "--save-prod", "--save", "--save-bundle", "--force", "--save=false"]);
    expect(expandFlags([], { registry: "https://registry.example/", omit: "dev" })).toEqual(["--registry=https://registry.example/", "--omit=dev"]);
    expect(expandFlags()).toEqual([]);
  });

  it("expands numbers and booleans", () => {
    expect(expandFlags([], { "fetch-retries": 3, "save-exact": true, audit: false, w: "pkg-a", "ignore-scripts": "true" })).toEqual([
      "--fetch-retries=3",
      "--save-exact",
      "--audit=false",
      "--workspace=pkg-a",
      "--ignore-scripts",
    ]);
    // A value is one argv entry after '=': npm reads it as the value, whatever it starts with.
    expect(expandFlags([], { tag: "-g" })).toEqual(["--tag=-g"]);
  });

  it.each([
    ["a flag with dashes", ["--save"], {}],
    ["a flag with a space", ["save exact"], {}],
    ["a flag with '='", ["registry=x"], {}],
    ["an empty flag", [""], {}],
    ["a shell flag", ["x;rm"], {}],
    ["the global flag", ["g"], {}],
    ["the global flag (long)", ["global"], {}],
    ["a prefix argument", [], { prefix: "/tmp/x" }],
    ["a location argument", [], { location: "global" }],
    ["a bad argument key", [], { "-x": "1" }],
    ["a control character in a value", [], { registry: "http://x\nfoo" }],
    ["an empty value", [], { w: "" }],
    ["an object value", [], { registry: {} as unknown as string }],
    ["npm's -C (= --prefix)", [], { C: "/tmp/x" }],
    ["npm's -L (= --location)", [], { L: "global" }],
    ["an abbreviation of prefix", [], { prefi: "/tmp/x" }],
    ["an abbreviation of location", [], { locat: "global" }],
    ["an abbreviation of global", ["glob"], {}],
    ["the local-prefix option", [], { "local-prefix": "/tmp/x" }],
    ["another user config", [], { userconfig: "/tmp/npmrc" }],
    ["another global config", [], { globalconfig: "/tmp/npmrc" }],
    ["a script shell", [], { "script-shell": "/tmp/evil" }],
    ["a cache folder", [], { cache: "/tmp/cache" }],
    ["an option npm does not have (pip's use-mirrors)", ["use-mirrors"], {}],
    ["a value option as a flag", ["registry"], {}],
    ["a boolean given a word", [], { "save-exact": "yes" }],
    ["a number given a word", [], { "fetch-retries": "many" }],
    ["a prototype key", ["__proto__"], {}],
  ])("rejects %s with bad_option", (_label, flags, args) => {
    let caught: unknown;
    try {
      expandFlags(flags as string[], args as Record<string, string>);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(UsageError);
    expect((caught as UsageError).code).toBe("bad_option");
  });
});

describe("validatePackageSpec", () => {
  it.each([
    ["is-number", "is-number"],
    ["is-number@7.0.0", "is-number"],
    ["is-number@^7.0.0", "is-number"],
    ["lodash@~4.17", "lodash"],
    ["lodash@4.x", "lodash"],
    ["react@next", "react"],
    ["left-pad@=1.3.0", "left-pad"],
    ["pkg@1.0.0-beta.1+build.5", "pkg"],
    ["@types/node", "@types/node"],
    ["@types/node@20.19.0", "@types/node"],
    ["JSONStream", "JSONStream"],
    ["lodash.merge", "lodash.merge"],
  ])("accepts %s", (spec, name) => {
    expect(validatePackageSpec(spec)).toBe(name);
  });

  it.each([
    "x; touch /tmp/owned",
    "--registry=http://evil",
    "-g",
    "",
    "a b",
    "a\tb",
    "a\nb",
    "x\u0000y",
    "$(touch /tmp/owned)",
    "`id`",
    "a|b",
    "a&&b",
    "pkg@>=1.0.0",
    "pkg@*",
    "file:../x",
    "git+https://github.com/a/b.git",
    "https://example.com/x.tgz",
    "./local",
    "../x",
    "/abs/path",
    "alias@npm:other",
    "@scope",
    "@/x",
    ".hidden",
    "_under",
    "pkg@",
    "pkg@-1",
    "a".repeat(215),
    "evil.tgz",
    "evil.TGZ",
    "evil.tar",
    "evil.tar.gz",
    "@scope/evil.tgz",
    "pkg@1.0.0.tgz",
    "pkg@evil.tar.gz",
  ])("rejects %j with bad_package", (spec) => {
    let caught: unknown;
    try {
      validatePackageSpec(spec);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(InstallError);
    expect((caught as InstallError).code).toBe("bad_package");
  });

  it("rejects non-strings", () => {
    expect(() => validatePackageSpec(42)).toThrow(expect.objectContaining({ code: "bad_package" }));
    expect(() => validatePackageSpec(undefined)).toThrow(expect.objectContaining({ code: "bad_package" }));
  });
});

/**
 * A fake npm (a Node script run by this Node): records its argv and env, writes to stdout and
 * stderr, then changes the project as a real install would and exits with FAKE_NPM_EXIT.
 * With FAKE_NPM_HANG it prints "waiting" and never exits on its own.
 */
const FAKE_NPM = `
const fs = require("fs"), path = require("path");
fs.writeFileSync(process.env.FAKE_NPM_RECORD, JSON.stringify({ argv: process.argv.slice(2), env: process.env, cwd: process.cwd() }));
process.stdout.write("fake npm: resolving\\n");
if (process.env.FAKE_NPM_HANG) { process.stdout.write("waiting\\n"); setInterval(() => {}, 1000); return; }
const nm = path.join(process.cwd(), "node_modules");
for (const p of ["newpkg", "@newscope/inner", "@oldscope/added", "existing"]) {
  if (fs.existsSync(path.join(nm, p)) && !process.env.FAKE_NPM_TOUCH_EXISTING) continue;
  fs.mkdirSync(path.join(nm, p), { recursive: true });
  fs.writeFileSync(path.join(nm, p, "package.json"), JSON.stringify({ name: p, version: "9.9.9" }));
}
fs.mkdirSync(path.join(nm, ".bin"), { recursive: true });
fs.writeFileSync(path.join(nm, ".bin", "newpkg"), "#!/bin/sh\\n");
fs.writeFileSync(path.join(nm, ".package-lock.json"), "{\\"changed\\":true}");
fs.writeFileSync("package.json", JSON.stringify({ name: "changed", dependencies: { newpkg: "^9.9.9" } }));
fs.writeFileSync("package-lock.json", "{\\"lock\\":\\"changed\\"}");
process.stderr.write("npm warn something\\n");
const code = Number(process.env.FAKE_NPM_EXIT || 0);
if (code) process.stderr.write("npm error code E404\\nnpm error 404 Not Found - GET https://user:" + process.env.FAKE_SECRET + "@registry.example/newpkg\\nnpm error 404\\nnpm error A complete log of this run can be found in: /x.log\\n");
process.exit(code);
`;

/** Every path under `dir` with a hash of its content (or its link target), sorted. */
function treeListing(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      const rel = path.relative(dir, p);
      if (e.isSymbolicLink()) out.push(`${rel} -> ${fs.readlinkSync(p)}`);
      else if (e.isDirectory()) {
        out.push(`${rel}/`);
        walk(p);
      } else out.push(`${rel} ${createHash("sha256").update(fs.readFileSync(p)).digest("hex")}`);
    }
  };
  walk(dir);
  return out.sort();
}

function recordingSink(): OutputSink & { out: string; err: string; waitFor(text: string): Promise<void> } {
  const waiters: { text: string; resolve: () => void }[] = [];
  const sink = {
    out: "",
    err: "",
    stdout(t: string) {
      sink.out += t;
      for (const w of [...waiters]) if (sink.out.includes(w.text)) w.resolve();
    },
    stderr(t: string) {
      sink.err += t;
    },
    display() {
      /* install only streams */
    },
    waitFor(text: string) {
      return new Promise<void>((resolve) => (sink.out.includes(text) ? resolve() : waiters.push({ text, resolve })));
    },
  };
  return sink;
}

describe("install (with a fake npm)", () => {
  let dir: string;
  let home: string;
  let record: string;
  let npmCommand: string[];
  const secret = "sense-secret-token-xyz";
  let env: NodeJS.ProcessEnv;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "sense-install-unit-"));
    home = path.join(dir, "home");
    fs.mkdirSync(home);
    record = path.join(dir, "record.json");
    fs.writeFileSync(path.join(dir, "fake-npm.js"), FAKE_NPM);
    npmCommand = [process.execPath, path.join(dir, "fake-npm.js")];
    env = { PATH: process.env.PATH, FAKE_NPM_RECORD: record, FAKE_SECRET: secret, SENSE_API_TOKEN: secret, JUPYTERHUB_API_TOKEN: secret, npm_config_global: "true" };
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("runs npm install with an argv array in the project home and reports what was added", async () => {
    const sink = recordingSink();
    const events: InstallEvent[] = [];
    const off = onInstalled((e) => void events.push(e));
    try {
      const result = await install(["newpkg@^9", "@newscope/inner"], { cwd: home, flags: ["save-exact"], arguments: { registry: "https://r.example/" }, sink, npmCommand, env });
      const rec = JSON.parse(fs.readFileSync(record, "utf8")) as { argv: string[]; env: NodeJS.ProcessEnv; cwd: string };
      expect(rec.argv).toEqual(["install", "--save-exact", "--registry=https://r.example/", "--global=false", "--location=user", "--", "newpkg@^9", "@newscope/inner"]);
      expect(fs.realpathSync(rec.cwd)).toBe(fs.realpathSync(home));
      // secrets and install-redirecting npm settings never reach npm
      expect(rec.env.SENSE_API_TOKEN).toBeUndefined();
      expect(rec.env.JUPYTERHUB_API_TOKEN).toBeUndefined();
      expect(rec.env.npm_config_global).toBeUndefined();
      expect(result.packages).toEqual(["newpkg@^9", "@newscope/inner"]);
      expect(result.added).toEqual(["@newscope/inner", "@oldscope/added", "existing", "newpkg"]);
      expect(result.versions).toEqual({ newpkg: "9.9.9", "@newscope/inner": "9.9.9" });
      expect(result.durationMs).toBeGreaterThanOrEqual(0);
      expect(result.output).toContain("fake npm: resolving");
      expect(sink.out).toContain("fake npm: resolving");
      expect(sink.err).toContain("npm warn something");
      expect(inspect(result)).toMatch(/^Installed newpkg@9\.9\.9, @newscope\/inner@9\.9\.9 into .* \(4 new top-level packages, \d+\.\d s\)$/);
      expect(events).toHaveLength(1);
      expect(events[0]).toMatchObject({ ok: true, packages: result.packages, cwd: home });
      expect(events[0].result).toBe(result);
    } finally {
      off();
    }
  });

  it("creates a minimal package.json when the project home has none", async () => {
    env.FAKE_NPM_HANG = "";
    const created: unknown[] = [];
    const off = onInstalled(() => {
      created.push(JSON.parse(fs.readFileSync(path.join(home, "package.json"), "utf8")));
    });
    // the fake overwrites package.json; check what existed when it started through its record
    fs.writeFileSync(path.join(dir, "fake-npm.js"), `require("fs").writeFileSync(process.env.FAKE_NPM_RECORD, require("fs").readFileSync("package.json"));`);
    try {
      await install("newpkg", { cwd: home, npmCommand, env, sink: recordingSink() });
    } finally {
      off();
    }
    expect(JSON.parse(fs.readFileSync(record, "utf8"))).toEqual({ name: "sense-project", private: true });
    expect(created).toEqual([{ name: "sense-project", private: true }]);
  });

  it("a failed install leaves package.json, the lock files and node_modules byte for byte as they were", async () => {
    fs.writeFileSync(path.join(home, "package.json"), '{ "name": "mine",\n  "dependencies": { "existing": "1.0.0" } }\n');
    fs.writeFileSync(path.join(home, "package-lock.json"), '{"lock":"original"}');
    fs.mkdirSync(path.join(home, "node_modules", "existing"), { recursive: true });
    fs.writeFileSync(path.join(home, "node_modules", "existing", "index.js"), "module.exports = 1;");
    fs.mkdirSync(path.join(home, "node_modules", "@oldscope", "kept"), { recursive: true });
    fs.mkdirSync(path.join(home, "node_modules", ".bin"), { recursive: true });
    fs.symlinkSync("../existing/index.js", path.join(home, "node_modules", ".bin", "existing"));
    fs.writeFileSync(path.join(home, "node_modules", ".package-lock.json"), '{"hidden":"original"}');
    const before = treeListing(home);

    env.FAKE_NPM_EXIT = "1";
    const events: InstallEvent[] = [];
    const off = onInstalled((e) => void events.push(e));
    let caught: unknown;
    try {
      await install("newpkg", { cwd: home, npmCommand, env, sink: recordingSink() });
    } catch (e) {
      caught = e;
    } finally {
      off();
    }
    expect(caught).toBeInstanceOf(InstallError);
    const err = caught as InstallError;
    expect(err.code).toBe("install_failed");
    expect(err.message).toMatch(/npm exited with code 1/);
    expect(err.message).toContain("npm error code E404");
    expect(err.message).not.toContain("A complete log");
    expect(err.message).not.toContain(secret);
    expect(treeListing(home)).toEqual(before);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ ok: false, error: err });
  });

  it("a failed install names existing packages npm changed in place", async () => {
    fs.mkdirSync(path.join(home, "node_modules", "existing"), { recursive: true });
    fs.writeFileSync(path.join(home, "node_modules", "existing", "package.json"), JSON.stringify({ name: "existing", version: "1.0.0" }));
    env.FAKE_NPM_EXIT = "1";
    env.FAKE_NPM_TOUCH_EXISTING = "1";
    await expect(install("newpkg", { cwd: home, npmCommand, env, sink: recordingSink() })).rejects.toMatchObject({
      code: "install_failed",
      message: expect.stringContaining("except these existing packages npm changed: existing"),
      details: expect.objectContaining({ changed: ["existing"] }),
    });
    expect(fs.readdirSync(path.join(home, "node_modules")).sort()).toEqual(["existing"]);
  });

  it("a failed install into an empty home removes the package.json and node_modules it caused", async () => {
    env.FAKE_NPM_EXIT = "1";
    await expect(install("newpkg", { cwd: home, npmCommand, env, sink: recordingSink() })).rejects.toMatchObject({ code: "install_failed" });
    expect(treeListing(home)).toEqual([]);
  });

  it("aborting kills npm and rolls back", async () => {
    env.FAKE_NPM_HANG = "1";
    const sink = recordingSink();
    const ac = new AbortController();
    const p = install("newpkg", { cwd: home, npmCommand, env, sink, signal: ac.signal });
    await sink.waitFor("waiting");
    ac.abort();
    await expect(p).rejects.toMatchObject({ code: "install_failed", message: expect.stringMatching(/aborted/) });
    expect(treeListing(home)).toEqual([]);
  });

  it("bad input runs nothing and changes nothing", async () => {
    for (const bad of ["x; touch /tmp/owned", "--registry=http://evil", "", "a b"]) {
      await expect(install(bad, { cwd: home, npmCommand, env })).rejects.toMatchObject({ code: "bad_package" });
    }
    await expect(install([], { cwd: home, npmCommand, env })).rejects.toMatchObject({ code: "bad_package" });
    await expect(install("ok-pkg", { cwd: home, npmCommand, env, flags: ["g"] })).rejects.toMatchObject({ code: "bad_option" });
    await expect(install("ok-pkg", { cwd: path.join(home, "missing"), npmCommand, env })).rejects.toMatchObject({ code: "install_failed" });
    expect(fs.existsSync(record)).toBe(false);
    expect(treeListing(home)).toEqual([]);
  });

  it("a listener that throws does not change the outcome", async () => {
    const off = onInstalled(() => {
      throw new Error("listener bug");
    });
    try {
      await expect(install("newpkg", { cwd: home, npmCommand, env, sink: recordingSink() })).resolves.toMatchObject({ packages: ["newpkg"] });
    } finally {
      off();
    }
  });

  it("runs one npm at a time per folder", async () => {
    fs.writeFileSync(
      path.join(dir, "fake-npm.js"),
      `const fs = require("fs"); const f = process.env.FAKE_NPM_RECORD;
       const n = fs.existsSync(f) ? fs.readFileSync(f, "utf8") : "";
       fs.writeFileSync(f, n + "start ");
       setTimeout(() => { fs.appendFileSync(f, "end "); }, 50);`,
    );
    await Promise.all([
      install("a", { cwd: home, npmCommand, env, sink: recordingSink() }),
      install("b", { cwd: home, npmCommand, env, sink: recordingSink() }),
    ]);
    expect(fs.readFileSync(record, "utf8")).toBe("start end start end ");
  });

  it("two Installers do not share listeners; an Installer's own npm, env and home are used when a call gives none", async () => {
    const one = new Installer({ npmCommand, env, projectHome: () => home });
    const two = new Installer({ npmCommand, env, projectHome: () => home });
    const heard: string[] = [];
    const offOne = one.onInstalled((e) => void heard.push(`one:${e.packages.join(",")}`));
    const offTwo = two.onInstalled((e) => void heard.push(`two:${e.packages.join(",")}`));
    const offDefault = onInstalled((e) => void heard.push(`default:${e.packages.join(",")}`));
    try {
      const result = await one.install("newpkg", { sink: recordingSink() });
      expect(fs.realpathSync(result.cwd)).toBe(fs.realpathSync(home));
      const rec = JSON.parse(fs.readFileSync(record, "utf8")) as { env: NodeJS.ProcessEnv };
      // The instance's env reached npm, without its secrets.
      expect(rec.env.FAKE_NPM_RECORD).toBe(record);
      expect(rec.env.SENSE_API_TOKEN).toBeUndefined();
      expect(heard).toEqual(["one:newpkg"]);
      await two.install("other", { sink: recordingSink() });
      expect(heard).toEqual(["one:newpkg", "two:other"]);
      offOne();
      await one.install("third", { sink: recordingSink() });
      expect(heard).toEqual(["one:newpkg", "two:other"]);
      expect(defaultInstaller()).not.toBe(one);
    } finally {
      offOne();
      offTwo();
      offDefault();
    }
  });

  it("a call's options win over its Installer's", async () => {
    const elsewhere = path.join(dir, "elsewhere");
    fs.mkdirSync(elsewhere);
    const installer = new Installer({ npmCommand: ["/nonexistent/npm"], env, projectHome: () => path.join(dir, "missing") });
    const result = await installer.install("newpkg", { cwd: elsewhere, npmCommand, sink: recordingSink() });
    expect(fs.realpathSync(result.cwd)).toBe(fs.realpathSync(elsewhere));
    await expect(installer.install("newpkg", { sink: recordingSink() })).rejects.toMatchObject({ code: "install_failed" });
  });
});
