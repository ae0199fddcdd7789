/**
 * Preloaded (`node -r`) into a Sense kernel started by the EG launcher: ends the kernel when the
 * launcher is gone. EG stops kernels through the launcher's process group, but a launcher killed
 * alone (SIGKILL to its pid) would otherwise leave an orphan kernel holding its ports.
 */
import * as fs from "node:fs";

/** The parent pid as the OS sees it now (`process.ppid` is fixed at start-up in Node). */
export function currentParentPid(): number {
  try {
    const stat = fs.readFileSync("/proc/self/stat", "utf8");
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) || 0;
  } catch {
    return process.ppid;
  }
}

const launcherPid = Number(process.env.SENSE_EG_LAUNCHER_PID ?? "0");
if (launcherPid > 0) {
  // polling: Linux gives a process no event when its parent dies (no prctl from Node)
  setInterval(() => {
    if (currentParentPid() !== launcherPid) process.exit(0);
  }, 500).unref();
}
