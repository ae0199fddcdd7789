/**
 * `npm run test:reliability`: runs the reliability suite (test/reliability, jest project
 * "reliability") with the full counts (`SENSE_RELIABILITY=full`: 10 kill trials each, 30 soak
 * cycles, 4 masters x 8 workers), then prints the table of figures the tests recorded.
 * `node build/harness/reliability.js --table` only prints the table of the last run (npm test
 * runs the CI counts as part of its jest run and prints it this way).
 * Exit status: jest's. jest runs as an argv array, never through a shell.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { REPO } from "./local-server";

const FIGURES = path.join(REPO, "artifacts", "reliability", "figures.jsonl");
const TABLE = path.join(REPO, "artifacts", "reliability", "figures.txt");

interface Figure {
  suite: string;
  name: string;
  value: number | string;
  unit: string;
  target?: string;
  mode: string;
}

/** The figures of the last run as an aligned text table. */
export function figuresTable(file = FIGURES): string {
  if (!fs.existsSync(file)) return "no reliability figures recorded (the suite did not run)\n";
  const rows = fs
    .readFileSync(file, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Figure);
  const cells = [["suite", "figure", "value", "target", "mode"], ...rows.map((f) => [f.suite, f.name, `${f.value} ${f.unit}`.trim(), f.target ?? "", f.mode])];
  const widths = cells[0].map((_, i) => Math.max(...cells.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i])).join(" | ").trimEnd();
  return [line(cells[0]), widths.map((w) => "-".repeat(w)).join("-|-"), ...cells.slice(1).map(line)].join("\n") + "\n";
}

function main(argv: string[]): number {
  if (argv.includes("--table")) {
    const t = figuresTable();
    process.stdout.write(`\nReliability figures\n${t}`);
    fs.mkdirSync(path.dirname(TABLE), { recursive: true });
    fs.writeFileSync(TABLE, t);
    return 0;
  }
  fs.rmSync(FIGURES, { force: true });
  const env = { ...process.env, SENSE_RELIABILITY: process.env.SENSE_RELIABILITY ?? "full" };
  const jest = path.join(REPO, "node_modules", "jest", "bin", "jest.js");
  const r = spawnSync(process.execPath, [jest, "--ci", "--forceExit", "--selectProjects", "reliability", ...argv], { cwd: REPO, env, stdio: "inherit" });
  const t = figuresTable();
  process.stdout.write(`\nReliability figures (${env.SENSE_RELIABILITY === "full" ? "full" : "CI"} counts)\n${t}`);
  fs.mkdirSync(path.dirname(TABLE), { recursive: true });
  fs.writeFileSync(TABLE, t);
  return r.status ?? 1;
}

if (require.main === module) process.exit(main(process.argv.slice(2)));
