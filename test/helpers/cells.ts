/**
 * Cell helpers the gateway and container suites share: a cell that must succeed, the JSON a cell
 * printed after a tag, and Enterprise Gateway's own kernel list.
 */
import { allText, CellResult, NotebookKernel } from "./kernel";

/** Runs a cell that must succeed; returns its result (whose outputs keep growing). */
export async function okCell(nb: NotebookKernel, code: string, onOutput?: Parameters<NotebookKernel["run"]>[1]): Promise<CellResult> {
  const r = await nb.run(code, onOutput);
  if (r.status !== "ok") throw new Error(`cell failed:\n${code}\n---\n${allText(r.outputs)}`);
  return r;
}

/** The JSON a cell printed on a line starting with `tag `. */
export function printed<T>(r: CellResult, tag: string): T {
  const line = r.stdout.split("\n").find((l) => l.startsWith(`${tag} `));
  if (!line) throw new Error(`no ${tag} line in:\n${allText(r.outputs)}`);
  return JSON.parse(line.slice(tag.length + 1)) as T;
}

/** EG's own kernel list (`GET <eg>/api/kernels`), the "no kernel left" check under a gateway. */
export async function egKernels(gw: { egUrl: string; egToken: string }): Promise<{ id: string; name: string }[]> {
  const res = await fetch(`${gw.egUrl}api/kernels`, { headers: { Authorization: `token ${gw.egToken}` } });
  if (!res.ok) throw new Error(`EG GET /api/kernels: ${res.status}`);
  return (await res.json()) as { id: string; name: string }[];
}
