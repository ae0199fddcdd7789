/**
 * The watchdog as the preamble starts it (src/workers/cleanup/watchdog.ts `watchdogStarter`), in a real
 * Node process whose main thread never yields: with bash and a plain-HTTP server it is the bash
 * sentinel, a child of the kernel (~3 MiB instead of a ~10 MiB thread). It must do what the
 * thread does (end the process when the master goes, after deleting the session through the
 * server with the token; at once when the server goes), never outlive its kernel, stay out of
 * the SIGINT jupyter_client sends the kernel's process group, and leave the token out of its argv.
 */
import { ChildProcess, spawn } from "node:child_process";
import { ChildProcesses } from "../../helpers/children";
import * as fs from "node:fs";
import * as http from "node:http";
import * as os from "node:os";
import { watchdogStarter } from "../../../src/workers/cleanup/watchdog";
import { processAlive } from "../../helpers/util";

// The watchdog's own timings (3 s for the server to shut a kernel down, 2 s after SIGTERM) are the floor.
jest.setTimeout(30_000);

const children = new ChildProcesses();
afterAll(() => children.killAll());
const sleeper = () => children.sleeper();

interface Spinner {
  child: ChildProcess;
  /** The sentinel's pid (0: the thread was started instead), once the process spins. */
  started: Promise<number>;
  exited: Promise<NodeJS.Signals | null>;
}

/** A "kernel": starts the watchdog from the preamble's code with `env`, ignores SIGTERM, spins. */
function spinner(env: Record<string, string>, processEnv: Record<string, string> = {}): Spinner {
  const script = [
    `const env = ${JSON.stringify(env)};`,
    'const os = require("os");',
    watchdogStarter(),
    'process.on("SIGTERM", () => undefined);',
    'process.on("SIGINT", () => undefined);',
    'const s = globalThis[Symbol.for("sense-tslab.watchdog")];',
    'process.stdout.write("SPINNING " + (s ? s.pid : 0) + "\\n", () => { for (;;) {} });',
  ].join("\n");
  const child = spawn(process.execPath, ["-e", script], { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, ...processEnv }, detached: true });
  children.track(child);
  const started = new Promise<number>((resolve) => {
    let out = "";
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const m = /SPINNING (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
  });
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on("exit", (_code, sig) => resolve(sig)));
  return { child, started, exited };
}

/** Resolves once `pid` is gone (the sentinel has no handle here to wait on: it is the spinner's child). */
async function gone(pid: number, withinMs: number): Promise<boolean> {
  const until = Date.now() + withinMs;
  while (Date.now() < until) {
    if (!processAlive(pid)) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return !processAlive(pid);
}

/** The token the watchdogs here are given: a request that carries it is theirs. */
const TOKEN = "secret-token-0123";

/**
 * A real HTTP server standing in for the Jupyter Server's REST API: records the watchdog's
 * requests, answers `status(url)`. Its port is a free loopback port another process of the test
 * run may have used a moment ago: a client of that process's server left reconnecting (a
 * @jupyterlab/services kernel connection polls `GET /api/kernels/<id>` for ever) would reach this
 * one. The watchdog's requests are told by the base path it was given (unique to this server) or
 * the token it sends; only those are recorded (any of them, right or wrong), anything else is
 * answered 404 and ignored.
 */
async function api(status: (url: string) => number): Promise<{ url: string; requests: string[]; seen(n: number): Promise<void>; close(): void }> {
  const base = `/base-${process.pid}-${Math.random().toString(36).slice(2, 10)}/`;
  const requests: string[] = [];
  const waiters: { n: number; resolve: () => void }[] = [];
  const server = http.createServer((req, res) => {
    const url = req.url ?? "";
    const auth = req.headers.authorization ?? "-";
    if (!url.startsWith(base) && !auth.includes(TOKEN)) {
      res.statusCode = 404;
      res.end();
      return;
    }
    requests.push(`${req.method} ${url.startsWith(base) ? `/base/${url.slice(base.length)}` : url} ${auth}`);
    res.statusCode = status(url);
    res.end();
    for (const w of waiters.filter((x) => requests.length >= x.n)) w.resolve();
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  const seen = (n: number) => new Promise<void>((resolve) => (requests.length >= n ? resolve() : waiters.push({ n, resolve })));
  return { url: `http://127.0.0.1:${port}${base}`, requests, seen, close: () => server.close() };
}

const env = (over: Record<string, string>): Record<string, string> => ({
  SENSE_API_URL: "http://127.0.0.1:9/",
  SENSE_API_TOKEN: TOKEN,
  SENSE_MASTER_ID: "process-1-abc",
  SENSE_MASTER_KIND: "process",
  SENSE_MASTER_PID: "0",
  SENSE_MASTER_HOST: os.hostname(),
  SENSE_SESSION_ID: "5e55-1d",
  SENSE_WATCHDOG_INTERVAL_MS: "100",
  ...over,
});

it("a kernel master gone (its kernel 404): the session is deleted with the token, then the spinning process ends; the token is not in the sentinel's argv", async () => {
  const server = await api((url) => (url.includes("/api/kernels/") ? 404 : 204));
  try {
    // What a kernel connection of another test's server, left reconnecting, sends when it lands on
    // this port (seen in CI): not the watchdog's, so not among its requests below.
    const origin = new URL(server.url).origin;
    for (const path of [`/api/kernels/k-9?${Date.now()}`, "/api/kernels/k-9/channels?session_id=s-9"]) expect((await fetch(origin + path, { headers: { authorization: "token other" } })).status).toBe(404);
    const w = spinner(env({ SENSE_API_URL: server.url, SENSE_MASTER_KIND: "kernel", SENSE_MASTER_ID: "k-1" }));
    const sentinel = await w.started;
    expect(sentinel).toBeGreaterThan(0);
    expect(fs.readFileSync(`/proc/${sentinel}/cmdline`, "utf8")).not.toContain("secret-token-0123");
    expect(fs.readFileSync(`/proc/${sentinel}/environ`, "utf8")).not.toContain("secret-token-0123");
    expect(await w.exited).toBe("SIGKILL");
    expect(server.requests).toEqual(["GET /base/api/kernels/k-1 token secret-token-0123", "DELETE /base/api/sessions/5e55-1d token secret-token-0123"]);
    expect(await gone(sentinel, 5_000)).toBe(true);
  } finally {
    server.close();
  }
});

it("a live master keeps the process running, SIGINT to the process group included; once the master process is gone the process ends", async () => {
  const master = sleeper();
  const server = await api(() => 200);
  try {
    const w = spinner(env({ SENSE_API_URL: server.url, SENSE_MASTER_PID: String(master.pid), SENSE_MASTER_KIND: "kernel" }));
    const sentinel = await w.started;
    // jupyter_client interrupts a kernel by signalling its process group, at any moment (here at
    // once, before the sentinel could have set a trap): it must not reach the sentinel.
    process.kill(-w.child.pid!, "SIGINT");
    // Several checks pass (the master kernel answers 200) with both still there.
    await server.seen(3);
    expect(processAlive(sentinel)).toBe(true);
    expect(w.child.exitCode).toBeNull();
    master.kill("SIGKILL");
    expect(await w.exited).toBe("SIGKILL");
    expect(server.requests.at(-1)).toBe("DELETE /base/api/sessions/5e55-1d token secret-token-0123");
  } finally {
    server.close();
  }
});

it("the Jupyter Server process gone: the process ends at once", async () => {
  const jupyter = sleeper();
  const master = sleeper();
  const w = spinner(env({ SENSE_MASTER_PID: String(master.pid) }), { JPY_PARENT_PID: String(jupyter.pid) });
  expect(await w.started).toBeGreaterThan(0);
  jupyter.kill("SIGKILL");
  expect(await w.exited).toBe("SIGKILL");
  master.kill("SIGKILL");
});

it("the sentinel never outlives its kernel, however the kernel ends", async () => {
  const master = sleeper();
  const w = spinner(env({ SENSE_MASTER_PID: String(master.pid) }));
  const sentinel = await w.started;
  w.child.kill("SIGKILL");
  await w.exited;
  expect(await gone(sentinel, 5_000)).toBe(true);
  master.kill("SIGKILL");
});

it("an https server, or SENSE_WATCHDOG_THREAD=1, gets the thread instead (which still ends the process)", async () => {
  const master = sleeper();
  const a = spinner(env({ SENSE_API_URL: "https://127.0.0.1:9/", SENSE_MASTER_PID: String(master.pid) }));
  const b = spinner(env({ SENSE_MASTER_PID: String(master.pid) }), { SENSE_WATCHDOG_THREAD: "1" });
  expect(await a.started).toBe(0);
  expect(await b.started).toBe(0);
  master.kill("SIGKILL");
  expect(await a.exited).toBe("SIGKILL");
  expect(await b.exited).toBe("SIGKILL");
});
