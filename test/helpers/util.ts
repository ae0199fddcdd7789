/**
 * Small helpers the integration and reliability suites share: polling for a condition (never a
 * blind sleep), a sink that keeps what workers print, and building the package kernels load.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import type { MimeBundle, OutputSink } from "../../src/display/sink";

export const REPO = path.resolve(__dirname, "..", "..");
export const DIST = path.join(REPO, "dist", "src");

/** Polls `probe` until it returns something other than `undefined`; throws at the deadline. Never a blind sleep. */
export async function until<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 30_000, everyMs = 25): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** A sink that keeps everything written to it. */
export interface CaptureSink extends OutputSink {
  out: string[];
  err: string[];
  displays: MimeBundle[];
  text(): string;
}

export function captureSink(): CaptureSink {
  const s: CaptureSink = {
    out: [],
    err: [],
    displays: [],
    stdout: (t) => void s.out.push(t),
    stderr: (t) => void s.err.push(t),
    display: (b) => void s.displays.push(b),
    text: () => s.out.join("") + s.err.join("") + s.displays.map((d) => JSON.stringify(d)).join(""),
  };
  return s;
}

/** The kernel-side code loads the built package; rebuild when a source is newer than its output. */
export function ensureBuilt(modules: string[]): void {
  const stale = modules.some((m) => {
    const out = path.join(DIST, `${m}.js`);
    return !fs.existsSync(out) || fs.statSync(out).mtimeMs < fs.statSync(path.join(REPO, "src", `${m}.ts`)).mtimeMs;
  });
  if (!stale) return;
  // Other modules' type errors do not stop tsc from emitting ours; the check below is what counts.
  spawnSync(process.execPath, [require.resolve("typescript/bin/tsc"), "-p", path.join(REPO, "tsconfig.json")], { cwd: REPO, stdio: "ignore" });
  for (const m of modules) {
    if (!fs.existsSync(path.join(DIST, `${m}.js`))) throw new Error(`build failed: no dist/src/${m}.js`);
  }
}

/** Python cell code that runs `node -e <script>` as a child of the kernel and echoes its output. */
export function pyRunNode(script: string): string {
  return [
    "import subprocess, sys",
    `r = subprocess.run([${JSON.stringify(process.execPath)}, "-e", ${JSON.stringify(script)}], capture_output=True, text=True)`,
    "sys.stdout.write(r.stdout)",
    "sys.stderr.write(r.stderr)",
    "print('EXIT', r.returncode)",
  ].join("\n");
}


/** Whether `pid` is a live process (a zombie waiting for init to reap it has ended). Linux /proc. */
export function processAlive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}
