import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { inspect } from "node:util";
import { ConfigError, isSenseError } from "../../src/errors";
import { defaultDiscovery, discover, Discovery, getContext, resetContext } from "../../src/jupyter/context";

const TOKEN = "srv-token-0123456789abcdef";
const KID = "6a013310-0eac-49c8-8e83-cd7f70feeb67";

/**
 * A fake /proc: server (pid 100) → kernel (pid 200, argv holds the connection file) →
 * sh (pid 300) → node (pid 400). Plus the runtime dir with the server's jpserver file.
 */
function fakeTree(opts: { serverFile?: Record<string, unknown> | string | null; kernelArgv?: string[]; extraServers?: Record<number, Record<string, unknown>> } = {}) {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "sense-ctx-"));
  const proc = path.join(root, "proc");
  const runtime = path.join(root, "runtime");
  const projectRoot = path.join(root, "project");
  fs.mkdirSync(runtime, { recursive: true });
  fs.mkdirSync(projectRoot);
  const conn = path.join(runtime, `kernel-${KID}.json`);
  fs.writeFileSync(conn, "{}");
  const addProc = (pid: number, ppid: number, argv: string[], comm = "x") => {
    fs.mkdirSync(path.join(proc, String(pid)), { recursive: true });
    fs.writeFileSync(path.join(proc, String(pid), "cmdline"), argv.join("\0") + "\0");
    // A command name with spaces and ')' must not confuse the parser.
    fs.writeFileSync(path.join(proc, String(pid), "stat"), `${pid} (${comm}) S ${ppid} ${pid} ${pid} 0 -1`);
  };
  addProc(1, 0, ["/sbin/init"]);
  addProc(100, 1, ["/venv/bin/python", "/venv/bin/jupyter-server", `--IdentityProvider.token=${TOKEN}`], "jupyter-server");
  addProc(200, 100, opts.kernelArgv ?? ["/venv/bin/python", "-m", "ipykernel_launcher", "-f", conn], "python3 (k) x");
  addProc(300, 200, ["/bin/sh", "-c", "node x.js"], "sh");
  addProc(400, 300, ["node", "x.js"], "node");
  const info = { url: "http://127.0.0.1:8888/", token: TOKEN, root_dir: projectRoot, pid: 100, base_url: "/", hostname: "127.0.0.1", port: 8888, secure: false, sock: "", version: "2.21.0" };
  const file = opts.serverFile === undefined ? info : opts.serverFile;
  if (file !== null) fs.writeFileSync(path.join(runtime, "jpserver-100.json"), typeof file === "string" ? file : JSON.stringify(file));
  for (const [pid, extra] of Object.entries(opts.extraServers ?? {})) {
    fs.writeFileSync(path.join(runtime, `jpserver-${pid}.json`), JSON.stringify(extra));
  }
  return { root, proc, runtime, projectRoot, conn, info, cleanup: () => fs.rmSync(root, { recursive: true, force: true }) };
}

function expectConfigError(fn: () => unknown, code: "not_configured" | "bad_config"): ConfigError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(isSenseError(caught)).toBe(true);
  expect(caught).toBeInstanceOf(ConfigError);
  expect((caught as ConfigError).code).toBe(code);
  expect((caught as Error).message).not.toContain(TOKEN);
  return caught as ConfigError;
}

describe("discover", () => {
  let t: ReturnType<typeof fakeTree>;
  afterEach(() => t?.cleanup());

  it("finds the kernel of an ancestor process and its server's runtime file", () => {
    t = fakeTree();
    const ctx = discover({ env: { JPY_PARENT_PID: "100" }, procRoot: t.proc, pid: 400, cwd: "/somewhere" });
    expect(ctx.source).toBe("runtime_file");
    expect(ctx.endpoint).toEqual({ baseUrl: "http://127.0.0.1:8888/", token: TOKEN });
    expect(ctx.rest.endpoint).toEqual(ctx.endpoint);
    expect(ctx.kernelId).toBe(KID);
    expect(ctx.connectionFile).toBe(t.conn);
    expect(ctx.dashboardId).toBe(KID);
    expect(ctx.masterId).toBe(KID);
    expect(ctx.isWorker).toBe(false);
    expect(ctx.projectHome).toBe(t.projectRoot);
    expect(ctx.serverRootDir).toBe(t.projectRoot);
    expect(ctx.runtimeDir).toBe(t.runtime);
    expect(ctx.serverPid).toBe(100);
  });

  it("uses the kernel's parent as the server pid when JPY_PARENT_PID is unset", () => {
    t = fakeTree();
    const ctx = discover({ env: {}, procRoot: t.proc, pid: 200 });
    expect(ctx.source).toBe("runtime_file");
    expect(ctx.kernelId).toBe(KID);
    expect(ctx.serverPid).toBe(100);
  });

  it("reads tslab's --config-path=<file> form too", () => {
    t = fakeTree();
    fs.writeFileSync(path.join(t.proc, "200", "cmdline"), ["node", "/x/tslab", "kernel", `--config-path=${t.conn}`].join("\0"));
    const ctx = discover({ env: {}, procRoot: t.proc, pid: 400 });
    expect(ctx.kernelId).toBe(KID);
    expect(ctx.runtimeDir).toBe(t.runtime);
  });

  it("falls back to the one live jpserver file when the named one is missing", () => {
    t = fakeTree({ serverFile: null, extraServers: { 100: { url: "http://127.0.0.1:9999/", token: TOKEN, root_dir: "/r" }, 4242: { url: "http://127.0.0.1:1/", token: "stale" } } });
    // 4242 has no /proc entry: a stale file from a SIGKILLed server.
    const ctx = discover({ env: { JPY_PARENT_PID: "555" }, procRoot: t.proc, pid: 400 });
    expect(ctx.endpoint.baseUrl).toBe("http://127.0.0.1:9999/");
    expect(ctx.serverRootDir).toBe("/r");
  });

  it("explicit options win over everything", () => {
    t = fakeTree();
    const env = { SENSE_API_URL: "http://other:1/", SENSE_API_TOKEN: "envtoken", JPY_PARENT_PID: "100" };
    const ctx = discover({ baseUrl: "http://127.0.0.1:8888", token: "opt-token", kernelId: "k-opt", projectHome: "rel/home", env, procRoot: t.proc, pid: 400, cwd: "/base" });
    expect(ctx.source).toBe("options");
    expect(ctx.endpoint).toEqual({ baseUrl: "http://127.0.0.1:8888/", token: "opt-token" });
    expect(ctx.kernelId).toBe("k-opt");
    expect(ctx.projectHome).toBe("/base/rel/home");
    // same port and path as the runtime file: it is the same server, so its root is known
    expect(ctx.serverRootDir).toBe(t.projectRoot);
  });

  it("SENSE_* variables come next, and set worker identity", () => {
    t = fakeTree();
    const env = {
      SENSE_API_URL: "http://10.0.0.5:9000/prefix",
      SENSE_API_TOKEN: "envtoken",
      SENSE_MASTER_ID: "master-1",
      SENSE_DASHBOARD_ID: "dash-2",
      SENSE_PROJECT_HOME: "/home/p",
      SENSE_KERNEL_ID: "k-env",
      JUPYTERHUB_SERVICE_URL: "http://127.0.0.1:1/user/a/",
      JUPYTERHUB_API_TOKEN: "hubtoken",
      JPY_PARENT_PID: "100",
    };
    const ctx = discover({ env, procRoot: t.proc, pid: 400 });
    expect(ctx.source).toBe("sense_env");
    expect(ctx.endpoint).toEqual({ baseUrl: "http://10.0.0.5:9000/prefix/", token: "envtoken" });
    expect(ctx.kernelId).toBe("k-env");
    expect(ctx.dashboardId).toBe("dash-2");
    expect(ctx.masterId).toBe("master-1");
    expect(ctx.isWorker).toBe(true);
    expect(ctx.projectHome).toBe("/home/p");
    // a different server than the runtime file's: its root_dir does not apply
    expect(ctx.serverRootDir).toBeUndefined();
  });

  it("a master's own SENSE_MASTER_ID equal to its dashboard id is not a worker", () => {
    const ctx = discover({ env: { SENSE_API_URL: "http://h:1/", SENSE_MASTER_ID: "m", SENSE_DASHBOARD_ID: "m" }, procRoot: "/nonexistent", pid: 1 });
    expect(ctx.isWorker).toBe(false);
    expect(ctx.masterId).toBe("m");
  });

  it("JupyterHub variables come before the runtime file", () => {
    t = fakeTree();
    const env = { JUPYTERHUB_SERVICE_URL: "http://:45678/", JUPYTERHUB_SERVICE_PREFIX: "/user/alice/", JUPYTERHUB_API_TOKEN: "hubtoken", JUPYTERHUB_USER: "alice", JPY_PARENT_PID: "100" };
    const ctx = discover({ env, procRoot: t.proc, pid: 400 });
    expect(ctx.source).toBe("jupyterhub");
    expect(ctx.endpoint).toEqual({ baseUrl: "http://127.0.0.1:45678/user/alice/", token: "hubtoken" });
    expect(ctx.kernelId).toBe(KID);
  });

  it("without a kernel a plain process gets a stable process id and cwd as project home", () => {
    const env = { SENSE_API_URL: "http://127.0.0.1:8888/" };
    const a = discover({ env, procRoot: "/nonexistent", pid: 4321, cwd: "/work/x" });
    const b = discover({ env, procRoot: "/nonexistent", pid: 4321, cwd: "/work/x" });
    expect(a.kernelId).toBeUndefined();
    expect(a.dashboardId).toMatch(/^process-4321-[0-9a-f]{8}$/);
    expect(b.dashboardId).toBe(a.dashboardId);
    expect(a.masterId).toBe(a.dashboardId);
    expect(a.projectHome).toBe("/work/x");
    expect(a.endpoint.token).toBe("");
    // one REST client per server and token
    expect(b.rest).toBe(a.rest);
    expect(discover({ env: { ...env, SENSE_API_TOKEN: "other" }, procRoot: "/nonexistent", pid: 4321 }).rest).not.toBe(a.rest);
  });

  it("not_configured names what to set", () => {
    const err = expectConfigError(() => discover({ env: {}, procRoot: "/nonexistent", pid: 4321 }), "not_configured");
    expect(err.message).toMatch(/SENSE_API_URL/);
    expect(err.message).toMatch(/SENSE_API_TOKEN/);
  });

  it("not_configured when the kernel's runtime file is missing or invalid, without showing the token", () => {
    t = fakeTree({ serverFile: JSON.stringify({ url: 42, token: TOKEN }) });
    const err = expectConfigError(() => discover({ env: { JPY_PARENT_PID: "100" }, procRoot: t.proc, pid: 400 }), "not_configured");
    expect(err.message).toContain(t.runtime);
  });

  it("not_configured for a server on a Unix socket", () => {
    t = fakeTree({ serverFile: { url: "http+unix://%2Ftmp%2Fs/", token: TOKEN, sock: "/tmp/s", pid: 100 } });
    const err = expectConfigError(() => discover({ env: { JPY_PARENT_PID: "100" }, procRoot: t.proc, pid: 400 }), "not_configured");
    expect(err.message).toMatch(/Unix socket/);
  });

  it.each([
    ["not a URL", "not a url", /not a URL/],
    ["not http", "ftp://h/", /http/],
    ["credentials in the URL", `http://user:${TOKEN}@h/`, /credentials/],
  ])("bad_config for SENSE_API_URL: %s", (_label, url, msg) => {
    const err = expectConfigError(() => discover({ env: { SENSE_API_URL: url }, procRoot: "/nonexistent", pid: 1 }), "bad_config");
    expect(err.message).toMatch(msg);
  });

  it("drops a token put in the URL's query", () => {
    const ctx = discover({ env: { SENSE_API_URL: `http://h:1/?token=${TOKEN}` }, procRoot: "/nonexistent", pid: 1 });
    expect(ctx.endpoint.baseUrl).toBe("http://h:1/");
  });

  it("printing or JSON-encoding a context never shows the token", () => {
    t = fakeTree();
    const ctx = discover({ env: { JPY_PARENT_PID: "100" }, procRoot: t.proc, pid: 400 });
    expect(inspect(ctx)).not.toContain(TOKEN);
    expect(inspect(ctx)).toContain("***");
    expect(JSON.stringify(ctx)).not.toContain(TOKEN);
    expect(JSON.parse(JSON.stringify(ctx)).endpoint).toEqual({ baseUrl: "http://127.0.0.1:8888/", token: "***" });
    expect(ctx.endpoint.token).toBe(TOKEN);
  });
});

describe("getContext", () => {
  const saved = { ...process.env };
  afterEach(() => {
    process.env = { ...saved };
    resetContext();
  });

  it("caches the discovered context until resetContext()", () => {
    process.env.SENSE_API_URL = "http://127.0.0.1:1111/";
    process.env.SENSE_API_TOKEN = "t-1";
    const a = getContext();
    expect(getContext()).toBe(a);
    process.env.SENSE_API_URL = "http://127.0.0.1:2222/";
    expect(getContext().endpoint.baseUrl).toBe("http://127.0.0.1:1111/");
    resetContext();
    expect(getContext().endpoint.baseUrl).toBe("http://127.0.0.1:2222/");
  });
});

describe("Discovery (an instance of its own)", () => {
  let t: ReturnType<typeof fakeTree>;
  afterEach(() => t?.cleanup());

  it("discovers from its injected environment and caches its own context until reset()", () => {
    t = fakeTree();
    const env: NodeJS.ProcessEnv = { JPY_PARENT_PID: "100" };
    const d = new Discovery({ env, procRoot: t.proc, pid: 400, cwd: "/somewhere" });
    const a = d.context();
    expect(a.source).toBe("runtime_file");
    expect(a.kernelId).toBe(KID);
    expect(a.projectHome).toBe(t.projectRoot);
    expect(d.context()).toBe(a);
    env.SENSE_API_URL = "http://127.0.0.1:3333/";
    expect(d.context()).toBe(a);
    d.reset();
    const b = d.context();
    expect(b.source).toBe("sense_env");
    expect(b.endpoint.baseUrl).toBe("http://127.0.0.1:3333/");
    // The process's default discovery saw none of it.
    expect(defaultDiscovery()).not.toBe(d);
  });

  it("a call's own options win over the instance's defaults, field by field", () => {
    t = fakeTree();
    const d = new Discovery({ env: { SENSE_API_URL: "http://127.0.0.1:4444/" }, procRoot: t.proc, pid: 400 });
    expect(d.discover().endpoint.baseUrl).toBe("http://127.0.0.1:4444/");
    expect(d.discover({ baseUrl: "http://127.0.0.1:5555/", env: undefined }).endpoint.baseUrl).toBe("http://127.0.0.1:5555/");
    const run = d.discoverRun({ env: { SENSE_BACKEND: "direct", SENSE_RUNTIME_DIR: t.runtime } });
    expect(run.backend).toBe("direct");
    expect(run.runtimeDir).toBe(t.runtime);
    expect(run.kernelId).toBe(KID);
  });

  it("shares one REST client per server and token within an instance, none across instances", () => {
    const env = { SENSE_API_URL: "http://127.0.0.1:6666/", SENSE_API_TOKEN: "t" };
    const one = new Discovery({ env, procRoot: "/nonexistent-proc", pid: 1 });
    const two = new Discovery({ env, procRoot: "/nonexistent-proc", pid: 1 });
    expect(one.discover().rest).toBe(one.discover().rest);
    expect(one.discover().rest).toBe(one.restClient({ baseUrl: "http://127.0.0.1:6666/", token: "t" }));
    expect(two.discover().rest).not.toBe(one.discover().rest);
    expect(one.restClient({ baseUrl: "http://127.0.0.1:6666/", token: "other" })).not.toBe(one.discover().rest);
    one.reset();
    expect(one.discover().rest).not.toBe(two.discover().rest);
  });

  it("throws not_configured and caches nothing, so a later call can succeed", () => {
    const env: NodeJS.ProcessEnv = {};
    const d = new Discovery({ env, procRoot: "/nonexistent-proc", pid: 1 });
    expectConfigError(() => d.context(), "not_configured");
    env.SENSE_API_URL = "http://127.0.0.1:7777/";
    expect(d.context().endpoint.baseUrl).toBe("http://127.0.0.1:7777/");
  });
});
