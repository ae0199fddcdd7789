/**
 * The master's side of the keeper (cleanup layer 2, see keeper.ts): spawns it once per master,
 * detached and unref'd so it neither dies with the master nor keeps the master alive, and tells
 * it about every worker started and stopped. One {@link KeeperLink} belongs to each Cluster.
 */
import { ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { within } from "../../util/timing";
import type { KeeperConfig } from "./keeper";
import { distPath } from "../../protocol/marks";
import { jsRuntime } from "../../jupyter/context";
import { keeperArgv } from "../../platform/deno";

interface RunningKeeper {
  child: ChildProcess;
  masterId: string;
  alive: boolean;
}

/**
 * Where the compiled keeper is: `SENSE_KEEPER_SCRIPT`, else `keeper.js` beside this module (the
 * built package), else the package's `dist/src/workers/cleanup/keeper.js` (running from TypeScript sources).
 * Returns `undefined` when none exists.
 */
export function keeperScript(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const candidates = [env.SENSE_KEEPER_SCRIPT, path.join(__dirname, "keeper.js"), distPath(path.resolve(__dirname, "..", "..", "..", ".."), "keeper")];
  return candidates.find((c): c is string => !!c && fs.existsSync(c));
}

/** The link from one master to its keeper process. */
export class KeeperLink {
  private keeper: RunningKeeper | undefined;

  /**
   * Starts the keeper for `config.masterId` unless one runs already. Returns its pid, or
   * `undefined` when no compiled keeper exists (then only cleanup layers 1 and 3 protect the
   * workers). Never throws.
   */
  ensure(config: KeeperConfig): number | undefined {
    if (this.keeper?.alive && this.keeper.masterId === config.masterId) return this.keeper.child.pid;
    const script = keeperScript();
    if (!script) return undefined;
    // Only what node needs to start: no token, no SENSE_* secrets in the keeper's environment.
    // (and for a keeper run by deno, no update check: it must not touch the network).
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH ?? "/usr/bin:/bin", DENO_NO_UPDATE_CHECK: "1" };
    const [cmd, ...args] = keeperArgv(script, jsRuntime());
    const child = spawn(cmd, args, { detached: true, stdio: ["pipe", "ignore", "ignore"], env });
    const running: RunningKeeper = { child, masterId: config.masterId, alive: true };
    child.on("exit", () => (running.alive = false));
    child.on("error", () => (running.alive = false));
    child.stdin?.on("error", () => (running.alive = false));
    child.stdin?.write(JSON.stringify(config) + "\n");
    child.unref();
    // The pipe handle would keep a plain Node master alive; the keeper must not.
    (child.stdin as unknown as { unref?: () => void } | null)?.unref?.();
    this.keeper = running;
    return child.pid;
  }

  /** Tells the keeper about a started worker kernel (so it can kill its process if the server is gone too). */
  track(kernelId: string): void {
    this.send({ worker: kernelId });
  }

  /** Tells the keeper a worker was stopped. */
  forget(kernelId: string): void {
    this.send({ forget: kernelId });
  }

  /** Tells the keeper about a worker env file about to be written: it removes it if this process dies before it is gone. */
  trackEnvFile(file: string): void {
    this.send({ envFile: file });
  }

  /** Tells the keeper an env file is gone. */
  forgetEnvFile(file: string): void {
    this.send({ forgetEnvFile: file });
  }

  /** The running keeper's pid, if any. */
  pid(): number | undefined {
    return this.keeper?.alive ? this.keeper.child.pid : undefined;
  }

  /**
   * Ends the keeper the way a clean master exit does (closing its pipe: it deletes any session
   * still tagged with the master, then exits) and resolves when it has exited, at most `timeoutMs`.
   */
  async stop(timeoutMs = 10_000): Promise<void> {
    const k = this.keeper;
    this.keeper = undefined;
    if (!k?.alive) return;
    const exited = new Promise<void>((resolve) => {
      if (!k.alive) return resolve();
      k.child.once("exit", () => resolve());
    });
    k.child.stdin?.end();
    await within(exited, timeoutMs);
  }

  private send(msg: Record<string, string>): void {
    if (!this.keeper?.alive) return;
    this.keeper.child.stdin?.write(JSON.stringify(msg) + "\n");
  }
}
