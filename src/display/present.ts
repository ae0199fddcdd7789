/**
 * The one decision of how a value is shown in a cell: its rich bundle when it has one (a
 * `Displayable`, or a value a display hook renders: worker lists, network info, ...), else its
 * text. The Sense kernel (a cell's last expression, a magic's result), the magics runner and
 * `display()` all ask here.
 */
import { inspect } from "node:util";
import { isMimeBundle } from "./bundle";
import { richBundle } from "./hooks";
import type { MimeBundle, OutputSink } from "./sink";

/** How a value is shown: as a rich bundle, or as text. */
export type Presentation = { rich: MimeBundle } | { text: string };

/** Options of {@link presentValue}. */
export interface PresentOptions {
  /**
   * An explicit `display(value)`: a plain MIME bundle is shown as itself and a string as its
   * own text (as a value, a bundle is an object like any other and a string is quoted).
   */
  explicit?: boolean;
}

/** How `value` is shown. Never throws (a hook that fails is no match). */
export function presentValue(value: unknown, options: PresentOptions = {}): Presentation {
  if (options.explicit && isMimeBundle(value)) return { rich: value };
  const rich = typeof value === "object" && value !== null ? richBundle(value) : undefined;
  if (rich) return { rich };
  return { text: options.explicit && typeof value === "string" ? value : inspect(value) };
}

/** Shows `value` on `sink` as {@link presentValue} decides: a display, or a line on stdout. */
export function showValue(sink: OutputSink, value: unknown): void {
  const p = presentValue(value);
  if ("rich" in p) sink.display(p.rich);
  else sink.stdout(`${p.text}\n`);
}
