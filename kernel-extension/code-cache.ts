/**
 * V8's code cache for the one big module a TypeScript kernel loads: tslab's TypeScript (about
 * 9 MB of JavaScript). Node 20 compiles it again in every kernel (`module.enableCompileCache`
 * came in Node 22); with the cache V8 deserializes what an earlier kernel already compiled,
 * functions compiled while it warmed up included, so the compiler is ready sooner.
 *
 * What V8 itself checks is little: its version, its flags and the LENGTH of the source. A release
 * build does not checksum the entry's contents, so flipped bytes (a torn copy, a bad disk) crash
 * the process in the deserializer, and an entry compiled from another source of the same length
 * runs that other code. Everything else is therefore checked here before V8 sees an entry:
 * - Integrity: an entry file is a header and V8's bytes, the header holding the sha256 of those
 *   bytes and the sha256 of the source file they were compiled from; any mismatch (corruption, an
 *   entry of another source, an old or foreign format) and the entry is not used. The digest sits
 *   in the entry's own file rather than in a second one: one rename replaces both at once, so no
 *   reader ever pairs a new entry with an old digest.
 * - Who wrote it: a digest anyone could write proves nothing against someone who plants an entry,
 *   so trust rests on the file system. The folder must be a real folder (not a symlink) owned by
 *   this process's effective uid with no group/other write bit, and each entry is opened without
 *   following symlinks and checked on its descriptor (a regular file, same owner, no group/other
 *   write bit), so a folder swapped after its check still cannot hand over someone else's file.
 *   Only this uid (or root) can have written such a file. An HMAC key would not add to that: it
 *   would live in a file whose trust rests on the same checks, and a process of the same uid can
 *   read it as well as it can rewrite tslab's own `typescript.js`; the uid is the boundary.
 * - Writes go to a new temp file (created exclusively, 0600) renamed over the entry, so a torn
 *   write is never read as an entry and a planted symlink is never written through.
 *
 * The cache is only ever a shortcut: an entry that fails a check (or that V8 rejects) is ignored,
 * the module compiles as without it and a good entry replaces it after the compile; a folder that
 * cannot be trusted, read or written means no cache. Nothing here throws.
 */
import { createHash, randomBytes } from "node:crypto";
import * as fs from "node:fs";
import Module, { createRequire } from "node:module";
import * as os from "node:os";
import * as path from "node:path";
import * as vm from "node:vm";

type LoadedModule = NodeJS.Module & { paths: string[]; loaded: boolean };
type ModuleStatics = { _nodeModulePaths(dir: string): string[]; wrap(source: string): string };

/** The folder code caches go to: `$XDG_CACHE_HOME/sense-tslab/v8` (default `~/.cache`). */
export function defaultCodeCacheDir(env: NodeJS.ProcessEnv = process.env, home: string = os.homedir()): string {
  return path.join(env.XDG_CACHE_HOME || path.join(home, ".cache"), "sense-tslab", "v8");
}

/** The first bytes of an entry file (format 1): then sha256(source), sha256(V8's bytes), V8's bytes. */
const MAGIC = Buffer.from("sense-v8-cache-1");
const DIGEST = 32;
const HEADER = MAGIC.length + 2 * DIGEST;

function sha256(data: Buffer): Buffer {
  return createHash("sha256").update(data).digest();
}

/**
 * Why a file-system object may not be trusted with code: `null` when it is of `kind`, owned by
 * `uid` and writable by nobody else; else the reason.
 */
export function untrustedReason(st: fs.Stats, kind: "directory" | "file", uid: number): string | null {
  if (kind === "directory" ? !st.isDirectory() : !st.isFile()) return `not a ${kind}`;
  if (st.uid !== uid) return `owned by uid ${st.uid}, not ${uid}`;
  if (st.mode & 0o022) return `writable by others (mode ${(st.mode & 0o777).toString(8)})`;
  return null;
}

/**
 * An entry file's contents: the header binding V8's `data` to the source it was compiled from,
 * given as `sourceDigest`, the sha256 of the source file's bytes ({@link CodeCache} reads only
 * what this produced).
 */
export function encodeEntry(sourceDigest: Buffer, data: Buffer): Buffer {
  return Buffer.concat([MAGIC, sourceDigest, sha256(data), data]);
}

/**
 * V8's bytes from an entry file's contents when its header matches them and the source whose
 * sha256 is `sourceDigest`; else why not.
 */
export function decodeEntry(file: Buffer, sourceDigest: Buffer): { data: Buffer } | { refused: string } {
  if (file.length < HEADER || !file.subarray(0, MAGIC.length).equals(MAGIC)) return { refused: "not an entry of this format" };
  if (!file.subarray(MAGIC.length, MAGIC.length + DIGEST).equals(sourceDigest)) return { refused: "made for another source" };
  const data = file.subarray(HEADER);
  if (!file.subarray(MAGIC.length + DIGEST, HEADER).equals(sha256(data))) return { refused: "its digest does not match (corrupted)" };
  return { data };
}

/** Options of {@link CodeCache}. */
export interface CodeCacheOptions {
  /** Told why a folder or an entry was not used (once per folder; default: nowhere). */
  log?: (line: string) => void;
  /** Whose folder and entries to trust (default: this process's effective uid; none on a platform without uids means no cache). */
  uid?: number;
}

/** Loads CommonJS modules with V8's code cache; {@link CodeCache.save} writes what was missing. */
export class CodeCache {
  private readonly unsaved: { script: vm.Script; file: string; sourceDigest: Buffer }[] = [];
  private readonly uid: number | undefined;
  private readonly log: (line: string) => void;
  private refused = false;
  private hitCount = 0;

  /** `dir`: where entries live (created on the first save); `null`: load without a cache. Never throws. */
  constructor(
    private readonly dir: string | null,
    options: CodeCacheOptions = {},
  ) {
    this.uid = options.uid ?? process.geteuid?.();
    this.log = options.log ?? (() => undefined);
  }

  /**
   * `require(file)` for an absolute path, through the code cache; the module lands in
   * `require.cache` as Node's own loader would put it, so later `require`s of it get the same one.
   * @throws what loading the module throws (it is then not left in `require.cache`).
   */
  require(file: string): unknown {
    const hit = require.cache[file];
    if (hit) return hit.exports;
    const bytes = fs.readFileSync(file);
    const dir = this.folder(false);
    // The source is hashed only when a cache may be used (its folder may not exist yet).
    const sourceDigest = this.dir !== null && this.uid !== undefined && !this.refused ? sha256(bytes) : null;
    const cachedData = dir && sourceDigest ? this.read(this.entryPath(dir, file), sourceDigest) : undefined;
    const statics = Module as unknown as ModuleStatics;
    const script = new vm.Script(statics.wrap(bytes.toString("utf8")), { filename: file, cachedData });
    const fileDir = path.dirname(file);
    const mod = new Module(file, module) as LoadedModule;
    mod.filename = file;
    mod.paths = statics._nodeModulePaths(fileDir);
    require.cache[file] = mod;
    try {
      const wrapper = script.runInThisContext() as (exports: unknown, req: NodeJS.Require, m: NodeJS.Module, f: string, d: string) => void;
      wrapper.call(mod.exports, mod.exports, createRequire(file), mod, file, fileDir);
    } catch (e) {
      delete require.cache[file];
      throw e;
    }
    mod.loaded = true;
    if (cachedData && !script.cachedDataRejected) this.hitCount++;
    else if (sourceDigest) this.unsaved.push({ script, file, sourceDigest });
    return mod.exports;
  }

  /** How many modules were loaded from an entry (one that passed the checks and that V8 accepted). */
  get hits(): number {
    return this.hitCount;
  }

  /** Whether a module loaded without a usable entry waits for {@link save}. */
  get pending(): boolean {
    return this.unsaved.length > 0;
  }

  /**
   * Writes the entries that were missing, refused or rejected, with every function compiled so far
   * (call it once the module did its first work). Atomic (a kernel reading meanwhile sees the old
   * entry or the new one); a folder that cannot be trusted or written is no error: the next kernel
   * compiles again.
   */
  save(): void {
    const unsaved = this.unsaved.splice(0);
    if (unsaved.length === 0) return;
    const dir = this.folder(true);
    if (!dir) return;
    for (const { script, file, sourceDigest } of unsaved) {
      let tmp: string | null = null;
      try {
        const entry = this.entryPath(dir, file);
        const name = `${entry}.${randomBytes(6).toString("hex")}.tmp`;
        // "wx": a file (or symlink) already there is never written through, nor removed below.
        const fd = fs.openSync(name, "wx", 0o600);
        tmp = name;
        try {
          fs.writeFileSync(fd, encodeEntry(sourceDigest, script.createCachedData()));
        } finally {
          fs.closeSync(fd);
        }
        fs.renameSync(tmp, entry);
      } catch {
        // Unwritable (or a full disk): no cache, and our temp file goes (best effort).
        if (tmp) fs.rm(tmp, { force: true }, () => undefined);
      }
    }
  }

  /** The folder when it exists and may be trusted (created first when `create`); else null, told once why when untrusted. */
  private folder(create: boolean): string | null {
    if (this.dir === null || this.uid === undefined || this.refused) return null;
    let st: fs.Stats;
    try {
      if (create) fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      st = fs.lstatSync(this.dir);
    } catch {
      return null; // missing (nothing to read yet) or unreadable
    }
    const reason = untrustedReason(st, "directory", this.uid);
    if (!reason) return this.dir;
    this.refused = true;
    this.log(`sense: no V8 code cache: ${this.dir} is ${reason}`);
    return null;
  }

  /** V8's bytes of the entry at `entry` when it passes every check (see the file comment). */
  private read(entry: string, sourceDigest: Buffer): Buffer | undefined {
    let fd: number;
    try {
      // No symlink followed; O_NONBLOCK: a FIFO put there cannot hang the kernel (fstat refuses it).
      fd = fs.openSync(entry, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ELOOP") this.log(`sense: V8 code cache entry ${entry} not used: a symlink`);
      return undefined; // no entry yet
    }
    try {
      const reason = untrustedReason(fs.fstatSync(fd), "file", this.uid as number);
      const decoded = reason ? { refused: reason } : decodeEntry(fs.readFileSync(fd), sourceDigest);
      if ("data" in decoded) return decoded.data;
      this.log(`sense: V8 code cache entry ${entry} not used: ${decoded.refused}`);
    } catch {
      /* unreadable: no cache */
    } finally {
      fs.closeSync(fd);
    }
    return undefined;
  }

  // One entry per file, its size and time, and Node version: an upgraded package or Node gets a new
  // one (the header binds it to the source's bytes as well).
  private entryPath(dir: string, file: string): string {
    const st = fs.statSync(file);
    const key = createHash("sha256").update(`${process.version}\0${process.arch}\0${file}\0${st.size}\0${st.mtimeMs}`).digest("hex").slice(0, 32);
    return path.join(dir, `${path.basename(file, ".js")}-${key}.bin`);
  }
}
