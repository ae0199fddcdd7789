/**
 * The cluster registry of the direct backend: what a Jupyter Server's session list is for the
 * server backend. One folder per master in the Jupyter runtime folder
 * (`<runtime>/sense-cluster-<masterId>/`, 0700), one JSON file per member (the master and each
 * worker), each replaced atomically (write a temporary file, then rename), so the master, its
 * workers and the keeper read a whole record or none, with no process that has to be up to answer.
 *
 * Why files and not a loopback endpoint of the master: the registry must still be readable when
 * the master is gone (the keeper and the workers' watchdogs clean up from it), it needs no port,
 * no secret and no server loop in a kernel that may be busy, and a worker's listing of its
 * siblings must not wait on the master's event loop. Records hold no secret: kernel keys stay in
 * the 0600 connection files.
 *
 * Launch indexes (the `w<n>` names) are claimed with an exclusive create (`index-<n>`), so
 * concurrent launches by a master and by its workers never hand out the same name.
 */
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { z } from "zod";
import { WorkerRecord } from "../schemas";

/** A member's file: its public record plus what a local process needs to reach or end it. */
export const RegistryEntry = z.object({
  record: WorkerRecord,
  /** The kernel process (the leader of its process group); the master's own pid for the master. */
  pid: z.number().int().positive(),
  /** The kernel's connection file, for a process sweep by argv (see keeper.ts). */
  connectionFile: z.string().optional(),
});
export type RegistryEntry = z.infer<typeof RegistryEntry>;

const SAFE_ID = /^[A-Za-z0-9._-]+$/;
const MASTER_FILE = "master.json";

/** The registry folder of master `masterId` under `runtimeDir`. */
export function registryDir(runtimeDir: string, masterId: string): string {
  if (!SAFE_ID.test(masterId)) throw new Error(`unsafe master id ${JSON.stringify(masterId)}`);
  return path.join(runtimeDir, `sense-cluster-${masterId}`);
}

/** One master's registry. */
export class ClusterRegistry {
  constructor(
    /** The registry folder (see {@link registryDir}). */
    readonly dir: string,
  ) {}

  /** Creates the folder (0700) if it is not there. */
  ensure(): this {
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    return this;
  }

  private fileFor(id: string): string {
    if (!SAFE_ID.test(id)) throw new Error(`unsafe member id ${JSON.stringify(id)}`);
    return path.join(this.dir, `${id}.json`);
  }

  private writeAtomically(file: string, entry: RegistryEntry): void {
    const tmp = path.join(this.dir, `.${path.basename(file)}.${randomBytes(6).toString("hex")}.tmp`);
    fs.writeFileSync(tmp, JSON.stringify(RegistryEntry.parse(entry)), { mode: 0o600, flag: "wx" });
    fs.renameSync(tmp, file);
  }

  /** Writes (or replaces) the master's entry. */
  putMaster(entry: RegistryEntry): void {
    this.writeAtomically(path.join(this.dir, MASTER_FILE), entry);
  }

  /** Writes (or replaces) worker `entry.record.id`'s entry. */
  put(entry: RegistryEntry): void {
    this.writeAtomically(this.fileFor(entry.record.id), entry);
  }

  /** Removes a worker's entry (its launch index stays claimed: names are never reused). */
  remove(id: string): void {
    fs.rmSync(this.fileFor(id), { force: true });
  }

  private read(file: string): RegistryEntry | undefined {
    try {
      const parsed = RegistryEntry.safeParse(JSON.parse(fs.readFileSync(file, "utf8")));
      return parsed.success ? parsed.data : undefined;
    } catch {
      return undefined; // removed while we looked
    }
  }

  /** The master's entry, if the master registered. */
  master(): RegistryEntry | undefined {
    return this.read(path.join(this.dir, MASTER_FILE));
  }

  /** Every worker entry, by launch index. */
  workers(): RegistryEntry[] {
    let names: string[];
    try {
      names = fs.readdirSync(this.dir);
    } catch {
      return [];
    }
    return names
      .filter((n) => n.endsWith(".json") && n !== MASTER_FILE && !n.startsWith("."))
      .map((n) => this.read(path.join(this.dir, n)))
      .filter((e): e is RegistryEntry => e !== undefined)
      .sort((a, b) => a.record.index - b.record.index);
  }

  /**
   * Claims the lowest free launch index at or above `from` (exclusive create: two processes never
   * get the same one).
   */
  claimIndex(from = 1): number {
    for (let i = Math.max(1, from); ; i++) {
      try {
        fs.writeFileSync(path.join(this.dir, `index-${i}`), "", { flag: "wx", mode: 0o600 });
        return i;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      }
    }
  }

  /** Removes the whole registry (the master's shutdown, or the keeper after it). */
  destroy(): void {
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
