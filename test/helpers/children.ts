/**
 * Child processes a test starts and must not leave behind: each one is recorded, and
 * {@link ChildProcesses.killAll} (in `afterAll`) SIGKILLs those still running.
 */
import { ChildProcess, spawn } from "node:child_process";

/** The children of one test file. */
export class ChildProcesses {
  private readonly all: ChildProcess[] = [];

  /** Records `c` so {@link killAll} ends it; returns it. */
  track(c: ChildProcess): ChildProcess {
    this.all.push(c);
    return c;
  }

  /** A Node process that does nothing until killed (a stand-in master or server process). */
  sleeper(): ChildProcess {
    return this.track(spawn(process.execPath, ["-e", "setInterval(() => undefined, 1000)"], { stdio: "ignore" }));
  }

  /** SIGKILLs every recorded child that is still running. */
  killAll(): void {
    for (const c of this.all) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  }
}
