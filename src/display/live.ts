/**
 * Displays that change in place (worker tables, progress) and a one-call `display()`.
 */
import { randomUUID } from "node:crypto";
import { type Displayable, isDisplayable } from "./bundle";
import { presentValue } from "./present";
import { type MimeBundle, type OutputSink, captureSink } from "./sink";

/** A display that can be replaced in place. */
export interface LiveDisplay {
  /** The display id shared by the first display and every update. */
  readonly id: string;
  /** Replaces the displayed bundle (sends `update_display_data`); identical bundles are not resent. */
  update(bundle: MimeBundle | Displayable): void;
}

function toBundle(value: MimeBundle | Displayable): MimeBundle {
  return isDisplayable(value) ? value.toMimeBundle() : value;
}

/**
 * Shows `bundle` now, synchronously, under a fresh display id, and returns a handle whose
 * `update` replaces it in place. Call it while the owning cell still runs: JupyterLab routes later
 * updates by display id to the cell that showed the first display, even after that cell finished,
 * but a *first* display sent late would land in whatever cell runs then.
 */
export function liveDisplay(sink: OutputSink, bundle: MimeBundle | Displayable, id = `sense-${randomUUID()}`): LiveDisplay {
  let last = toBundle(bundle);
  sink.display(last, { displayId: id });
  return {
    id,
    update(next) {
      const b = toBundle(next);
      if (JSON.stringify(b) === JSON.stringify(last)) return;
      last = b;
      sink.display(b, { displayId: id, update: true });
    },
  };
}

/**
 * Displays a {@link Displayable}, a MIME bundle, a value a display hook renders (worker lists,
 * network info, ...: see `hooks.ts`), or any other value (as its `util.inspect` text)
 * in the current cell, through {@link captureSink} unless a sink is given.
 */
export function display(value: unknown, sink: OutputSink = captureSink()): void {
  const p = presentValue(value, { explicit: true });
  sink.display("rich" in p ? p.rich : { "text/plain": p.text });
}
