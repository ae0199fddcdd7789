/**
 * Kernelspecs of the Sense kernels (`sense-ts`, `sense-js`, `sense-fast`): what their `kernel.json` holds and
 * where Jupyter looks for them (`--user`, `--sys-prefix`, `--prefix DIR`). Used by the
 * `sense-tslab install|uninstall` CLI and by the project's setup script.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ConfigError, UsageError } from "./errors";
import { distPath, FAST_KERNEL_NAME, SENSE_KERNEL_NAMES } from "./protocol/marks";
import { packageRoot, packageVersion } from "./package-root";
import { replaceDir } from "./util/replace-dir";

export { packageRoot, packageVersion };

export { FAST_KERNEL_NAME };

/** The kernels this package registers, by kernelspec name. */
export const KERNEL_NAMES = SENSE_KERNEL_NAMES;
/** A Sense kernelspec name. */
export type KernelName = (typeof KERNEL_NAMES)[number];

/** A Jupyter `kernel.json` document as the Sense kernels write it. */
export interface SenseKernelSpec {
  argv: string[];
  display_name: string;
  language: "typescript" | "javascript";
  interrupt_mode: "signal";
  metadata: { sense: { version: string; kernel: KernelName } };
}

/** Where kernelspecs go: the same three choices as `jupyter kernelspec install`. */
export type SpecDestination = { kind: "user" } | { kind: "sys-prefix"; python?: string } | { kind: "prefix"; prefix: string };

/** Options of {@link kernelSpec}. */
export interface KernelSpecOptions {
  /** Node binary the kernel runs with; default: the Node running this code (absolute, so Jupyter need not find `node` on PATH). */
  nodePath?: string;
  /** Built kernel entry point; default: `<package root>/dist/kernel-extension/kernel.js`. */
  kernelScript?: string;
  /** Version written into the metadata; default: this package's version. */
  version?: string;
}

/** Returns the `kernel.json` document of `name`. Pure: touches no file. */
export function kernelSpec(name: KernelName, options: KernelSpecOptions = {}): SenseKernelSpec {
  const root = options.kernelScript && options.version ? "" : packageRoot();
  const script = options.kernelScript ?? distPath(root, "kernel");
  const isJs = name === "sense-js";
  // The fast worker engine's script sits beside kernel.js.
  if (name === "sense-fast") return { ...fastKernelSpec({ nodePath: options.nodePath, kernelScript: path.join(path.dirname(script), "fast-kernel.js") }), metadata: { sense: { version: options.version ?? packageVersion(root), kernel: name } } };
  return {
    argv: [options.nodePath ?? process.execPath, script, "--config-path", "{connection_file}", ...(isJs ? ["--js"] : [])],
    display_name: isJs ? "JavaScript (Sense)" : "TypeScript (Sense)",
    language: isJs ? "javascript" : "typescript",
    interrupt_mode: "signal",
    metadata: { sense: { version: options.version ?? packageVersion(root), kernel: name } },
  };
}

/**
 * `sys.prefix` of a Python interpreter, asked from the interpreter itself (argv array, no shell).
 * @throws ConfigError (`bad_config`) when `python` cannot be run or prints nothing useful.
 */
export function pythonSysPrefix(python = "python3"): string {
  const r = spawnSync(python, ["-c", "import sys; print(sys.prefix)"], { encoding: "utf8", timeout: 30_000 });
  if (r.error || r.status !== 0) {
    const why = r.error ? r.error.message : `exit status ${r.status}: ${(r.stderr ?? "").trim().split("\n").pop() ?? ""}`;
    throw new ConfigError("bad_config", `cannot ask ${python} for sys.prefix (${why})`, { python });
  }
  const prefix = r.stdout.trim();
  if (!prefix || !path.isAbsolute(prefix)) throw new ConfigError("bad_config", `${python} printed no sys.prefix`, { python });
  return prefix;
}

/**
 * The `kernels` folder a destination stands for: `--user` → `$JUPYTER_DATA_DIR/kernels`
 * (default `~/.local/share/jupyter/kernels`), `--sys-prefix` → `<sys.prefix>/share/jupyter/kernels`,
 * `--prefix DIR` → `DIR/share/jupyter/kernels`.
 * @throws ConfigError when the Python for `--sys-prefix` cannot be asked; UsageError (`bad_option`) for an empty prefix.
 */
export function kernelsDir(dest: SpecDestination, env: NodeJS.ProcessEnv = process.env): string {
  switch (dest.kind) {
    case "user": {
      const data = env.JUPYTER_DATA_DIR || path.join(env.HOME || os.homedir(), ".local", "share", "jupyter");
      return path.join(path.resolve(data), "kernels");
    }
    case "sys-prefix":
      return path.join(pythonSysPrefix(dest.python), "share", "jupyter", "kernels");
    case "prefix":
      if (!dest.prefix) throw new UsageError("--prefix needs a folder", { code: "bad_option" });
      return path.join(path.resolve(dest.prefix), "share", "jupyter", "kernels");
  }
}

// A tiny logo so the launcher shows something; SVG is text, so it costs nothing to ship.
function logoSvg(label: string): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64" viewBox="0 0 64 64"><rect width="64" height="64" rx="10" fill="#2f74c0"/><text x="32" y="42" font-family="sans-serif" font-size="26" font-weight="bold" text-anchor="middle" fill="#fff">${label}</text></svg>\n`;
}

/** Result of installing or removing one kernelspec. */
export interface SpecChange {
  name: KernelName;
  dir: string;
  /** For uninstall: false when there was nothing to remove. */
  changed: boolean;
}

/**
 * Writes both kernelspec folders into `kernelsDir` (created if missing), replacing older ones.
 * Each folder is written beside its final place and renamed over it, so Jupyter never reads a
 * half-written spec.
 * @throws Node's fs errors (e.g. EACCES) when the folder is not writable.
 */
export function writeKernelSpecs(kernelsDirPath: string, options: KernelSpecOptions = {}): SpecChange[] {
  fs.mkdirSync(kernelsDirPath, { recursive: true });
  return KERNEL_NAMES.map((name) => {
    const dir = replaceDir(kernelsDirPath, name, (tmp) => {
      fs.writeFileSync(path.join(tmp, "kernel.json"), JSON.stringify(kernelSpec(name, options), null, 2) + "\n");
      fs.writeFileSync(path.join(tmp, "logo-svg.svg"), logoSvg(name === "sense-ts" ? "TS" : "JS"));
    });
    return { name, dir, changed: true };
  });
}

/**
 * Removes both kernelspec folders from `kernelsDir`; a missing one is not an error
 * (`changed: false`). Only folders whose kernel.json says it is a Sense kernel are removed, so a
 * foreign spec that happens to be called `sense-ts` stays.
 */
export function removeKernelSpecs(kernelsDirPath: string): SpecChange[] {
  return KERNEL_NAMES.map((name) => {
    const dir = path.join(kernelsDirPath, name);
    let ours = false;
    try {
      const spec = JSON.parse(fs.readFileSync(path.join(dir, "kernel.json"), "utf8")) as { metadata?: { sense?: unknown } };
      ours = spec.metadata?.sense !== undefined;
    } catch {
      /* no readable kernel.json: nothing of ours here */
    }
    if (ours) fs.rmSync(dir, { recursive: true, force: true });
    return { name, dir, changed: ours };
  });
}

/** Installs both kernelspecs at `dest`; see {@link kernelsDir} and {@link writeKernelSpecs}. */
export function installKernelSpecs(dest: SpecDestination = { kind: "user" }, options: KernelSpecOptions = {}): SpecChange[] {
  return writeKernelSpecs(kernelsDir(dest), options);
}

/** Removes both kernelspecs from `dest`; see {@link kernelsDir} and {@link removeKernelSpecs}. */
export function uninstallKernelSpecs(dest: SpecDestination = { kind: "user" }): SpecChange[] {
  return removeKernelSpecs(kernelsDir(dest));
}

/** A Jupyter `kernel.json` document. */
export interface FastKernelSpec {
  argv: string[];
  display_name: string;
  language: "javascript";
  interrupt_mode: "signal";
  env?: Record<string, string>;
  metadata: Record<string, unknown>;
}

/** Options of {@link fastKernelSpec}. */
export interface FastKernelSpecOptions {
  /** Node binary the kernel runs with; default: the Node running this code. */
  nodePath?: string;
  /** Path of the built kernel script; default: `<package root>/dist/kernel-extension/fast-kernel.js`. */
  kernelScript?: string;
}

/**
 * Returns the `kernel.json` object of the `sense-fast` kernel: a JavaScript-only Jupyter kernel
 * that never loads TypeScript (workers run code the master already type-checked and transpiled).
 * @throws ConfigError (`bad_config`) when no `kernelScript` is given and the package root cannot be found.
 */
export function fastKernelSpec(options: FastKernelSpecOptions = {}): FastKernelSpec {
  const script = options.kernelScript ?? distPath(packageRoot(), "fastKernel");
  return {
    argv: [options.nodePath ?? process.execPath, script, "--config-path", "{connection_file}"],
    display_name: "JavaScript worker (Sense, fast)",
    language: "javascript",
    // A cell in a busy loop never reads the control socket: only a signal can stop it.
    interrupt_mode: "signal",
    metadata: { sense: { engine: "fast" } },
  };
}
