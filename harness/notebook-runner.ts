/**
 * Runs a notebook cell by cell on a real kernel through a real Jupyter Server, as a person in
 * JupyterLab would, and reports every cell's outputs, including output that reaches a cell
 * after it finished (worker output, live tables updated by display id).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { openNotebook, Output, ServerAddress } from "./kernel-client";

/** One code cell's result. Its `outputs` keep growing while late output arrives. */
export interface CellReport {
  index: number;
  source: string;
  status: "ok" | "error" | "abort" | "skipped";
  outputs: Output[];
  /** How many outputs the cell had when its reply came; the rest arrived after it finished. */
  outputsAtReply: number;
  durationMs: number;
}

export interface NotebookReport {
  ok: boolean;
  cells: CellReport[];
  kernelId: string;
}

export interface RunOptions {
  /** Kernelspec; default: the notebook's own `metadata.kernelspec.name`. */
  kernel?: string;
  /** Called before each code cell runs. */
  onCellStart?(cell: { index: number; count: number; source: string }): void;
  /** Called for every output of every cell as it arrives (also late ones). */
  onOutput?(cellIndex: number, output: Output): void;
  /** Called when a cell has finished. */
  onCellEnd?(cell: CellReport): void;
  /** Stop at the first failing cell (default true, as "Run All" does). */
  stopOnError?: boolean;
  /** Keep the kernel after the run (the caller shuts it down); default false. */
  keepKernel?: boolean;
}

interface NotebookJson {
  cells: { cell_type: string; source: string | string[] }[];
  metadata?: { kernelspec?: { name?: string } };
}

/** Code cells of a notebook file, in order. */
export function readCodeCells(file: string): { sources: string[]; kernel?: string } {
  const nb = JSON.parse(fs.readFileSync(file, "utf8")) as NotebookJson;
  const sources = nb.cells
    .filter((c) => c.cell_type === "code")
    .map((c) => (Array.isArray(c.source) ? c.source.join("") : c.source))
    .filter((s) => s.trim() !== "");
  return { sources, kernel: nb.metadata?.kernelspec?.name };
}

/**
 * Runs `notebookFile` (which must lie under `rootDir`, the server's root) cell by cell.
 * The session path is the notebook's path relative to the root, so its kernel starts in the
 * notebook's folder, as in JupyterLab.
 */
export async function runNotebook(server: ServerAddress, rootDir: string, notebookFile: string, options: RunOptions = {}): Promise<NotebookReport> {
  const { sources, kernel } = readCodeCells(notebookFile);
  const kernelName = options.kernel ?? kernel ?? "sense-ts";
  const rel = path.relative(rootDir, notebookFile).split(path.sep).join("/");
  const nb = await openNotebook(server, kernelName, rel);
  const cells: CellReport[] = [];
  let ok = true;
  try {
    for (let i = 0; i < sources.length; i++) {
      const source = sources[i];
      if (!ok && options.stopOnError !== false) {
        cells.push({ index: i, source, status: "skipped", outputs: [], outputsAtReply: 0, durationMs: 0 });
        continue;
      }
      options.onCellStart?.({ index: i, count: sources.length, source });
      const t0 = Date.now();
      const result = await nb.run(source, (o) => options.onOutput?.(i, o));
      const report: CellReport = { index: i, source, status: result.status, outputs: result.outputs, outputsAtReply: result.outputs.length, durationMs: Date.now() - t0 };
      cells.push(report);
      options.onCellEnd?.(report);
      if (result.status !== "ok") ok = false;
    }
    // Output a kernel sends after a cell's idle still belongs to that cell.
    await nb.settle();
  } finally {
    if (!options.keepKernel) await nb.shutdown();
  }
  return { ok, cells, kernelId: nb.kernelId };
}
