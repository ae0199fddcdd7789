/**
 * A value as a notebook output bundle (a cell's last expression, `display(value)`), in every Sense
 * kernel. The decision is the package's one function, `presentValue` in `src/display/present.ts`
 * (a rich bundle for what has one: worker tables, network info, ...; else text), loaded from the
 * package at `root` on the first value shown; this only turns its answer into a MIME bundle.
 */
import type * as Present from "../src/display/present";
import type { MimeBundle } from "../src/protocol/cell";
import { distPath } from "../src/protocol/marks";

/** Turns a value into the MIME bundle a cell shows. */
export type Presenter = (value: unknown) => MimeBundle;

/**
 * The presenter of the package at `root` (this package's root). The package's display modules
 * are loaded on the first value shown, not before: a kernel whose cells show nothing never loads them.
 * The returned function throws when those modules cannot be loaded.
 */
export function presenter(root: string): Presenter {
  let present: typeof Present.presentValue | undefined;
  return (value) => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    present ??= (require(distPath(root, "present")) as typeof Present).presentValue;
    const p = present(value);
    return "rich" in p ? p.rich : { "text/plain": p.text };
  };
}
