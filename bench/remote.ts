/**
 * Remote-execution rows of `npm run bench` (issue 16), side by side with Dask and ipyparallel in
 * the same run: one `execute("1")` round trip (through the Jupyter Server, and on the direct
 * backend: ZeroMQ to the kernel, no server), `map` of 10,000 trivial calls over 8 workers, and
 * `map` of 200 calls of ~50 ms CPU each over 8 workers against the ideal.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { VENV } from "../harness/local-server";
import { execute, map } from "../src/remote";
import { launchWorkers, stopWorkers } from "../src/workers";
import type { LaunchWorkersOptions } from "../src/workers";
import type { OutputSink } from "../src/display/sink";

/** What the peers measured (bench/py_clusters.py `dask-remote` / `ipp-remote`). */
export interface PeerRemote {
  rt_ms: number[];
  map_s: number[];
}

const quiet: OutputSink = { stdout: () => undefined, stderr: (t) => void process.stderr.write(t), display: () => undefined };

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Median of 200 `execute("1")` round trips on `targets` (after 20 to warm up). */
async function roundTrips(targets: Awaited<ReturnType<typeof launchWorkers>>, context?: LaunchWorkersOptions["context"]): Promise<number> {
  for (let i = 0; i < 20; i++) await execute("1", { targets, sink: quiet, context });
  const xs: number[] = [];
  for (let i = 0; i < 200; i++) {
    const t = performance.now();
    const [res] = await execute("1", { targets, sink: quiet, context });
    xs.push(performance.now() - t);
    if (res.value !== 1) throw new Error(`execute("1") gave ${String(res.value)}`);
  }
  return median(xs);
}

/** The same on one worker of the direct backend (kernelspecs from .venv unless SENSE_JUPYTER_PREFIX says otherwise). */
async function directRoundTrips(runs: number): Promise<number[]> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "sense-bench-direct-"));
  fs.mkdirSync(path.join(tmp, "project"));
  const saved = process.env.SENSE_JUPYTER_PREFIX;
  process.env.SENSE_JUPYTER_PREFIX ??= VENV;
  const context: LaunchWorkersOptions["context"] = { backend: "direct", projectHome: path.join(tmp, "project"), runtimeDir: path.join(tmp, "runtime") };
  try {
    const one = await launchWorkers({ n: 1, engine: "sense-fast", keeper: false, context, sink: quiet });
    const out: number[] = [];
    for (let r = 0; r < runs; r++) out.push(await roundTrips(one, context));
    return out;
  } finally {
    await stopWorkers({ context });
    if (saved === undefined) delete process.env.SENSE_JUPYTER_PREFIX;
    else process.env.SENSE_JUPYTER_PREFIX = saved;
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/** Runs the Sense side; `peer(kind)` runs a Python peer. Returns the report lines. */
export async function remoteBench(context: LaunchWorkersOptions["context"], runs: number, peer: (kind: "dask-remote" | "ipp-remote", n: number, items: number) => PeerRemote | undefined, table: (head: string[], rows: string[][]) => string): Promise<string[]> {
  const ITEMS = 10_000;
  const rt: number[] = [];
  const directRt: number[] = [];
  const mapS: number[] = [];
  const cpuS: number[] = [];
  try {
    const one = await launchWorkers({ n: 1, engine: "sense-fast", keeper: false, context, sink: quiet });
    for (let r = 0; r < runs; r++) rt.push(await roundTrips(one));
    await stopWorkers({ context });
    directRt.push(...(await directRoundTrips(runs)));
    const eight = await launchWorkers({ n: 8, engine: "sense-fast", keeper: false, context, sink: quiet, maxWorkers: 8 });
    const items = Array.from({ length: ITEMS }, (_, i) => i);
    await map((x: number) => x + 1, items.slice(0, 100), { targets: eight, sink: quiet });
    for (let r = 0; r < runs; r++) {
      const t = performance.now();
      const out = await map((x: number) => x + 1, items, { targets: eight, sink: quiet });
      mapS.push((performance.now() - t) / 1000);
      if (out[ITEMS - 1] !== ITEMS) throw new Error("map gave a wrong result");
    }
    const burn = (i: number) => {
      // ~50 ms of this process's CPU time, however the cores are shared
      const start = process.cpuUsage();
      let x = 0;
      for (;;) {
        for (let k = 0; k < 10_000; k++) x += Math.sqrt(k + i);
        const u = process.cpuUsage(start);
        if (u.user + u.system >= 50_000) return x > 0 ? i : -1;
      }
    };
    for (let r = 0; r < runs; r++) {
      const t = performance.now();
      const out = await map(burn, Array.from({ length: 200 }, (_, i) => i), { targets: eight, sink: quiet });
      cpuS.push((performance.now() - t) / 1000);
      if (out[199] !== 199) throw new Error("cpu map gave a wrong result");
    }
  } finally {
    await stopWorkers({ context });
  }
  const dask = peer("dask-remote", 8, ITEMS);
  const ipp = peer("ipp-remote", 8, ITEMS);
  const ms = (x: number | undefined) => (x === undefined ? "-" : `${x.toFixed(2)} ms`);
  const perS = (s: number | undefined) => (s === undefined ? "-" : `${Math.round(ITEMS / s).toLocaleString("en")} calls/s`);
  const senseRt = median(rt);
  const senseMap = median(mapS);
  const dRt = dask ? median(dask.rt_ms) : undefined;
  const iRt = ipp ? median(ipp.rt_ms) : undefined;
  const dMap = dask ? median(dask.map_s) : undefined;
  const iMap = ipp ? median(ipp.map_s) : undefined;
  const cores = Math.min(8, os.cpus().length);
  const ideal = (200 * 0.05) / cores;
  const cpu = median(cpuS);
  const lines: string[] = [];
  lines.push(`\nRemote execution (medians of ${runs} runs; load average at the end: ${os.loadavg().map((l) => l.toFixed(1)).join(" ")})`);
  lines.push(
    table(
      ["measure", "Sense (sense-fast)", "Dask", "ipyparallel", "target"],
      [
        ["one round trip: execute(\"1\") / submit(f).result() / apply_sync(lambda: 1)", ms(senseRt), ms(dRt), ms(iRt), "<= 5 ms, below both"],
        ["one round trip, direct backend (ZeroMQ, no server)", ms(median(directRt)), "", "", "-"],
        [`map of ${ITEMS.toLocaleString("en")} trivial calls, 8 workers`, perS(senseMap), perS(dMap), perS(iMap), ">= 2x Dask, above ipyparallel"],
        ["map of 200 x 50 ms CPU, 8 workers: wall time", `${cpu.toFixed(2)} s (ideal ${ideal.toFixed(2)} s on ${cores} cores: +${(((cpu - ideal) / ideal) * 100).toFixed(0)} %)`, "", "", "within 15 % of ideal"],
      ],
    ),
  );
  if (dMap && iMap) lines.push(`  map calls/s: Sense/Dask ${(dMap / senseMap).toFixed(1)}x, Sense/ipyparallel ${(iMap / senseMap).toFixed(1)}x; round trip Sense ${senseRt.toFixed(2)} ms vs Dask ${dRt?.toFixed(2)} ms, ipyparallel ${iRt?.toFixed(2)} ms`);
  return lines;
}
