/**
 * Data rows of `npm run bench -- --only data` (issue #22), side by side with Dask and ipyparallel
 * in the same run: broadcast a 256 MiB Float64Array to 4 and to 8 workers, scatter it over 8 and
 * gather it back, the master's peak RSS during the 8-worker broadcast, `map` over 64 items of
 * 8 MiB, and the physical reference: the same bytes from one Node process to 8 over raw loopback
 * TCP (8 receiver processes reading into preallocated memory).
 */
import { spawn } from "node:child_process";
import * as net from "node:net";
import * as os from "node:os";
import { gather, map, push, scatter } from "../src/remote";
import { launchWorkers, stopWorkers } from "../src/workers";
import type { LaunchWorkersOptions } from "../src/workers";
import type { OutputSink } from "../src/display/sink";

/** What a peer measured (bench/py_clusters.py `dask-data` / `ipp-data`), seconds per run. */
export interface PeerData {
  bcast4_s: number[];
  bcast8_s: number[];
  scatter8_s: number[];
  gather8_s: number[];
  map64_s: number[];
}

const MiB = 1 << 20;
const SIZE = 256 * MiB;
const quiet: OutputSink = { stdout: () => undefined, stderr: (t) => void process.stderr.write(t), display: () => undefined };

function median(xs: number[]): number | undefined {
  if (!xs.length) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

async function timed(f: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await f();
  return (performance.now() - t) / 1000;
}

/** Raw loopback TCP: `SIZE` bytes from this process to 8 receiver processes at once; seconds. */
async function rawTcp(value: Uint8Array, n: number): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as net.AddressInfo).port;
  const receiver = `const s=require("net").connect(${port},"127.0.0.1");const b=Buffer.allocUnsafe(${value.length});let o=0;s.on("data",(c)=>{c.copy(b,o);o+=c.length;if(o===b.length){s.end(Buffer.from([1]));}});`;
  const kids = Array.from({ length: n }, () => spawn(process.execPath, ["-e", receiver], { stdio: "ignore" }));
  try {
    const sockets: net.Socket[] = [];
    await new Promise<void>((resolve) =>
      server.on("connection", (s) => {
        sockets.push(s);
        if (sockets.length === n) resolve();
      }),
    );
    return await timed(() => Promise.all(sockets.map((s) => new Promise<void>((resolve) => {
      s.once("data", () => resolve());
      s.write(value);
    }))));
  } finally {
    kids.forEach((k) => k.kill());
    server.close();
  }
}

/** Runs the Sense side and the reference; `peer(kind)` runs a Python peer. Returns the report lines. */
export async function dataBench(context: LaunchWorkersOptions["context"], runs: number, peer: (kind: "dask-data" | "ipp-data") => PeerData | undefined, table: (head: string[], rows: string[][]) => string): Promise<string[]> {
  const s: PeerData = { bcast4_s: [], bcast8_s: [], scatter8_s: [], gather8_s: [], map64_s: [] };
  const raw: number[] = [];
  let rssPeak = 0;
  let mapNote = "";
  const rssBefore = process.memoryUsage().rss;
  const value = new Float64Array(SIZE / 8).map((_, i) => i);
  const rssBase = process.memoryUsage().rss;
  try {
    const eight = await launchWorkers({ n: 8, engine: "sense-fast", keeper: false, context, sink: quiet, maxWorkers: 8 });
    for (let r = 0; r < runs; r++) {
      s.bcast4_s.push(await timed(() => push({ x: value }, { targets: eight.slice(0, 4), context, sink: quiet })));
      // the first run only: later runs would count the previous gather's garbage
      const sample = setInterval(() => (rssPeak = r === 0 ? Math.max(rssPeak, process.memoryUsage().rss) : rssPeak), 5);
      try {
        s.bcast8_s.push(await timed(() => push({ x: value }, { targets: eight, context, sink: quiet })));
      } finally {
        clearInterval(sample);
      }
      await push({ x: null }, { targets: eight, context, sink: quiet });
      s.scatter8_s.push(await timed(() => scatter("part", value, { targets: eight, context, sink: quiet })));
      let back: unknown;
      s.gather8_s.push(await timed(async () => (back = await gather("part", { targets: eight, context, sink: quiet }))));
      if ((back as Float64Array).length !== value.length || (back as Float64Array)[value.length - 1] !== value[value.length - 1]) throw new Error("gather gave a wrong value");
      back = undefined;
      raw.push(await rawTcp(new Uint8Array(value.buffer), 8));
    }
    const items = Array.from({ length: 64 }, (_, i) => new Float64Array(MiB).fill(i));
    try {
      for (let r = 0; r < runs; r++) s.map64_s.push(await timed(() => map((a: Float64Array) => a[0] + a.length, items, { targets: eight, context, sink: quiet, progress: false })));
    } catch (e) {
      mapNote = `fails: ${(e as Error).message.slice(0, 60)}`;
    }
  } finally {
    await stopWorkers({ context });
  }
  const dask = peer("dask-data");
  const ipp = peer("ipp-data");
  const rate = (sec: number | undefined, bytes: number) => (sec === undefined ? "-" : `${sec.toFixed(2)} s (${Math.round(bytes / MiB / sec)} MiB/s)`);
  const first = (xs: number[]) => (xs.length ? ` [first ${xs[0].toFixed(2)}]` : "");
  const row = (what: string, key: keyof PeerData, bytes: number, target: string) => [what, rate(median(s[key]), bytes) + first(s[key]), rate(dask && median(dask[key]), bytes), rate(ipp && median(ipp[key]), bytes), target];
  const lines: string[] = [];
  lines.push(`\nData between master and workers, 256 MiB Float64Array, sense-fast workers through the Jupyter Server (medians of ${runs} runs; load average at the end: ${os.loadavg().map((l) => l.toFixed(1)).join(" ")})`);
  lines.push(
    table(
      ["measure", "Sense", "Dask", "ipyparallel", "target"],
      [
        row("broadcast to 4 (push / scatter(broadcast=True) / dview.push)", "bcast4_s", 4 * SIZE, ">= Dask and ipyparallel"),
        row("broadcast to 8", "bcast8_s", 8 * SIZE, ">= Dask and ipyparallel"),
        row("scatter over 8", "scatter8_s", SIZE, ">= both"),
        row("gather from 8", "gather8_s", SIZE, ">= both"),
        ["raw loopback TCP, one Node process to 8 (reference)", rate(median(raw), 8 * SIZE), "", "", `Sense broadcast-8 = ${median(raw) && median(s.bcast8_s) ? ((median(raw)! / median(s.bcast8_s)!) * 100).toFixed(0) : "-"} % of it (aim >= 33 %)`],
        ["master peak RSS during broadcast to 8 (first run)", `+${((rssPeak - rssBefore) / MiB).toFixed(0)} MiB over the process before the value was made (value ${SIZE / MiB} MiB; process ${(rssBase / MiB).toFixed(0)} MiB once it was, ${(rssPeak / MiB).toFixed(0)} MiB at the peak)`, "", "", "<= value + 128 MiB"],
        ["map over 64 items of 8 MiB (wall)", mapNote || rate(median(s.map64_s), 64 * 8 * MiB), rate(dask && median(dask.map64_s), 64 * 8 * MiB), "", "completes"],
      ],
    ),
  );
  return lines;
}
