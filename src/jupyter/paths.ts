/**
 * Jupyter's data, runtime and kernelspec folders, found the way jupyter_core 5 finds them
 * (`jupyter_core.paths.jupyter_path`), for a Node process that has no Python of its own to ask.
 *
 * The one thing Node cannot read from `sys` is the Python environment's prefix
 * (`{sys.prefix}/share/jupyter`); {@link pythonPrefixes} infers it from what is there.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

/** What the path functions read; defaults to this process. Tests pass their own. */
export interface PathEnv {
  env: NodeJS.ProcessEnv;
  home: string;
  /** `/proc`, or a fake one in tests. */
  procRoot: string;
}

/** This process's {@link PathEnv}. */
export function processPathEnv(): PathEnv {
  return { env: process.env, home: os.homedir(), procRoot: "/proc" };
}

/** `jupyter --data-dir`: `JUPYTER_DATA_DIR`, else `$XDG_DATA_HOME/jupyter`, else `~/.local/share/jupyter`. */
export function jupyterDataDir(p: PathEnv = processPathEnv()): string {
  if (p.env.JUPYTER_DATA_DIR) return p.env.JUPYTER_DATA_DIR;
  const xdg = p.env.XDG_DATA_HOME || path.join(p.home, ".local", "share");
  return path.join(xdg, "jupyter");
}

/** `jupyter --runtime-dir`: `JUPYTER_RUNTIME_DIR`, else `<data dir>/runtime`. */
export function jupyterRuntimeDir(p: PathEnv = processPathEnv()): string {
  return p.env.JUPYTER_RUNTIME_DIR || path.join(jupyterDataDir(p), "runtime");
}

/** The prefix of the Python environment that holds executable `exe`, when it is a venv or an installation. */
function prefixOfPython(exe: string): string | undefined {
  const bin = path.dirname(exe);
  if (path.basename(bin) !== "bin") return undefined;
  return path.dirname(bin);
}

/**
 * Candidate `sys.prefix` values, best first: `SENSE_JUPYTER_PREFIX` (the Sense installer puts the
 * prefix it installed into in the kernelspec's env), an active venv or conda env, and the Python
 * that started this kernel (`JPY_PARENT_PID`: nbclient, nbconvert, papermill, `jupyter console`).
 */
export function pythonPrefixes(p: PathEnv = processPathEnv()): string[] {
  const out: string[] = [];
  const add = (d: string | undefined) => {
    if (d && path.isAbsolute(d) && !out.includes(d)) out.push(d);
  };
  add(p.env.SENSE_JUPYTER_PREFIX);
  add(p.env.VIRTUAL_ENV);
  add(p.env.CONDA_PREFIX);
  const ppid = p.env.JPY_PARENT_PID;
  if (ppid && /^\d+$/.test(ppid)) {
    try {
      // argv[0] keeps a venv's own path (its exe is a symlink into the base installation).
      const argv0 = fs.readFileSync(path.join(p.procRoot, ppid, "cmdline"), "utf8").split("\0")[0] ?? "";
      const cwd = fs.readlinkSync(path.join(p.procRoot, ppid, "cwd"));
      if (argv0.includes("/")) add(prefixOfPython(path.resolve(cwd, argv0)));
    } catch {
      // The parent is gone or not ours to read: the other candidates remain.
    }
  }
  return out;
}

/**
 * The folders searched for `subdir` (e.g. `"kernels"`), highest priority first, as
 * `jupyter_core.paths.jupyter_path(subdir)`: `JUPYTER_PATH`, then the environment and user
 * folders (environment first when `JUPYTER_PREFER_ENV_PATH` says so or a Python environment was
 * found, as jupyter_core does inside a venv), then `/usr/local/share/jupyter` and `/usr/share/jupyter`.
 */
export function jupyterPath(subdir: string, p: PathEnv = processPathEnv()): string[] {
  const paths: string[] = [];
  const add = (d: string) => {
    const full = path.join(d, subdir);
    if (!paths.includes(full)) paths.push(full);
  };
  for (const d of (p.env.JUPYTER_PATH ?? "").split(path.delimiter)) if (d) add(d.replace(/\/+$/, ""));
  const user = [jupyterDataDir(p), path.join(p.home, ".local", "share", "jupyter")];
  const envDirs = pythonPrefixes(p).map((d) => path.join(d, "share", "jupyter"));
  const pref = p.env.JUPYTER_PREFER_ENV_PATH;
  const preferEnv = pref === undefined ? envDirs.length > 0 : !["0", "false", "no", "off", ""].includes(pref.toLowerCase());
  for (const d of preferEnv ? [...envDirs, ...user] : [...user, ...envDirs]) add(d);
  add("/usr/local/share/jupyter");
  add("/usr/share/jupyter");
  return paths;
}
