/**
 * Enterprise Gateway's DistributedProcessProxy over real SSH: EG (3.3.0, .venv-eg) in the root network
 * namespace starts the Node EG launcher (kernel-extension/eg-launcher) on a "remote host" that is a
 * Linux network namespace of this machine running its own sshd (scripts/ssh-host.sh: netns sense-h1,
 * 10.231.0.2, host side 10.231.0.1, key auth for root). The namespace shares the file system, so Node,
 * the launcher and the kernel are at the same paths there. A client talks to the kernel only through
 * a Jupyter Server started with --gateway-url.
 *
 * Not part of `npm test` (needs root, iproute2 and openssh-server): `npm run test:gateway-ssh`.
 *
 * Leak checks: EG's own GET /api/kernels is empty, and the network namespace holds no process but its
 * sshd listener (`ip netns pids`).
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { launcherKernelSpec } from "../../kernel-extension/eg-launcher/kernelspec";
import { LocalGateway, startLocalGateway } from "../../harness/local-gateway";
import { NotebookKernel, openNotebook } from "../helpers/kernel";
import { REPO, until } from "../helpers/util";
import { egKernels } from "../helpers/cells";
import { leftovers, netnsOf, netnsPids, readSshHost, type SshHostUp } from "../helpers/ssh-host";

const HOST_FILE = path.join(REPO, ".sense-ssh", "host.json");
let host: SshHostUp;
let gw: LocalGateway | undefined;
const open: NotebookKernel[] = [];
const figures: string[] = [];

/** The text with the server's and EG's tokens replaced. */
function redact(text: string): string {
  let out = text;
  for (const t of [gw?.server.token, gw?.egToken]) if (t) out = out.split(t).join("<token>");
  return out;
}

beforeAll(async () => {
  if (!fs.existsSync(HOST_FILE)) throw new Error(`${HOST_FILE} missing: run \`bash scripts/ssh-host.sh\` first (needs root)`);
  host = readSshHost(HOST_FILE);
  expect(netnsPids(host.netns)).toContain(host.sshdPid);
  expect(leftovers(host)).toEqual([]);
  const launcher = path.join(REPO, "dist", "kernel-extension", "eg-launcher", "launch.js");
  if (!fs.existsSync(launcher)) throw new Error(`${launcher} missing: run \`npx tsc -p .\``);

  const t0 = Date.now();
  gw = await startLocalGateway({
    egEnv: {
      EG_REMOTE_HOSTS: host.remoteIp,
      EG_REMOTE_USER: host.user,
      // the launcher in the namespace sends the connection info back to the host side of the veth
      EG_RESPONSE_IP: host.hostIp,
      // paramiko (EG's SSH client) reads ~/.ssh/{id_ed25519,known_hosts} here (RejectPolicy: the
      // host key must be known), not /root/.ssh
      HOME: host.home,
    },
    egArgs: process.env.SENSE_GATEWAY_TEST_LOGS ? ["--log-level=DEBUG"] : [],
  });
  figures.push(`EG + gateway-pointed server up: ${Date.now() - t0} ms`);
  // the SSH kernelspec: the Node launcher under DistributedProcessProxy, pinned to the namespace host
  // (EG reads kernelspecs from disk on each request)
  const dir = path.join(gw.egBaseDir, "data", "kernels", "sense-ts-ssh");
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, "kernel.json"), JSON.stringify(launcherKernelSpec("sense-ts", { processProxy: "distributed", remoteHosts: [host.remoteIp] }), null, 2));
});

afterAll(async () => {
  try {
    for (const nb of open.splice(0)) await nb.close().catch(() => undefined);
    const logs = process.env.SENSE_GATEWAY_TEST_LOGS;
    if (logs && gw) {
      // at DEBUG, EG logs the remote command in clear ("Invoking cmd: 'export SENSE_API_TOKEN=...;
      // nohup ...'"; EG_SENSITIVE_ENV_KEYS does not mask it): the copies kept here are redacted
      fs.mkdirSync(logs, { recursive: true });
      fs.writeFileSync(path.join(logs, "eg.log"), redact(gw.egLog()));
      fs.writeFileSync(path.join(logs, "server.log"), redact(gw.server.log()));
    }
    await gw?.stop();
  } finally {
    // whatever a failed test left in the namespace (never the sshd listener)
    if (host) {
      for (const pid of leftovers(host)) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          /* gone */
        }
      }
    }
    if (figures.length) console.log(figures.join("\n"));
  }
});

test("sense-ts started by EG over SSH in a network namespace: output through the server, interrupt, nothing left after shutdown", async () => {
  const t0 = Date.now();
  const nb = await openNotebook(gw!.server, "sense-ts-ssh");
  open.push(nb);
  figures.push(`sense-ts over SSH: ${Date.now() - t0} ms from session request to kernel ready`);

  const t1 = Date.now();
  const r = await nb.run(
    [
      'import * as os from "os";',
      "const ips: string[] = [];",
      "for (const list of Object.values(os.networkInterfaces())) for (const a of list ?? []) if (a.family === \"IPv4\") ips.push(a.address);",
      "console.log(`pid ${process.pid} ppid ${process.ppid} ips ${ips.join(\",\")}`, 6 * 7);",
    ].join("\n"),
  );
  if (r.status !== "ok") console.log(JSON.stringify(r.outputs ?? r));
  figures.push(`first cell (round trip through server, EG, veth): ${Date.now() - t1} ms`);
  expect(r.status).toBe("ok");
  const m = /pid (\d+) ppid (\d+) ips (\S+) 42/.exec(r.stdout);
  expect(m).not.toBeNull();
  const kernelPid = Number(m![1]);
  const launcherPid = Number(m![2]);
  // the kernel sees the namespace's interfaces only, and runs in it
  expect(m![3].split(",").sort()).toEqual([host.remoteIp, "127.0.0.1"].sort());
  expect(netnsOf(kernelPid)).toBe(host.netns);
  expect(netnsOf(launcherPid)).toBe(host.netns);
  expect(leftovers(host).sort()).toEqual(expect.arrayContaining([kernelPid, launcherPid]));
  // EG started it over SSH on the namespace host and got the launcher's pid back from there
  expect(gw!.egLog()).toMatch(new RegExp(`Kernel launched on '${host.remoteIp.replace(/\./g, "\\.")}', pid: ${launcherPid}, ID: ${nb.kernelId}`));

  const t2 = Date.now();
  const r2 = await nb.run("process.pid");
  figures.push(`second cell: ${Date.now() - t2} ms`);
  expect(r2.status).toBe("ok");

  // interrupt: server → EG → launcher's comm port on 10.231.0.2 → SIGINT to the kernel
  const ti = Date.now();
  await nb.session.kernel!.interrupt();
  const kernelLog = path.join(gw!.egBaseDir, "kernel-logs", `kernel-${nb.kernelId}.log`);
  await until("the launcher to get signal 2", () => (fs.existsSync(kernelLog) && fs.readFileSync(kernelLog, "utf8").includes("signal 2 requested") ? true : undefined), 30_000);
  figures.push(`interrupt through EG to the launcher over the veth: ${Date.now() - ti} ms`);

  const ts = Date.now();
  await nb.close();
  open.splice(open.indexOf(nb), 1);
  figures.push(`session delete: ${Date.now() - ts} ms`);
  await until("EG has no kernels", async () => ((await egKernels(gw!)).length === 0 ? true : undefined), 30_000);
  await until("no process left in the namespace but sshd", () => (leftovers(host).length === 0 ? true : undefined), 30_000);
  figures.push(`shutdown → namespace holds only sshd: ${Date.now() - ts} ms`);
  expect(netnsPids(host.netns)).toEqual([host.sshdPid]);
  // at EG's default level (INFO) no token reaches either log, SSH mode included
  if (!process.env.SENSE_GATEWAY_TEST_LOGS) {
    for (const t of [gw!.server.token, gw!.egToken]) {
      expect(gw!.egLog()).not.toContain(t);
      expect(gw!.server.log()).not.toContain(t);
    }
  }
});

test("a SIGKILLed launcher on the SSH host takes its kernel with it; EG relaunches it there over SSH; nothing left after shutdown", async () => {
  const nb = await openNotebook(gw!.server, "sense-ts-ssh");
  open.push(nb);
  const r = await nb.run("console.log(`pid ${process.pid} ppid ${process.ppid}`)");
  expect(r.status).toBe("ok");
  const m = /pid (\d+) ppid (\d+)/.exec(r.stdout);
  expect(m).not.toBeNull();
  const [kernelPid, launcherPid] = [Number(m![1]), Number(m![2])];
  const launchedBefore = gw!.egLog().split(`Kernel launched on '${host.remoteIp}'`).length;
  const tk = Date.now();
  process.kill(launcherPid, "SIGKILL");
  // parent-watch in the kernel notices its launcher is gone
  await until("the kernel to exit with its launcher", () => (leftovers(host).includes(kernelPid) ? undefined : true), 20_000);
  figures.push(`launcher SIGKILL → kernel gone in the namespace: ${Date.now() - tk} ms`);
  // EG's poll (comm port, signal 0) finds the kernel dead and restarts it over SSH
  await until("EG to relaunch the kernel over SSH", () => (gw!.egLog().split(`Kernel launched on '${host.remoteIp}'`).length > launchedBefore ? true : undefined), 90_000);
  figures.push(`launcher SIGKILL → EG relaunched over SSH: ${Date.now() - tk} ms`);
  // the relaunched launcher and kernel run in the namespace again
  await until("a new launcher and kernel in the namespace", () => (leftovers(host).filter((p) => p !== launcherPid && p !== kernelPid).length >= 2 ? true : undefined), 30_000);
  // (Not asserted: a cell on the restarted kernel over the same client connection. In one try it
  // never answered within 180 s while @jupyterlab/services reconnected; not investigated further.)
  await nb.close();
  open.splice(open.indexOf(nb), 1);
  await until("EG has no kernels", async () => ((await egKernels(gw!)).length === 0 ? true : undefined), 30_000);
  await until("no process left in the namespace but sshd", () => (leftovers(host).length === 0 ? true : undefined), 30_000);
  expect(netnsPids(host.netns)).toEqual([host.sshdPid]);
  // Known limitation: a SIGKILLed launcher cannot remove its 0600 connection-file folder
  // (<tmp>/sense-eg-<kernel id>-*, holding the killed kernel's HMAC key) on its host. Checked, then removed.
  const stale = fs.readdirSync(os.tmpdir()).filter((d) => d.startsWith(`sense-eg-${nb.kernelId}-`));
  expect(stale.length).toBeGreaterThan(0);
  for (const d of stale) fs.rmSync(path.join(os.tmpdir(), d), { recursive: true, force: true });
});
