/**
 * Starting a kernel from its kernelspec with no Jupyter Server, as jupyter_client's
 * `KernelManager.start_kernel` does: a connection file (0600, in the Jupyter runtime folder) with
 * five free loopback ports and a fresh HMAC key, the spec's argv with `{connection_file}`,
 * `{resource_dir}` and `{prefix}` filled in, the spec's env (`${VAR}` substituted) over ours,
 * `JPY_PARENT_PID`, and a new session so the whole process group can be signalled.
 */
import { spawn, ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { WorkerError } from "../../errors";
import { holdPorts, listenAnyPort } from "../../util/ports";
import { writeConnectionFile, type ConnectionInfo } from "../../protocol/wire";
import { jupyterRuntimeDir, processPathEnv, pythonPrefixes, PathEnv } from "../../jupyter/paths";
import type { DiskKernelSpec } from "./kernelspecs";

/** Free TCP ports on `ip`, distinct (held together while chosen, then released, as jupyter_client does). */
export function freePorts(count: number, ip = "127.0.0.1"): Promise<number[]> {
  return holdPorts(count, listenAnyPort(ip));
}

/**
 * Python's `string.Template(value).safe_substitute(vars)`: `$NAME` and `${NAME}` replaced when
 * `vars` has NAME, left as written otherwise; `$$` is a literal `$`.
 */
export function substituteEnvTemplate(value: string, vars: NodeJS.ProcessEnv): string {
  return value.replace(/\$(?:(\$)|([_a-z][_a-z0-9]*)|\{([_a-z][_a-z0-9]*)\})/gi, (whole, dollar: string | undefined, bare: string | undefined, braced: string | undefined) => {
    if (dollar) return "$";
    const name = bare ?? braced ?? "";
    const v = vars[name];
    return v === undefined ? whole : v;
  });
}

/** What {@link launchKernel} needs besides the spec. */
export interface LaunchKernelOptions {
  /** The kernel's working folder. */
  cwd: string;
  /** Extra env for the kernel, over this process's env and under the spec's. */
  env?: Record<string, string>;
  /** Where the connection file goes (default: the Jupyter runtime folder). */
  runtimeDir?: string;
  /** How the paths were read (tests). */
  paths?: PathEnv;
  /** The kernel's stdout/stderr: this process's (as jupyter_client does) or discarded. */
  stdio?: "inherit" | "ignore";
}

/** A kernel process started by {@link launchKernel}. */
export interface LaunchedKernel {
  /** The kernel id (a UUID, as a Jupyter Server would give it), also in its connection file's name. */
  id: string;
  connectionFile: string;
  info: ConnectionInfo;
  process: ChildProcess;
  pid: number;
  interruptMode: "signal" | "message";
  /** Resolves with the exit code (or the signal's name) when the process has ended. */
  exited: Promise<number | string>;
}

/**
 * Starts the kernel of `spec`.
 * @throws WorkerError `launch_failed` when the process cannot be spawned (its argv[0] not found, say).
 */
export async function launchKernel(spec: DiskKernelSpec, options: LaunchKernelOptions): Promise<LaunchedKernel> {
  const paths = options.paths ?? processPathEnv();
  const runtimeDir = options.runtimeDir ?? jupyterRuntimeDir(paths);
  fs.mkdirSync(runtimeDir, { recursive: true, mode: 0o700 });
  const id = randomUUID();
  const [shell, iopub, stdin, control, hb] = await freePorts(5);
  const connectionFile = path.join(runtimeDir, `kernel-${id}.json`);
  const { kernel_name: _name, ...info } = writeConnectionFile(connectionFile, "127.0.0.1", [shell, iopub, stdin, control, hb], spec.name);

  // A spec installed in an environment (`<prefix>/share/jupyter/kernels/<name>`) belongs to that
  // environment's Python, as jupyter_client's sys.executable is the Python that found it.
  const specPrefix = path.resolve(spec.resourceDir, "..", "..", "..", "..");
  const ownPrefix = path.basename(path.dirname(path.dirname(spec.resourceDir))) === "jupyter" && fs.existsSync(path.join(specPrefix, "bin", "python")) ? specPrefix : undefined;
  const prefix = ownPrefix ?? pythonPrefixes(paths)[0];
  const ns: Record<string, string> = { connection_file: connectionFile, resource_dir: spec.resourceDir, ...(prefix ? { prefix } : {}) };
  const argv = spec.spec.argv.map((a) => a.replace(/\{([A-Za-z0-9_]+)\}/g, (whole, k: string) => ns[k] ?? whole));
  // As jupyter_client: a bare `python`/`python3` means the environment's own Python.
  if (/^python(\d(\.\d+)?)?$/.test(argv[0]) && prefix && fs.existsSync(path.join(prefix, "bin", "python"))) argv[0] = path.join(prefix, "bin", "python");
  // ipykernel's debugger (debugpy) prints a frozen-modules notice into the first cell's output of
  // a CPython kernel; ipykernel's own kernelspec install sets this to silence it, so do we (unless set).
  const base: NodeJS.ProcessEnv = { PYDEVD_DISABLE_FILE_VALIDATION: "1", ...process.env, ...options.env, JPY_PARENT_PID: String(process.pid) };
  const specEnv = Object.fromEntries(Object.entries(spec.spec.env ?? {}).map(([k, v]) => [k, substituteEnvTemplate(v, base)]));
  const env = { ...base, ...specEnv };

  const child = spawn(argv[0], argv.slice(1), { cwd: options.cwd, env, detached: true, stdio: ["ignore", options.stdio ?? "inherit", options.stdio ?? "inherit"] });
  const exited = new Promise<number | string>((resolve) => child.once("exit", (code, signal) => resolve(code ?? signal ?? "unknown")));
  try {
    await new Promise<void>((resolve, reject) => {
      child.once("spawn", resolve);
      child.once("error", reject);
    });
  } catch (e) {
    fs.rmSync(connectionFile, { force: true });
    throw new WorkerError("launch_failed", `Could not start kernel ${spec.name} (${argv[0]}): ${e instanceof Error ? e.message : String(e)}`, { engine: spec.name });
  }
  // The master's event loop must not wait for its workers: they are stopped explicitly.
  child.unref();
  void exited.then(() => fs.rmSync(connectionFile, { force: true }));
  return { id, connectionFile, info, process: child, pid: child.pid as number, interruptMode: spec.spec.interrupt_mode ?? "signal", exited };
}
