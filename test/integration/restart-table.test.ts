/**
 * `%sense_restart` (#23) on a real Jupyter Server, from a `sense-js` notebook kernel with real
 * worker kernels: the table it shows updates in place, and the restarted worker's row goes
 * `starting` → `running` → `idle`, each status shown (none coalesced away), the row following the
 * fresh kernel (a new id, same name).
 */
import { until } from "../helpers/util";
import { NotebookKernel, Output } from "../helpers/kernel";
import { notebookMachine } from "../helpers/notebook-machine";

let nb: NotebookKernel;

notebookMachine("sense-js", async (n) => {
  nb = n;
  expect((await nb.run("%%sense_worker -n 2\n1")).status).toBe("ok");
  expect((await nb.run("%sense_await --completion --timeout 120")).status).toBe("ok");
});

/** A worker's status and short id in a workers table's text/plain, or `undefined` when it has no row. */
function rowOf(text: string, name: string): { id: string; status: string } | undefined {
  const m = new RegExp(`^\\s*${name}\\s+(\\S+)\\s+\\S+\\s+\\S+\\s+(starting|running|idle|failed|stopped)\\b`, "m").exec(text);
  return m ? { id: m[1], status: m[2] } : undefined;
}

const plain = (o: Output) => (o.type === "display_data" || o.type === "update_display_data" ? String(o.data["text/plain"]) : "");

describe("%sense_restart's table", () => {
  it("shows the restarted worker's row going starting -> running -> idle, updated in place", async () => {
    const before = await nb.run("%sense_workers");
    const old = rowOf(before.outputs.map(plain).join("\n"), "w2");
    expect(old?.status).toBe("idle");

    const r = await nb.run("%sense_restart w2");
    expect(r.status).toBe("ok");
    const first = r.outputs.find((o) => o.type === "display_data");
    const displayId = first?.type === "display_data" ? first.displayId : undefined;
    expect(displayId).toBeDefined();
    // The table and its updates (later ones arrive after the cell replied: outputs keep growing).
    const shown = () => r.outputs.filter((o) => (o.type === "display_data" || o.type === "update_display_data") && o.displayId === displayId).map((o) => rowOf(plain(o), "w2"));
    await until("w2's row idle in the table", () => (shown().at(-1)?.status === "idle" ? true : undefined), 60_000);
    const statuses = shown().map((x) => x?.status).filter((s, i, all) => s !== all[i - 1]);
    expect(statuses).toEqual(["starting", "running", "idle"]);
    // Only the restarted worker's row, which ends on the fresh kernel. (The launching cell's table
    // follows w2 too: its updates may come under this cell, with their own display id.)
    for (const o of r.outputs.filter((x) => (x.type === "display_data" || x.type === "update_display_data") && x.displayId === displayId)) expect(rowOf(plain(o), "w1")).toBeUndefined();
    expect(shown().at(-1)?.id).not.toBe(old?.id);
    // Listed idle on the fresh kernel (its startup code and env on restart: test/chaos/lost-and-restart.test.ts).
    const after = (await nb.run("%sense_workers")).outputs.map(plain).join("\n");
    expect(rowOf(after, "w2")).toEqual({ id: shown().at(-1)?.id, status: "idle" });
    expect(rowOf(after, "w1")?.status).toBe("idle");
  });
});
