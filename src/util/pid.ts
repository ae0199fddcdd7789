/**
 * Whether a process exists. Dependency-free on purpose: the keeper (a detached process that must
 * start fast) and the kernels' parent watch load it too.
 */

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
