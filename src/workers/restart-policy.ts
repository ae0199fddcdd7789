/**
 * The crash-loop rule of `launchWorkers(n, { restart: "on-failure", maxRestarts })`: what counts is
 * crashes in a row, not crashes since the launch, as restart policies do (systemd's StartLimitBurst
 * within StartLimitIntervalSec, Kubernetes resetting a container's back-off after it ran cleanly).
 * A worker that crashed once an hour all day is not in a crash loop; one that dies seconds after
 * each start is. Pure: the caller passes the times.
 */

/** How long a worker's kernel must have run for its next crash to count as the first in a row. */
export const HEALTHY_RUN_MS = 60_000;

/** What is known of a kernel when it crashes. */
export interface CrashFacts {
  /** How long the kernel ran, from its start (startup code sent) to the crash. */
  upMs: number;
  /** The kernel finished at least one request (an execute, a map chunk, a push or pull) with an `ok` reply. */
  finishedWork: boolean;
}

/**
 * The count of crashes in a row, this one included: 1 when the crashed kernel ran at least
 * `healthyMs` or finished a request (it was healthy: the count starts again), else `before + 1`,
 * `before` being the crashes in a row that preceded this kernel's start (0 after a launch or a
 * `restartWorkers`). The worker is restarted while the result is at most `maxRestarts`. Never throws.
 */
export function crashesInARow(before: number, crash: CrashFacts, healthyMs = HEALTHY_RUN_MS): number {
  return crash.finishedWork || crash.upMs >= healthyMs ? 1 : before + 1;
}
