/**
 * Chaos through Enterprise Gateway with two SSH hosts (#23): EG's DistributedProcessProxy starts
 * `sense-ts` workers over SSH on two "remote hosts" (Linux network namespaces of this machine, each
 * running its own sshd: scripts/ssh-host.sh, two of them, see `npm run test:gateway-ssh`), and this
 * process (a plain Node master) maps over them through a Jupyter Server pointed at EG. Mid-map, every
 * kernel and launcher on one host is SIGKILLed (its sshd stays): the map completes on the other
 * host, every result exact and in order; the extra wall time against the same map with no loss is
 * a figure. Then `restartWorkers` brings the lost workers back through EG, and map uses them.
 *
 * Host files: SENSE_SSH_HOST_FILES (comma-separated host.json paths), by default
 * `.sense-ssh/host.json` and `.sense-ssh-h2/host.json`. Leak checks: EG's own list is empty and
 * the namespaces hold nothing but their sshd listeners.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { launcherKernelSpec } from "../../kernel-extension/eg-launcher/kernelspec";
import { LocalGateway, startLocalGateway } from "../../harness/local-gateway";
import { map } from "../../src/remote";
import { awaitWorkers, launchWorkers, listWorkers, restartWorkers, stopWorkers } from "../../src/workers";
import type { WorkerRecord } from "../../src/jupyter/schemas";
import { captureSink, REPO, until } from "../helpers/util";
import { egKernels } from "../helpers/cells";
import { leftovers, netnsOf, netnsPids, readSshHost, type SshHostUp } from "../helpers/ssh-host";
import { itemsOf, work } from "../chaos/support";

const HOST_FILES = (process.env.SENSE_SSH_HOST_FILES ?? [path.join(REPO, ".sense-ssh", "host.json"), path.join(REPO, ".sense-ssh-h2", "host.json")].join(",")).split(",");
const SPEC = "sense-ts-ssh2";
const WORKERS = 4;
const items = itemsOf(20_000);
const expected = items.map(work);
let hosts: SshHostUp[] = [];
let gw: LocalGateway | undefined;
let egHome: string | undefined;
const figures: string[] = [];
const sink = captureSink();

const ctx = () => ({ endpoint: { baseUrl: gw!.server.url, token: gw!.server.token }, projectHome: gw!.server.rootDir, serverRootDir: gw!.server.rootDir });

beforeAll(async () => {
  for (const f of HOST_FILES) if (!fs.existsSync(f)) throw new Error(`${f} missing: run scripts/ssh-host.sh for two hosts first (npm run test:gateway-ssh does; needs root)`);
  hosts = HOST_FILES.map(readSshHost);
  expect(hosts).toHaveLength(2);
  for (const h of hosts) expect(leftovers(h)).toEqual([]);
  // One SSH identity for EG on both hosts: the first host's key, also authorized on the second;
  // paramiko reads ~/.ssh of this HOME (both host keys known, RejectPolicy).
  const key = fs.readFileSync(path.join(hosts[0].home, ".ssh", "id_ed25519.pub"), "utf8");
  const authorized = path.join(path.dirname(hosts[1].home), "authorized_keys");
  if (!fs.readFileSync(authorized, "utf8").includes(key.trim())) fs.appendFileSync(authorized, key);
  egHome = fs.mkdtempSync(path.join(os.tmpdir(), "sense-eg-home-"));
  fs.mkdirSync(path.join(egHome, ".ssh"), { mode: 0o700 });
  fs.copyFileSync(path.join(hosts[0].home, ".ssh", "id_ed25519"), path.join(egHome, ".ssh", "id_ed25519"));
  fs.chmodSync(path.join(egHome, ".ssh", "id_ed25519"), 0o600);
  fs.writeFileSync(path.join(egHome, ".ssh", "known_hosts"), hosts.map((h) => fs.readFileSync(path.join(h.home, ".ssh", "known_hosts"), "utf8")).join(""));
  const launcher = path.join(REPO, "dist", "kernel-extension", "eg-launcher", "launch.js");
  if (!fs.existsSync(launcher)) throw new Error(`${launcher} missing: run \`npx tsc -p .\``);

  const t0 = Date.now();
  gw = await startLocalGateway({
    egEnv: {
      EG_REMOTE_HOSTS: hosts.map((h) => h.remoteIp).join(","),
      EG_REMOTE_USER: hosts[0].user,
      // one response address for both hosts: the first host's host side (each namespace routes to the root one)
      EG_RESPONSE_IP: hosts[0].hostIp,
      HOME: egHome,
    },
  });
  figures.push(`EG + gateway-pointed server up: ${Date.now() - t0} ms`);
  const dir = path.join(gw.egBaseDir, "data", "kernels", SPEC);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, "kernel.json"), JSON.stringify(launcherKernelSpec("sense-ts", { processProxy: "distributed", remoteHosts: hosts.map((h) => h.remoteIp) }), null, 2));
}, 120_000);

afterAll(async () => {
  try {
    if (gw) await stopWorkers({ context: ctx() }).catch(() => undefined);
    await gw?.stop();
  } finally {
    for (const h of hosts) {
      for (const pid of leftovers(h)) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          /* gone */
        }
      }
    }
    if (egHome) fs.rmSync(egHome, { recursive: true, force: true });
    if (figures.length) console.log(figures.join("\n"));
  }
});

/** The namespace (host) each worker's kernel runs in: the kernel's pid, found by its kernel id on the argv of a process in a namespace. */
function hostOf(w: WorkerRecord): string {
  for (const h of hosts) {
    for (const pid of netnsPids(h.netns)) {
      let cmd: string;
      try {
        cmd = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8");
      } catch {
        continue; // ended while we looked
      }
      if (cmd.includes(w.id)) return netnsOf(pid);
    }
  }
  throw new Error(`no process of worker ${w.name} (${w.id}) on either host`);
}

test("one SSH host's kernels SIGKILLed mid-map: the map completes on the other host, exact and in order; restartWorkers brings the lost workers back through EG", async () => {
  const ws = await launchWorkers({ n: WORKERS, engine: SPEC, keeper: false, watchdog: false, context: ctx(), sink, startTimeoutSeconds: 180 });
  await awaitWorkers(ws, { waitForCompletion: true, timeoutSeconds: 180, context: ctx() });
  const where = new Map(ws.map((w) => [w.name, hostOf(w)]));
  // EG spreads them over both hosts (round robin).
  expect(new Set(where.values())).toEqual(new Set(hosts.map((h) => h.netns)));
  const victimHost = hosts[1];
  const lost = ws.filter((w) => where.get(w.name) === victimHost.netns).map((w) => w.name);

  const timed = async (during: () => Promise<void>) => {
    const t0 = performance.now();
    const [out] = await Promise.all([map(work, items, { targets: ws, context: ctx(), sink, progress: false }), during()]);
    expect(out.length).toBe(items.length);
    expect(out.findIndex((r, i) => r !== expected[i])).toBe(-1);
    return performance.now() - t0;
  };
  const baseline = await timed(async () => undefined);
  let killed: number[] = [];
  let killedAt = 0;
  const t0Loss = performance.now();
  const lossMs = await timed(async () => {
    await new Promise((r) => setTimeout(r, baseline / 3));
    killed = leftovers(victimHost);
    for (const pid of killed) process.kill(pid, "SIGKILL");
    killedAt = performance.now() - t0Loss;
  });
  // Its launchers and kernels, killed while the map ran (the trial is not vacuous).
  expect(killed.length).toBeGreaterThanOrEqual(2 * lost.length);
  expect(killedAt).toBeLessThan(lossMs);
  figures.push(`map of ${items.length} items on ${WORKERS} sense-ts workers on 2 SSH hosts through EG: ${Math.round(baseline)} ms; one host's kernels SIGKILLed at a third: ${Math.round(lossMs)} ms (extra ${Math.round(lossMs - baseline)} ms)`);
  // The lost host's workers are failed with a reason; the other host's carry on.
  const listed = await until("the lost host's workers listed failed", async () => {
    const rs = await listWorkers({ context: ctx() });
    return lost.every((n) => rs.find((r) => r.name === n)?.status === "failed") ? rs : undefined;
  }, 120_000);
  for (const r of listed) expect([r.name, r.status]).toEqual([r.name, lost.includes(r.name) ? "failed" : "idle"]);

  const t0 = Date.now();
  const back = await restartWorkers({ context: ctx(), sink });
  expect(back.map((r) => r.name).sort()).toEqual([...lost].sort());
  await awaitWorkers(back, { waitForCompletion: true, timeoutSeconds: 180, context: ctx() });
  figures.push(`restartWorkers of ${back.length} sense-ts workers over SSH through EG, until idle: ${Date.now() - t0} ms`);
  const got = await map((x: number) => [x, process.env.SENSE_WORKER_NAME], itemsOf(40), { targets: back, context: ctx(), sink, progress: false });
  expect(got.map((g) => g[0])).toEqual(itemsOf(40));
  expect(new Set(got.map((g) => g[1]))).toEqual(new Set(lost));

  await stopWorkers({ context: ctx() });
  await until("EG has no kernels", async () => ((await egKernels(gw!)).length === 0 ? true : undefined), 60_000);
  for (const h of hosts) await until(`no process left on ${h.netns} but sshd`, () => (leftovers(h).length === 0 ? true : undefined), 60_000);
  // A SIGKILLed launcher cannot remove its connection-file folder (ssh.test.ts: known limitation); removed here.
  for (const d of fs.readdirSync(os.tmpdir()).filter((x) => ws.some((w) => x.startsWith(`sense-eg-${w.id}-`)))) fs.rmSync(path.join(os.tmpdir(), d), { recursive: true, force: true });
}, 600_000);
