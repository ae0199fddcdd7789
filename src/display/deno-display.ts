/**
 * Tables for a cell's last expression in Deno's Jupyter kernel. Deno's kernel shows a value
 * richly when it has a `[Symbol.for("Jupyter.display")]()` method returning a MIME bundle, and
 * has no hook a library can register; so, in Deno only, the API's results (worker lists, execute
 * results, network and auth info) get that method, non-enumerable (JSON, structured clones,
 * `Object.keys` and equality checks do not see it), rendering through the display hooks when shown.
 */
import { inspect } from "node:util";
import { richBundle } from "./hooks";
import { denoJupyter } from "./deno-sink";
import type { MimeBundle } from "../protocol/cell";

const DENO_DISPLAY = Symbol.for("Jupyter.display");

/**
 * `value` itself, given (in Deno's kernel only) a non-enumerable display method that renders it
 * through the display hooks when the kernel shows it (then, so a live status is current).
 * Anything else, and any value outside Deno's kernel, is returned untouched. Never throws.
 */
export function displayableInDeno<T>(value: T): T {
  if (typeof value !== "object" || value === null || !denoJupyter() || Object.isFrozen(value)) return value;
  try {
    if (!Object.prototype.hasOwnProperty.call(value, DENO_DISPLAY)) {
      Object.defineProperty(value, DENO_DISPLAY, {
        value: (): MimeBundle => richBundle(value) ?? { "text/plain": inspect(value) },
        enumerable: false,
        configurable: true,
      });
    }
  } catch {
    /* a value that takes no property is shown as Deno shows it */
  }
  return value;
}
