#!/usr/bin/env node
/**
 * Entry point of the Sense kernel image (deploy/docker/Dockerfile) under Enterprise Gateway's
 * Docker process proxy and `python/sense_eg/launch_docker.py`:
 *  1. reads one JSON document `{argv, env}` from stdin (the launch script sends it and detaches),
 *     so the kernel's environment, the Sense token included, never sits in the container's
 *     Config.Env or anyone's argv, where `docker inspect` and `ps` would show it (in a Kubernetes
 *     pod EG's template passes the values as pod env instead: {@link podDocument});
 *  2. sizes V8's heap from the container's cgroup memory limit (`--max-old-space-size` through
 *     `NODE_OPTIONS`, src/platform/heap-limit.ts);
 *  3. runs the Node EG launcher (`launch.js`, which starts the kernel and talks to EG) with them;
 *  4. when the kernel ended because of memory (the cgroup's OOM kill count rose, or V8 reported
 *     its heap full), writes an exit note into the project home (src/platform/exit-note.ts) so the master
 *     marks the worker `failed` with a reason that says so;
 *  5. waits (at most 10 s) for processes the kernel left in the container, such as a master's
 *     keeper that is still removing its workers, before the container ends with the kernel's status.
 */
import { ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { z } from "zod";
import { UsageError } from "../../src/errors";
import { writeExitNote } from "../../src/platform/exit-note";
import { heapLimitMiB, withHeapLimit } from "../../src/platform/heap-limit";
import { exitStatus, parseLauncherArgs, runMain } from "./protocol";

function log(message: string): void {
  process.stderr.write(`[sense-container-entry ${new Date().toISOString()}] ${message}\n`);
}

/** The document on stdin. */
export const EntryDocumentSchema = z.object({
  argv: z.array(z.string().max(8192)).max(32),
  env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/), z.string().max(65536)),
});
/** The document on stdin, parsed. */
export type EntryDocument = z.infer<typeof EntryDocumentSchema>;

/**
 * Reads `stream` to its end (at most `maxBytes`, within `timeoutMs`) and parses the document.
 * @throws UsageError (`bad_option`) for a stream that is too long, too slow, or not a document.
 */
export async function readEntryDocument(stream: NodeJS.ReadableStream, maxBytes = 1 << 20, timeoutMs = 60_000): Promise<EntryDocument> {
  const text = await new Promise<string>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const timer = setTimeout(() => reject(new UsageError(`no launch document on stdin within ${timeoutMs / 1000} s`, { code: "bad_option" })), timeoutMs);
    stream.on("data", (d: Buffer | string) => {
      const b = typeof d === "string" ? Buffer.from(d) : d;
      size += b.length;
      if (size > maxBytes) {
        clearTimeout(timer);
        reject(new UsageError(`launch document longer than ${maxBytes} bytes`, { code: "bad_option" }));
        return;
      }
      chunks.push(b);
    });
    stream.on("end", () => (clearTimeout(timer), resolve(Buffer.concat(chunks).toString("utf8"))));
    stream.on("error", (e: Error) => (clearTimeout(timer), reject(e)));
  });
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new UsageError("the launch document on stdin is not JSON", { code: "bad_option" });
  }
  const parsed = EntryDocumentSchema.safeParse(value);
  if (!parsed.success) throw new UsageError(`bad launch document: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`, { code: "bad_option" });
  return parsed.data;
}

/** Reads a file; `undefined` when it does not exist. */
export type ReadFile = (file: string) => string | undefined;
const readOrUndefined: ReadFile = (file) => {
  try {
    return fs.readFileSync(file, "utf8");
  } catch {
    return undefined;
  }
};

/** This container's memory limit in bytes from its cgroup (v2 `memory.max`, v1 `memory.limit_in_bytes`); `undefined` when unlimited. */
export function cgroupMemoryLimit(read: ReadFile = readOrUndefined, root = "/sys/fs/cgroup"): number | undefined {
  const v2 = read(path.join(root, "memory.max"))?.trim();
  const raw = v2 ?? read(path.join(root, "memory", "memory.limit_in_bytes"))?.trim();
  if (raw === undefined || raw === "max" || !/^\d+$/.test(raw)) return undefined;
  const n = Number(raw);
  // cgroup v1 reports "no limit" as a huge page-aligned number (about 2^63)
  return n >= 2 ** 60 ? undefined : n;
}

/** How many times the OOM killer struck in this cgroup (v2 `memory.events`, v1 `memory.oom_control`); 0 when unknown. */
export function cgroupOomKills(read: ReadFile = readOrUndefined, root = "/sys/fs/cgroup"): number {
  const text = read(path.join(root, "memory.events")) ?? read(path.join(root, "memory", "memory.oom_control")) ?? "";
  const m = /^oom_kill (\d+)$/m.exec(text);
  return m ? Number(m[1]) : 0;
}

/** Why the kernel ended, when it was memory; `undefined` otherwise. Pure. */
export function memoryReason(oomKillsBefore: number, oomKillsAfter: number, stderrTail: string, limitBytes: number | undefined, heapMiB: number | undefined): string | undefined {
  const limit = limitBytes === undefined ? "" : ` of ${Math.round(limitBytes / 2 ** 20)} MiB`;
  if (/JavaScript heap out of memory|Reached heap limit/.test(stderrTail)) {
    return `out of memory: the JavaScript heap reached its limit${heapMiB ? ` (${heapMiB} MiB, from the container's memory limit${limit})` : ""}`;
  }
  if (oomKillsAfter > oomKillsBefore) return `out of memory: the kernel was killed at its container's memory limit${limit}`;
  return undefined;
}

/** Processes in this container other than init (pid 1), `self` and zombies. */
export function leftoverProcesses(self = process.pid, read: ReadFile = readOrUndefined, list: () => string[] = () => fs.readdirSync("/proc")): number[] {
  const pids: number[] = [];
  for (const name of list()) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    if (pid === 1 || pid === self) continue;
    const stat = read(`/proc/${pid}/stat`);
    if (!stat) continue;
    const state = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0];
    if (state !== "Z" && state !== "X") pids.push(pid);
  }
  return pids;
}

/**
 * The document for a Kubernetes pod, where EG's kernel-pod template passes the launcher's values
 * as env (`KERNEL_ID`, `EG_RESPONSE_ADDRESS`, `EG_PUBLIC_KEY`, `EG_PORT_RANGE`, `KERNEL_LANGUAGE`:
 * names as in EG 3.3's `kernel-pod.yaml.j2`, not run against a cluster here); `undefined` when
 * they are not there (the Docker path: the document comes on stdin). Pure.
 */
export function podDocument(env: NodeJS.ProcessEnv): EntryDocument | undefined {
  if (!env.KERNEL_ID || !env.EG_RESPONSE_ADDRESS || !env.EG_PUBLIC_KEY) return undefined;
  const argv = ["--kernel-id", env.KERNEL_ID, "--response-address", env.EG_RESPONSE_ADDRESS, "--public-key", env.EG_PUBLIC_KEY, "--kernel-name", env.KERNEL_LANGUAGE === "javascript" ? "sense-js" : "sense-ts"];
  const range = env.EG_PORT_RANGE || env.KERNEL_PORT_RANGE;
  if (range) argv.push("--port-range", range);
  return { argv, env: {} };
}

async function main(): Promise<number> {
  const doc = podDocument(process.env) ?? (await readEntryDocument(process.stdin));
  const args = parseLauncherArgs(doc.argv, doc.env); // refuses bad arguments before anything starts
  const env: NodeJS.ProcessEnv = { ...process.env, ...doc.env };
  const limit = cgroupMemoryLimit();
  const heapMiB = limit === undefined ? undefined : heapLimitMiB(limit / 2 ** 20);
  if (heapMiB !== undefined) env.NODE_OPTIONS = withHeapLimit(env.NODE_OPTIONS, heapMiB);
  const oomBefore = cgroupOomKills();
  log(`kernel ${args.kernelId} (${args.kernelName}): memory limit ${limit === undefined ? "none" : `${Math.round(limit / 2 ** 20)} MiB, V8 heap ${heapMiB} MiB`}`);

  const child: ChildProcess = spawn(process.execPath, [path.join(__dirname, "launch.js"), ...doc.argv], { env, stdio: ["ignore", "inherit", "pipe"] });
  let tail = "";
  child.stderr?.on("data", (d: Buffer) => {
    process.stderr.write(d);
    tail = (tail + d.toString("utf8")).slice(-16_384);
  });
  for (const sig of ["SIGTERM", "SIGINT", "SIGHUP"] as const) process.on(sig, () => child.kill(sig));
  const code = await new Promise<number>((resolve) => child.on("close", (c, s) => resolve(exitStatus(c, s))));

  const reason = memoryReason(oomBefore, cgroupOomKills(), tail, limit, heapMiB);
  const home = env.SENSE_PROJECT_HOME || env.KERNEL_WORKING_DIR;
  if (reason && home) {
    try {
      writeExitNote(home, { kernelId: args.kernelId, reason, exitCode: code });
    } catch (e) {
      log(`cannot write the exit note: ${(e as Error).message}`);
    }
  }
  log(`kernel ${args.kernelId} ended (${code})${reason ? `: ${reason}` : ""}`);
  const until = Date.now() + 10_000;
  while (leftoverProcesses().length > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
  return code;
}

if (require.main === module) runMain(main, log);
