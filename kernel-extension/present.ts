/**
 * How a value is presented as a notebook output (a cell's last expression, `display(value)`): the
 * one function every Sense kernel uses. Objects that render themselves (`toMimeBundle`) and values
 * a display hook knows (worker lists, network info, ...) become their rich bundle (text/html and
 * text/plain); anything else is `util.inspect`ed, as Node's REPL shows it.
 */
import * as path from "node:path";
import * as util from "node:util";
import type { MimeBundle } from "./cell-io";

type RichBundle = (value: unknown) => MimeBundle | undefined;
const hooksByRoot = new Map<string, RichBundle>();

/** The display hooks of the package at `root` (loaded on the first object shown). */
function richBundle(root: string): RichBundle {
  let f = hooksByRoot.get(root);
  if (!f) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    f = (require(path.join(root, "dist", "src", "display", "hooks")) as { richBundle: RichBundle }).richBundle;
    hooksByRoot.set(root, f);
  }
  return f;
}

/**
 * The MIME bundle of `value`; `root` is this package's root (its display hooks live there).
 * @throws what a value's own `toMimeBundle` or inspection throws, or when the hooks cannot be loaded.
 */
export function presentValue(value: unknown, root: string): MimeBundle {
  if (typeof value === "object" && value !== null) {
    const rich = richBundle(root)(value);
    if (rich) return rich;
  }
  return { "text/plain": util.inspect(value) };
}
