/**
 * Deno's Jupyter kernel (`deno jupyter --kernel`) as a Sense engine and master: its kernelspec
 * written where Jupyter looks (the `sense-tslab install-deno` CLI and the project's setup script;
 * `deno jupyter --install` writes only to the user's data dir), and how to recognise the kernel
 * and the runtime.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { ConfigError } from "../errors";
import { replaceDir } from "../util/replace-dir";

/** The kernel_info `implementation` of Deno's Jupyter kernel. */
export const DENO_KERNEL_IMPLEMENTATION = "Deno kernel";

/** True when a kernel_info `implementation` is Deno's kernel (it answers no `user_expressions`). */
export function isDenoKernel(implementation: string | undefined): boolean {
  return implementation === DENO_KERNEL_IMPLEMENTATION;
}

/** A Deno kernelspec document. */
export interface DenoKernelSpec {
  argv: string[];
  display_name: string;
  language: "typescript";
  interrupt_mode: "message";
  env: Record<string, string>;
}

/**
 * The `kernel.json` of Deno's kernel run by `denoPath` (absolute, so Jupyter need not find `deno`
 * on PATH). `DENO_NO_UPDATE_CHECK` keeps the kernel off the network: it never asks for a newer Deno.
 * Interrupts go as `interrupt_request` messages: Deno's kernel ends its running cell on one, while
 * SIGINT (Jupyter's default, and what `deno jupyter --install` leaves) ends the whole kernel.
 * @throws ConfigError `bad_config` when `denoPath` is not an absolute path to an executable file.
 */
export function denoKernelSpec(denoPath: string): DenoKernelSpec {
  if (!path.isAbsolute(denoPath)) throw new ConfigError("bad_config", `the deno binary must be given as an absolute path, not ${JSON.stringify(denoPath)}`, { deno: denoPath });
  try {
    fs.accessSync(denoPath, fs.constants.X_OK);
    if (!fs.statSync(denoPath).isFile()) throw new Error("not a file");
  } catch {
    throw new ConfigError("bad_config", `${denoPath} is not an executable file`, { deno: denoPath });
  }
  return {
    argv: [denoPath, "jupyter", "--kernel", "--conn", "{connection_file}"],
    display_name: "Deno",
    language: "typescript",
    interrupt_mode: "message",
    env: { DENO_NO_UPDATE_CHECK: "1" },
  };
}

/**
 * Writes the `name` kernelspec folder (default `deno`) for `denoPath` into `kernelsDirPath`,
 * beside its final place first and renamed over it, so Jupyter never reads a half-written spec.
 * @throws ConfigError as {@link denoKernelSpec}; Node's fs errors when the folder is not writable.
 */
export function writeDenoKernelSpec(kernelsDirPath: string, denoPath: string, name = "deno"): string {
  const spec = denoKernelSpec(denoPath);
  fs.mkdirSync(kernelsDirPath, { recursive: true });
  return replaceDir(kernelsDirPath, name, (tmp) => fs.writeFileSync(path.join(tmp, "kernel.json"), JSON.stringify(spec, null, 2) + "\n"));
}

/** The first `deno` executable on `PATH`, or `undefined`. */
export function denoOnPath(env: NodeJS.ProcessEnv = process.env): string | undefined {
  return onPath("deno", env);
}

function realpath(p: string): string {
  try {
    return fs.realpathSync(p);
  } catch {
    return p;
  }
}

/** The first executable file `name` in an absolute folder of `PATH` that `accept` takes, or `undefined`. */
export function onPath(name: string, env: NodeJS.ProcessEnv = process.env, accept: (file: string) => boolean = () => true): string | undefined {
  for (const dir of (env.PATH ?? "").split(path.delimiter)) {
    if (!dir || !path.isAbsolute(dir)) continue;
    const p = path.join(dir, name);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      if (fs.statSync(p).isFile() && accept(p)) return p;
    } catch {
      /* not here */
    }
  }
  return undefined;
}

/**
 * `code` followed by `reply` (a runtime expression answering under the remote MIME type) as the
 * cell's last expression, for Deno's kernel, which ignores `user_expressions`: the answer is the
 * execute_result's bundle, through the `Symbol.for("Jupyter.display")` method Deno's kernel asks a
 * value for. `reply` is evaluated once, right after `code` (a statement on a line of its own, so a
 * trailing comment in `code` cannot swallow it). Both are code the master built, never user data.
 */
export function denoAnswerCode(code: string, reply: string): string {
  return `${code}\n;((b) => ({ [Symbol.for("Jupyter.display")]: () => b }))(${reply})`;
}

/**
 * The command line that runs the compiled keeper `script` (cleanup layer 2) from a master on
 * `runtime`: Node runs it as it is; a Deno master runs it with the `node` on PATH when there is
 * one (it starts in ~40 ms and its pipe semantics are Node's own), else with its own deno binary
 * (`execPath`): `deno run` with every permission (it reads /proc, signals kernels, calls the
 * server) and no prompt (its stdin is the master's pipe, never a terminal).
 */
export function keeperArgv(script: string, runtime: "node" | "deno", execPath: string = process.execPath, env: NodeJS.ProcessEnv = process.env): string[] {
  if (runtime === "node") return [execPath, script];
  const node = nodeOnPath(execPath, env);
  return node ? [node, script] : [execPath, "run", "--allow-all", "--no-prompt", script];
}

/**
 * The first real `node` on PATH, seen from a Deno process whose binary is `denoPath`: Deno puts a
 * `node` of its own on its children's PATH (a link to deno), which is not Node. `undefined` when none.
 */
export function nodeOnPath(denoPath: string = process.execPath, env: NodeJS.ProcessEnv = process.env): string | undefined {
  return onPath("node", env, (p) => realpath(p) !== realpath(denoPath));
}
