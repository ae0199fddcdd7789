/**
 * `npm run bench`: worker launch latency, list/stop latency, output throughput and idle memory of
 * Sense workers (tslab `sense-ts`, the fast engine `sense-fast`, `python3`) through a real Jupyter
 * Server, side by side with Dask LocalCluster and ipyparallel Cluster, medians of several runs.
 * Targets are reported, never asserted. Everything started is stopped in `finally` blocks.
 *
 * Options: `--runs R` (default 3), `--sizes 1,4,8,16`, `--engines sense-ts,sense-fast,python3,sense-fast+pool`,
 * `--only launch,clusters,liststop,throughput,rss,scale,transpile,remote,data,master,growth`,
 * `--growth-sizes 32,64` (bench/growth.ts).
 *
 * `master`: the way a notebook user sees it — N workers launched from a `sense-ts` master kernel
 * with no engine given (TypeScript startup code), the memory of a `sense-ts` kernel that compiled
 * a cell, and session start → first TypeScript cell result for `sense-ts` and stock tslab 1.0.22.
 * Each size runs in a fresh master: its first launch is reported apart from the median, and Dask
 * LocalCluster(N) runs in the same run (unless `clusters` already ran it).
 */
import { spawnSync } from "node:child_process";
import * as http from "node:http";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { JupyterServer, REPO, VENV, processesUnder, startJupyterServer } from "../harness/local-server";
import { launchWorkers, listWorkers, setWorkerPool, stopWorkers } from "../src/workers";
import type { LaunchWorkersOptions } from "../src/workers";
import type { MimeBundle, OutputSink } from "../src/display/sink";
import { openNotebook } from "../harness/kernel-client";
import { PeerRemote, remoteBench } from "./remote";
import { dataBench, type PeerData } from "./data";
import { growthBench } from "./growth";

const ENGINES = ["sense-ts", "sense-fast", "python3"] as const;
type Engine = (typeof ENGINES)[number];
/** Launch variants: each engine cold, and `sense-fast` from a warm pool of N (filled before the clock starts). */
const VARIANTS = [...ENGINES, "sense-fast+pool"] as const;
type Variant = (typeof VARIANTS)[number];

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : dflt;
}
const RUNS = Number(arg("runs", "3"));
const SIZES = arg("sizes", "1,4,8,16").split(",").map(Number);
const ONLY = new Set(arg("only", "launch,clusters,liststop,throughput,rss,scale,transpile,remote,data,master,growth").split(","));
const GROWTH_SIZES = arg("growth-sizes", "32,64").split(",").map(Number);
const ENGINE_SET = new Set(arg("engines", VARIANTS.join(",")).split(","));

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
const fmtS = (s: number | undefined) => (s === undefined || Number.isNaN(s) ? "-" : `${s.toFixed(2)} s`);
const ratio = (a: number | undefined, b: number | undefined) => (a && b ? `${(a / b).toFixed(1)}x` : "-");
function table(head: string[], rows: string[][]): string {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (r: string[]) => r.map((c, i) => (c ?? "").padEnd(w[i])).join("  ");
  return [line(head), w.map((n) => "-".repeat(n)).join("  "), ...rows.map(line)].join("\n");
}

/** A sink that counts output lines per worker label and notices when each worker printed its marker. */
class CountingSink implements OutputSink {
  readonly firstSeen = new Map<string, number>();
  readonly lines = new Map<string, string[]>();
  firstLineAt = 0;
  lastLineAt = 0;
  total = 0;
  private waiters: { n: number; resolve: () => void }[] = [];
  constructor(
    private readonly marker: string,
    private readonly keepLines = false,
  ) {}
  stdout(text: string): void {
    const now = performance.now();
    for (const l of text.split("\n")) {
      const m = /^\[([^\]]+)\] (.*)$/.exec(l);
      if (!m) continue;
      this.total++;
      if (!this.firstLineAt) this.firstLineAt = now;
      this.lastLineAt = now;
      if (this.keepLines) {
        const arr = this.lines.get(m[1]) ?? [];
        arr.push(m[2]);
        this.lines.set(m[1], arr);
      }
      if (m[2].includes(this.marker) && !this.firstSeen.has(m[1])) this.firstSeen.set(m[1], now);
    }
    for (const w of [...this.waiters]) this.check(w);
  }
  stderr(text: string): void {
    process.stderr.write(text);
  }
  display(_bundle: MimeBundle): void {
    /* not measured */
  }
  private check(w: { n: number; resolve: () => void }): void {
    if (this.firstSeen.size >= w.n || this.total >= w.n) {
      this.waiters.splice(this.waiters.indexOf(w), 1);
      w.resolve();
    }
  }
  /** Resolves once `n` workers printed the marker (or `n` lines in total when counting lines). */
  until(n: number, timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out: ${this.firstSeen.size}/${n} workers, ${this.total} lines`)), timeoutMs);
      const w = { n, resolve: () => (clearTimeout(timer), resolve()) };
      this.waiters.push(w);
      this.check(w);
    });
  }
}

function context(server: JupyterServer): LaunchWorkersOptions["context"] {
  return { endpoint: { baseUrl: server.url, token: server.token }, projectHome: server.rootDir, serverRootDir: server.rootDir };
}

function startupCode(engine: Engine, marker: string): string {
  return engine === "python3" ? `print("${marker}", flush=True)` : `console.log("${marker}")`;
}

async function waitNoKernels(server: JupyterServer): Promise<void> {
  const until = Date.now() + 30_000;
  while (Date.now() < until) {
    const res = await fetch(`${server.url}api/kernels`, { headers: { Authorization: `token ${server.token}` } });
    if (((await res.json()) as unknown[]).length === 0) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error("kernels still running 30 s after stopWorkers");
}

/** Launch → every worker's first startup-code line in the master, seconds. */
async function launchOnce(server: JupyterServer, variant: Variant, n: number): Promise<number> {
  const pooled = variant === "sense-fast+pool";
  const engine: Engine = pooled ? "sense-fast" : variant;
  const marker = `ready-${Math.random().toString(36).slice(2)}`;
  const sink = new CountingSink(marker);
  if (pooled) {
    const pool = await setWorkerPool({ n, engine, keeper: false, context: context(server) });
    if (pool.ready !== n) throw new Error(`pool has ${pool.ready} of ${n} kernels ready: ${pool.lastError ?? ""}`);
  }
  const t0 = performance.now();
  try {
    const launched = launchWorkers({ n, engine, code: startupCode(engine, marker), sink, keeper: false, context: context(server) });
    await Promise.all([launched, sink.until(n, 300_000)]);
    return (Math.max(...sink.firstSeen.values()) - t0) / 1000;
  } finally {
    if (pooled) await setWorkerPool({ n: 0, engine, context: context(server) });
    await stopWorkers({ context: context(server) });
    await waitNoKernels(server);
  }
}

function pyClusters(kind: "dask" | "ipp", n: number, runs: number): number[] {
  const r = spawnSync(path.join(VENV, "bin", "python"), [path.join(REPO, "bench", "py_clusters.py"), kind, String(n), String(runs)], {
    encoding: "utf8",
    timeout: 900_000,
    env: { ...process.env, PATH: `${path.join(VENV, "bin")}:${process.env.PATH ?? ""}` },
  });
  if (r.status !== 0) throw new Error(`${kind} benchmark failed: ${r.stderr.slice(-2000)}`);
  const last = r.stdout.trim().split("\n").pop() ?? "{}";
  return (JSON.parse(last) as { seconds: number[] }).seconds;
}

function pyRemote(kind: "dask-remote" | "ipp-remote", n: number, items: number): PeerRemote | undefined {
  const r = spawnSync(path.join(VENV, "bin", "python"), [path.join(REPO, "bench", "py_clusters.py"), kind, String(n), String(RUNS), String(items)], {
    encoding: "utf8",
    timeout: 1_800_000,
    env: { ...process.env, PATH: `${path.join(VENV, "bin")}:${process.env.PATH ?? ""}` },
  });
  if (r.status !== 0) {
    console.error(`[bench] ${kind} failed: ${r.stderr.slice(-2000)}`);
    return undefined;
  }
  return JSON.parse(r.stdout.trim().split("\n").pop() ?? "{}") as PeerRemote;
}

function pyData(kind: "dask-data" | "ipp-data"): PeerData | undefined {
  const r = spawnSync(path.join(VENV, "bin", "python"), [path.join(REPO, "bench", "py_clusters.py"), kind, "8", String(RUNS)], {
    encoding: "utf8",
    timeout: 1_800_000,
    maxBuffer: 64 * 1024 * 1024,
    env: { ...process.env, PATH: `${path.join(VENV, "bin")}:${process.env.PATH ?? ""}` },
  });
  if (r.status !== 0) {
    console.error(`[bench] ${kind} failed: ${r.stderr.slice(-2000)}`);
    return undefined;
  }
  return JSON.parse(r.stdout.trim().split("\n").pop() ?? "{}") as PeerData;
}

function rssTreeKiB(rootPid: number): number {
  const children = new Map<number, number[]>();
  for (const e of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${e}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(e)]);
    } catch {
      /* gone */
    }
  }
  let sum = 0;
  const stack = [rootPid];
  while (stack.length) {
    const pid = stack.pop()!;
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
      sum += m ? Number(m[1]) : 0;
    } catch {
      /* gone */
    }
    stack.push(...(children.get(pid) ?? []));
  }
  return sum;
}

function kernelPid(server: JupyterServer, kernelId: string): number | undefined {
  return processesUnder(server.baseDir).find((pid) => {
    try {
      return fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(`kernel-${kernelId}.json`);
    } catch {
      return false;
    }
  });
}

/** A kernelspec folder with stock tslab 1.0.22 (`tslab-stock`), for the server's JUPYTER_PATH. */
function stockTslabSpecs(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sense-bench-specs-"));
  const spec = path.join(dir, "kernels", "tslab-stock");
  fs.mkdirSync(spec, { recursive: true });
  const bin = path.join(REPO, "node_modules", "tslab", "bin", "tslab");
  fs.writeFileSync(path.join(spec, "kernel.json"), JSON.stringify({ argv: [process.execPath, bin, "kernel", "--config-path", "{connection_file}"], display_name: "tslab (stock)", language: "typescript" }));
  return dir;
}

/** Seconds from a sense-ts master's launchWorkers(n) (no engine, TypeScript code) to every worker's first line, measured in the master. */
async function masterLaunch(server: JupyterServer, n: number, runs: number): Promise<number[]> {
  const nb = await openNotebook(server, "sense-ts");
  try {
    const setup = await nb.run('import * as sense from "sense-tslab";\nconst warmup: number = 1;\nwarmup');
    if (setup.status !== "ok") throw new Error(`master setup failed: ${setup.text}`);
    const xs: number[] = [];
    for (let r = 0; r < runs; r++) {
      const code = [
        `const seen${r} = new Set<string>();`,
        `const t${r} = performance.now();`,
        `await new Promise<void>((resolve, reject) => {`,
        `  const sink = { stdout(t: string) { for (const m of t.matchAll(/^\\[(w\\d+)\\] first-line/gm)) seen${r}.add(m[1]); if (seen${r}.size >= ${n}) resolve(); }, stderr() {}, display() {} };`,
        `  sense.launchWorkers(${n}, { code: 'const greeting: string = "first-line";\\nconsole.log(greeting);', sink, keeper: false }).catch(reject);`,
        `});`,
        `const elapsed${r} = (performance.now() - t${r}) / 1000;`,
        `await sense.stopWorkers();`,
        `elapsed${r}`,
      ].join("\n");
      const res = await nb.run(code);
      if (res.status !== "ok" || res.result === undefined) throw new Error(`master launch failed: ${res.error?.evalue ?? res.text}`);
      xs.push(Number(res.result));
      await waitKernels(server, 1);
    }
    return xs;
  } finally {
    await nb.shutdown();
    await waitNoKernels(server);
  }
}

/** Waits until the server runs exactly `n` kernels. */
async function waitKernels(server: JupyterServer, n: number): Promise<void> {
  const until = Date.now() + 30_000;
  while (Date.now() < until) {
    const res = await fetch(`${server.url}api/kernels`, { headers: { Authorization: `token ${server.token}` } });
    if (((await res.json()) as unknown[]).length === n) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`the server still has other than ${n} kernels after 30 s`);
}

/** Session start → first TypeScript cell's result, seconds, a fresh kernel each run. */
async function firstCell(server: JupyterServer, kernel: string, runs: number): Promise<number[]> {
  const xs: number[] = [];
  for (let r = 0; r < runs; r++) {
    const t0 = performance.now();
    const nb = await openNotebook(server, kernel);
    try {
      const res = await nb.run("const answer: number = 41;\nanswer + 1");
      // Stock tslab prints the last expression; Sense kernels send an execute_result.
      if (res.status !== "ok" || (res.result !== "42" && res.stdout !== "42\n")) throw new Error(`${kernel}: unexpected first cell ${JSON.stringify(res)}`);
      xs.push((performance.now() - t0) / 1000);
    } finally {
      await nb.shutdown();
      await waitNoKernels(server);
    }
  }
  return xs;
}

async function main(): Promise<void> {
  // @jupyterlab/services logs websocket chatter with console.debug.
  console.debug = () => undefined;
  const out: string[] = [];
  const report = (s: string) => {
    out.push(s);
    console.log(s);
  };
  report(`sense-tslab benchmarks — ${new Date().toISOString()}, node ${process.version}, ${os.cpus().length} cores, runs=${RUNS}`);
  const launch = new Map<string, number>();
  // jupyter_server drops iopub output above 1 MB/s (averaged over 3 s) by default and so loses
  // bursts of worker output; --no-iopub-limit measures the pipeline without that limiter.
  const noLimit = process.argv.includes("--no-iopub-limit");
  const specs = stockTslabSpecs();
  const server = await startJupyterServer({ env: { JUPYTER_PATH: specs }, ...(noLimit ? { args: ["--ServerApp.iopub_data_rate_limit=0", "--ServerApp.iopub_msg_rate_limit=0"] } : {}) });
  report(`server iopub rate limit: ${noLimit ? "off (--no-iopub-limit)" : "jupyter_server default (1 MB/s)"}`);
  try {
    if (ONLY.has("launch")) {
      for (const n of SIZES) {
        for (const engine of VARIANTS.filter((e) => ENGINE_SET.has(e))) {
          const xs: number[] = [];
          for (let r = 0; r < RUNS; r++) {
            try {
              xs.push(await launchOnce(server, engine, n));
            } catch (e) {
              // A failed run (e.g. a start timeout on an overloaded machine) is reported, not fatal.
              console.error(`[bench] ${engine} n=${n} run ${r + 1} failed: ${(e as Error).message}`);
            }
          }
          if (xs.length) launch.set(`${engine}:${n}`, median(xs));
          console.error(`[bench] ${engine} n=${n}: ${xs.map((x) => x.toFixed(2)).join(", ")} s`);
        }
      }
    }
    if (ONLY.has("clusters")) {
      for (const n of SIZES) {
        for (const kind of ["dask", "ipp"] as const) {
          try {
            const xs = pyClusters(kind, n, RUNS);
            launch.set(`${kind}:${n}`, median(xs));
            console.error(`[bench] ${kind} n=${n}: ${xs.map((x) => x.toFixed(2)).join(", ")} s`);
          } catch (e) {
            console.error(`[bench] ${kind} n=${n} failed: ${(e as Error).message}`);
          }
        }
      }
    }
    if (launch.size) {
      report("\nLaunch → first startup-code output line of every worker in the master (median)");
      report(
        table(
          ["N", "sense-ts", "sense-fast", "sense-fast pooled", "python3", "Dask LocalCluster", "ipyparallel", "dask/pooled", "ipp/pooled", "dask/fast", "ipp/fast"],
          SIZES.map((n) => {
            const g = (k: string) => launch.get(`${k}:${n}`);
            const p = g("sense-fast+pool");
            return [String(n), fmtS(g("sense-ts")), fmtS(g("sense-fast")), fmtS(p), fmtS(g("python3")), fmtS(g("dask")), fmtS(g("ipp")), ratio(g("dask"), p), ratio(g("ipp"), p), ratio(g("dask"), g("sense-fast")), ratio(g("ipp"), g("sense-fast"))];
          }),
        ),
      );
    }

    if (ONLY.has("liststop")) {
      const lists: number[] = [];
      const stops: number[] = [];
      for (let r = 0; r < RUNS; r++) {
        const marker = `ready-${r}`;
        const sink = new CountingSink(marker);
        try {
          await launchWorkers({ n: 32, engine: "sense-fast", code: `console.log("${marker}")`, sink, keeper: false, context: context(server), maxWorkers: 64 });
          await sink.until(32, 300_000);
          for (let i = 0; i < 10; i++) {
            const t = performance.now();
            const ws = await listWorkers({ context: context(server) });
            lists.push(performance.now() - t);
            if (ws.length !== 32) throw new Error(`listWorkers gave ${ws.length} workers, not 32`);
          }
          const t = performance.now();
          await stopWorkers({ context: context(server) });
          stops.push(performance.now() - t);
        } finally {
          await stopWorkers({ context: context(server) });
          await waitNoKernels(server);
        }
      }
      report("\nlistWorkers / stopWorkers with 32 sense-fast workers (median)");
      report(table(["op", "median", "target"], [["listWorkers(32)", `${median(lists).toFixed(1)} ms`, "<= 50 ms"], ["stopWorkers(32)", `${median(stops).toFixed(0)} ms`, "<= 1500 ms"]]));
    }

    if (ONLY.has("throughput")) {
      const rows: string[][] = [];
      for (const engine of ["sense-fast", "sense-ts"] as const) {
        const xs: number[] = [];
        let verdict = "ok";
        for (let r = 0; r < RUNS; r++) {
          const sink = new CountingSink("\u0000never", true);
          try {
            const code = "for (let i = 0; i < 20000; i++) console.log('line ' + i)";
            await launchWorkers({ n: 8, engine, code, sink, keeper: false, context: context(server) });
            try {
              await sink.until(8 * 20000, 120_000);
              xs.push((8 * 20000) / ((sink.lastLineAt - sink.firstLineAt) / 1000));
            } catch {
              verdict = `LOST: ${sink.total} of 160000 lines arrived within 120 s`;
              continue;
            }
            for (const [label, lines] of sink.lines) {
              const bad = lines.findIndex((l, i) => l !== `line ${i}`);
              if (lines.length !== 20000 || bad >= 0) verdict = `LOST/REORDERED in ${label} (${lines.length} lines, first bad ${bad})`;
            }
            if (sink.lines.size !== 8) verdict = `only ${sink.lines.size} workers' output`;
          } finally {
            await stopWorkers({ context: context(server) });
            await waitNoKernels(server);
          }
        }
        rows.push([engine, xs.length ? `${Math.round(median(xs)).toLocaleString("en")} lines/s` : "-", verdict]);
      }
      report("\nOutput throughput: 8 workers x 20 000 lines into the master (first→last line, median)");
      report(table(["engine", "throughput", "complete & ordered"], rows));
    }

    if (ONLY.has("scale")) {
      // 64 workers, each exchanging a message with the master over HTTP (the master serves, each
      // worker asks once and prints the answer), all stopped, nothing left behind.
      const got = new Set<string>();
      const master = http.createServer((req, res) => {
        const who = new URL(req.url ?? "/", "http://x").searchParams.get("w") ?? "?";
        got.add(who);
        res.end(`ack ${who}`);
      });
      await new Promise<void>((r) => master.listen(0, "127.0.0.1", r));
      const port = (master.address() as { port: number }).port;
      const rows: string[][] = [];
      try {
        for (let r = 0; r < Math.min(RUNS, 2); r++) {
          got.clear();
          const sink = new CountingSink("ack w");
          const code = `require("http").get("http://127.0.0.1:${port}/hello?w=" + process.env.SENSE_WORKER_NAME, (res) => { let b = ""; res.on("data", (d) => (b += d)); res.on("end", () => console.log(b)); })`;
          const t0 = performance.now();
          let verdict = "ok";
          try {
            const ws = await launchWorkers({ n: 64, engine: "sense-fast", code, sink, keeper: false, context: context(server), maxWorkers: 64 });
            await sink.until(64, 300_000);
            const tAll = performance.now() - t0;
            const names = new Set(ws.map((w) => w.name));
            if (got.size !== 64 || ![...got].every((n) => names.has(n))) verdict = `master heard ${got.size} of 64 workers`;
            if (sink.firstSeen.size !== 64) verdict = `${sink.firstSeen.size} of 64 answers printed`;
            const t1 = performance.now();
            await stopWorkers({ context: context(server) });
            const tStop = performance.now() - t1;
            await waitNoKernels(server);
            const left = processesUnder(server.baseDir).filter((p) => p !== server.pid).length;
            const sessions = (await (await fetch(`${server.url}api/sessions`, { headers: { Authorization: `token ${server.token}` } })).json()) as unknown[];
            if (left || sessions.length) verdict = `left behind: ${left} processes, ${sessions.length} sessions`;
            rows.push([String(r + 1), fmtS(tAll / 1000), fmtS(tStop / 1000), verdict]);
          } finally {
            await stopWorkers({ context: context(server) });
            await waitNoKernels(server);
          }
        }
      } finally {
        master.close();
      }
      report("\n64 sense-fast workers, each exchanging a message with the master (HTTP), then all stopped");
      report(table(["run", "launch → all 64 answers", "stopWorkers(64)", "nothing lost or left"], rows));
    }

    if (ONLY.has("rss")) {
      const rows: string[][] = [];
      for (const engine of ENGINES) {
        const sink = new CountingSink("idle-ready");
        try {
          const ws = await launchWorkers({ n: 4, engine, code: startupCode(engine, "idle-ready"), sink, keeper: false, context: context(server) });
          await sink.until(4, 300_000);
          // Let the kernels settle (GC, lazy init) before reading memory; idle state comes from REST.
          const until = Date.now() + 30_000;
          while (Date.now() < until) {
            const all = await listWorkers({ context: context(server) });
            if (all.every((w) => w.status === "idle")) break;
            await new Promise((r) => setTimeout(r, 100));
          }
          const per = ws.map((w) => kernelPid(server, w.id)).filter((p): p is number => p !== undefined).map((p) => rssTreeKiB(p) / 1024);
          rows.push([engine, `${median(per).toFixed(1)} MiB`, engine === "sense-fast" ? "<= 60 MiB" : ""]);
        } finally {
          await stopWorkers({ context: context(server) });
          await waitNoKernels(server);
        }
      }
      // A full sense-ts kernel once it compiled a TypeScript cell (the compiler loaded).
      const full: number[] = [];
      for (let i = 0; i < 2; i++) {
        const nb = await openNotebook(server, "sense-ts");
        try {
          await nb.run("const typed: number = 1;\ntyped + 1");
          const pid = kernelPid(server, nb.kernelId);
          if (pid) full.push(rssTreeKiB(pid) / 1024);
        } finally {
          await nb.shutdown();
          await waitNoKernels(server);
        }
      }
      if (full.length) rows.push(["sense-ts, after compiling a TS cell", `${median(full).toFixed(1)} MiB`, "(report)"]);
      report("\nIdle RSS per worker (kernel process tree, median of 4 workers; sense-ts workers ran precompiled startup code)");
      report(table(["engine", "RSS", "target"], rows));
    }
    if (ONLY.has("remote")) {
      for (const line of await remoteBench(context(server), RUNS, pyRemote, table)) report(line);
    }

    if (ONLY.has("data")) {
      for (const line of await dataBench(context(server), RUNS, pyData, table)) report(line);
    }

    if (ONLY.has("master")) {
      const rows: string[][] = [];
      for (const n of SIZES.filter((x) => x >= 8)) {
        try {
          const xs = await masterLaunch(server, n, RUNS);
          launch.set(`master:${n}`, median(xs));
          console.error(`[bench] sense-ts master, no engine, n=${n}: ${xs.map((x) => x.toFixed(2)).join(", ")} s`);
          if (!launch.has(`dask:${n}`)) {
            try {
              const d = pyClusters("dask", n, RUNS);
              launch.set(`dask:${n}`, median(d));
              console.error(`[bench] dask n=${n}: ${d.map((x) => x.toFixed(2)).join(", ")} s`);
            } catch (e) {
              console.error(`[bench] dask n=${n} failed: ${(e as Error).message}`);
            }
          }
          const target = n === 8 ? "first <= 0.6 s, median <= 0.5 s, both <= Dask / 2" : n === 16 ? "<= 0.9 s" : "";
          rows.push([String(n), fmtS(xs[0]), fmtS(median(xs)), xs.map((x) => x.toFixed(2)).join(", "), fmtS(launch.get(`dask:${n}`)), fmtS(launch.get(`ipp:${n}`)), target]);
        } catch (e) {
          console.error(`[bench] sense-ts master n=${n} failed: ${(e as Error).message}`);
        }
      }
      report("\nFrom a fresh sense-ts master kernel, no engine given (TypeScript startup code): launch → every worker's first line, measured in the master");
      report(table(["N", "first launch", `median of ${RUNS}`, "runs", "Dask LocalCluster (median)", "ipyparallel", "target"], rows));
      const cells: string[][] = [];
      for (const kernel of ["sense-ts", "tslab-stock"]) {
        try {
          const xs = await firstCell(server, kernel, 5);
          cells.push([kernel === "tslab-stock" ? "stock tslab 1.0.22" : kernel, fmtS(median(xs)), xs.map((x) => x.toFixed(2)).join(", ")]);
        } catch (e) {
          console.error(`[bench] first cell on ${kernel} failed: ${(e as Error).message}`);
        }
      }
      report("\nMaster: session start → first TypeScript cell result (median of 5, a fresh kernel each)");
      report(table(["kernel", "median", "runs"], cells));
    }
    if (ONLY.has("growth")) {
      const lines = await growthBench({ context: context(server), runs: RUNS, sizes: GROWTH_SIZES, waitNoKernels: () => waitNoKernels(server), waitKernels: (n) => waitKernels(server, n), dask: (n, runs) => pyClusters("dask", n, runs), table, median });
      for (const l of lines) report(l);
    }
  } finally {
    await server.stop();
    fs.rmSync(specs, { recursive: true, force: true });
  }

  if (ONLY.has("transpile")) {
    const script = `const t=require(${JSON.stringify(path.join(REPO, "dist", "src", "transpile.js"))});
const code=${JSON.stringify(Array.from({ length: 20 }, (_, i) => `const v${i}: number = ${i} * 2; console.log(v${i}.toFixed(1));`).join("\n"))};
let a=performance.now(); t.checkAndTranspile(code); const cold=performance.now()-a;
const warm=[]; for(let i=0;i<5;i++){a=performance.now(); t.checkAndTranspile(code+"\\n//"+i); warm.push(performance.now()-a);}
warm.sort((x,y)=>x-y); console.log(JSON.stringify({cold, warm: warm[2]}));`;
    const r = spawnSync(process.execPath, ["-e", script], { encoding: "utf8" });
    const t = JSON.parse(r.stdout.trim() || "{}") as { cold?: number; warm?: number };
    report("\ncheckAndTranspile, 20-line snippet, fresh Node process");
    report(table(["", "time"], [["cold (first call, loads compiler + lib/@types)", `${t.cold?.toFixed(0)} ms`], ["warm (median of 5)", `${t.warm?.toFixed(0)} ms`]]));
  }

  const f8 = launch.get("sense-fast:8");
  if (f8 !== undefined) {
    report("\nTargets (8 workers): launch→first output <= 1.0 s; below Dask LocalCluster(8); <= 1/5 of ipyparallel Cluster(8)");
    report(`  sense-fast(8) = ${fmtS(f8)}, pooled = ${fmtS(launch.get("sense-fast+pool:8"))}, Dask(8) = ${fmtS(launch.get("dask:8"))}, ipyparallel(8) = ${fmtS(launch.get("ipp:8"))}, sense-ts(8) = ${fmtS(launch.get("sense-ts:8"))}`);
  }
  fs.mkdirSync(path.join(REPO, "artifacts"), { recursive: true });
  fs.writeFileSync(path.join(REPO, "artifacts", "bench.txt"), out.join("\n") + "\n");
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
