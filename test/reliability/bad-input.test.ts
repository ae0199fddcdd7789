/**
 * Bad input, through the API and through the magics (in process with `runMagic`, and a few in a
 * real `sense-ts` kernel): each case must fail with a specific `code` and a message a person
 * understands, and change nothing — no session or kernel on the server, `package.json` byte for
 * byte the same, no `node_modules`, no env file, no `/tmp/owned`.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { JupyterServer, startJupyterServer } from "../helpers/jupyter";
import { NotebookKernel, openNotebook } from "../helpers/kernel";
import { RestClient } from "../../src/jupyter/rest";
import { discover, resetContext } from "../../src/jupyter/context";
import { getNetwork } from "../../src/platform/network";
import { install } from "../../src/platform/npm-install";
import { runMagic } from "../../src/magics";
import { awaitWorkers, configureSizes, launchWorkers, stopKeeper, stopWorkers, WorkerContextInput } from "../../src/workers";
import type { LaunchWorkersOptions } from "../../src/workers";
import { captureSink, Figures, SecretScan, until } from "./support";

const figures = new Figures("bad input");
const scan = new SecretScan();
let server: JupyterServer;
let rest: RestClient;
let context: WorkerContextInput;
let pkgJson: string;
const PKG = JSON.stringify({ name: "bad-input-project", version: "1.0.0", private: true }, null, 2) + "\n";
const OWNED = "/tmp/owned";
const savedEnv = { ...process.env };

beforeAll(async () => {
  server = await startJupyterServer();
  rest = new RestClient({ baseUrl: server.url, token: server.token });
  context = { endpoint: { baseUrl: server.url, token: server.token }, projectHome: server.rootDir, serverRootDir: server.rootDir };
  pkgJson = path.join(server.rootDir, "package.json");
  fs.writeFileSync(pkgJson, PKG);
  fs.mkdirSync(path.join(server.rootDir, "jobs"));
  fs.writeFileSync(path.join(server.rootDir, "jobs", "ok.js"), "console.log('ok')\n");
  fs.symlinkSync("/etc/passwd", path.join(server.rootDir, "jobs", "passwd-link.js"));
  // The magics run in this process over the real core, which discovers the server like a worker would.
  process.env.SENSE_API_URL = server.url;
  process.env.SENSE_API_TOKEN = server.token;
  process.env.SENSE_PROJECT_HOME = server.rootDir;
  resetContext();
});

afterAll(async () => {
  process.env = savedEnv;
  resetContext();
  await stopKeeper();
  await server?.stop();
  figures.flush();
});

type Case = { name: string; via: "api" | "magic"; code: string; run: () => unknown };

const api = (name: string, code: string, run: () => unknown): Case => ({ name, via: "api", code, run });
const magic = (src: string, code: string, vars?: Record<string, unknown>): Case => ({
  name: src.split("\n")[0],
  via: "magic",
  code,
  run: () => runMagic(src, { sink: captureSink(), ...(vars ? { vars } : {}) }),
});
// keeper off unless a case sets it: a bad-input case must never leave a process behind, even when it fails.
const launch = (n: unknown, o: Record<string, unknown> = {}) => () => launchWorkers(n as number, { keeper: false, ...o, context } as LaunchWorkersOptions);
/** With `SENSE_*` variables set for the duration of the call only. */
const withEnv = (vars: Record<string, string>, fn: () => unknown) => async () => {
  const old: Record<string, string | undefined> = {};
  for (const k of Object.keys(vars)) {
    old[k] = process.env[k];
    process.env[k] = vars[k];
  }
  try {
    return await fn();
  } finally {
    for (const [k, v] of Object.entries(old)) if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
};

const CASES: Case[] = [
  // launchWorkers: every option, wrong types and ranges
  api("n = 0", "bad_option", launch(0)),
  api("n = -1", "bad_option", launch(-1)),
  api("n = 1.5", "bad_option", launch(1.5)),
  api("n = '3' (a string)", "bad_option", launch("3")),
  api("n = NaN", "bad_option", launch(NaN)),
  api("n above the default maximum (65)", "bad_option", launch(65)),
  api("n above maxWorkers", "bad_option", launch(3, { maxWorkers: 2 })),
  api("maxWorkers = 0", "bad_option", launch(1, { maxWorkers: 0 })),
  api("size 'huge'", "bad_option", launch(1, { size: "huge" })),
  api("size 3", "bad_option", launch(1, { size: 3 })),
  api("unknown engine", "unknown_engine", launch(1, { engine: "no-such-kernel" })),
  api("engine ''", "bad_option", launch(1, { engine: "" })),
  api("engine 42", "bad_option", launch(1, { engine: 42 })),
  api("env name '1BAD'", "bad_option", launch(1, { env: { "1BAD": "x" } })),
  api("env name with '='", "bad_option", launch(1, { env: { "A=B": "x" } })),
  api("env value a number", "bad_option", launch(1, { env: { N: 3 } })),
  api("env a string", "bad_option", launch(1, { env: "A=B" })),
  api("env an array", "bad_option", launch(1, { env: ["A=B"] })),
  api("label with a space", "bad_option", launch(1, { label: "my label" })),
  api("label with markup", "bad_option", launch(1, { label: "<script>" })),
  api("keeper 'yes'", "bad_option", launch(1, { keeper: "yes" })),
  api("watchdog 1", "bad_option", launch(1, { watchdog: 1 })),
  api("startTimeoutSeconds -1", "bad_option", launch(1, { startTimeoutSeconds: -1 })),
  api("startTimeoutSeconds 'soon'", "bad_option", launch(1, { startTimeoutSeconds: "soon" })),
  api("code 42", "bad_option", launch(1, { code: 42 })),
  api("script ../../etc/passwd", "bad_option", launch(1, { script: "../../etc/passwd" })),
  api("script /etc/passwd (absolute)", "bad_option", launch(1, { script: "/etc/passwd" })),
  api("script symlink leaving the project", "bad_option", launch(1, { script: "jobs/passwd-link.js" })),
  api("script missing", "script_not_found", launch(1, { script: "jobs/missing.js" })),
  api("script a folder", "script_not_found", launch(1, { script: "jobs" })),
  api("startup_script alias outside", "bad_option", launch(1, { startup_script: "../x.js" })),
  api("unknown option", "bad_option", launch(1, { colour: "red" })),
  api("options not an object", "bad_option", () => launchWorkers("lots" as unknown as number)),
  // stop / await
  api("stopWorkers unknown id", "unknown_worker", () => stopWorkers("no-such-worker", { context })),
  api("stopWorkers known-looking name", "unknown_worker", () => stopWorkers("w999", { context })),
  api("stopWorkers a number", "bad_option", () => stopWorkers(42 as unknown as string, { context })),
  api("awaitWorkers unknown id", "unknown_worker", () => awaitWorkers(["nope"], { context })),
  api("awaitWorkers negative timeout", "bad_option", () => awaitWorkers(null, { timeoutSeconds: -5, context })),
  api("configureSizes negative cpu", "bad_option", () => configureSizes({ small: { cpu: -1 } })),
  api("configureSizes unknown size", "bad_option", () => configureSizes({ giant: { cpu: 64 } })),
  // install: injection through package specs and options
  api("install 'x; touch /tmp/owned'", "bad_package", () => install("x; touch /tmp/owned", { cwd: server.rootDir })),
  api("install '--registry=http://evil'", "bad_package", () => install("--registry=http://evil", { cwd: server.rootDir })),
  api("install '$(touch /tmp/owned)'", "bad_package", () => install("$(touch /tmp/owned)", { cwd: server.rootDir })),
  api("install 'file:../../etc'", "bad_package", () => install("file:../../etc", { cwd: server.rootDir })),
  api("install nothing", "bad_package", () => install([], { cwd: server.rootDir })),
  api("install flag 'g' (global)", "bad_option", () => install("ms", { cwd: server.rootDir, flags: ["g"] })),
  api("install argument prefix", "bad_option", () => install("ms", { cwd: server.rootDir, arguments: { prefix: "/tmp" } })),
  api("install flag '--registry=x'", "bad_option", () => install("ms", { cwd: server.rootDir, flags: ["--registry=http://evil"] })),
  api("install argument with a newline", "bad_option", () => install("ms", { cwd: server.rootDir, arguments: { registry: "http://a\nb" } })),
  // malformed SENSE_* values
  api("SENSE_API_URL not a URL", "bad_config", () => discover({ env: { SENSE_API_URL: "not a url" } })),
  api("SENSE_API_URL ftp://", "bad_config", () => discover({ env: { SENSE_API_URL: "ftp://example.com/" } })),
  api("SENSE_API_URL with credentials", "bad_config", () => discover({ env: { SENSE_API_URL: "http://user:pw@127.0.0.1:1/" } })),
  api("SENSE_PORT1 99999", "bad_config", () => getNetwork({ env: { SENSE_PORT1: "99999", SENSE_PUBLIC_PORT1: "80" } })),
  api("SENSE_PORT1 without its public port", "bad_config", () => getNetwork({ env: { SENSE_PORT1: "8080" } })),
  api("SENSE_PROJECT_IP 999.1.1.1", "bad_config", () => getNetwork({ env: { SENSE_PROJECT_IP: "999.1.1.1" } })),
  api("SENSE_MAX_WORKERS 'lots'", "bad_config", withEnv({ SENSE_MAX_WORKERS: "lots" }, launch(1, { engine: "python3" }))),
  api("SENSE_KEEPER 'maybe'", "bad_config", withEnv({ SENSE_KEEPER: "maybe" }, () => launchWorkers(1, { engine: "python3", context }))),
  // the same through the magics
  magic("%%sense_worker -n 2\n   \n", "usage"),
  magic("%no_such_magic", "unknown_magic"),
  magic("%sense_workers --bogus", "bad_option"),
  magic("%%sense_worker --colour red\nconsole.log(1)", "bad_option"),
  magic("%%sense_worker -n abc\nconsole.log(1)", "bad_option"),
  magic("%%sense_worker -n 0\nconsole.log(1)", "bad_option"),
  magic("%%sense_worker -n 1.5\nconsole.log(1)", "bad_option"),
  magic("%%sense_worker --size huge\nconsole.log(1)", "bad_option"),
  magic("%%sense_worker --engine no-such-kernel\nconsole.log(1)", "unknown_engine"),
  magic("%%sense_worker --env 1BAD=x\nconsole.log(1)", "bad_option"),
  magic("%%sense_worker --env NOEQUALS\nconsole.log(1)", "bad_option"),
  magic("%sense_worker --script ../../etc/passwd", "bad_option"),
  magic("%sense_worker --script jobs/missing.js", "script_not_found"),
  magic('%sense_stop "w1', "usage"),
  magic("%sense_stop 'w1", "usage"),
  magic("%sense_stop $notDefined", "usage"),
  magic("%sense_stop $who", "unknown_worker", { who: "w77" }),
  magic("%sense_stop no-such-worker", "unknown_worker"),
  magic("%sense_await --timeout -3", "bad_option"),
  magic("%sense_await --timeout soon", "bad_option"),
  magic('%sense_install "x; touch /tmp/owned"', "bad_package"),
  magic("%sense_install -- --registry=http://evil", "bad_package"),
  magic("%sense_install --flag g ms", "bad_option"),
  magic("%sense_install", "usage"),
  magic("%sense_workers\nconst x = 1;", "usage"),
];

/** What must not change: the server's sessions and kernels, package.json, node_modules, env files, /tmp/owned. */
async function state(): Promise<string> {
  const sessions = (await rest.listSessions()).length;
  const kernels = (await rest.listKernels()).length;
  const sense = path.join(server.rootDir, ".sense");
  return JSON.stringify({
    sessions,
    kernels,
    pkg: fs.readFileSync(pkgJson, "utf8"),
    nodeModules: fs.existsSync(path.join(server.rootDir, "node_modules")),
    lock: fs.existsSync(path.join(server.rootDir, "package-lock.json")),
    envFiles: fs.existsSync(sense) ? fs.readdirSync(sense) : [],
    owned: fs.existsSync(OWNED),
  });
}

describe(`bad input (${CASES.length} cases)`, () => {
  afterEach(async () => {
    // One case that wrongly started something must not fail the cases after it.
    await stopWorkers({ context }).catch(() => undefined);
    await until("no sessions", async () => ((await rest.listSessions()).length === 0 ? true : undefined), 15_000).catch(() => undefined);
  });
  const clean = JSON.stringify({ sessions: 0, kernels: 0, pkg: PKG, nodeModules: false, lock: false, envFiles: [], owned: false });

  it("has at least 30 cases through the API and the magics each", () => {
    expect(CASES.filter((c) => c.via === "api").length).toBeGreaterThanOrEqual(30);
    expect(CASES.filter((c) => c.via === "magic").length).toBeGreaterThanOrEqual(20);
    figures.add("cases via the API", CASES.filter((c) => c.via === "api").length, "cases");
    figures.add("cases via the magics (in process)", CASES.filter((c) => c.via === "magic").length, "cases");
  });

  it.each(CASES.map((c) => [`${c.via}: ${c.name}`, c] as const))("%s", async (_label, c) => {
    expect(await state()).toBe(clean);
    let error: unknown;
    try {
      await c.run();
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(Error);
    const e = error as Error & { code?: string };
    scan.addError(c.name, e);
    expect({ code: e.code, name: e.name }).toEqual({ code: c.code, name: expect.stringMatching(/^(UsageError|ConfigError|InstallError|WorkerError)$/) });
    // A message a person understands: a sentence, naming no internals, showing no secret.
    expect(e.message.length).toBeGreaterThan(15);
    // "NaN" only where the input was NaN: the message then says what was given (#24 item 8).
    const internals = c.name.includes("NaN") ? /undefined|\[object Object\]|TypeError|at .*\.ts:\d+/ : /undefined|\[object Object\]|NaN|TypeError|at .*\.ts:\d+/;
    expect(e.message).not.toMatch(internals);
    expect(e.message).not.toContain(server.token);
    expect(await state()).toBe(clean);
  });
});

describe("bad input in a real sense-ts kernel", () => {
  let nb: NotebookKernel;
  beforeAll(async () => {
    nb = await openNotebook(server, "sense-ts", "bad-input.ipynb");
  });
  afterAll(async () => {
    await nb?.shutdown();
  });

  it.each([
    ["%%sense_worker -n 2\n", /cell body is empty/],
    ["%sense_wokers", /not found.*did you mean %sense_workers/is],
    ["%%sense_worker -n abc\nconsole.log(1)", /-n.*integer|integer.*abc/i],
    ["%%sense_worker --engine nope\nconsole.log(1)", /unknown engine "nope".*python3/],
    ["%sense_worker --script ../../etc/passwd", /outside the project home/],
    ['%sense_install "x; touch /tmp/owned"', /not a package spec/],
    ["%sense_stop $neverDefined", /neverDefined/],
    ["%sense_stop 'unbalanced", /quote/i],
  ])("%s", async (src, message) => {
    // "abort" = not run (the kernel still skips requests after the previous cell's error): send it again.
    const r = await until("the cell to run", () => nb.run(src).then((x) => (x.status === "abort" ? undefined : x)), 30_000, 100);
    scan.addOutputs(`kernel: ${src}`, r.outputs);
    expect(r.status).toBe("error");
    const text = r.outputs.map((o) => (o.type === "stream" ? o.text : o.type === "error" ? `${o.ename}: ${o.evalue}\n${o.traceback.join("\n")}` : JSON.stringify(o.data))).join("\n");
    expect(text).toMatch(message);
    // One readable line (plus usage), not a stack trace.
    expect(text).not.toMatch(/\n\s+at .*\(.*:\d+:\d+\)/);
    expect((await rest.listSessions()).filter((s) => s.type === "sense-worker")).toEqual([]);
    expect(fs.readFileSync(pkgJson, "utf8")).toBe(PKG);
    expect(fs.existsSync(OWNED)).toBe(false);
  });

  it("showed no secret anywhere", () => {
    figures.add("texts scanned for secrets", scan.size, "texts");
    expect(scan.leaks([server.token])).toEqual([]);
  });
});
