/**
 * The sessions of the direct backend: what a Jupyter Server's `/api/sessions` is for the server
 * backend. One folder in the Jupyter runtime folder (`<runtime>/sense-sessions/`, 0700) with one
 * JSON file per session, each replaced atomically (write a temporary file, then rename), so every
 * process of the user (a master, its workers listing their siblings, the keeper) reads a whole
 * record or none, and no process has to be up to answer.
 *
 * Why files and not a loopback endpoint of the master: the store must still be readable when the
 * master is gone (the keeper and the workers' watchdogs clean up from it), it needs no port, no
 * secret and no server loop inside a kernel that may be busy, and a worker listing its siblings
 * must not wait on the master's event loop. Records hold no secret: a kernel's key stays in its
 * 0600 connection file, and a session's name is a Sense tag (session-tags), never a secret.
 *
 * Claims (`claim(key)`) are exclusive creates, so two processes launching at the same moment never
 * get the same launch index.
 */
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { z } from "zod";
import type { SessionModel } from "../../jupyter/schemas";
import { pidAlive, processStartTime } from "../../util/pid";

/** A session's file. */
export const StoredSession = z.object({
  id: z.string().regex(/^[A-Za-z0-9-]+$/),
  path: z.string(),
  name: z.string(),
  type: z.string(),
  kernel: z.object({ id: z.string().regex(/^[A-Za-z0-9-]+$/), name: z.string() }),
  /** The kernel process (the leader of its process group). */
  pid: z.number().int().positive(),
  /**
   * The kernel process's start time when it was launched ({@link processStartTime}): its pid is
   * signalled only while this still matches (after the kernel ended, the pid may be another process's).
   * Absent in records of older versions and where it cannot be read: their group is never signalled.
   */
  pidStart: z.string().optional(),
  /** The process that started it (its master). */
  ownerPid: z.number().int().positive(),
  /** The owner's start time, as `pidStart`. */
  ownerStart: z.string().optional(),
  /** The kernel's connection file (the keeper's process sweep matches it on argv). */
  connectionFile: z.string(),
  startedAt: z.string(),
});
export type StoredSession = z.infer<typeof StoredSession>;

const SAFE = /^[A-Za-z0-9._-]+$/;


/** The session files of one runtime folder. */
export class SessionStore {
  /** The store folder. */
  readonly dir: string;

  constructor(runtimeDir: string) {
    this.dir = path.join(runtimeDir, "sense-sessions");
  }

  private ensure(): void {
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
  }

  private fileFor(sessionId: string): string {
    if (!SAFE.test(sessionId)) throw new Error(`unsafe session id ${JSON.stringify(sessionId)}`);
    return path.join(this.dir, `${sessionId}.json`);
  }

  /** Writes (or replaces, atomically) a session's file. */
  put(s: StoredSession): void {
    this.ensure();
    const file = this.fileFor(s.id);
    const tmp = path.join(this.dir, `.${s.id}.${randomBytes(6).toString("hex")}.tmp`);
    fs.writeFileSync(tmp, JSON.stringify(StoredSession.parse(s)), { mode: 0o600, flag: "wx" });
    fs.renameSync(tmp, file);
  }

  /** One session's file, or undefined when it is gone (or torn: never half a record). */
  get(sessionId: string): StoredSession | undefined {
    try {
      const parsed = StoredSession.safeParse(JSON.parse(fs.readFileSync(this.fileFor(sessionId), "utf8")));
      return parsed.success ? parsed.data : undefined;
    } catch {
      return undefined;
    }
  }

  /** Removes a session's file (nothing when it is gone). */
  remove(sessionId: string): void {
    fs.rmSync(this.fileFor(sessionId), { force: true });
  }

  /**
   * Every session. A session whose kernel's pid was reused, or whose kernel and owner are both
   * gone, is removed on the way.
   */
  list(): StoredSession[] {
    let names: string[];
    try {
      names = fs.readdirSync(this.dir);
    } catch {
      return [];
    }
    const out: StoredSession[] = [];
    for (const n of names) {
      if (!n.endsWith(".json") || n.startsWith(".")) continue;
      const s = this.get(n.slice(0, -".json".length));
      if (!s) continue;
      // A kernel whose pid now belongs to another process ended long ago: nothing will notice it
      // any more (its owner's channel closed then), so its session goes; so does one whose kernel
      // and owner are both gone (nobody is left to remove it, as a server's kernel manager would).
      const state = kernelState(s);
      if (state === "reused" || (state === "gone" && !ownerAlive(s))) {
        this.remove(s.id);
        continue;
      }
      out.push(s);
    }
    return out.sort((a, b) => a.startedAt.localeCompare(b.startedAt) || a.id.localeCompare(b.id));
  }

  /**
   * Claims `key` (e.g. `index:<master>:<n>`) for good; false when another process has it.
   * An exclusive create: of processes racing for a key exactly one wins.
   */
  claim(key: string): boolean {
    this.ensure();
    const safe = Buffer.from(key, "utf8").toString("base64url");
    try {
      fs.writeFileSync(path.join(this.dir, `claim-${safe}`), "", { flag: "wx", mode: 0o600 });
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "EEXIST") return false;
      throw e;
    }
  }
}

/** A stored session as the server backend's {@link SessionModel} (the kernel's state from its process). */
export function sessionModelOf(s: StoredSession): SessionModel {
  return {
    id: s.id,
    path: s.path,
    name: s.name,
    type: s.type,
    kernel: { id: s.kernel.id, name: s.kernel.name, execution_state: kernelState(s) === "alive" ? "idle" : "dead", last_activity: s.startedAt },
  };
}

/**
 * Whether a session's kernel process is still the one launched: `alive`; `gone` (no such pid);
 * `reused` (the pid is another process now: its recorded start time differs). A record without
 * a start time (an older version's, or none could be read) is judged by its pid alone.
 */
export function kernelState(s: Pick<StoredSession, "pid" | "pidStart">, procRoot?: string): "alive" | "gone" | "reused" {
  if (!pidAlive(s.pid)) return "gone";
  // A `ps` answer costs a process: listing judges by the pid, signalling checks (sameProcess).
  if (s.pidStart === undefined || !s.pidStart.startsWith("proc:")) return "alive";
  const now = processStartTime(s.pid, procRoot);
  // Unreadable now (it ended between the two looks, or no permission): not proof of reuse.
  return now === undefined || now === s.pidStart ? "alive" : "reused";
}

function ownerAlive(s: StoredSession): boolean {
  if (!pidAlive(s.ownerPid)) return false;
  return s.ownerStart === undefined || processStartTime(s.ownerPid) === s.ownerStart;
}

/** The start-time fields of a session record for kernel `pid` started by this process. */
export function identityOf(pid: number): Pick<StoredSession, "pidStart" | "ownerStart"> {
  const pidStart = processStartTime(pid);
  const ownerStart = processStartTime(process.pid);
  return { ...(pidStart ? { pidStart } : {}), ...(ownerStart ? { ownerStart } : {}) };
}
