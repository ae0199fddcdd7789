/**
 * A value as a notebook output bundle (a cell's last expression, `display(value)`), in every Sense
 * kernel. The decision is the package's one function, `presentValue` in `src/display/present.ts`
 * (a rich bundle for what has one: worker tables, network info, ...; else text), loaded from the
 * package at `root` on the first value shown; this only turns its answer into a MIME bundle.
 */
import * as path from "node:path";
import type * as Present from "../src/display/present";
import type { MimeBundle } from "./cell-io";

const byRoot = new Map<string, typeof Present.presentValue>();

/**
 * The MIME bundle of `value`; `root` is this package's root.
 * @throws when the package's display modules cannot be loaded.
 */
export function presentValue(value: unknown, root: string): MimeBundle {
  let present = byRoot.get(root);
  if (!present) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    present = (require(path.join(root, "dist", "src", "display", "present")) as typeof Present).presentValue;
    byRoot.set(root, present);
  }
  const p = present(value);
  return "rich" in p ? p.rich : { "text/plain": p.text };
}
