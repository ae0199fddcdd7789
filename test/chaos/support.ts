/**
 * What the chaos suite (test/chaos, #23) shares: a backend to run on (a real Jupyter Server, or
 * kernels started directly), a worker's kernel process found by its connection file and
 * SIGKILLed, the map the trials run (its expected results computed here), and the counts:
 * `SENSE_CHAOS=full` (npm run test:chaos) runs the sizes longer and more often.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { WorkerContextInput } from "../../src/workers";
import { JupyterServer, processesUnder, startJupyterServer } from "../helpers/jupyter";
import { REPO } from "../helpers/util";
import { kernelPid } from "../reliability/support";

/** `SENSE_CHAOS=full`: the long run. */
export const FULL = process.env.SENSE_CHAOS === "full";

/** The worker engine of the trials (the issue's: `sense-ts`). */
export const ENGINE = "sense-ts";

/** A backend the trials run on, started and stopped by the suite. */
export interface ChaosBackend {
  readonly name: "server" | "direct";
  readonly context: WorkerContextInput;
  /** Stops what it started and checks nothing was left behind. */
  close(): Promise<void>;
}

/**
 * What the kernels' environment gets: `NODE_OPTIONS` with a V8 heap limit, so a worker can run out
 * of memory at a limit as it would at its size's under Enterprise Gateway (a local kernel has none).
 */
export interface BackendOptions {
  heapLimitMiB?: number;
}

function nodeOptions(o: BackendOptions): Record<string, string> {
  return o.heapLimitMiB ? { NODE_OPTIONS: `--max-old-space-size=${o.heapLimitMiB}` } : {};
}

/** A real Jupyter Server from `.venv` on a free loopback port (its kernels get `o`'s environment). */
export async function serverBackend(o: BackendOptions = {}): Promise<ChaosBackend> {
  const server: JupyterServer = await startJupyterServer({ env: nodeOptions(o) });
  return {
    name: "server",
    context: { endpoint: { baseUrl: server.url, token: server.token }, projectHome: server.rootDir, serverRootDir: server.rootDir },
    async close() {
      const marker = server.baseDir;
      await server.stop();
      expect(processesUnder(marker)).toEqual([]);
    },
  };
}

/** Kernels started directly (no server), their runtime folder a temporary one (they inherit this process's environment, plus `o`'s). */
export async function directBackend(o: BackendOptions = {}): Promise<ChaosBackend> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "sense-chaos-direct-"));
  const home = path.join(tmp, "project");
  fs.mkdirSync(home);
  const saved = process.env.SENSE_JUPYTER_PREFIX;
  const savedNodeOptions = process.env.NODE_OPTIONS;
  // The project's kernelspecs are registered into .venv.
  process.env.SENSE_JUPYTER_PREFIX = path.join(REPO, ".venv");
  Object.assign(process.env, nodeOptions(o));
  return {
    name: "direct",
    context: { backend: "direct", projectHome: home, runtimeDir: path.join(tmp, "runtime") },
    async close() {
      if (saved === undefined) delete process.env.SENSE_JUPYTER_PREFIX;
      else process.env.SENSE_JUPYTER_PREFIX = saved;
      if (savedNodeOptions === undefined) delete process.env.NODE_OPTIONS;
      else process.env.NODE_OPTIONS = savedNodeOptions;
      // The kernels' command lines name their connection files in this folder.
      expect(processesUnder(tmp)).toEqual([]);
      fs.rmSync(tmp, { recursive: true, force: true });
    },
  };
}

/** SIGKILLs the process of kernel `kernelId` (as the OOM killer or a crash would end it). */
export function sigkill(kernelId: string): void {
  process.kill(kernelPid(kernelId), "SIGKILL");
}

/**
 * The work of one item: about a quarter of a millisecond of arithmetic, deterministic (no
 * `Math.imul`: called across jest's realm it is forty times slower, and the expected results are
 * computed here).
 */
export function work(x: number): number {
  let h = x % 1_000_003;
  for (let i = 0; i < 25_000; i++) h = (h * 31 + i) % 1_000_003;
  return h;
}

/** Items 0..n-1. */
export function itemsOf(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

/** A random moment in [lo, hi) ms. */
export function between(lo: number, hi: number): number {
  return lo + Math.random() * (hi - lo);
}
