/**
 * The code run in a worker before anything of the user's: it loads the worker's environment from
 * a 0600 file the master wrote (the Jupyter REST API takes no env, and a token must never travel
 * in code or session names), deletes the file, and starts the worker-side watchdog (cleanup layer 3).
 *
 * The watchdog polls every `SENSE_WATCHDOG_INTERVAL_MS` (default 1000): when the master is gone it
 * deletes its own session (`DELETE /api/sessions/<SENSE_SESSION_ID>`). "Gone" means: the master
 * process no longer exists (when `SENSE_MASTER_HOST` is this host), or, for a kernel master,
 * `GET /api/kernels/<SENSE_MASTER_ID>` answers 404. JS/TS workers also exit when the Jupyter Server
 * that started them is gone, because tslab (unlike ipykernel) has no parent poller.
 */

/** Kernel languages the preamble exists for. */
export type PreambleLanguage = "python" | "javascript";

/** Maps a kernelspec `language` to a preamble language, or `null` when Sense has none for it. */
export function preambleLanguage(kernelLanguage: string | undefined): PreambleLanguage | null {
  const l = (kernelLanguage ?? "").toLowerCase();
  if (l === "python" || l === "python3") return "python";
  if (l === "javascript" || l === "typescript" || l === "js" || l === "ts") return "javascript";
  return null;
}

/**
 * The preamble source for `language`, reading `envFile`. The file path is the only value embedded,
 * as a JSON string literal (valid in Python and JS), so nothing can break out of the literal.
 * `watchdog: false` leaves the watchdog out (tests of the keeper alone).
 */
export function buildPreamble(language: PreambleLanguage, envFile: string, options: { watchdog?: boolean } = {}): string {
  const p = JSON.stringify(envFile);
  const watchdog = options.watchdog !== false;
  return language === "python" ? pythonPreamble(p, watchdog) : jsPreamble(p, watchdog);
}

function pythonPreamble(p: string, watchdog: boolean): string {
  return `def __sense_preamble():
    import json, os
    p = ${p}
    with open(p, "r", encoding="utf-8") as f:
        env = json.load(f)
    os.unlink(p)
    os.environ.update(env)
    if not ${watchdog ? "True" : "False"} or env.get("SENSE_WATCHDOG") == "0":
        return
    import socket, threading, time, urllib.error, urllib.request
    if env.get("SENSE_BACKEND") == "direct":
        # No server to ask or to tell: the master started this kernel, so its pid is the whole truth.
        master_pid = int(env.get("SENSE_MASTER_PID") or 0)
        interval = int(env.get("SENSE_WATCHDOG_INTERVAL_MS") or 1000) / 1000.0

        def watch_direct():
            while master_pid:
                time.sleep(interval)
                try:
                    os.kill(master_pid, 0)
                except ProcessLookupError:
                    os._exit(0)
                except PermissionError:
                    pass

        threading.Thread(target=watch_direct, name="sense-watchdog", daemon=True).start()
        return
    base = env["SENSE_API_URL"]
    headers = {"Authorization": "token " + env["SENSE_API_TOKEN"]} if env.get("SENSE_API_TOKEN") else {}
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    master_id = env["SENSE_MASTER_ID"]
    session_id = env["SENSE_SESSION_ID"]
    master_pid = int(env.get("SENSE_MASTER_PID") or 0)
    same_host = env.get("SENSE_MASTER_HOST") == socket.gethostname()
    interval = int(env.get("SENSE_WATCHDOG_INTERVAL_MS") or 1000) / 1000.0

    def master_gone():
        if master_pid and same_host:
            try:
                os.kill(master_pid, 0)
            except ProcessLookupError:
                return True
            except PermissionError:
                pass
        if env.get("SENSE_MASTER_KIND") == "kernel":
            try:
                opener.open(urllib.request.Request(base + "api/kernels/" + master_id, headers=headers), timeout=5).close()
            except urllib.error.HTTPError as e:
                return e.code == 404
            except Exception:
                return False
        return False

    def watch():
        while True:
            time.sleep(interval)
            if master_gone():
                try:
                    opener.open(urllib.request.Request(base + "api/sessions/" + session_id, method="DELETE", headers=headers), timeout=30).close()
                except Exception:
                    pass
                return

    threading.Thread(target=watch, name="sense-watchdog", daemon=True).start()

__sense_preamble()
del __sense_preamble
`;
}

// Valid as both JavaScript and (non-strict) TypeScript: no annotations, modules through require.
function jsPreamble(p: string, watchdog: boolean): string {
  return `(function () {
  const fs = require("fs");
  const os = require("os");
  const p = ${p};
  const env = JSON.parse(fs.readFileSync(p, "utf8"));
  fs.unlinkSync(p);
  Object.assign(process.env, env);
  if (!${watchdog ? "true" : "false"} || env.SENSE_WATCHDOG === "0") return;
  if (env.SENSE_BACKEND === "direct") {
    // No server to ask or to tell: the master started this kernel, so its pid is the whole truth.
    const mp = Number(env.SENSE_MASTER_PID || 0);
    const t = setInterval(function () {
      try { process.kill(mp, 0); } catch (e) { if (e && e.code === "ESRCH") process.exit(0); }
    }, Number(env.SENSE_WATCHDOG_INTERVAL_MS || 1000));
    t.unref();
    return;
  }
  const base = new URL(env.SENSE_API_URL);
  const http = require(base.protocol === "https:" ? "https" : "http");
  const headers = env.SENSE_API_TOKEN ? { Authorization: "token " + env.SENSE_API_TOKEN } : {};
  const masterPid = Number(env.SENSE_MASTER_PID || 0);
  const sameHost = env.SENSE_MASTER_HOST === os.hostname();
  const serverPid = Number(process.env.JPY_PARENT_PID || 0);
  const interval = Number(env.SENSE_WATCHDOG_INTERVAL_MS || 1000);
  const alive = function (pid) {
    try { process.kill(pid, 0); return true; } catch (e) { return !(e && e.code === "ESRCH"); }
  };
  const call = function (method, path) {
    return new Promise(function (resolve) {
      const req = http.request(new URL(path, base), { method: method, headers: headers, timeout: 5000 }, function (res) {
        res.resume();
        resolve(res.statusCode);
      });
      req.on("error", function () { resolve(0); });
      req.on("timeout", function () { req.destroy(); });
      req.end();
    });
  };
  let busy = false;
  const timer = setInterval(function () {
    if (busy) return;
    busy = true;
    (async function () {
      if (serverPid && !alive(serverPid)) process.exit(0);
      let gone = masterPid > 0 && sameHost && !alive(masterPid);
      if (!gone && env.SENSE_MASTER_KIND === "kernel") gone = (await call("GET", "api/kernels/" + encodeURIComponent(env.SENSE_MASTER_ID))) === 404;
      if (gone) {
        clearInterval(timer);
        await call("DELETE", "api/sessions/" + encodeURIComponent(env.SENSE_SESSION_ID));
      }
    })().finally(function () { busy = false; });
  }, interval);
  timer.unref();
})();
`;
}
