import { ChildProcess, spawn } from "node:child_process";
import * as path from "node:path";
import { REPO } from "./util";

/** The plain Node master fixture (test/fixtures/workers/master.js): launches workers as its MASTER_* variables say, prints `READY <json>` or `FAILED …`. */
export const MASTER = path.join(REPO, "test", "fixtures", "workers", "master.js");

/** A running master.js, as {@link spawnMaster} resolves it. */
export interface MasterProcess {
  child: ChildProcess;
  /** Its first `READY …` or `FAILED …` line. */
  line: string;
  /** Its stdout so far. */
  out: () => string;
  /** Its stderr so far. */
  err: () => string;
}

/**
 * Spawns master.js (argv, no shell) on the built library `index` with `env` as its whole
 * environment, adds it to `children` (the suite kills what is left there), and resolves once it
 * prints its `READY` or `FAILED` line.
 *
 * @param opts.cwd - its working folder (default: this process's).
 * @param opts.stdin - `"pipe"` keeps its stdin open (it ends with it), `"ignore"` (default) does not.
 * @throws (rejects) when the master exits before either line, with its stdout and stderr.
 */
export async function spawnMaster(index: string, env: NodeJS.ProcessEnv, children: ChildProcess[], opts: { cwd?: string; stdin?: "pipe" | "ignore" } = {}): Promise<MasterProcess> {
  const child = spawn(process.execPath, [MASTER, index], { env, cwd: opts.cwd, stdio: [opts.stdin ?? "ignore", "pipe", "pipe"] });
  children.push(child);
  let out = "";
  let err = "";
  child.stderr?.on("data", (d: Buffer) => (err += d.toString()));
  const line = await new Promise<string>((resolve, reject) => {
    child.stdout?.on("data", (d: Buffer) => {
      out += d.toString();
      const m = /^(READY|FAILED) .*$/m.exec(out);
      if (m) resolve(m[0]);
    });
    child.on("exit", (code) => reject(new Error(`master exited (${code}) before READY:\n${out}\n${err}`)));
  });
  return { child, line, out: () => out, err: () => err };
}

/** What a master's `READY` line reports. */
export interface MasterReady {
  ids: string[];
  keeperPid: number | null;
  failures: number;
}

/**
 * The data of a master's `READY` line, expecting no launch failure.
 *
 * @throws Error when the line is `FAILED …` (with the master's stderr); fails the test when a launch failed.
 */
export function masterReady(m: MasterProcess): MasterReady {
  if (!m.line.startsWith("READY ")) throw new Error(`master failed: ${m.line}\n${m.err()}`);
  const data = JSON.parse(m.line.slice("READY ".length)) as MasterReady;
  expect(data.failures).toBe(0);
  return data;
}
