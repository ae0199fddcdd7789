/**
 * Output from Sense code running in Deno's Jupyter kernel (a Deno master): its kernel shows only
 * what `console` prints and what goes through `Deno.jupyter`; `process.stdout.write` never reaches
 * the notebook. So worker output, magics and live tables are broadcast on the kernel's iopub as
 * `stream`, `display_data` and `update_display_data` messages; Deno's kernel parents them to the
 * request it runs (or ran last), which is the calling cell while it runs.
 */
import type { MimeBundle, OutputSink } from "../protocol/cell";
import { UsageError } from "../errors";

/** The part of Deno's `Deno.jupyter` namespace this uses. */
export interface DenoJupyter {
  broadcast(msgType: string, content: Record<string, unknown>): Promise<void> | void;
}

/** `Deno.jupyter` when this process is Deno's Jupyter kernel, else `undefined`. */
export function denoJupyter(): DenoJupyter | undefined {
  try {
    // Outside `deno jupyter` (a `deno run` script) reading Deno.jupyter throws.
    const j = (globalThis as { Deno?: { jupyter?: { broadcast?: unknown } } }).Deno?.jupyter;
    return typeof j?.broadcast === "function" ? (j as DenoJupyter) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A sink that writes through `jupyter.broadcast`. A failed broadcast (the kernel shutting down) is
 * dropped: output must never fail the call that writes it.
 * @throws UsageError (from `display`) when `update` is asked for without a `displayId`.
 */
export function denoSink(jupyter: DenoJupyter): OutputSink {
  const send = (type: string, content: Record<string, unknown>) => {
    try {
      // Deno's broadcast returns a promise in some versions and nothing in others.
      const p: unknown = jupyter.broadcast(type, content);
      if (p instanceof Promise) p.catch(() => undefined);
    } catch {
      /* the kernel is shutting down */
    }
  };
  return {
    stdout: (text) => send("stream", { name: "stdout", text }),
    stderr: (text) => send("stream", { name: "stderr", text }),
    display(bundle: MimeBundle, opts = {}) {
      if (opts.update && opts.displayId === undefined) throw new UsageError("a display update needs the displayId of the display it replaces");
      send(opts.update ? "update_display_data" : "display_data", { data: { ...bundle }, metadata: {}, transient: opts.displayId === undefined ? {} : { display_id: opts.displayId } });
    },
  };
}
