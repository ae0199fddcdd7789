/**
 * The JavaScript workers' watchdog (cleanup layer 3) as a worker thread inside the worker's kernel
 * process. It cannot be a timer on the kernel's own event loop: user code that never yields
 * (`for (;;) {}`) would starve it, and a worker whose master died would spin at 100 % CPU forever.
 * The thread has its own event loop, so it keeps checking however busy the main thread is, and it
 * can end the whole process.
 *
 * Every `intervalMs` it checks:
 * - the Jupyter Server that started the kernel (`serverPid`, from `JPY_PARENT_PID`) is gone: the
 *   kernel is unreachable now, so the process ends at once;
 * - the master is gone (its process no longer exists, when it runs on this host; for a kernel
 *   master, `GET /api/kernels/<masterId>` answers 404): the thread deletes the worker's session
 *   (the server then shuts the kernel down, running its shutdown hooks when the main thread is
 *   free) and, if the process is still there `graceMs` later, ends it: SIGTERM, then SIGKILL
 *   (a spinning main thread never runs a SIGTERM handler).
 *
 * The source is plain JavaScript (Node built-ins only), shipped to the worker in its preamble and
 * started with `new Worker(source, { eval: true })`, so it runs in any Node-based kernel: sense-ts,
 * sense-js, sense-fast, with no call site in the kernels themselves.
 */

/** What the watchdog thread is given (as `workerData`). Holds the token: memory only, never argv or env. */
export interface WatchdogData {
  /** The Jupyter Server's base URL, ending in `/`. */
  baseUrl: string;
  token: string;
  masterId: string;
  /** `kernel` for a kernel master (checked through the REST API too), else `process`. */
  masterKind: string;
  /** The master's pid; checked only when `sameHost`. 0 = unknown. */
  masterPid: number;
  sameHost: boolean;
  /** The worker's own session, deleted when the master is gone. */
  sessionId: string;
  /** The Jupyter Server's pid (`JPY_PARENT_PID`); 0 = unknown. */
  serverPid: number;
  intervalMs: number;
  /** How long the server gets to shut the kernel down after the session delete. */
  graceMs: number;
  /** No Jupyter Server (the direct backend): the master started this kernel, so it just ends with it. */
  direct?: boolean;
}

/** Default of {@link WatchdogData.graceMs}: jupyter_client's shutdown waits ~5 s before it kills. */
export const WATCHDOG_GRACE_MS = 3_000;

/**
 * The thread's source: runs `workerData` ({@link WatchdogData}) until it ends its process.
 * Kept as text (not a compiled function) so it is exactly what the worker runs.
 */
export const WATCHDOG_THREAD_SOURCE = `"use strict";
const { workerData } = require("worker_threads");
const d = workerData;
const base = d.baseUrl ? new URL(d.baseUrl) : null;
const http = require(base && base.protocol === "https:" ? "https" : "http");
const headers = d.token ? { Authorization: "token " + d.token } : {};
const alive = (pid) => {
  try { process.kill(pid, 0); return true; } catch (e) { return !(e && e.code === "ESRCH"); }
};
const call = (method, path) => new Promise((resolve) => {
  if (!base) return resolve(0);
  const req = http.request(new URL(path, base), { method, headers, timeout: 5000 }, (res) => { res.resume(); resolve(res.statusCode); });
  req.on("error", () => resolve(0));
  req.on("timeout", () => req.destroy());
  req.end();
});
const end = () => {
  try { process.kill(process.pid, "SIGTERM"); } catch (e) { /* gone */ }
  setTimeout(() => { try { process.kill(process.pid, "SIGKILL"); } catch (e) { /* gone */ } }, 2000);
};
let busy = false;
let ending = false;
const timer = setInterval(async () => {
  if (busy || ending) return;
  busy = true;
  try {
    if (d.serverPid > 1 && !alive(d.serverPid)) {
      ending = true;
      try { process.kill(process.pid, "SIGKILL"); } catch (e) { /* gone */ }
      return;
    }
    let gone = d.masterPid > 0 && d.sameHost && !alive(d.masterPid);
    if (!gone && d.masterKind === "kernel") gone = (await call("GET", "api/kernels/" + encodeURIComponent(d.masterId))) === 404;
    if (gone && d.direct) {
      ending = true;
      clearInterval(timer);
      end();
      return;
    }
    if (gone) {
      ending = true;
      clearInterval(timer);
      await call("DELETE", "api/sessions/" + encodeURIComponent(d.sessionId));
      setTimeout(end, d.graceMs);
    }
  } finally {
    busy = false;
  }
}, d.intervalMs);
`;

/**
 * JavaScript (an expression statement) that starts the watchdog thread from a worker's preamble,
 * where `env` is the worker's environment object and `os` the `os` module. The thread is unref'd:
 * it never keeps the kernel alive by itself.
 */
export function watchdogStarter(): string {
  return `(function () {
    const { Worker } = require("worker_threads");
    const data = {
      baseUrl: env.SENSE_API_URL || "",
      token: env.SENSE_API_TOKEN || "",
      masterId: env.SENSE_MASTER_ID || "",
      masterKind: env.SENSE_MASTER_KIND || "",
      masterPid: Number(env.SENSE_MASTER_PID || 0),
      sameHost: env.SENSE_MASTER_HOST === os.hostname(),
      sessionId: env.SENSE_SESSION_ID || "",
      serverPid: Number(process.env.JPY_PARENT_PID || 0),
      intervalMs: Number(env.SENSE_WATCHDOG_INTERVAL_MS || 1000),
      graceMs: ${WATCHDOG_GRACE_MS},
      direct: env.SENSE_BACKEND === "direct",
    };
    const w = new Worker(${JSON.stringify(WATCHDOG_THREAD_SOURCE)}, { eval: true, workerData: data, env: {}, stdout: true, stderr: true });
    w.on("error", function () { /* a failed watchdog must not break the kernel; the keeper still runs */ });
    w.unref();
  })();`;
}
