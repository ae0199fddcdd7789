/**
 * V8's code cache for the one big module a TypeScript kernel loads: tslab's TypeScript (about
 * 9 MB of JavaScript). Node 20 compiles it again in every kernel (`module.enableCompileCache`
 * came in Node 22); with the cache V8 deserializes what an earlier kernel already compiled,
 * functions compiled while it warmed up included, so the compiler is ready sooner.
 *
 * The cache is only ever a shortcut: V8 checks each entry against the source and its own version
 * and flags and rejects one that does not fit (then the module compiles as without it and the
 * entry is written again); a folder that cannot be read or written means no cache.
 */
import { createHash } from "node:crypto";
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

/** Loads CommonJS modules with V8's code cache; {@link CodeCache.save} writes what was missing. */
export class CodeCache {
  private readonly unsaved: { script: vm.Script; file: string }[] = [];

  /** `dir`: where entries live (created on the first save); `null`: load without a cache. */
  constructor(private readonly dir: string | null) {}

  /**
   * `require(file)` for an absolute path, through the code cache; the module lands in
   * `require.cache` as Node's own loader would put it, so later `require`s of it get the same one.
   * @throws what loading the module throws (it is then not left in `require.cache`).
   */
  require(file: string): unknown {
    const hit = require.cache[file];
    if (hit) return hit.exports;
    const source = fs.readFileSync(file, "utf8");
    const entry = this.entryPath(file);
    let cachedData: Buffer | undefined;
    try {
      if (entry) cachedData = fs.readFileSync(entry);
    } catch {
      /* no entry yet */
    }
    const statics = Module as unknown as ModuleStatics;
    const script = new vm.Script(statics.wrap(source), { filename: file, cachedData });
    const dir = path.dirname(file);
    const mod = new Module(file, module) as LoadedModule;
    mod.filename = file;
    mod.paths = statics._nodeModulePaths(dir);
    require.cache[file] = mod;
    try {
      const wrapper = script.runInThisContext() as (exports: unknown, req: NodeJS.Require, m: NodeJS.Module, f: string, d: string) => void;
      wrapper.call(mod.exports, mod.exports, createRequire(file), mod, file, dir);
    } catch (e) {
      delete require.cache[file];
      throw e;
    }
    mod.loaded = true;
    if (entry && (!cachedData || script.cachedDataRejected)) this.unsaved.push({ script, file });
    return mod.exports;
  }

  /** Whether a module loaded without a usable entry waits for {@link save}. */
  get pending(): boolean {
    return this.unsaved.length > 0;
  }

  /**
   * Writes the entries that were missing or rejected, with every function compiled so far (call it
   * once the module did its first work). Atomic (a kernel reading meanwhile sees the old entry or
   * the new one); a folder that cannot be written is no error: the next kernel compiles again.
   */
  save(): void {
    for (const { script, file } of this.unsaved.splice(0)) {
      try {
        const entry = this.entryPath(file);
        if (!entry) continue;
        fs.mkdirSync(path.dirname(entry), { recursive: true, mode: 0o700 });
        const tmp = `${entry}.${process.pid}.tmp`;
        fs.writeFileSync(tmp, script.createCachedData(), { mode: 0o600 });
        fs.renameSync(tmp, entry);
      } catch {
        /* unwritable: no cache */
      }
    }
  }

  // One entry per file, its size and time, and Node version: an upgraded package or Node gets a new
  // one (and V8 checks the source itself). Hashing 9 MB of source would cost what the cache saves.
  private entryPath(file: string): string | null {
    if (!this.dir) return null;
    const st = fs.statSync(file);
    const key = createHash("sha256").update(`${process.version}\0${process.arch}\0${file}\0${st.size}\0${st.mtimeMs}`).digest("hex").slice(0, 32);
    return path.join(this.dir, `${path.basename(file, ".js")}-${key}.bin`);
  }
}
