/**
 * The kernelspec of the fast worker engine (`sense-fast`). Kept apart from the kernel itself so
 * the installer can import it without loading ZeroMQ.
 */
import * as path from "node:path";

/** Name under which the fast engine is registered with Jupyter. */
export const FAST_KERNEL_NAME = "sense-fast";

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
  /** Path of the built kernel script; default: `fast-kernel.js` beside this file (in `dist/kernel-extension`). */
  kernelScript?: string;
}

/**
 * Returns the `kernel.json` object of the `sense-fast` kernel: a JavaScript-only Jupyter kernel
 * that never loads TypeScript (workers run code the master already type-checked and transpiled).
 * Pure: reads nothing, throws nothing.
 */
export function fastKernelSpec(options: FastKernelSpecOptions = {}): FastKernelSpec {
  const script = options.kernelScript ?? path.join(__dirname, "fast-kernel.js");
  return {
    argv: [options.nodePath ?? process.execPath, script, "--config-path", "{connection_file}"],
    display_name: "JavaScript worker (Sense, fast)",
    language: "javascript",
    // A cell in a busy loop never reads the control socket: only a signal can stop it.
    interrupt_mode: "signal",
    metadata: { sense: { engine: "fast" } },
  };
}
