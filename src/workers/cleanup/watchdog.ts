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
 *
 * Where it can, the preamble starts the same watchdog as a bash process instead (the sentinel,
 * {@link WATCHDOG_SENTINEL_SOURCE}): a Node thread is a second V8 isolate, ~10 MiB of a worker's
 * ~65, where bash is ~3 MiB. The sentinel needs bash and a plain-HTTP server (it talks HTTP over
 * bash's /dev/tcp); anything else (https, no bash, names it cannot pass safely) gets the thread.
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
 * The sentinel: the watchdog thread's checks as a bash script, run as the kernel's child with
 * `bash -c <source> sense-watchdog <kernelPid> <serverPid> <masterPid> <sameHost 1|0> <masterKind>
 * <intervalMs> <graceMs> <tcpHost> <port> <hostHeader> <basePath> <sessionId> <masterId> <direct 1|0>`.
 * Its stdin is a pipe from the kernel: the first line is the token (so it is never in argv or an
 * env a `ps` shows); after that nothing comes, and the pipe's end (EOF) means the kernel is gone
 * however it went, so the sentinel never outlives it. It sleeps by reading that pipe with a
 * timeout (no `sleep` process a second). It runs in a process group of its own: jupyter_client
 * interrupts a cell by sending SIGINT to the kernel's whole group, and one that came before bash
 * had set its `trap` would end the sentinel.
 */
export const WATCHDOG_SENTINEL_SOURCE = `trap '' INT
kernel=$1 server=$2 master=$3 same=$4 kind=$5 interval=$6 grace=$7 host=$8 port=$9
hosthdr=\${10} base=\${11} session=\${12} masterid=\${13} direct=\${14}
IFS= read -r token || exit 0
secs() { printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)); }
tick=$(secs "$interval")
settle=$(secs "$grace")
alive() {
  kill -0 "$1" 2>/dev/null && return 0
  case $(kill -0 "$1" 2>&1) in *"No such process"*) return 1 ;; esac
  return 0
}
nap() {
  local line
  read -r -t "$1" line
  [ $? -gt 128 ]
}
status=0
http() {
  status=0
  [ -n "$host" ] || return 0
  exec 3<>"/dev/tcp/$host/$port" || return 0
  local auth=""
  [ -n "$token" ] && auth="Authorization: token $token"$'\\r\\n'
  printf '%s %s%s HTTP/1.1\\r\\nHost: %s\\r\\n%sContent-Length: 0\\r\\nConnection: close\\r\\n\\r\\n' "$1" "$base" "$2" "$hosthdr" "$auth" >&3
  local version code reason
  read -r -t 5 version code reason <&3 && status=$code
  exec 3>&- 3<&-
  return 0
}
finish() {
  kill -TERM "$kernel" 2>/dev/null
  nap 2 && kill -KILL "$kernel" 2>/dev/null
  exit 0
}
while nap "$tick"; do
  alive "$kernel" || exit 0
  if [ "$server" -gt 1 ] && ! alive "$server"; then
    kill -KILL "$kernel" 2>/dev/null
    exit 0
  fi
  gone=0
  if [ "$master" -gt 0 ] && [ "$same" = 1 ] && ! alive "$master"; then gone=1; fi
  if [ "$gone" = 0 ] && [ "$kind" = kernel ]; then
    http GET "api/kernels/$masterid" 2>/dev/null
    [ "$status" = 404 ] && gone=1
  fi
  [ "$gone" = 1 ] || continue
  [ "$direct" = 1 ] && finish
  http DELETE "api/sessions/$session" 2>/dev/null
  nap "$settle" && finish
  exit 0
done
exit 0
`;

/**
 * JavaScript (an expression statement) that starts the watchdog from a worker's preamble (the
 * sentinel when bash and the server allow, else the thread),
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
    const url = data.baseUrl ? new URL(data.baseUrl) : null;
    const bash = ["/bin/bash", "/usr/bin/bash"].find(function (b) { try { require("fs").accessSync(b, require("fs").constants.X_OK); return true; } catch (e) { return false; } });
    // Only names that cannot change the meaning of an HTTP request line or header go to the sentinel.
    const plain = function (v) { return /^[A-Za-z0-9._:~%-]*$/.test(v); };
    const host = url ? url.hostname.replace(/^\\[|\\]$/g, "") : "";
    if (bash && process.env.SENSE_WATCHDOG_THREAD !== "1" && (!url || (url.protocol === "http:" && plain(host) && plain(url.host) && /^[A-Za-z0-9._~%\\/-]*$/.test(url.pathname))) && plain(data.sessionId) && plain(data.masterId) && plain(data.masterKind) && !/[\\r\\n]/.test(data.token)) {
      const args = [process.pid, data.serverPid, data.masterPid, data.sameHost ? 1 : 0, data.masterKind, data.intervalMs, data.graceMs, host, url ? url.port || "80" : "", url ? url.host : "", url ? url.pathname : "", encodeURIComponent(data.sessionId), encodeURIComponent(data.masterId), data.direct ? 1 : 0].map(String);
      const child = require("child_process").spawn(bash, ["-c", ${JSON.stringify(WATCHDOG_SENTINEL_SOURCE)}, "sense-watchdog"].concat(args), { stdio: ["pipe", "ignore", "ignore"], env: { LC_ALL: "C", PATH: "/usr/bin:/bin" }, detached: true });
      child.on("error", function () { /* the keeper still runs */ });
      child.stdin.on("error", function () { /* the sentinel ended */ });
      child.stdin.write(data.token + "\\n");
      child.unref();
      child.stdin.unref();
      // Held for the kernel's lifetime: the pipe's end is how the sentinel knows the kernel is gone.
      globalThis[Symbol.for("sense-tslab.watchdog")] = child;
      return;
    }
    const w = new Worker(${JSON.stringify(WATCHDOG_THREAD_SOURCE)}, { eval: true, workerData: data, env: {}, stdout: true, stderr: true });
    w.on("error", function () { /* a failed watchdog must not break the kernel; the keeper still runs */ });
    w.unref();
  })();`;
}
