/**
 * Makes `sense-tslab` importable from a notebook in any folder, at run time and at type-check
 * time, and gives tslab's compiler Node's types in an empty folder.
 *
 * - Run time: `Module._resolveFilename` maps `sense-tslab` and `sense-tslab/...` to this package,
 *   so cells and every module the kernel loads get the very module instances the kernel itself uses.
 * - Type-check: tslab's converter builds its compiler options itself, with its private TypeScript
 *   (`@tslab/typescript-for-tslab`), whose exports are non-configurable getters that cannot be
 *   patched in place. Instead its `require.cache` entry is replaced by an object that inherits
 *   everything from the real module and overrides two functions (see
 *   {@link overlayTslabTypeScript}): `createWatchCompilerHost` adds `paths` for `sense-tslab`
 *   (read lazily: only a cell that imports it pays for its types), and `getDefaultTypeRoots`
 *   adds a root holding `@types/node` when the folder has none. This must run before anything
 *   loads `tslab/dist/*`.
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import Module, { createRequire } from "node:module";
import * as os from "node:os";
import * as path from "node:path";
import { distPath, PACKAGE_NAME } from "../src/protocol/marks";
import type { AdoptableProgram } from "../src/transpile";


interface ModuleInternals {
  _resolveFilename(request: string, parent: unknown, isMain: boolean, options?: unknown): string;
}

// The hook's remover is kept on `Module` itself, the object the hook patches: whoever asks again
// (while the hook is in place) gets the same remover instead of a second layer of hooks.
const UNHOOK = Symbol("sense-tslab.unhook-resolve");

/**
 * Maps `sense-tslab` → `<root>/dist/src/index.js` and `sense-tslab/<sub>` → `<root>/<sub>` for
 * every `require` in this process. Idempotent; returns a function that removes the hook.
 */
export function hookPackageResolution(root: string): () => void {
  const M = Module as unknown as ModuleInternals & { [UNHOOK]?: () => void };
  const hooked = M[UNHOOK];
  if (hooked) return hooked;
  const original = M._resolveFilename;
  const main = distPath(root, "index");
  M._resolveFilename = function (this: unknown, request: string, parent: unknown, isMain: boolean, options?: unknown): string {
    if (request === PACKAGE_NAME) request = main;
    else if (request.startsWith(PACKAGE_NAME + "/")) request = path.join(root, request.slice(PACKAGE_NAME.length + 1));
    return original.call(this, request, parent, isMain, options);
  };
  const unhook = () => {
    M._resolveFilename = original;
    delete M[UNHOOK];
  };
  M[UNHOOK] = unhook;
  return unhook;
}

/** The generated type root (a folder holding only `node`, a link to tslab's `@types/node`), or null. */
export interface TypeRoots {
  /** Added only when the notebook's folder has no `@types/node` of its own. */
  nodeRoot: string | null;
}

function defaultCacheBase(): string {
  const xdg = process.env.XDG_CACHE_HOME;
  return path.join(xdg && path.isAbsolute(xdg) ? xdg : path.join(os.homedir(), ".cache"), "sense-tslab");
}

/** Where tslab's `@types/node` lives (tslab's own copy first: it matches tslab's TypeScript 5.0). */
export function nodeTypesDir(): string | null {
  try {
    const tslabDir = path.dirname(require.resolve("tslab/package.json"));
    return path.dirname(require.resolve("@types/node/package.json", { paths: [tslabDir] }));
  } catch {
    return null;
  }
}

/**
 * Creates (once per `@types/node` location; later kernels reuse it) a private folder under
 * `$XDG_CACHE_HOME/sense-tslab` (or `cacheBase`, falling back to the temp folder) holding a type
 * root with just `node`. Pointing at the folder that holds `@types/node` instead would pull in
 * every other `@types` package beside it (jest's globals, say) when npm hoisted them together.
 * Built in a temporary sibling and renamed into place, so concurrent kernels never see half a folder.
 * @throws Node's fs errors when neither the cache folder nor the temp folder is writable.
 */
export function prepareTypeRoots(cacheBase: string = defaultCacheBase()): TypeRoots {
  const nodeTypes = nodeTypesDir();
  if (!nodeTypes) return { nodeRoot: null };
  const key = createHash("sha256").update(`${nodeTypes}\0v1`).digest("hex").slice(0, 16);
  const bases = [cacheBase, path.join(os.tmpdir(), `sense-tslab-${process.getuid?.() ?? "u"}`)];
  let lastError: unknown;
  for (const base of bases) {
    const dir = path.join(base, `types-${key}`);
    const done = () => fs.existsSync(path.join(dir, "node", "package.json"));
    if (done()) return { nodeRoot: dir };
    try {
      fs.mkdirSync(base, { recursive: true });
      const tmp = fs.mkdtempSync(path.join(base, `.types-${key}-`));
      try {
        fs.symlinkSync(nodeTypes, path.join(tmp, "node"), "dir");
        fs.renameSync(tmp, dir);
      } catch (e) {
        fs.rmSync(tmp, { recursive: true, force: true });
        // Another kernel won the race: its folder is as good as ours.
        if (!done()) throw e;
      }
      return { nodeRoot: dir };
    } catch (e) {
      lastError = e;
    }
  }
  throw lastError;
}

/** Path of the TypeScript tslab loads (`@tslab/typescript-for-tslab`, resolved from tslab's folder). */
export function tslabTypeScriptPath(): { tslabDir: string; tsPath: string } {
  const tslabDir = path.dirname(require.resolve("tslab/package.json"));
  return { tslabDir, tsPath: require.resolve("@tslab/typescript-for-tslab", { paths: [tslabDir] }) };
}

/** tslab's TypeScript module as tslab sees it (the overlay, once installed). Only `sys` is typed here. */
export function loadTslabTypeScript(): { sys: Record<string, unknown> } {
  const { tslabDir, tsPath } = tslabTypeScriptPath();
  return createRequire(path.join(tslabDir, "package.json"))(tsPath) as { sys: Record<string, unknown> };
}

const OVERLAID = Symbol.for("sense-tslab.typescript-overlay");

type GetDefaultTypeRoots = (currentDirectory: string, host: { directoryExists?: (dir: string) => boolean }) => string[] | undefined;
/** The part of TypeScript's watch compiler host the overlay touches: the program factory the watch program calls. */
interface WatchHost {
  createProgram?: (...args: unknown[]) => { getProgram(): AdoptableProgram };
}
type CreateWatchCompilerHost = (rootFiles: string[], options: Record<string, unknown>, ...rest: unknown[]) => WatchHost;

/**
 * The `paths` entries that map `sense-tslab` and `sense-tslab/...` to this package's own files
 * (absolute, so no `baseUrl` is needed). Only an import of them makes TypeScript read their types.
 */
export function senseTslabPaths(root: string): Record<string, string[]> {
  return { [PACKAGE_NAME]: [distPath(root, "index").replace(/\.js$/, "")], [`${PACKAGE_NAME}/*`]: [path.join(root, "*")] };
}

/**
 * Replaces the `require.cache` entry of tslab's TypeScript with an overlay that inherits
 * everything from the real module and overrides two functions tslab's converter calls once per
 * converter: `getDefaultTypeRoots` (appends `roots.nodeRoot` when the folder has no `@types/node`)
 * and `createWatchCompilerHost` (adds `paths` for `sense-tslab`, see {@link senseTslabPaths}, and
 * hands each program the converter builds to `onProgram`, with the real module: a way to the
 * SourceFiles tslab parsed, which the converter itself keeps private).
 * Must run before `tslab/dist/converter` is loaded; `load` is how the module is loaded when it is
 * not yet (an absolute path in, the module in `require.cache`). Idempotent (the first call's
 * `onProgram` stays). A throw from `onProgram` is swallowed: it never fails a build.
 * @throws Error when tslab or its TypeScript cannot be found.
 */
export function overlayTslabTypeScript(
  root: string,
  roots: TypeRoots,
  load: (file: string) => unknown = createRequire(__filename),
  onProgram?: (typescript: object, program: AdoptableProgram) => void,
): void {
  const { tsPath } = tslabTypeScriptPath();
  load(tsPath);
  const entry = require.cache[tsPath];
  if (!entry) throw new Error(`tslab's TypeScript (${tsPath}) is not in require.cache`);
  const real = entry.exports as Record<string | symbol, unknown> & {
    getDefaultTypeRoots: GetDefaultTypeRoots;
    createWatchCompilerHost: CreateWatchCompilerHost;
  };
  if (real[OVERLAID]) return;
  const overlay = Object.create(real) as Record<string | symbol, unknown>;
  const getDefaultTypeRoots: GetDefaultTypeRoots = (dir, host) => {
    const found = real.getDefaultTypeRoots(dir, host) ?? [];
    const hasNode = found.some((r) => fs.existsSync(path.join(r, "node", "package.json")));
    return hasNode || !roots.nodeRoot ? found : [...found, roots.nodeRoot];
  };
  const paths = senseTslabPaths(root);
  const createWatchCompilerHost: CreateWatchCompilerHost = (rootFiles, options, ...rest) => {
    const host = real.createWatchCompilerHost(rootFiles, { ...options, paths: { ...(options.paths as Record<string, string[]> | undefined), ...paths } }, ...rest);
    const create = host.createProgram;
    if (onProgram && typeof create === "function") {
      // The watch program calls host.createProgram for every build: the first one parses the libraries.
      host.createProgram = (...args: unknown[]) => {
        const builder = create.apply(host, args);
        try {
          onProgram(real, builder.getProgram());
        } catch {
          /* sharing is an optimisation: a failure leaves the master's check to parse for itself */
        }
        return builder;
      };
    }
    return host;
  };
  Object.defineProperties(overlay, {
    // tslab's __importStar hands an __esModule object over as is, so it sees the overrides.
    __esModule: { value: true },
    getDefaultTypeRoots: { value: getDefaultTypeRoots, enumerable: true },
    createWatchCompilerHost: { value: createWatchCompilerHost, enumerable: true },
    [OVERLAID]: { value: true },
  });
  entry.exports = overlay;
}
