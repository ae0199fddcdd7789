/**
 * The file a worker kernel loads its environment from (the Jupyter REST API takes no env, and a
 * token must never travel in code or session names). It is sealed with a one-time pad: the file
 * holds `env` XOR a random key as long as it, and the key travels only in the preamble's execute
 * request, in memory. So the file never holds the token: a master SIGKILLed before the worker read
 * it leaves bytes that mean nothing without a key that died with it.
 *
 * Such a leftover is still litter in the project folder, so it is swept: the keeper removes the
 * files its master wrote when the master dies, and every write removes the files of masters of
 * this host that no longer run (their pid is in the name).
 */
import { createHash, randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { pidAlive } from "../../util/pid";

/** A written env file and the key that opens it (base64). */
export interface SealedEnvFile {
  file: string;
  key: string;
}

/** Whose env file it is: the master process and its host (only this host's pids can be checked). */
export interface EnvFileOwner {
  pid: number;
  host: string;
}

const NAME = /^env-([0-9a-f]{8})-(\d+)-[0-9a-f]{24}\.sealed$/;

/** The folder env files are written to: `<projectHome>/.sense/`. */
export function envFileDir(projectHome: string): string {
  return path.join(projectHome, ".sense");
}

function hostTag(host: string): string {
  return createHash("sha256").update(host).digest("hex").slice(0, 8);
}

function xor(data: Buffer, key: Buffer): Buffer {
  const out = Buffer.allocUnsafe(data.length);
  for (let i = 0; i < data.length; i++) out[i] = data[i] ^ key[i];
  return out;
}

/**
 * Writes `env` sealed to a fresh 0600 file under `<projectHome>/.sense/` (created with `wx`:
 * never follows or reuses a file), after sweeping stale files of dead masters of this host;
 * `beforeWrite` learns the file's path before it exists.
 * Returns the file and its key. Throws what `fs` throws (the launch then fails).
 */
export function writeSealedEnvFile(
  projectHome: string,
  env: Record<string, string>,
  options: { owner?: EnvFileOwner; beforeWrite?: (file: string) => void } = {},
): SealedEnvFile {
  const owner = options.owner ?? { pid: process.pid, host: os.hostname() };
  const dir = envFileDir(projectHome);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  sweepStaleEnvFiles(dir, owner.host);
  const plain = Buffer.from(JSON.stringify(env), "utf8");
  const key = randomBytes(plain.length);
  const file = path.join(dir, `env-${hostTag(owner.host)}-${owner.pid}-${randomBytes(12).toString("hex")}.sealed`);
  // Announced first (to the keeper): a kill between the write and the announcement leaves nothing unknown.
  options.beforeWrite?.(file);
  fs.writeFileSync(file, xor(plain, key), { mode: 0o600, flag: "wx" });
  return { file, key: key.toString("base64") };
}

/** Reads a sealed env file with its key (what the preamble does, for tests and tools). Throws when unreadable. */
export function openSealedEnvFile(file: string, key: string): Record<string, string> {
  return JSON.parse(xor(fs.readFileSync(file), Buffer.from(key, "base64")).toString("utf8")) as Record<string, string>;
}


/**
 * Removes the env files in `dir` whose master ran on `host` and no longer runs (a master killed
 * mid-launch). Files of other hosts (a shared folder) and of live masters stay. Returns how many
 * went. Never throws.
 */
export function sweepStaleEnvFiles(dir: string, host: string = os.hostname()): number {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return 0;
  }
  const mine = hostTag(host);
  let removed = 0;
  for (const n of names) {
    const m = NAME.exec(n);
    if (!m || m[1] !== mine || pidAlive(Number(m[2]))) continue;
    try {
      fs.rmSync(path.join(dir, n), { force: true });
      removed++;
    } catch {
      /* someone else's to clean */
    }
  }
  return removed;
}
