/**
 * The keeper (cleanup layer 2): a small detached process, one per master process, that notices
 * the master process die (even by SIGKILL) and at once deletes every worker session tagged with
 * that master, then exits. It needs no shared memory: the session name tags say which sessions
 * are the master's.
 *
 * Protocol: the master spawns `node keeper.js` (from a Deno master without node: `deno run
 * --allow-all keeper.js`, platform/deno.ts keeperArgv) detached with a stdin pipe and writes
 * newline-delimited JSON to it: first a {@link KeeperConfig} (it holds the token, which is why it
 * travels on the pipe, never in argv or env), then `{"worker": "<kernel id>"}` for each worker it
 * starts and `{"forget": "<kernel id>"}` for each it stopped, `{"envFile": "<path>"}` for each
 * worker env file it wrote and `{"forgetEnvFile": "<path>"}` once that file is gone (the keeper
 * removes those still there when the master dies). The master dying closes the pipe (an
 * instant signal); a `kill(pid, 0)` poll every `pollMs` is the backstop. If the Jupyter Server is
 * gone too, the keeper kills the local worker kernel processes itself (tslab kernels outlive a
 * SIGKILLed server), finding them by the `kernel-<id>.json` connection file on their argv.
 *
 * Kept small on purpose (Node built-ins, global fetch, and the package's session tags and pid
 * check): it must start fast.
 */
import * as fs from "node:fs";
import { pidAlive as alive, sameProcess } from "../../util/pid";
import { sleep } from "../../util/timing";
import { taggedFor } from "../session-tags";

/** The first message on the keeper's stdin. */
export interface KeeperConfig {
  baseUrl: string;
  token: string;
  masterId: string;
  masterPid: number;
  /** Poll interval for the master pid, ms (default 100). */
  pollMs?: number;
  /**
   * The direct backend's session store folder (direct/session-store.ts), when the master started
   * its kernels itself: then there is no server to ask (`baseUrl` is empty) and the keeper ends
   * the workers' process groups and removes their session files.
   */
  sessionStore?: string;
}

/** Pids of live processes whose argv holds `kernel-<id>.json` for one of `kernelIds`. Linux `/proc`. */
export function kernelProcesses(kernelIds: Iterable<string>, procRoot = "/proc"): number[] {
  const needles = [...kernelIds].map((id) => `kernel-${id}.json`);
  if (!needles.length) return [];
  const pids: number[] = [];
  let entries: string[];
  try {
    entries = fs.readdirSync(procRoot);
  } catch {
    return [];
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    try {
      const cmd = fs.readFileSync(`${procRoot}/${e}/cmdline`, "utf8");
      if (needles.some((n) => cmd.includes(n))) pids.push(Number(e));
    } catch {
      /* ended while we looked */
    }
  }
  return pids;
}


async function call(cfg: KeeperConfig, method: string, path: string, timeoutMs: number): Promise<Response> {
  return fetch(new URL(path, cfg.baseUrl.replace(/\/*$/, "/")), {
    method,
    headers: cfg.token ? { Authorization: `token ${cfg.token}` } : {},
    signal: AbortSignal.timeout(timeoutMs),
  });
}

/**
 * The direct backend's cleanup: every session in the store tagged for the master (or one of its
 * tracked kernels) has its process group killed and its session and connection files removed.
 * Reads the store's JSON by hand: the keeper must not load zod to start fast.
 */
function cleanUpDirect(store: string, masterId: string, workerIds: Set<string>): void {
  let names: string[];
  try {
    names = fs.readdirSync(store);
  } catch {
    names = [];
  }
  for (const n of names) {
    if (!n.endsWith(".json") || n.startsWith(".")) continue;
    const file = `${store}/${n}`;
    let s: { name?: unknown; pid?: unknown; pidStart?: unknown; connectionFile?: unknown; kernel?: { id?: unknown } };
    try {
      s = JSON.parse(fs.readFileSync(file, "utf8")) as typeof s;
    } catch {
      continue;
    }
    const kernelId = typeof s.kernel?.id === "string" ? s.kernel.id : undefined;
    if (!taggedFor(s.name, masterId) && !(kernelId && workerIds.has(kernelId))) continue;
    if (kernelId) workerIds.add(kernelId);
    // Only the group of the kernel recorded: its pid may be another process's by now. A kernel
    // without a recorded start time is still found below, by its connection file on its argv.
    if (typeof s.pid === "number" && Number.isInteger(s.pid) && s.pid > 1 && sameProcess(s.pid, typeof s.pidStart === "string" ? s.pidStart : undefined)) {
      try {
        process.kill(-s.pid, "SIGKILL");
      } catch {
        /* the group is gone */
      }
    }
    // The connection file holds the kernel's key: it must not outlive the kernel.
    if (typeof s.connectionFile === "string" && /\/kernel-[A-Za-z0-9-]+\.json$/.test(s.connectionFile)) fs.rmSync(s.connectionFile, { force: true });
    fs.rmSync(file, { force: true });
  }
  killAll(kernelProcesses(workerIds));
}

/** Deletes the master's worker sessions; when the server cannot be reached, kills the worker kernel processes. */
export async function cleanUp(cfg: KeeperConfig, workerIds: Set<string>): Promise<void> {
  if (cfg.sessionStore) return cleanUpDirect(cfg.sessionStore, cfg.masterId, workerIds);
  let sessions: { id: string; name?: string; kernel?: { id?: string } | null }[] | undefined;
  try {
    let res = await call(cfg, "GET", "api/sessions", 3_000);
    // jupyter_server answers 500 while a kernel is still starting (see RestClient.raw): ask again.
    for (let i = 0; i < 3 && res.status === 500; i++) {
      await sleep(50 * (i + 1));
      res = await call(cfg, "GET", "api/sessions", 3_000);
    }
    if (res.ok) sessions = (await res.json()) as typeof sessions;
  } catch {
    sessions = undefined;
  }
  if (sessions) {
    const mine = sessions.filter((s) => taggedFor(s.name, cfg.masterId) || (s.kernel?.id !== undefined && workerIds.has(s.kernel.id)));
    for (const s of mine) if (s.kernel?.id) workerIds.add(s.kernel.id);
    const deletes = Promise.all(
      mine.map(async (s) => {
        try {
          await call(cfg, "DELETE", `api/sessions/${encodeURIComponent(s.id)}`, 15_000);
        } catch {
          /* the process sweep below still runs */
        }
      }),
    );
    // The master is gone, so nobody needs the workers' state: kill their processes now instead of
    // waiting out the server's polite shutdown (interrupt, shutdown_request, grace period).
    // The DELETEs are already on their way, so the server removes rather than restarts them.
    killAll(kernelProcesses(workerIds));
    await deletes;
  }
  // The server kills what it deleted; whatever is still running (a server that is gone, a tslab
  // kernel that ignored its shutdown) is killed here.
  killAll(kernelProcesses(workerIds));
}

/** Removes worker env files (sealed, see env-file.ts) a dead master wrote; only files named so. */
function removeFiles(files: Iterable<string>): void {
  for (const f of files) {
    if (!/[\\/]env-[0-9a-f]{8}-\d+-[0-9a-f]{24}\.sealed$/.test(f)) continue;
    try {
      fs.rmSync(f, { force: true });
    } catch {
      /* gone, or not ours to remove */
    }
  }
}

function killAll(pids: number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      /* gone */
    }
  }
}

/** The keeper's main loop: read the config, watch the master, clean up, exit. */
export function runKeeper(input: NodeJS.ReadableStream = process.stdin): void {
  let cfg: KeeperConfig | undefined;
  const workers = new Set<string>();
  const envFiles = new Set<string>();
  let buffer = "";
  let done = false;
  let timer: NodeJS.Timeout | undefined;

  const finish = async () => {
    if (done) return;
    done = true;
    if (timer) clearInterval(timer);
    // First, before any network call: env files of launches the master did not finish.
    removeFiles(envFiles);
    if (cfg) await cleanUp(cfg, workers);
    process.exit(0);
  };

  input.setEncoding("utf8");
  input.on("data", (chunk: string) => {
    buffer += chunk;
    let nl: number;
    while ((nl = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      let msg: Record<string, unknown>;
      try {
        msg = JSON.parse(line) as Record<string, unknown>;
      } catch {
        continue;
      }
      if (!cfg) {
        cfg = msg as unknown as KeeperConfig;
        const c = cfg;
        timer = setInterval(() => {
          if (!alive(c.masterPid)) void finish();
        }, c.pollMs ?? 100);
      } else if (typeof msg.worker === "string") workers.add(msg.worker);
      else if (typeof msg.forget === "string") workers.delete(msg.forget);
      else if (typeof msg.envFile === "string") envFiles.add(msg.envFile);
      else if (typeof msg.forgetEnvFile === "string") envFiles.delete(msg.forgetEnvFile);
    }
  });
  // The master's end of the pipe closes when the master exits, however it exits.
  input.on("end", () => void finish());
  input.on("close", () => void finish());
  input.on("error", () => void finish());
}

if (require.main === module) {
  // Detached from the master's terminal: a hang-up or Ctrl-C aimed at the master is not for us.
  process.on("SIGHUP", () => undefined);
  process.on("SIGINT", () => undefined);
  runKeeper();
}
