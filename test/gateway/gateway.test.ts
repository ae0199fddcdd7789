/**
 * Through a real Jupyter Enterprise Gateway (3.3.0, its own .venv-eg, created by
 * scripts/setup-gateway.sh when missing) behind a real Jupyter Server (`--gateway-url`):
 * python3 and sense-ts kernels with output over the proxied websocket, kernel listing
 * (EG_LIST_KERNELS), which env crosses, sized kernelspecs and gatewayInfo from inside a kernel,
 * and the Node EG launcher under EG's DistributedProcessProxy (loopback host, so EG starts it
 * without SSH but with the full launcher contract: encrypted connection info, comm port
 * signals, shutdown). One EG + one server for the whole file.
 *
 * Leak checks: under a gateway the Jupyter Server's process table says nothing (kernels are
 * EG's), so "no kernel left" is EG's own list (GET <eg>/api/kernels) plus, because this EG is
 * local, the processes under EG's temporary folder.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { LocalGateway, startLocalGateway } from "../../scripts/local-gateway";
import { processesUnder } from "../helpers/jupyter";
import { NotebookKernel, openNotebook } from "../helpers/kernel";
import { RestClient } from "../../src/rest";
import { gatewayInfo } from "../../src/gateway";

async function until<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

let gw: LocalGateway;
let rest: RestClient;
const open: NotebookKernel[] = [];
const figures: string[] = [];

async function egKernels(): Promise<{ id: string; name: string }[]> {
  const res = await fetch(`${gw.egUrl}api/kernels`, { headers: { Authorization: `token ${gw.egToken}` } });
  if (!res.ok) throw new Error(`EG GET /api/kernels: ${res.status}`);
  return (await res.json()) as { id: string; name: string }[];
}

/**
 * Closes the notebook's websocket before deleting its session: through a gateway, deleting a
 * session whose websocket is still open waits for EG's websocket ping timeout (~90 s).
 */
async function close(nb: NotebookKernel): Promise<void> {
  const id = nb.session.id;
  nb.session.kernel?.dispose();
  nb.session.dispose();
  await rest.deleteSession(id).catch(() => undefined);
}

beforeAll(async () => {
  const t0 = Date.now();
  gw = await startLocalGateway({ server: { env: { KERNEL_SENSE_PROBE: "crossed", SENSE_NOT_ALLOWED_PROBE: "stays" } } });
  figures.push(`EG + gateway-pointed server up: ${Date.now() - t0} ms`);
  rest = new RestClient({ baseUrl: gw.server.url, token: gw.server.token });
});

afterEach(async () => {
  for (const nb of open.splice(0)) await close(nb);
  await until("EG has no kernels", async () => ((await egKernels()).length === 0 ? true : undefined));
  await until("no kernel processes under EG", () => (processesUnder(gw.egBaseDir).filter((p) => p !== gw.egProcess.pid && p !== gw.server.pid).length === 0 ? true : undefined), 20_000);
});

afterAll(async () => {
  if (process.env.SENSE_GATEWAY_TEST_LOGS) console.log(gw?.egLog().slice(-6000), gw?.server.log().slice(-4000));
  await gw?.stop();
  if (gw) expect(processesUnder(gw.egBaseDir)).toEqual([]);
  if (figures.length) console.log(figures.join("\n"));
});

test("a python3 kernel runs through the gateway; both the server and EG list it; env crosses as documented", async () => {
  const t0 = Date.now();
  const nb = await openNotebook(gw.server, "python3");
  open.push(nb);
  figures.push(`python3 kernel through EG: ${Date.now() - t0} ms to ready`);
  const r = await nb.run("import os, json; print(json.dumps({k: os.environ.get(k) for k in ['KERNEL_SENSE_PROBE', 'SENSE_NOT_ALLOWED_PROBE', 'KERNEL_GATEWAY', 'KERNEL_ID', 'SENSE_API_URL', 'KERNEL_WORKING_DIR']}))\nprint(os.getcwd())");
  expect(r.status).toBe("ok");
  const [envLine, cwd] = r.stdout.trim().split("\n");
  const env = JSON.parse(envLine) as Record<string, string | null>;
  expect(env.KERNEL_SENSE_PROBE).toBe("crossed"); // KERNEL_* always crosses
  expect(env.SENSE_NOT_ALLOWED_PROBE).toBeNull(); // anything else only when allow-listed on both sides
  expect(env.SENSE_API_URL).toBe(gw.server.url); // allow-listed (JUPYTER_GATEWAY_ALLOWED_ENVS + EG_CLIENT_ENVS)
  expect(env.KERNEL_GATEWAY).toBe("1");
  expect(env.KERNEL_ID).toBe(nb.kernelId);
  // The notebook's folder crosses as KERNEL_WORKING_DIR; EG 3.3 applies it only to container
  // kernels (EG_MIRROR_WORKING_DIRS), so a local or SSH kernel starts in EG's own folder.
  expect(env.KERNEL_WORKING_DIR).toBe(gw.server.rootDir);
  expect(cwd).toBe(fs.realpathSync(gw.egBaseDir));
  expect((await egKernels()).map((k) => k.id)).toContain(nb.kernelId);
  expect((await rest.listKernels()).map((k) => k.id)).toContain(nb.kernelId);
  expect(gw.egLog()).not.toContain(gw.server.token);
});

test("a sized sense-ts kernel gets its KERNEL_CPUS/KERNEL_MEMORY, and gatewayInfo tells it runs under a gateway", async () => {
  const nb = await openNotebook(gw.server, "sense-ts-medium");
  open.push(nb);
  const r = await nb.run(
    [
      'const sense = require("sense-tslab");',
      "const info = await sense.gatewayInfo(sense.getContext().rest);",
      "console.log(JSON.stringify({ cpus: process.env.KERNEL_CPUS, mem: process.env.KERNEL_MEMORY, gateway: info.gateway, evidence: info.evidence, sized: info.sizedSpecs }));",
    ].join("\n"),
  );
  expect(r.stderr).toBe("");
  const got = JSON.parse(r.stdout.trim()) as { cpus: string; mem: string; gateway: boolean; evidence: string[]; sized: Record<string, Record<string, string>> };
  expect(got).toEqual({
    cpus: "2",
    mem: "4096Mi",
    gateway: true,
    evidence: ["KERNEL_GATEWAY", "process_proxy"], // this EG also serves the launcher kernelspecs
    sized: { "sense-ts": { small: "sense-ts-small", medium: "sense-ts-medium", large: "sense-ts-large" } },
  });
  // From outside any kernel (a plain Node client) only the process-proxy kernelspecs tell.
  expect(await gatewayInfo(rest, {})).toMatchObject({ gateway: true, evidence: ["process_proxy"] });
  expect((await gatewayInfo(rest, { SENSE_GATEWAY: "0" })).gateway).toBe(false);
});

test("the Node EG launcher starts sense-ts under DistributedProcessProxy: output, interrupt, shutdown", async () => {
  const t0 = Date.now();
  const nb = await openNotebook(gw.server, "sense-ts-distributed");
  open.push(nb);
  figures.push(`sense-ts via the EG launcher: ${Date.now() - t0} ms to ready`);
  const r = await nb.run("console.log(`pid ${process.pid} ppid ${process.ppid}`, 6 * 7)");
  expect(r.status).toBe("ok");
  const m = /pid (\d+) ppid (\d+) 42/.exec(r.stdout);
  expect(m).not.toBeNull();
  const kernelPid = Number(m![1]);
  const launcherPid = Number(m![2]);
  expect(kernelPid).not.toBe(launcherPid);
  // EG launched the launcher, the launcher the kernel, and EG got the launcher's pid back
  expect(gw.egLog()).toMatch(new RegExp(`Kernel launched on '127\\.0\\.0\\.1', pid: ${launcherPid}, ID: ${nb.kernelId}`));
  // interrupt: the server → EG → comm port {"signum": 2} → the launcher, which signals the kernel
  const ti = Date.now();
  await nb.session.kernel!.interrupt();
  const kernelLog = path.join(gw.egBaseDir, "kernel-logs", `kernel-${nb.kernelId}.log`);
  await until("the launcher to get signal 2", () => (fs.readFileSync(kernelLog, "utf8").includes("signal 2 requested") ? true : undefined), 30_000);
  figures.push(`interrupt through EG to the launcher: ${Date.now() - ti} ms`);
  await close(nb);
  open.splice(open.indexOf(nb), 1);
  // the launcher lives exactly as long as the kernel, and both are gone after shutdown
  await until("launcher and kernel exit", () => (processesUnder(nb.kernelId).length === 0 ? true : undefined), 20_000);
});
