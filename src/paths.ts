/**
 * Path containment, the one rule every "is this inside the project home?" check uses.
 */
import * as path from "node:path";

/**
 * The path of `p` relative to `root` when `p` is `root` or inside it (`""` for `root` itself),
 * else `null`. A first segment that merely starts with two dots (`..dots.js`, `..data/`) is
 * inside; only `..` itself climbs out. Never throws.
 */
export function relativeInside(root: string, p: string): string | null {
  const rel = path.relative(root, p);
  if (path.isAbsolute(rel)) return null;
  if (rel === ".." || rel.startsWith(`..${path.sep}`)) return null;
  return rel;
}

/** Whether `p` is `root` or lies inside it (see {@link relativeInside}). Never throws. */
export function isInside(root: string, p: string): boolean {
  return relativeInside(root, p) !== null;
}
