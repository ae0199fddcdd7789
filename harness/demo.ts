/**
 * The main job (`npm run demo`): starts a local Jupyter Server from the project's own
 * environment, runs `notebooks/zmq-workers.ipynb` (or the notebook given as argument) on the
 * `sense-ts` kernel cell by cell, prints every cell's outputs in the terminal as they arrive
 * (the workers' labelled output, the tables' text form), stops everything, and exits non-zero
 * if any cell failed.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { REPO, startJupyterServer, JupyterServer } from "./local-server";
import { runNotebook } from "./notebook-runner";
import type { Output } from "./kernel-client";

const tty = process.stdout.isTTY;
const dim = (s: string) => (tty ? `\x1b[2m${s}\x1b[0m` : s);
const bold = (s: string) => (tty ? `\x1b[1m${s}\x1b[0m` : s);
const red = (s: string) => (tty ? `\x1b[31m${s}\x1b[0m` : s);

/** The text each display id showed last (late displays are printed by what they gained). */
const shown = new Map<string, string>();

function printOutput(cell: number, o: Output): void {
  const tag = dim(`[${cell + 1}] `);
  switch (o.type) {
    case "stream":
      (o.name === "stderr" ? process.stderr : process.stdout).write(
        o.text
          .replace(/\n$/, "")
          .split("\n")
          .map((l) => tag + l)
          .join("\n") + "\n",
      );
      break;
    case "error":
      process.stderr.write(red(`${tag}${o.ename}: ${o.evalue}\n`));
      break;
    default: {
      let text = String(o.data["text/plain"] ?? "");
      let update = o.type === "update_display_data";
      // A late display only grows (output after its cell finished): print what is new, as a terminal would.
      const before = o.displayId ? shown.get(o.displayId) : undefined;
      if (o.displayId) shown.set(o.displayId, text);
      if (update && before !== undefined && text.startsWith(before) && o.displayId?.startsWith("sense-late-")) {
        text = text.slice(before.length).replace(/\n$/, "");
        update = false;
      }
      if (text) process.stdout.write(text.split("\n").map((l) => tag + (update ? dim("↻ ") : "") + l).join("\n") + "\n");
    }
  }
}

async function main(): Promise<number> {
  const notebook = path.resolve(process.argv[2] ?? path.join(REPO, "notebooks", "zmq-workers.ipynb"));
  if (!fs.existsSync(notebook)) {
    console.error(`No such notebook: ${notebook}`);
    return 2;
  }
  // The demo's project home: kept between runs so `%sense_install` finds its npm cache warm.
  const project = path.join(REPO, ".sense", "demo-project");
  fs.mkdirSync(project, { recursive: true });
  const target = path.join(project, path.basename(notebook));
  fs.copyFileSync(notebook, target);

  console.log(bold(`Starting a local Jupyter Server (project home ${path.relative(process.cwd(), project) || "."})`));
  let server: JupyterServer | undefined;
  const t0 = Date.now();
  try {
    server = await startJupyterServer({ rootDir: project });
    console.log(dim(`server ${server.url} ready in ${Date.now() - t0} ms`));
    const report = await runNotebook(server, project, target, {
      onCellStart: ({ index, count, source }) => console.log(bold(`\n── cell ${index + 1}/${count} ─ ${source.split("\n")[0].slice(0, 70)}`)),
      onOutput: printOutput,
      onCellEnd: (c) => console.log(dim(`   ${c.status} in ${(c.durationMs / 1000).toFixed(1)} s`)),
    });
    const failed = report.cells.filter((c) => c.status !== "ok");
    console.log(
      bold(`\n${report.ok ? "All" : "Not all"} ${report.cells.length} cells ran${report.ok ? " fine" : `: ${failed.length} failed or skipped`} (${((Date.now() - t0) / 1000).toFixed(1)} s).`),
    );
    return report.ok ? 0 : 1;
  } finally {
    await server?.stop();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(red(`demo failed: ${err instanceof Error ? err.message : String(err)}`));
    process.exit(1);
  },
);
