/**
 * Whether a process exists, and whether it is still the one that was recorded. Node built-ins
 * only, on purpose: the keeper (a detached process that must start fast) and the kernels' parent
 * watch load it too.
 */
import type * as ChildProcess from "node:child_process";
import * as fs from "node:fs";

/**
 * True when a process with `pid` exists (also when it belongs to another user: `EPERM`).
 * `kill(pid, 0)` sends no signal, it only checks.
 */
export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * A process's start time, as a token that changes when its pid is reused: `proc:<ticks since
 * boot>` (Linux, field 22 of `/proc/<pid>/stat`), else `ps:<lstart>` (`ps -o lstart=`, macOS and
 * BSDs; argv, no shell). `undefined` when the process is gone or neither source answers.
 * @param procRoot the proc file system (tests point it at a fake tree); `ps` is asked only when it has no such folder at all
 */
export function processStartTime(pid: number, procRoot = "/proc"): string | undefined {
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  let stat: string;
  try {
    stat = fs.readFileSync(`${procRoot}/${pid}/stat`, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT" || fs.existsSync(procRoot)) return undefined;
    return psStartTime(pid);
  }
  // The command name (field 2) is in parentheses and may hold spaces and ')': fields 3.. follow the last ')'.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const start = fields[22 - 3];
  return start && /^\d+$/.test(start) ? `proc:${start}` : undefined;
}

function psStartTime(pid: number): string | undefined {
  // Loaded here, not at the top: only a system without /proc asks `ps`, and every kernel's boot imports this file.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { spawnSync } = require("node:child_process") as typeof ChildProcess;
  const r = spawnSync("ps", ["-o", "lstart=", "-p", String(pid)], { encoding: "utf8", timeout: 5_000 });
  const out = r.status === 0 ? r.stdout.trim() : "";
  return out ? `ps:${out}` : undefined;
}

/**
 * True only when the process `pid` exists AND is the one whose start time was recorded as
 * `started` ({@link processStartTime}): what must hold before signalling a recorded pid (or its
 * process group), since after the recorded process ended its pid may belong to any other process.
 * False when nothing was recorded or the identity cannot be read: never signal what cannot be confirmed.
 */
export function sameProcess(pid: number, started: string | undefined, procRoot = "/proc"): boolean {
  if (!started || !pidAlive(pid)) return false;
  return processStartTime(pid, procRoot) === started;
}
