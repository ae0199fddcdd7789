/**
 * Shared parts of the reliability suite: trial counts (CI or full), deadline polling, figures
 * (printed per file and collected for `harness/reliability.ts`), a secret scanner fed with every
 * text the suite sees, and /proc probes (kernel pid, RSS, open fds).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { REPO } from "../helpers/jupyter";
import type { Output } from "../helpers/kernel";
import { silenceServicesConsole } from "../../src/util/services-console";

// The notebook clients reconnect after every master kill; their "Connection lost" chatter is noise.
silenceServicesConsole();

/** `SENSE_RELIABILITY=full` selects the full counts; anything else is the CI part. */
export const FULL = process.env.SENSE_RELIABILITY === "full";

/** How much of each kind of trial runs. */
export const COUNTS = FULL
  ? { killTrials: 10, soakCycles: 30, soakWorkers: 8, loadMasters: 4, loadWorkers: 8 }
  : { killTrials: 3, soakCycles: 3, soakWorkers: 8, loadMasters: 2, loadWorkers: 4 };

/** Where figures are appended (one JSON object a line); `harness/reliability.ts` prints them as a table. */
export const FIGURES_FILE = path.join(REPO, "artifacts", "reliability", "figures.jsonl");

/** One measured figure. */
export interface Figure {
  suite: string;
  name: string;
  value: number | string;
  unit: string;
  /** The target, as text (e.g. "<= 2000"), when there is one. */
  target?: string;
  mode: "ci" | "full";
}

/** Collects figures of one test file; `flush()` prints them and appends them to {@link FIGURES_FILE}. */
export class Figures {
  private readonly items: Figure[] = [];
  constructor(private readonly suite: string) {}

  add(name: string, value: number | string, unit: string, target?: string): void {
    this.items.push({ suite: this.suite, name, value, unit, target, mode: FULL ? "full" : "ci" });
  }

  /** min / median / max of a series, as one figure each. */
  series(name: string, values: number[], unit: string, target?: string): void {
    if (!values.length) return;
    const s = [...values].sort((a, b) => a - b);
    const median = s[Math.floor((s.length - 1) / 2)];
    this.add(`${name} (n=${s.length}) min/median/max`, `${s[0]}/${median}/${s[s.length - 1]}`, unit, target);
  }

  flush(): void {
    if (!this.items.length) return;
    fs.mkdirSync(path.dirname(FIGURES_FILE), { recursive: true });
    fs.appendFileSync(FIGURES_FILE, this.items.map((f) => JSON.stringify(f)).join("\n") + "\n");
    console.log(this.items.map((f) => `${f.suite} | ${f.name}: ${f.value} ${f.unit}${f.target ? ` (target ${f.target})` : ""}`).join("\n"));
    this.items.length = 0;
  }
}

export { until, captureSink } from "../helpers/util";
export type { CaptureSink } from "../helpers/util";

/**
 * Everything the suite saw (notebook outputs, sink output, error messages, session names, the
 * server's log after start-up); `leaks(secrets)` names each place a secret appears.
 */
export class SecretScan {
  private readonly texts: { where: string; text: string }[] = [];

  add(where: string, value: unknown): void {
    if (value === undefined || value === null) return;
    this.texts.push({ where, text: typeof value === "string" ? value : JSON.stringify(value) ?? String(value) });
  }

  addError(where: string, e: unknown): void {
    if (e instanceof Error) {
      this.add(`${where} (message)`, e.message);
      this.add(`${where} (stack)`, e.stack);
      this.add(`${where} (details)`, (e as { details?: unknown }).details);
    } else this.add(where, e);
  }

  addOutputs(where: string, outputs: Output[]): void {
    for (const o of outputs) this.add(where, o);
  }

  /** How many texts were scanned. */
  get size(): number {
    return this.texts.length;
  }

  /** Total characters scanned. */
  get chars(): number {
    return this.texts.reduce((n, t) => n + t.text.length, 0);
  }

  leaks(secrets: readonly string[]): string[] {
    const out: string[] = [];
    for (const { where, text } of this.texts) {
      for (const s of secrets) if (s && text.includes(s)) out.push(`${where}: ${text.slice(Math.max(0, text.indexOf(s) - 80), text.indexOf(s) + 20).replace(s, "<SECRET>")}`);
    }
    return out;
  }
}

/** Pids whose command line holds the connection file of one of `kernelIds` (kernel processes). */
export function kernelPids(kernelIds: Iterable<string>): number[] {
  const needles = [...kernelIds].map((id) => `kernel-${id}.json`);
  if (!needles.length) return [];
  const pids: number[] = [];
  for (const e of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${e}/cmdline`, "utf8");
      if (!needles.some((n) => cmd.includes(n))) continue;
      const stat = fs.readFileSync(`/proc/${e}/stat`, "utf8");
      if (stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z") pids.push(Number(e));
    } catch {
      /* ended while we looked */
    }
  }
  return pids;
}

/** The one process of kernel `kernelId`; throws when there is none. */
export function kernelPid(kernelId: string): number {
  const [pid] = kernelPids([kernelId]);
  if (pid === undefined) throw new Error(`no process for kernel ${kernelId}`);
  return pid;
}

/** Resident set size of `pid`, KiB. */
export function rssKiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]);
}

/** Open file descriptors of `pid`. */
export function fdCount(pid: number): number {
  return fs.readdirSync(`/proc/${pid}/fd`).length;
}

/** A tiny, CPU-light Python body that prints a line: a worker whose kind does not matter. */
export const FAST_ENGINE = "sense-fast";

/** Where {@link trace} writes: progress of long trials, readable while jest still buffers its console. */
export const TRACE_FILE = path.join(REPO, "artifacts", "reliability", "trace.log");

/** Appends a timestamped progress line to {@link TRACE_FILE}. */
export function trace(msg: string): void {
  fs.mkdirSync(path.dirname(TRACE_FILE), { recursive: true });
  fs.appendFileSync(TRACE_FILE, `${new Date().toISOString()} [${path.basename(process.argv[1] ?? "")}:${process.pid}] ${msg}\n`);
}
