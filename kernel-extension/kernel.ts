/**
 * The Sense kernels' entry point:
 * `node <package>/dist/kernel-extension/kernel.js --config-path {connection_file} [--js]`
 * (`sense-ts`, `sense-js`; `fast-kernel.js` starts `sense-fast` the same way).
 *
 * Every Sense kernel is the one protocol core (core.ts) with a language engine: TypeScript
 * (ts-engine.ts: tslab's converter, loaded on the first cell that needs it), JavaScript through
 * tslab's converter in JS mode (`--js`), or plain JavaScript with no compiler at all (sense-fast).
 * Code the master already checked and transpiled (a worker's startup code) runs without the
 * compiler in all of them. Magics (`%`/`%%` cells) work in all of them.
 *
 * A kernelspec installed `--user` points at one installed copy of this package; when the
 * notebook's folder resolves its own `sense-tslab` (in a `node_modules` above it), that copy's
 * kernel runs instead, as tslab does for itself: a project's own version wins.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { parseArgs } from "node:util";
import type * as Zmq from "zeromq";
import { KernelCore } from "./core";
import type { Engine } from "./engine";
import type { ConnectionInfo } from "../src/protocol/wire";
import { packageRoot, packageVersion } from "../src/package-root";
import { JsEngine } from "./js-engine";
import type { MagicsModule } from "./magic-cells";
import { hookPackageResolution } from "./resolve";
import type { TsEngine } from "./ts-engine";
import { enterGatewayWorkingDir } from "./working-dir";
import { silenceServicesConsole } from "../src/util/services-console";
import { distPath, PACKAGE_NAME } from "../src/protocol/marks";

/** Which Sense kernel to run. */
export type KernelFlavour = "ts" | "js" | "fast";

/** Command-line options of the kernel. */
export interface KernelOptions {
  /** The connection file Jupyter wrote for this kernel. */
  configPath: string;
  /** JavaScript flavour (`sense-js`) instead of TypeScript (`sense-ts`). */
  jsKernel: boolean;
}

const USAGE = "usage: node kernel.js --config-path <connection_file> [--js]";

/**
 * Parses the kernel's argv (without `node` and the script).
 * @throws Error with the usage text for unknown options or a missing `--config-path`.
 */
export function parseKernelArgs(argv: string[]): KernelOptions {
  let values: { "config-path"?: string; js?: boolean };
  try {
    ({ values } = parseArgs({ args: argv, options: { "config-path": { type: "string" }, js: { type: "boolean" } }, strict: true }));
  } catch (e) {
    throw new Error(`${(e as Error).message}\n${USAGE}`, { cause: e });
  }
  if (!values["config-path"]) throw new Error(`--config-path is required\n${USAGE}`);
  return { configPath: values["config-path"], jsKernel: !!values.js };
}

/** The magics registry of the package at `root`: its index, else its runner with the built-in magics. */
export function loadMagicsRegistry(root: string, log: (line: string) => void): MagicsModule {
  const dir = distPath(root, "magics");
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const load = (p: string) => require(p) as Partial<MagicsModule>;
  let m: Partial<MagicsModule>;
  try {
    m = load(dir);
  } catch (e) {
    if ((e as { code?: string }).code !== "MODULE_NOT_FOUND" || !String((e as Error).message).includes(dir)) throw e;
    try {
      load(path.join(dir, "builtins"));
    } catch (e2) {
      log(`sense: built-in magics unavailable: ${(e2 as Error).message}`);
    }
    m = load(path.join(dir, "run"));
  }
  if (typeof m.runCell !== "function") throw new Error("dist/src/magics exports no runCell");
  return m as MagicsModule;
}

/**
 * The root of a `sense-tslab` installed in a `node_modules` at or above `dir` whose kernel entry
 * exists, when it is another copy than `ownRoot`; else null.
 */
export function localPackageRoot(dir: string, ownRoot: string): string | null {
  const own = fs.realpathSync(ownRoot);
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    const candidate = path.join(d, "node_modules", PACKAGE_NAME);
    if (fs.existsSync(distPath(candidate, "kernel"))) {
      const real = fs.realpathSync(candidate);
      return real === own ? null : real;
    }
    if (path.dirname(d) === d) return null;
  }
}

/** What {@link startSenseKernel} returns (for tests). */
export interface RunningKernel {
  core: KernelCore;
  engine: Engine;
}

/**
 * Starts a Sense kernel of `flavour` on the connection file `configPath`; resolves once its
 * sockets are bound.
 * @throws Error when the connection file cannot be read or a socket cannot be bound.
 */
export async function startSenseKernel(configPath: string, flavour: KernelFlavour): Promise<RunningKernel> {
  const kernelLog = process.stderr.write.bind(process.stderr);
  const log = (line: string) => void kernelLog(`${line}\n`);
  silenceServicesConsole();
  const info = JSON.parse(fs.readFileSync(configPath, "utf8")) as ConnectionInfo;
  const root = packageRoot(__dirname);
  // `sense-tslab` and `sense-tslab/...` resolve to this package from any folder (cheap; no compiler).
  hookPackageResolution(root);
  // The TypeScript engine's module (and the compiler host, code cache and transpiler it imports)
  // is loaded only by the kernels that use it: a sense-fast worker's boot skips it.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const tsEngine = () => (require("./ts-engine") as { TsEngine: typeof TsEngine }).TsEngine;
  const engine: Engine = flavour === "fast" ? new JsEngine(root) : new (tsEngine())({ isJS: flavour === "js", root, log });
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const zmq = require("zeromq") as typeof Zmq;
  const core = new KernelCore(info, zmq, engine, {
    implementation: flavour === "fast" ? "sense-fast" : flavour === "js" ? "sense-js" : "sense-ts",
    version: packageVersion(root),
    root,
    log,
    loadMagics: () => loadMagicsRegistry(root, log),
  });
  await core.start();
  return { core, engine };
}

/** Runs the kernel from the command line; exits 2 on bad arguments, 1 when it cannot start. */
export function main(argv: string[] = process.argv.slice(2), flavour?: KernelFlavour): void {
  let options: KernelOptions;
  try {
    options = parseKernelArgs(argv);
  } catch (e) {
    process.stderr.write(`sense kernel: ${(e as Error).message}\n`);
    process.exit(2);
  }
  // The connection file path is resolved before a gateway kernel moves to its notebook's folder.
  const configPath = path.resolve(options.configPath);
  enterGatewayWorkingDir();
  const which: KernelFlavour = flavour ?? (options.jsKernel ? "js" : "ts");
  let local: string | null = null;
  try {
    local = localPackageRoot(process.cwd(), packageRoot(__dirname));
  } catch {
    /* an unreadable folder above the notebook: run this copy */
  }
  if (local) {
    process.stderr.write(`sense: this folder has its own sense-tslab (${local}); running its kernel\n`);
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const other = require(distPath(local, "kernel")) as { main(argv: string[], flavour?: KernelFlavour): void };
    other.main(["--config-path", configPath, ...(which === "js" ? ["--js"] : [])], which);
    return;
  }
  startSenseKernel(configPath, which).catch((e: unknown) => {
    process.stderr.write(`sense kernel: cannot start: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  });
}

if (require.main === module) main();
