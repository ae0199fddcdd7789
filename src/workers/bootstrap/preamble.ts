/**
 * The code run in a worker before anything of the user's: it loads the worker's environment from
 * a sealed 0600 file the master wrote (env-file.ts: the Jupyter REST API takes no env, and a token
 * must never travel in code or session names; the code carries only the file's one-time key),
 * deletes the file, and starts the worker-side watchdog (cleanup layer 3).
 *
 * The watchdog polls every `SENSE_WATCHDOG_INTERVAL_MS` (default 1000): when the master is gone it
 * deletes its own session (`DELETE /api/sessions/<SENSE_SESSION_ID>`) and, if its process is still
 * there {@link WATCHDOG_GRACE_MS} later, ends it. "Gone" means: the master process no longer exists
 * (when `SENSE_MASTER_HOST` is this host), or, for a kernel master, `GET /api/kernels/<SENSE_MASTER_ID>`
 * answers 404. It runs beside the user's code, however busy: a Python thread (the interpreter
 * switches threads every 5 ms even in `while True: pass`), a worker thread in JavaScript kernels
 * (watchdog.ts). JS/TS workers also exit when the Jupyter Server that started them is gone, because
 * tslab (unlike ipykernel) has no parent poller.
 */

import { WATCHDOG_GRACE_MS, watchdogStarter } from "../cleanup/watchdog";

/** Kernel languages the preamble exists for. */
export type PreambleLanguage = "python" | "javascript";

/** Maps a kernelspec `language` to a preamble language, or `null` when Sense has none for it. */
export function preambleLanguage(kernelLanguage: string | undefined): PreambleLanguage | null {
  const l = (kernelLanguage ?? "").toLowerCase();
  if (l === "python" || l === "python3") return "python";
  if (l === "javascript" || l === "typescript" || l === "js" || l === "ts") return "javascript";
  return null;
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * The preamble source for `language`, reading the sealed `envFile` with `key` (base64, see
 * env-file.ts). The path and the key are the only values embedded, both as base64 literals the
 * code decodes (the path's UTF-8): a JSON string literal of the path would let a project folder
 * named with U+2028 end a line of the Python source (IPython splits lines on it).
 * `watchdog: false` leaves the watchdog out (tests of the keeper alone).
 * @throws Error when `key` is not base64 (writeSealedEnvFile makes it).
 */
export function buildPreamble(language: PreambleLanguage, envFile: string, options: { watchdog?: boolean; key: string }): string {
  if (!BASE64.test(options.key)) throw new Error("internal error: the env file key must be base64");
  const p = `"${Buffer.from(envFile, "utf8").toString("base64")}"`;
  const k = `"${options.key}"`;
  const watchdog = options.watchdog !== false;
  return language === "python" ? pythonPreamble(p, k, watchdog) : jsPreamble(p, k, watchdog);
}

function pythonPreamble(p: string, k: string, watchdog: boolean): string {
  return `def __sense_preamble():
    import base64, json, os
    p = base64.b64decode(${p}).decode("utf-8")
    with open(p, "rb") as f:
        sealed = f.read()
    os.unlink(p)
    pad = base64.b64decode(${k})
    env = json.loads((int.from_bytes(sealed, "big") ^ int.from_bytes(pad, "big")).to_bytes(len(sealed), "big").decode("utf-8"))
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
                # The server shuts the kernel down; if it is still here after the grace, end it.
                time.sleep(${WATCHDOG_GRACE_MS / 1000})
                os._exit(0)

    threading.Thread(target=watch, name="sense-watchdog", daemon=True).start()

__sense_preamble()
del __sense_preamble
`;
}

// Valid as both JavaScript and (non-strict) TypeScript: no annotations, modules through require.
// The watchdog is a worker thread (watchdog.ts): a timer here would never fire while user code spins.
// Deno's kernel has no `require`: there the built-ins come from `process.getBuiltinModule` (read
// through Reflect.get, so a TypeScript kernel whose Node types lack it still compiles this).
function jsPreamble(p: string, k: string, watchdog: boolean): string {
  return `(function (require) {
  const fs = require("fs");
  const os = require("os");
  const p = Buffer.from(${p}, "base64").toString("utf8");
  const sealed = fs.readFileSync(p);
  fs.unlinkSync(p);
  const pad = Buffer.from(${k}, "base64");
  for (let i = 0; i < sealed.length; i++) sealed[i] ^= pad[i];
  const env = JSON.parse(sealed.toString("utf8"));
  Object.assign(process.env, env);
  if (!${watchdog ? "true" : "false"} || env.SENSE_WATCHDOG === "0") return;
  ${watchdogStarter()}
})(typeof require === "function" ? require : Reflect.get(process, "getBuiltinModule"));
`;
}
