/**
 * When the Jupyter Server that started a kernel is gone (SIGKILLed, say), the kernel must go too:
 * tslab has no parent poller, and a kernel that outlives its server is a leak nobody can reach.
 */
import { pidAlive } from "../src/util/pid";

/**
 * Calls `onGone` once, within about `everyMs`, after the server process is gone: the process
 * `JPY_PARENT_PID` names no longer exists, or this process was re-parented. The server's pid
 * comes from the environment, not from `process.ppid` now: a kernel still starting when the
 * server died was re-parented before it could look.
 */
export function watchParent(onGone: () => void, env: NodeJS.ProcessEnv = process.env, everyMs = 1_000): void {
  const server = Number(env.JPY_PARENT_PID);
  if (!Number.isInteger(server) || server <= 1) return;
  const startPpid = process.ppid;
  let fired = false;
  const check = () => {
    if (fired) return;
    if (!pidAlive(server) || (startPpid === server && process.ppid !== server)) {
      fired = true;
      onGone();
    }
  };
  check();
  setInterval(check, everyMs).unref();
}
