/**
 * `install()`: `npm install` into the project home, so this kernel and every worker launched
 * afterwards can `require`/`import` the package without a restart. Never through a shell: npm
 * runs from an argv array, package specs and option names are validated first, and a failed
 * install puts `package.json`, `package-lock.json` and the top level of `node_modules` back as
 * they were.
 *
 * Kept free of tslab: the kernel registers {@link onInstalled} to refresh its compiler.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { inspect } from "node:util";
import { InstallError, UsageError, redact } from "../errors";
import { getRunContext, jsRuntime } from "../jupyter/context";
import { nodeOnPath } from "./deno";
import type { OutputSink } from "../display/sink";
import { processDefault } from "../util/process-default";
import { checkOptionKeys } from "../util/check-options";

/** Values of {@link InstallOptions.arguments}: `--key=value`, or `-k value` for one-letter keys. */
export type InstallArgumentValue = string | number | boolean;

/** Options of {@link install}. The seed's names `flags` and `arguments` are kept. */
export interface InstallOptions {
  /** npm flags without dashes: `["D", "save-exact"]` → `-D --save-exact`. */
  flags?: readonly string[];
  /** npm arguments: `{ registry: URL, omit: "dev", w: "pkg" }` → `--registry=URL --omit=dev -w pkg`. */
  arguments?: Readonly<Record<string, InstallArgumentValue>>;
  /** Folder to install into (default: the project home, `getRunContext().projectHome`). */
  cwd?: string;
  /** Where npm's output goes while it runs (default: this process's stdout/stderr, captured at call time). */
  sink?: OutputSink;
  /** Aborting kills npm and rolls back. */
  signal?: AbortSignal;
  /** The command that runs npm, as an argv prefix (default: the npm shipped with this Node). Tests use a fake. */
  npmCommand?: readonly string[];
  /** Environment for npm (default `process.env`, with Jupyter/Sense secrets removed either way). */
  env?: NodeJS.ProcessEnv;
}

/** The keys of {@link InstallOptions}. */
const INSTALL_OPTION_KEYS = ["flags", "arguments", "cwd", "sink", "signal", "npmCommand", "env"];

/** What {@link onInstalled} listeners receive after every install attempt that ran npm. */
export interface InstallEvent {
  packages: string[];
  cwd: string;
  ok: boolean;
  result?: InstallResult;
  error?: InstallError;
}

/** A listener for {@link onInstalled}. */
export type InstallListener = (event: InstallEvent) => void | Promise<void>;

/** The outcome of a successful {@link install}. Prints as one short line. */
export class InstallResult {
  constructor(
    /** The specs as requested. */
    readonly packages: string[],
    /** Top-level `node_modules` entries that are new (e.g. `is-number`, `@scope/pkg`). */
    readonly added: string[],
    /** Installed version of each requested package, by package name. */
    readonly versions: Record<string, string>,
    readonly durationMs: number,
    /** npm's output (stdout and stderr, interleaved, secrets removed). */
    readonly output: string,
    /** The folder installed into. */
    readonly cwd: string,
  ) {}

  /** One line: what was installed where, and how long it took. */
  toString(): string {
    const what = Object.entries(this.versions).map(([n, v]) => `${n}@${v}`).join(", ") || this.packages.join(", ");
    const added = this.added.length === 1 ? "1 new top-level package" : `${this.added.length} new top-level packages`;
    return `Installed ${what} into ${this.cwd} (${added}, ${(this.durationMs / 1000).toFixed(1)} s)`;
  }

  [inspect.custom](): string {
    return this.toString();
  }
}

/**
 * The npm options `install()` passes on, by npm's own name (each one a key of npm's config
 * definitions), with the kind of value each takes. An allowlist: nothing here can move the install
 * out of the project home (`prefix`, `global`, `location`, ...), point npm at other config files
 * (`userconfig`, `globalconfig`), or run other programs (`script-shell`, `node-options`).
 */
export const NPM_INSTALL_OPTIONS: Readonly<Record<string, "boolean" | "string" | "number">> = {
  "save": "boolean",
  "save-dev": "boolean",
  "save-optional": "boolean",
  "save-peer": "boolean",
  "save-prod": "boolean",
  "save-exact": "boolean",
  "save-bundle": "boolean",
  "save-prefix": "string",
  "omit": "string",
  "include": "string",
  "registry": "string",
  "tag": "string",
  "before": "string",
  "legacy-peer-deps": "boolean",
  "strict-peer-deps": "boolean",
  "force": "boolean",
  "ignore-scripts": "boolean",
  "foreground-scripts": "boolean",
  "prefer-offline": "boolean",
  "prefer-online": "boolean",
  "offline": "boolean",
  "dry-run": "boolean",
  "package-lock": "boolean",
  "package-lock-only": "boolean",
  "install-strategy": "string",
  "engine-strict": "boolean",
  "audit": "boolean",
  "fund": "boolean",
  "bin-links": "boolean",
  "workspace": "string",
  "workspaces": "boolean",
  "include-workspace-root": "boolean",
  "loglevel": "string",
  "fetch-retries": "number",
  "fetch-timeout": "number",
  "fetch-retry-mintimeout": "number",
  "fetch-retry-maxtimeout": "number",
};

/** npm's one-letter shorthands of allowed options (npm's definitions), expanded here: npm is only ever given full names. */
export const NPM_SHORTHANDS: Readonly<Record<string, string>> = { D: "save-dev", O: "save-optional", P: "save-prod", E: "save-exact", S: "save", B: "save-bundle", f: "force", w: "workspace" };

/**
 * Always last on npm's command line, so no `.npmrc` or environment can turn the install global
 * (command-line settings win over both).
 */
const PINNED_NPM_ARGS = ["--global=false", "--location=user"];
const NAME = "(?:@[A-Za-z0-9][A-Za-z0-9._~-]*/)?[A-Za-z0-9][A-Za-z0-9._~-]*";
const VERSION = "[A-Za-z0-9^~=][A-Za-z0-9._^~=+-]*";
const SPEC = new RegExp(`^(${NAME})(?:@(${VERSION}))?$`);
// npm-package-arg's isFileType: a spec (or its version part) ending so is a local tarball.
const TARBALL = /[.](?:tgz|tar\.gz|tar)$/i;
// Variables that must not reach npm or a package's install scripts.
const SECRET_VARS = ["SENSE_API_TOKEN", "SENSE_PASSWORD", "SENSE_SSH_PASSWORD", "JUPYTERHUB_API_TOKEN", "JPY_API_TOKEN", "JUPYTER_TOKEN"];
// npm settings from the environment that would move the install out of the project home.
const REDIRECTING_VARS = ["npm_config_global", "npm_config_location", "npm_config_prefix", "npm_config_local_prefix"];

/** The option `key` names (full name, shorthand, or `no-<boolean>` for a flag), or a `bad_option` error listing what is allowed. */
function resolveNpmOption(key: unknown, what: "flag" | "argument"): { name: string; kind: "boolean" | "string" | "number"; negated: boolean } {
  if (typeof key === "string") {
    const full = Object.hasOwn(NPM_SHORTHANDS, key) ? NPM_SHORTHANDS[key] : key;
    if (Object.hasOwn(NPM_INSTALL_OPTIONS, full)) return { name: full, kind: NPM_INSTALL_OPTIONS[full], negated: false };
    const positive = what === "flag" && key.startsWith("no-") ? key.slice(3) : undefined;
    if (positive && Object.hasOwn(NPM_INSTALL_OPTIONS, positive) && NPM_INSTALL_OPTIONS[positive] === "boolean") return { name: positive, kind: "boolean", negated: true };
  }
  const shown = typeof key === "string" ? JSON.stringify(key) : String(key);
  throw new UsageError(
    `The npm ${what} ${shown} is not one install() passes on: it always installs into the project home, with the user's npm config as it is. ` +
      `Give full names without dashes (abbreviations are not expanded): ${Object.keys(NPM_INSTALL_OPTIONS).join(", ")}; or the shorthands ${Object.keys(NPM_SHORTHANDS).join(", ")}.`,
    { code: "bad_option", details: { [what]: key } },
  );
}

/**
 * Expands the seed's `flags` and `arguments` into npm argv entries, each as `--<full name>` or
 * `--<full name>=<value>`: flag `D` → `--save-dev`, `save-exact` → `--save-exact`, `no-save` →
 * `--save=false`; argument `{registry: URL}` → `--registry=URL`, `{w: "a"}` → `--workspace=a`;
 * `true` → the bare flag, `false` → `--key=false`. Only the options in
 * {@link NPM_INSTALL_OPTIONS} (and the shorthands in {@link NPM_SHORTHANDS}) are accepted, and
 * npm never sees a short or abbreviated option, so its parser cannot read one as another
 * (`-C` is `--prefix`, `--prefi` is `--prefix` to npm).
 *
 * @throws {UsageError} `bad_option` for an option not in the allowlist (`g`, `C`, `L`, `prefix`,
 *   `prefi`, `location`, `userconfig`, ...), a string or number option given as a flag, a value of
 *   the wrong kind, or a value with control characters.
 */
export function expandFlags(flags: readonly string[] = [], args: Readonly<Record<string, InstallArgumentValue>> = {}): string[] {
  const out: string[] = [];
  for (const f of flags) {
    const o = resolveNpmOption(f, "flag");
    if (o.kind !== "boolean") {
      throw new UsageError(`The npm option ${JSON.stringify(f)} takes a value: pass it in arguments (arguments: { ${JSON.stringify(o.name)}: ... }).`, { code: "bad_option", details: { flag: f } });
    }
    out.push(o.negated ? `--${o.name}=false` : `--${o.name}`);
  }
  for (const [key, value] of Object.entries(args)) {
    const o = resolveNpmOption(key, "argument");
    if (o.kind === "boolean") {
      const b = value === true || value === "true" ? true : value === false || value === "false" ? false : undefined;
      if (b === undefined) throw new UsageError(`The npm argument ${JSON.stringify(key)} is true or false, not ${JSON.stringify(value)}.`, { code: "bad_option", details: { argument: key } });
      out.push(b ? `--${o.name}` : `--${o.name}=false`);
      continue;
    }
    if (typeof value !== "string" && !(typeof value === "number" && Number.isFinite(value))) {
      throw new UsageError(`The npm argument ${JSON.stringify(key)} must be a ${o.kind}.`, { code: "bad_option", details: { argument: key } });
    }
    const text = String(value);
    if (o.kind === "number" && !/^\d+$/.test(text)) throw new UsageError(`The npm argument ${JSON.stringify(key)} must be a whole number, not ${JSON.stringify(text)}.`, { code: "bad_option", details: { argument: key } });
    // eslint-disable-next-line no-control-regex
    if (text === "" || /[\u0000-\u001f\u007f]/.test(text)) {
      throw new UsageError(`The value of the npm argument ${JSON.stringify(key)} must not be empty or contain control characters.`, { code: "bad_option", details: { argument: key } });
    }
    // One argv entry `--name=value`: whatever the value holds, npm reads it as this option's value.
    out.push(`--${o.name}=${text}`);
  }
  return out;
}

/**
 * The whole npm argv of an install (without the npm command): `install`, the expanded options,
 * the settings that keep it local, `--`, the specs (checked by the caller).
 * @throws {UsageError} `bad_option` as {@link expandFlags}.
 */
export function npmInstallArgv(packages: readonly string[], flags?: readonly string[], args?: Readonly<Record<string, InstallArgumentValue>>): string[] {
  return ["install", ...expandFlags(flags, args), ...PINNED_NPM_ARGS, "--", ...packages];
}

/**
 * Checks one npm package spec: `name`, `@scope/name`, optionally `@<version | range | tag>` with
 * ranges written without spaces, `<`, `>` or `*` (`^1.2.0`, `~1.2`, `1.x`, `=1.2.3`, `latest`).
 * Paths, URLs, `file:`, `git+https:` and `npm:` aliases are rejected: only registry packages can
 * be installed this way. Returns the package name.
 *
 * @throws {InstallError} `bad_package` saying what is wrong; nothing is run.
 */
export function validatePackageSpec(spec: unknown): string {
  if (typeof spec !== "string" || spec.length === 0) {
    throw new InstallError("bad_package", `A package spec must be a non-empty string, not ${spec === "" ? "an empty string" : typeof spec}.`, { spec: String(spec) });
  }
  const shown = JSON.stringify(spec.length > 100 ? spec.slice(0, 100) + "..." : spec);
  if (spec.startsWith("-")) {
    throw new InstallError("bad_package", `${shown} is not a package (it starts with '-'): pass npm options through flags/arguments.`, { spec });
  }
  // eslint-disable-next-line no-control-regex
  if (/[\s\u0000-\u001f\u007f]/.test(spec) || /[;&|`$<>(){}[\]!*?'"\\]/.test(spec)) {
    throw new InstallError("bad_package", `${shown} is not a package spec: it contains whitespace, control or shell characters.`, { spec });
  }
  const m = SPEC.exec(spec);
  if (m && (TARBALL.test(m[1]) || (m[2] !== undefined && TARBALL.test(m[2])))) {
    // npm-package-arg reads a name or version ending so as a tarball path (and would write file: into package.json).
    throw new InstallError("bad_package", `${shown} is a tarball path to npm, not a registry package; install() only installs registry packages.`, { spec });
  }
  if (!m || m[1].length > 214) {
    throw new InstallError(
      "bad_package",
      `${shown} is not a registry package spec. Use name, @scope/name, name@1.2.3, name@^1.2.0 or name@tag (paths, URLs, file:, git and npm: aliases are not accepted).`,
      { spec },
    );
  }
  return m[1];
}

/** Options of {@link Installer}: what its installs use when a call does not say. */
export interface InstallerOptions {
  /** The folder installs go into when a call gives no `cwd` (default: the discovered project home). */
  projectHome?: () => string;
  /** The command that runs npm, as an argv prefix (default: the npm shipped with this Node). */
  npmCommand?: readonly string[];
  /** Environment for npm (default `process.env`; Jupyter/Sense secrets are removed either way). */
  env?: NodeJS.ProcessEnv;
}

/**
 * Runs installs and tells its listeners about them. One per process backs {@link install} and
 * {@link onInstalled} (see {@link defaultInstaller}); tests and tools construct their own.
 */
export class Installer {
  private readonly listeners = new Set<InstallListener>();
  // One npm at a time per folder: two concurrent installs would race on package.json and node_modules.
  private readonly queues = new Map<string, Promise<unknown>>();

  constructor(private readonly options: InstallerOptions = {}) {}

  /**
   * Registers `listener` to run after every install attempt of this installer that ran npm,
   * successful or not (the Sense kernel resets tslab's compiler here). Listener errors are
   * ignored: a listener must not change the install's outcome. Returns a function that unregisters it.
   */
  onInstalled(listener: InstallListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Installs npm packages into the project home (or `options.cwd`), as {@link install} describes;
   * installs into one folder run one after the other.
   * @throws as {@link install}.
   */
  async install(pkgs: string | readonly string[], options: InstallOptions = {}): Promise<InstallResult> {
    checkOptionKeys(options, INSTALL_OPTION_KEYS, "install");
    const packages = typeof pkgs === "string" ? [pkgs] : [...pkgs];
    if (packages.length === 0) throw new InstallError("bad_package", "install() needs at least one package.", {});
    const names = packages.map((p) => validatePackageSpec(p));
    const argv = npmInstallArgv(packages, options.flags, options.arguments);
    const home = this.options.projectHome ?? (() => getRunContext().projectHome);
    const cwd = path.resolve(options.cwd ?? home());
    if (!isDirectory(cwd)) {
      throw new InstallError("install_failed", `Cannot install into ${cwd}: it is not an existing folder.`, { cwd });
    }
    const npm = options.npmCommand ?? this.options.npmCommand;
    const command = npm ? [...npm] : npmCommand();
    // Captured now: inside tslab, process.stdout.write is swapped for every new cell.
    const sink = options.sink ?? defaultSink();
    const baseEnv = options.env ?? this.options.env ?? process.env;
    const env = npmEnv(baseEnv);
    const secrets = SECRET_VARS.map((k) => baseEnv[k]);

    const previous = this.queues.get(cwd) ?? Promise.resolve();
    const run = previous.catch(() => undefined).then(() => runInstall({ packages, names, argv, cwd, command, sink, env, secrets, signal: options.signal, notify: (e) => this.notify(e) }));
    this.queues.set(cwd, run);
    try {
      return await run;
    } finally {
      if (this.queues.get(cwd) === run) this.queues.delete(cwd);
    }
  }

  private async notify(event: InstallEvent): Promise<void> {
    await Promise.allSettled(
      [...this.listeners].map(async (l) => {
        await l(event);
      }),
    );
  }
}

/**
 * The process's default installer (the one {@link install} and {@link onInstalled} use). One for
 * the process: the kernel registers its compiler reset on it, so every `install()` must reach it.
 */
export const defaultInstaller: () => Installer = processDefault(() => new Installer());

/**
 * Registers `listener` to run after every install attempt that ran npm, successful or not
 * (the Sense kernel resets tslab's compiler here). Listener errors are ignored: a listener must
 * not change the install's outcome. Returns a function that unregisters it.
 */
export function onInstalled(listener: InstallListener): () => void {
  return defaultInstaller().onInstalled(listener);
}

/**
 * Installs npm packages into the project home (or `options.cwd`): runs `npm install <flags>
 * <specs>` there, creating a minimal `package.json` first when there is none (so npm does not
 * install into an ancestor folder), and streams npm's output to the sink as it comes. Calls the
 * {@link onInstalled} listeners afterwards, on success and on failure.
 *
 * @throws {InstallError} `bad_package` for an invalid spec (nothing runs); `install_failed` when
 *   npm fails, is aborted or cannot be started; then `package.json`, `package-lock.json`,
 *   `node_modules/.package-lock.json` are restored byte for byte and every new top-level
 *   `node_modules` entry (and `.bin` link) is removed. The message ends with npm's last error lines.
 * @throws {UsageError} `bad_option` for bad flags/arguments (see {@link expandFlags}).
 * @throws {ConfigError} from discovery when no `cwd` is given and no project home can be found.
 */
export function install(pkgs: string | readonly string[], options: InstallOptions = {}): Promise<InstallResult> {
  return defaultInstaller().install(pkgs, options);
}

interface RunPlan {
  packages: string[];
  names: string[];
  argv: string[];
  cwd: string;
  command: string[];
  sink: OutputSink;
  env: NodeJS.ProcessEnv;
  secrets: (string | undefined)[];
  signal?: AbortSignal;
  /** Tells the installer's listeners. */
  notify: (event: InstallEvent) => Promise<void>;
}

async function runInstall(plan: RunPlan): Promise<InstallResult> {
  const { cwd, signal } = plan;
  if (signal?.aborted) throw new InstallError("install_failed", "The install was aborted before npm started; nothing changed.", { cwd });
  const before = snapshot(cwd);
  const pkgJson = path.join(cwd, "package.json");
  if (before.files.get("package.json") === null) {
    fs.writeFileSync(pkgJson, JSON.stringify({ name: "sense-project", private: true }, null, 2) + "\n");
  }
  const started = Date.now();
  let outcome: { code: number | null; signal: NodeJS.Signals | null; output: string; stderr: string; spawnError?: Error };
  try {
    outcome = await runNpm(plan);
  } catch (err) {
    outcome = { code: null, signal: null, output: "", stderr: "", spawnError: err as Error };
  }
  const durationMs = Date.now() - started;

  if (outcome.code === 0 && !signal?.aborted) {
    const after = listTop(path.join(cwd, "node_modules"));
    const added = [...after].filter((e) => !before.entries.has(e) && isPackageEntry(e)).sort();
    const versions: Record<string, string> = {};
    for (const name of plan.names) {
      const v = readVersion(path.join(cwd, "node_modules", name, "package.json"));
      if (v) versions[name] = v;
    }
    const result = new InstallResult(plan.packages, added, versions, durationMs, outcome.output, cwd);
    await plan.notify({ packages: plan.packages, cwd, ok: true, result });
    return result;
  }

  restore(cwd, before);
  // Rollback covers new entries; an existing package npm changed in place (its own reify
  // rollback normally prevents that) is reported rather than silently left behind.
  const changed = [...before.versions].filter(([e, v]) => readVersion(path.join(cwd, "node_modules", e, "package.json")) !== v).map(([e]) => e);
  const why = signal?.aborted
    ? "it was aborted"
    : outcome.spawnError
      ? `npm could not be started (${redact(outcome.spawnError.message, plan.secrets)})`
      : outcome.signal
        ? `npm was killed by ${outcome.signal}`
        : `npm exited with code ${outcome.code}`;
  const summary = errorSummary(outcome.stderr || outcome.output);
  const error = new InstallError(
    "install_failed",
    `Installing ${plan.packages.join(" ")} into ${cwd} failed: ${why}. package.json and node_modules were restored` +
      (changed.length ? `, except these existing packages npm changed: ${changed.join(", ")} (run npm install in ${cwd} to repair them)` : "") +
      `.${summary ? `\n${summary}` : ""}`,
    { cwd, packages: plan.packages, exitCode: outcome.code, signal: outcome.signal, changed },
  );
  await plan.notify({ packages: plan.packages, cwd, ok: false, error });
  throw error;
}

function runNpm(plan: RunPlan): Promise<{ code: number | null; signal: NodeJS.Signals | null; output: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const [cmd, ...prefix] = plan.command;
    const child = spawn(cmd, [...prefix, ...plan.argv], { cwd: plan.cwd, env: plan.env, shell: false, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    let stderr = "";
    const onAbort = () => child.kill("SIGTERM");
    plan.signal?.addEventListener("abort", onAbort, { once: true });
    child.stdout.setEncoding("utf8");
    child.stderr.setEncoding("utf8");
    child.stdout.on("data", (chunk: string) => {
      const text = clean(chunk, plan.secrets);
      output += text;
      plan.sink.stdout(text);
    });
    child.stderr.on("data", (chunk: string) => {
      const text = clean(chunk, plan.secrets);
      output += text;
      stderr += text;
      plan.sink.stderr(text);
    });
    child.on("error", (err) => {
      plan.signal?.removeEventListener("abort", onAbort);
      reject(err);
    });
    child.on("close", (code, sig) => {
      plan.signal?.removeEventListener("abort", onAbort);
      resolve({ code, signal: sig, output, stderr });
    });
  });
}

/** The npm that ships with the running Node, run by this Node (its launcher's `#!/usr/bin/env node` would depend on PATH). */
function npmCommand(): string[] {
  // A Deno master has no npm beside its binary: it uses the npm of the Node on PATH.
  const node = jsRuntime() === "deno" ? nodeOnPath() : process.execPath;
  if (!node) throw new InstallError("install_failed", "install from Deno needs Node's npm: no node on PATH", { execPath: process.execPath });
  const bin = path.dirname(node);
  const candidates = [
    path.join(bin, "npm"),
    path.join(bin, "..", "lib", "node_modules", "npm", "bin", "npm-cli.js"),
    path.join(bin, "node_modules", "npm", "bin", "npm-cli.js"),
  ];
  for (const c of candidates) {
    let real: string;
    try {
      real = fs.realpathSync(c);
    } catch {
      continue;
    }
    if (real.endsWith(".js")) return [node, real];
    if (c === candidates[0]) return [real];
  }
  throw new InstallError("install_failed", `Cannot find npm next to ${node}; install npm with this Node.`, { execPath: node });
}

function npmEnv(base: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base };
  for (const k of [...SECRET_VARS, ...REDIRECTING_VARS]) delete env[k];
  for (const k of Object.keys(env)) if (REDIRECTING_VARS.includes(k.toLowerCase())) delete env[k];
  // Quiet and faster; a user's own npm settings (.npmrc, flags) still win over these defaults.
  env.npm_config_fund ??= "false";
  env.npm_config_audit ??= "false";
  env.npm_config_update_notifier ??= "false";
  env.npm_config_progress ??= "false";
  return env;
}

function defaultSink(): OutputSink {
  const out = process.stdout.write.bind(process.stdout);
  const err = process.stderr.write.bind(process.stderr);
  return {
    stdout: (t) => void out(t),
    stderr: (t) => void err(t),
    display: (bundle) => void out(bundle["text/plain"] + "\n"),
  };
}

/** Removes secrets, and credentials in URLs (`https://user:pass@host`, `_authToken=...`). */
function clean(text: string, secrets: readonly (string | undefined)[]): string {
  return redact(text, secrets)
    .replace(/(\/\/[^/\s:@]+:)[^@\s/]+@/g, "$1***@")
    .replace(/(_auth(?:Token)?\s*=\s*)\S+/gi, "$1***");
}

/**
 * npm's own error lines (`npm error ...`, older `npm ERR! ...`), else the last lines. Stack
 * frames and the dump of the error object are dropped: the lines that say what failed
 * (`code ECONNREFUSED`, `request to <url> failed, reason: ...`) come first and must stay.
 */
function errorSummary(text: string): string {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== "");
  const noise = (l: string) =>
    /A complete log of this run/.test(l) ||
    /^npm (error|ERR!)( \d+)?\s*$/.test(l) ||
    /^npm (error|ERR!)\s+at\s/.test(l) || // stack frame
    /^npm (error|ERR!)\s*[{}]\s*$/.test(l) || // the error object's braces
    /^npm (error|ERR!) {2,}[\w$]+: /.test(l); // and its fields
  const errs = lines.filter((l) => /^npm (error|ERR!)/.test(l) && !noise(l));
  const kept = errs.length > 0 ? errs : lines;
  return (kept.length > 12 ? [...kept.slice(0, 8), ...kept.slice(-4)] : kept).join("\n");
}

interface Snapshot {
  /** File name → bytes, or null when absent. */
  files: Map<string, Buffer | null>;
  nodeModulesExisted: boolean;
  /** Top-level node_modules entries: `name`, `@scope`, `@scope/name`, `.bin`, `.bin/x`. */
  entries: Set<string>;
  /** Version of every installed top-level package (undefined when unreadable). */
  versions: Map<string, string | undefined>;
}

const SNAPSHOT_FILES = ["package.json", "package-lock.json", "npm-shrinkwrap.json", path.join("node_modules", ".package-lock.json")];

function snapshot(cwd: string): Snapshot {
  const files = new Map<string, Buffer | null>();
  for (const f of SNAPSHOT_FILES) {
    try {
      files.set(f, fs.readFileSync(path.join(cwd, f)));
    } catch {
      files.set(f, null);
    }
  }
  const nm = path.join(cwd, "node_modules");
  const entries = listTop(nm);
  const versions = new Map<string, string | undefined>();
  for (const e of entries) if (isPackageEntry(e)) versions.set(e, readVersion(path.join(nm, e, "package.json")));
  return { files, nodeModulesExisted: fs.existsSync(nm), entries, versions };
}

/** `name` or `@scope/name`; not `.bin`, `.package-lock.json` or a bare `@scope` folder. */
function isPackageEntry(entry: string): boolean {
  return !entry.startsWith(".") && (entry.startsWith("@") ? entry.includes("/") : true);
}

function listTop(nm: string): Set<string> {
  const out = new Set<string>();
  let top: fs.Dirent[];
  try {
    top = fs.readdirSync(nm, { withFileTypes: true });
  } catch {
    return out;
  }
  for (const e of top) {
    out.add(e.name);
    if ((e.name.startsWith("@") || e.name === ".bin") && e.isDirectory()) {
      for (const sub of fs.readdirSync(path.join(nm, e.name))) out.add(`${e.name}/${sub}`);
    }
  }
  return out;
}

function restore(cwd: string, before: Snapshot): void {
  const nm = path.join(cwd, "node_modules");
  if (!before.nodeModulesExisted) {
    fs.rmSync(nm, { recursive: true, force: true });
  } else {
    // Deepest first, so a new `@scope` folder is empty (and removed) after its packages.
    const now = [...listTop(nm)].sort((a, b) => b.split("/").length - a.split("/").length);
    for (const e of now) {
      if (!before.entries.has(e)) fs.rmSync(path.join(nm, e), { recursive: true, force: true });
    }
  }
  for (const [f, bytes] of before.files) {
    const file = path.join(cwd, f);
    if (bytes === null) fs.rmSync(file, { force: true });
    else if (fs.existsSync(path.dirname(file))) fs.writeFileSync(file, bytes);
  }
}

function readVersion(file: string): string | undefined {
  try {
    const v = (JSON.parse(fs.readFileSync(file, "utf8")) as { version?: unknown }).version;
    return typeof v === "string" ? v : undefined;
  } catch {
    return undefined;
  }
}

function isDirectory(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}
