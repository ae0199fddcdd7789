/**
 * `npm run bench -- --only growth` (issue #25): how launch, listing, a remote call, output routing
 * and stop grow with the number of workers of one master (32 and 64 by default, `--growth-sizes`),
 * with Dask `LocalCluster(N)` started the same way (`bench/py_clusters.py dask N RUNS`, process
 * workers, + first task) in the same run. The master is this bench process (a Node master: the
 * same library code a notebook's master runs). Per N and variant (cold, and from a warm pool of N
 * filled before the clock starts):
 * - launch → every worker's first startup-code line in the master;
 * - `listWorkers()` (median of 10), `execute("1")` on all N (median of 10, after 2);
 * - what the master keeps per idle worker: with the N workers idle minus after they stopped, each
 *   after a full GC, / N: RSS, and V8 heap + external memory (RSS keeps pages freed earlier, so
 *   its difference can even be negative);
 * - the master's event-loop delay p99 while every worker prints 1,000 lines (one `execute`);
 * - `stopWorkers()` of N; then no kernel may be left.
 * Reported, never asserted; everything started is stopped in `finally` blocks.
 */
import { monitorEventLoopDelay } from "node:perf_hooks";
import * as v8 from "node:v8";
import * as vm from "node:vm";
import { launchWorkers, listWorkers, setWorkerPool, stopWorkers } from "../src/workers";
import type { LaunchWorkersOptions } from "../src/workers";
import type { MimeBundle, OutputSink } from "../src/display/sink";
import { execute } from "../src/remote";

/** What the growth rows need from the bench's main module. */
export interface GrowthDeps {
  context: LaunchWorkersOptions["context"];
  runs: number;
  sizes: number[];
  /** Resolves once the server runs no kernel (throws after a while). */
  waitNoKernels: () => Promise<void>;
  /** Resolves once the server runs exactly `n` kernels (throws after a while). */
  waitKernels: (n: number) => Promise<void>;
  /** Seconds of each Dask LocalCluster(n) run (`py_clusters.py dask n runs`). */
  dask: (n: number, runs: number) => number[];
  table: (head: string[], rows: string[][]) => string;
  median: (xs: number[]) => number;
}

/** Counts labelled output lines and the workers that printed a marker; resolves waiters on counts. */
class LineCounter implements OutputSink {
  readonly seen = new Set<string>();
  lines = 0;
  lastAt = 0;
  private waiters: { done: () => boolean; resolve: () => void }[] = [];
  constructor(private readonly marker: string) {}
  stdout(text: string): void {
    for (const l of text.split("\n")) {
      const m = /^\[([^\]]+)\] (.*)$/.exec(l);
      if (!m) continue;
      this.lines++;
      if (m[2].includes(this.marker)) this.seen.add(m[1]);
    }
    this.lastAt = performance.now();
    for (const w of [...this.waiters]) {
      if (!w.done()) continue;
      this.waiters.splice(this.waiters.indexOf(w), 1);
      w.resolve();
    }
  }
  stderr(text: string): void {
    process.stderr.write(text);
  }
  display(_bundle: MimeBundle): void {
    /* not measured */
  }
  until(done: () => boolean, timeoutMs: number, what: string): Promise<void> {
    if (done()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}: ${this.seen.size} workers, ${this.lines} lines`)), timeoutMs);
      this.waiters.push({ done, resolve: () => (clearTimeout(timer), resolve()) });
    });
  }
}

const quiet: OutputSink = { stdout: () => undefined, stderr: () => undefined, display: () => undefined };

// A full collection before each RSS reading, so the figure is what the workers keep, not garbage.
v8.setFlagsFromString("--expose-gc");
const gc = vm.runInNewContext("gc") as () => void;
function memoryAfterGc(): { rss: number; heap: number } {
  gc();
  gc();
  const m = process.memoryUsage();
  return { rss: m.rss, heap: m.heapUsed + m.external };
}

interface RunFigures {
  launch: number;
  list: number;
  exec: number;
  rssPerWorker: number;
  heapPerWorker: number;
  loopP99: number;
  printed: string;
  stop: number;
}

async function oneRun(deps: GrowthDeps, n: number, pooled: boolean, r: number): Promise<RunFigures> {
  const { context, median } = deps;
  const marker = `first-${n}-${r}-${Math.random().toString(36).slice(2)}`;
  const sink = new LineCounter(marker);
  try {
    if (pooled) {
      const pool = await setWorkerPool({ n, engine: "sense-fast", keeper: false, context });
      if (pool.ready !== n) throw new Error(`pool has ${pool.ready} of ${n} kernels ready: ${pool.lastError ?? ""}`);
    }
    const t0 = performance.now();
    await Promise.all([
      launchWorkers({ n, engine: "sense-fast", code: `console.log(${JSON.stringify(marker)})`, sink, keeper: false, context, maxWorkers: n }),
      sink.until(() => sink.seen.size >= n, 600_000, "every first line"),
    ]);
    const launch = (performance.now() - t0) / 1000;
    // The pool refills after the launch; the figures below are of N workers alone, as in the cold
    // rows, so the refill's kernels are gone (not starting or stopping) before anything is measured.
    if (pooled) {
      await setWorkerPool({ n: 0, engine: "sense-fast", context });
      await deps.waitKernels(n);
    }
    const idle = memoryAfterGc();
    const lists: number[] = [];
    for (let i = 0; i < 10; i++) {
      const t = performance.now();
      const ws = await listWorkers({ context });
      lists.push(performance.now() - t);
      if (ws.length !== n) throw new Error(`listWorkers gave ${ws.length} workers, not ${n}`);
    }
    const execs: number[] = [];
    for (let i = 0; i < 12; i++) {
      const t = performance.now();
      const res = await execute("1", { sink: quiet, context });
      if (i >= 2) execs.push(performance.now() - t);
      if (res.length !== n || res.some((x) => x.value !== 1)) throw new Error(`execute("1") answered ${res.length} of ${n}`);
    }
    // Every worker prints 1,000 lines at once; the master routes them into one sink.
    const lines0 = sink.lines;
    const loop = monitorEventLoopDelay({ resolution: 5 });
    loop.enable();
    await execute("for (let i = 0; i < 1000; i++) console.log('line ' + i)", { sink, context });
    await sink.until(() => sink.lines - lines0 >= n * 1000, 120_000, `${n * 1000} lines`).catch(() => undefined);
    loop.disable();
    const printed = `${(sink.lines - lines0).toLocaleString("en")} of ${(n * 1000).toLocaleString("en")}`;
    const t1 = performance.now();
    await stopWorkers({ context });
    const stop = (performance.now() - t1) / 1000;
    await deps.waitNoKernels();
    const gone = memoryAfterGc();
    const perWorker = (a: number, b: number) => (a - b) / n / 2 ** 20;
    return { launch, list: median(lists), exec: median(execs), rssPerWorker: perWorker(idle.rss, gone.rss), heapPerWorker: perWorker(idle.heap, gone.heap), loopP99: loop.percentile(99) / 1e6, printed, stop };
  } finally {
    if (pooled) await setWorkerPool({ n: 0, engine: "sense-fast", context }).catch(() => undefined);
    await stopWorkers({ context }).catch(() => undefined);
    await deps.waitNoKernels();
  }
}

/** Runs the growth rows; returns the report lines (tables). */
export async function growthBench(deps: GrowthDeps): Promise<string[]> {
  const { runs, sizes, median, table } = deps;
  // One untimed launch first: the code a launch loads once per process stays out of the figures.
  await oneRun(deps, 1, false, -1).catch((e: unknown) => console.error(`[bench] growth warm-up failed: ${(e as Error).message}`));
  const rows: string[][] = [];
  const fmt = (xs: number[], unit: string, digits: number) => (xs.length ? `${median(xs).toFixed(digits)}${unit}` : "-");
  for (const n of sizes) {
    for (const pooled of [false, true]) {
      const runsOf: RunFigures[] = [];
      for (let r = 0; r < runs; r++) {
        try {
          runsOf.push(await oneRun(deps, n, pooled, r));
        } catch (e) {
          console.error(`[bench] growth n=${n}${pooled ? " pooled" : ""} run ${r + 1} failed: ${(e as Error).message}`);
        }
      }
      const pick = (k: keyof Omit<RunFigures, "printed">) => runsOf.map((x) => x[k]);
      console.error(`[bench] growth n=${n}${pooled ? " pooled" : ""}: ${runsOf.map((x) => JSON.stringify(x)).join(" ")}`);
      let dask = "";
      if (!pooled) {
        try {
          const xs = deps.dask(n, runs);
          console.error(`[bench] dask n=${n}: ${xs.map((x) => x.toFixed(2)).join(", ")} s`);
          dask = `${median(xs).toFixed(2)} s (first ${xs[0].toFixed(2)} s)`;
        } catch (e) {
          console.error(`[bench] dask n=${n} failed: ${(e as Error).message}`);
        }
      }
      rows.push([
        `${n}${pooled ? " pooled" : " cold"}`,
        runsOf.length ? `${fmt(pick("launch"), " s", 2)} (first ${runsOf[0].launch.toFixed(2)} s)` : "-",
        dask || (pooled ? "" : "-"),
        fmt(pick("list"), " ms", 1),
        fmt(pick("exec"), " ms", 1),
        fmt(pick("stop"), " s", 2),
        `${fmt(pick("rssPerWorker"), " MiB", 2)} / ${fmt(pick("heapPerWorker"), " MiB", 2)}`,
        fmt(pick("loopP99"), " ms", 1),
        runsOf.map((x) => x.printed).join("; ") || "-",
      ]);
    }
  }
  return [
    `\nGrowth: N sense-fast workers of one master (this Node process), medians of ${runs} (and the first run); Dask LocalCluster(N) + first task in the same run`,
    table(
      ["N", "launch → every first line", "Dask LocalCluster(N)", "listWorkers", "execute(\"1\") on N", "stopWorkers()", "master per idle worker: RSS / heap+external", "event-loop p99, N x 1,000 lines", "lines routed"],
      rows,
    ),
    "Targets (issue #25): 64 cold <= 5 s and below Dask(64); stopWorkers(64) <= 1 s; execute(\"1\") on 64 <= 100 ms; RSS/idle worker <= 2 MiB; event-loop p99 <= 50 ms",
  ];
}
