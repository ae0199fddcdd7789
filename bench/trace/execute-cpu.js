// What one `execute("1")` on N workers costs: N sense-fast workers of this Node process through a
// real Jupyter Server, 3 untimed calls, then 10 timed; the median and minimum wall time, and the
// CPU time per call of the server (its one thread relays every request and reply) and of this master.
// Usage, after `npm run bench` (or `bash scripts/setup.sh`) built dist/ and build/:
//   node bench/trace/execute-cpu.js [N=64]
const fs = require("fs");
const path = require("path");
const REPO = path.resolve(__dirname, "..", "..");
const { startJupyterServer } = require(path.join(REPO, "build/harness/local-server.js"));
const W = require(path.join(REPO, "dist/src/workers/index.js"));
const R = require(path.join(REPO, "dist/src/remote/index.js"));
const N = Number(process.argv[2] || 64);
const cpuMs = (pid) => {
  const st = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return (Number(st[11]) + Number(st[12])) * (1000 / 100);
};
(async () => {
  const server = await startJupyterServer({});
  const context = { endpoint: { baseUrl: server.url, token: server.token }, projectHome: server.rootDir, serverRootDir: server.rootDir };
  const quiet = { stdout() {}, stderr() {}, display() {} };
  try {
    await W.launchWorkers({ n: N, engine: "sense-fast", code: "1", sink: quiet, keeper: false, context, maxWorkers: N });
    for (let i = 0; i < 3; i++) await R.execute("1", { sink: quiet, context });
    const xs = [];
    const s0 = cpuMs(server.pid);
    const m0 = process.cpuUsage();
    for (let i = 0; i < 10; i++) {
      const t0 = performance.now();
      const res = await R.execute("1", { sink: quiet, context });
      xs.push(performance.now() - t0);
      if (res.length !== N || res.some((r) => r.value !== 1)) throw new Error(`execute("1") answered ${res.length} of ${N}`);
    }
    const m = process.cpuUsage(m0);
    xs.sort((a, b) => a - b);
    console.log(`execute("1") on ${N}: median ${((xs[4] + xs[5]) / 2).toFixed(0)} ms, min ${xs[0].toFixed(0)} ms; CPU per call: server ${((cpuMs(server.pid) - s0) / 10).toFixed(0)} ms, master ${((m.user + m.system) / 1000 / 10).toFixed(0)} ms`);
  } finally {
    await W.stopWorkers({ context }).catch(() => undefined);
    await server.stop();
  }
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
