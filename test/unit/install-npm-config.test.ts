/**
 * The install guard checked against npm's own config parser (nopt with npm's definitions, through
 * @npmcli/config, from the npm install() runs) and npm's own spec parser (npm-package-arg): what
 * install() passes on can never move the install, make it global or load other config files, and
 * every spec it accepts is a registry spec to npm.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { expandFlags, NPM_INSTALL_OPTIONS, NPM_SHORTHANDS, npmInstallArgv, validatePackageSpec } from "../../src/platform/npm-install";

const NPM = fs.realpathSync(path.join(path.dirname(process.execPath), "..", "lib", "node_modules", "npm"));
interface NpmConfig {
  load(): Promise<void>;
  localPrefix: string;
  data: Map<string, { data: Record<string, unknown> }>;
  parsedArgv: { remain: string[] };
}
type ConfigCtor = new (o: Record<string, unknown>) => NpmConfig;
/* eslint-disable @typescript-eslint/no-require-imports */
const Config = require(path.join(NPM, "node_modules", "@npmcli", "config")) as ConfigCtor;
const defs = require(path.join(NPM, "node_modules", "@npmcli", "config", "lib", "definitions")) as { definitions: Record<string, { short?: string | string[] }>; shorthands: Record<string, string[]>; flatten: unknown };
const npa = require(path.join(NPM, "node_modules", "npm-package-arg")) as (spec: string, where?: string) => { type: string; name: string | null };
/* eslint-enable @typescript-eslint/no-require-imports */

let home: string;
let project: string;
beforeAll(() => {
  home = fs.mkdtempSync(path.join(os.tmpdir(), "sense-npmconfig-"));
  project = path.join(home, "project");
  fs.mkdirSync(project);
  fs.writeFileSync(path.join(project, "package.json"), "{}");
});
afterAll(() => fs.rmSync(home, { recursive: true, force: true }));

/** What npm makes of `argv` (after `npm`): the command-line settings, the local prefix, the positionals. */
async function npmReads(argv: string[]): Promise<{ cli: Record<string, unknown>; localPrefix: string; remain: string[] }> {
  const c = new Config({ ...defs, npmPath: NPM, argv: [process.execPath, "npm", ...argv], env: { HOME: home }, cwd: project, platform: process.platform, execPath: process.execPath });
  await c.load();
  return { cli: { ...c.data.get("cli")!.data }, localPrefix: c.localPrefix, remain: c.parsedArgv.remain };
}

const SAMPLE: Record<"boolean" | "string" | "number", string | number | boolean> = { boolean: true, string: "dev", number: 2 };
// Values npm's types accept (an invalid one is dropped by npm, which would hide what is checked).
const VALUES: Record<string, string> = { registry: "http://127.0.0.1:1/", before: "2020-01-01", "install-strategy": "hoisted", loglevel: "warn", tag: "latest", "save-prefix": "~", workspace: "a" };

describe("install() options, as npm's config parser reads them", () => {
  it("the trial's holes (-C, -L, prefi, locat) are real to npm and refused here", async () => {
    // What the old pass-through produced: npm moves the install or turns it global.
    expect((await npmReads(["install", "-C", "/tmp/evil", "x"])).localPrefix).toBe("/tmp/evil");
    expect((await npmReads(["install", "--prefi=/tmp/evil", "x"])).cli).toEqual({ prefix: "/tmp/evil" });
    expect((await npmReads(["install", "-L", "global", "x"])).cli).toEqual({ location: "global" });
    expect((await npmReads(["install", "--locat=global", "x"])).cli).toEqual({ location: "global" });
    const holes: Record<string, string | boolean>[] = [{ C: "/tmp/evil" }, { L: "global" }, { prefi: "/tmp/evil" }, { locat: "global" }, { g: true }, { global: true }, { prefix: "/x" }, { location: "global" }, { userconfig: "/x" }];
    for (const args of holes) {
      expect(() => expandFlags([], args)).toThrow(expect.objectContaining({ code: "bad_option" }) as Error);
    }
  });

  it("every allowed option is an npm option, and npm reads exactly it, locally, with the packages intact", async () => {
    for (const [name, kind] of Object.entries(NPM_INSTALL_OPTIONS)) {
      expect(defs.definitions[name]).toBeDefined();
      const argv = npmInstallArgv(["pkg@1"], [], { [name]: VALUES[name] ?? SAMPLE[kind] });
      const seen = await npmReads(argv);
      expect(Object.keys(seen.cli).sort()).toEqual([...new Set([name, "global", "location"])].sort());
      expect(seen.cli.global).toBe(false);
      expect(seen.cli.location).toBe("user");
      expect(seen.localPrefix).toBe(project);
      expect(seen.remain).toEqual(["install", "pkg@1"]);
    }
  });

  it("the shorthands are npm's own and expand to full names", async () => {
    for (const [short, name] of Object.entries(NPM_SHORTHANDS)) {
      expect(defs.shorthands[short]).toEqual([`--${name}`]);
      const kind = NPM_INSTALL_OPTIONS[name];
      const argv = kind === "boolean" ? npmInstallArgv(["p"], [short]) : npmInstallArgv(["p"], [], { [short]: "a" });
      expect(argv.some((a) => /^-[^-]/.test(a))).toBe(false);
      expect(Object.keys((await npmReads(argv)).cli)).toContain(name);
    }
  });

  it("a .npmrc of the project asking for a global install is overridden", async () => {
    fs.writeFileSync(path.join(project, ".npmrc"), "global=true\nlocation=global\n");
    try {
      const seen = await npmReads(npmInstallArgv(["p"], ["D"]));
      expect(seen.cli).toMatchObject({ global: false, location: "user" });
      expect(seen.localPrefix).toBe(project);
    } finally {
      fs.rmSync(path.join(project, ".npmrc"));
    }
  });
});

describe("package specs, as npm-package-arg reads them", () => {
  const accepted = ["is-number", "is-number@7.0.0", "is-number@^7.0.0", "lodash@~4.17", "lodash@4.x", "react@next", "@types/node", "@types/node@20.19.0", "lodash.merge", "left-pad@=1.3.0"];
  it.each(accepted)("%s is a registry spec to npm", (spec) => {
    expect(validatePackageSpec(spec)).toBe(npa(spec, project).name);
    expect(["version", "range", "tag"]).toContain(npa(spec, project).type);
  });

  it.each(["evil.tgz", "evil.tar", "evil.tar.gz", "EVIL.TGZ", "pkg@1.0.0.tgz", "pkg@x.tar"])("%s is a file to npm and refused here", (spec) => {
    expect(npa(spec, project).type).toBe("file");
    expect(() => validatePackageSpec(spec)).toThrow(expect.objectContaining({ code: "bad_package" }) as Error);
  });
});
