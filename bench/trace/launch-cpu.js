// Where a launch's CPU goes: N workers launched from this Node process through a real Jupyter
// Server (the project's own, as the tests start it), three runs; per run the wall time to every
// worker's first line and the CPU time (from /proc) of the server, this master and each kernel.
// Usage, after `npm run bench` (or `bash scripts/setup.sh`) built dist/ and build/:
//   node bench/trace/launch-cpu.js [N=8] [engine=sense-ts]
const fs = require("fs");
const path = require("path");
const REPO = path.resolve(__dirname, "..", "..");
const { startJupyterServer } = require(path.join(REPO, "build/harness/local-server.js"));
const W = require(path.join(REPO, "dist/src/workers/index.js"));
const N = Number(process.argv[2] || 8);
const ENGINE = process.argv[3] || "sense-ts";
const cpuMs = (pid) => {
  try {
    const st = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
    return (Number(st[11]) + Number(st[12])) * (1000 / 100);
  } catch {
    return 0;
  }
};
const children = (pid) => {
  try {
    return fs.readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
};
const ownCpuMs = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };
(async () => {
  const server = await startJupyterServer({});
  const context = { endpoint: { baseUrl: server.url, token: server.token }, projectHome: server.rootDir, serverRootDir: server.rootDir };
  try {
    for (let run = 0; run < 3; run++) {
      const seen = new Set();
      const s0 = cpuMs(server.pid);
      const m0 = ownCpuMs();
      const t0 = performance.now();
      await new Promise((resolve, reject) => {
        const sink = { stdout(t) { for (const m of t.matchAll(/^\[(w\d+)\] first-line/gm)) seen.add(m[1]); if (seen.size >= N) resolve(); }, stderr(t) { process.stderr.write(t); }, display() {} };
        W.launchWorkers(N, { engine: ENGINE, code: 'const greeting = "first-line";\nconsole.log(greeting);', sink, keeper: false, context }).catch(reject);
      });
      const wall = performance.now() - t0;
      const kernels = children(server.pid).map(cpuMs);
      console.log(`run ${run}: ${N} ${ENGINE} workers, every first line after ${wall.toFixed(0)} ms; CPU: server ${cpuMs(server.pid) - s0} ms, master ${(ownCpuMs() - m0).toFixed(0)} ms, kernels ${kernels.reduce((a, b) => a + b, 0)} ms (${kernels.join(", ")})`);
      await W.stopWorkers({ context });
    }
  } finally {
    await W.stopWorkers({ context }).catch(() => undefined);
    await server.stop();
  }
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
