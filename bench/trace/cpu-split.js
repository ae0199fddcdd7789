// Where the CPU of a launch or of an `execute` goes, through a real Jupyter Server (the project's
// own, as the tests start it) with this Node process as the master; CPU times from /proc.
// Usage, after `npm run bench` (or `bash scripts/setup.sh`) built dist/ and build/:
//   node bench/trace/cpu-split.js launch [N=8] [engine=sense-ts]
//     three launches of N workers: wall time to every worker's first line; CPU of the server,
//     this master and each kernel
//   node bench/trace/cpu-split.js execute [N=64]
//     `execute("1")` on N sense-fast workers, 3 untimed calls then 10 timed: median and minimum
//     wall time, CPU per call of the server (its one thread relays every message) and this master
const fs = require("fs");
const path = require("path");
const REPO = path.resolve(__dirname, "..", "..");
const { startJupyterServer } = require(path.join(REPO, "build/harness/local-server.js"));
const W = require(path.join(REPO, "dist/src/workers/index.js"));
const R = require(path.join(REPO, "dist/src/remote/index.js"));
const [mode = "launch", nArg, engineArg] = process.argv.slice(2);
const quiet = { stdout() {}, stderr() {}, display() {} };

function cpuMs(pid) {
  try {
    const st = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
    return (Number(st[11]) + Number(st[12])) * (1000 / 100);
  } catch {
    return 0; // the process is gone
  }
}
function kernelsOf(pid) {
  try {
    return fs.readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}
function ownCpuMs() {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

async function launches(server, context, n, engine) {
  for (let run = 0; run < 3; run++) {
    const seen = new Set();
    const s0 = cpuMs(server.pid);
    const m0 = ownCpuMs();
    const t0 = performance.now();
    await new Promise((resolve, reject) => {
      const sink = { stdout(t) { for (const m of t.matchAll(/^\[(w\d+)\] first-line/gm)) seen.add(m[1]); if (seen.size >= n) resolve(); }, stderr(t) { process.stderr.write(t); }, display() {} };
      W.launchWorkers(n, { engine, code: 'const greeting = "first-line";\nconsole.log(greeting);', sink, keeper: false, context }).catch(reject);
    });
    const wall = performance.now() - t0;
    const kernels = kernelsOf(server.pid).map(cpuMs);
    console.log(`run ${run}: ${n} ${engine} workers, every first line after ${wall.toFixed(0)} ms; CPU: server ${cpuMs(server.pid) - s0} ms, master ${(ownCpuMs() - m0).toFixed(0)} ms, kernels ${kernels.reduce((a, b) => a + b, 0)} ms (${kernels.join(", ")})`);
    await W.stopWorkers({ context });
  }
}

async function executes(server, context, n) {
  await W.launchWorkers({ n, engine: "sense-fast", code: "1", sink: quiet, keeper: false, context, maxWorkers: n });
  for (let i = 0; i < 3; i++) await R.execute("1", { sink: quiet, context });
  const xs = [];
  const s0 = cpuMs(server.pid);
  const m0 = ownCpuMs();
  for (let i = 0; i < 10; i++) {
    const t0 = performance.now();
    const res = await R.execute("1", { sink: quiet, context });
    xs.push(performance.now() - t0);
    if (res.length !== n || res.some((r) => r.value !== 1)) throw new Error(`execute("1") answered ${res.length} of ${n}`);
  }
  xs.sort((a, b) => a - b);
  console.log(`execute("1") on ${n}: median ${((xs[4] + xs[5]) / 2).toFixed(0)} ms, min ${xs[0].toFixed(0)} ms; CPU per call: server ${((cpuMs(server.pid) - s0) / 10).toFixed(0)} ms, master ${((ownCpuMs() - m0) / 10).toFixed(0)} ms`);
}

(async () => {
  if (mode !== "launch" && mode !== "execute") throw new Error("usage: node bench/trace/cpu-split.js launch [N] [engine] | execute [N]");
  const server = await startJupyterServer({});
  const context = { endpoint: { baseUrl: server.url, token: server.token }, projectHome: server.rootDir, serverRootDir: server.rootDir };
  try {
    if (mode === "launch") await launches(server, context, Number(nArg || 8), engineArg || "sense-ts");
    else await executes(server, context, Number(nArg || 64));
  } finally {
    await W.stopWorkers({ context }).catch(() => undefined);
    await server.stop();
  }
})().catch((e) => {
  console.error(e.message ?? e);
  process.exit(1);
});
