/**
 * `usage_request` on the control channel (issue #26): every Sense kernel answers it as ipykernel
 * does, so jupyter-resource-usage's Kernel Usage endpoint (and JupyterLab's panel on it) has
 * figures for Sense kernels and workers; CPU moves when the kernel burns CPU, memory counts the
 * kernel's child processes.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import { JupyterServer, processesUnder, startJupyterServer } from "../helpers/jupyter";
import { NotebookKernel, openNotebook } from "../helpers/kernel";
import { RestClient } from "../../src/jupyter/rest";
import { SENSE_KERNEL_NAMES } from "../../src/protocol/marks";
import { requestUsage } from "../../src/backends/jupyter/usage";

let server: JupyterServer;
let rest: RestClient;
const notebooks: NotebookKernel[] = [];

beforeAll(async () => {
  server = await startJupyterServer();
  rest = new RestClient({ baseUrl: server.url, token: server.token });
});

afterAll(async () => {
  for (const nb of notebooks) await nb.shutdown();
  const marker = server?.baseDir;
  await server?.stop();
  if (marker) expect(processesUnder(marker)).toEqual([]);
});

async function open(kernelName: string): Promise<NotebookKernel> {
  const nb = await openNotebook(server, kernelName);
  notebooks.push(nb);
  return nb;
}

/** GET jupyter-resource-usage's kernel usage endpoint for `kernelId`. */
async function kernelUsage(kernelId: string): Promise<{ content: Record<string, unknown> }> {
  const res = await fetch(`${server.url}api/metrics/v1/kernel_usage/get_usage/${kernelId}`, { headers: { Authorization: `token ${server.token}` } });
  expect(res.status).toBe(200);
  return (await res.json()) as { content: Record<string, unknown> };
}

const memTotal = () => Number(/^MemTotal:\s+(\d+)/m.exec(fs.readFileSync("/proc/meminfo", "utf8"))?.[1]) * 1024;

describe("usage_request", () => {
  it.each([...SENSE_KERNEL_NAMES])("%s answers on the control channel with its pid, CPU and memory", async (name) => {
    const nb = await open(name);
    const usage = await requestUsage(nb.session.kernel!, 10_000);
    expect(usage).toBeDefined();
    const kernelPid = usage?.pid;
    expect(typeof kernelPid).toBe("number");
    // The pid is a live process of this server (the kernel itself, not the server).
    expect(processesUnder(server.baseDir)).toContain(kernelPid);
    expect(usage?.hostname).toBe(os.hostname());
    expect(usage?.kernelMemory).toBeGreaterThan(10 * 1024 * 1024);
    expect(usage?.kernelCpu).toBeGreaterThanOrEqual(0);
    expect(usage?.cpuCount).toBe(os.cpus().length);
  });

  it("jupyter-resource-usage's kernel usage endpoint returns figures for a Sense worker", async () => {
    const nb = await open("sense-js");
    const r = await nb.run('const sense = require("sense-tslab");\nconst ws = await sense.launchWorkers(1, { engine: "sense-fast" });\nawait sense.awaitWorkers(ws);');
    expect(r.status).toBe("ok");
    const worker = (await rest.listSessions()).find((s) => s.type === "sense-worker");
    expect(worker?.kernel?.id).toBeDefined();
    const body = await kernelUsage(worker!.kernel!.id);
    const c = body.content;
    expect(c.reason).toBeUndefined();
    expect(c.hostname).toBe(os.hostname());
    expect(typeof c.pid).toBe("number");
    expect(processesUnder(server.baseDir)).toContain(c.pid);
    expect(c.kernel_memory).toEqual(expect.any(Number));
    expect(c.kernel_memory as number).toBeGreaterThan(10 * 1024 * 1024);
    expect(c.kernel_cpu).toEqual(expect.any(Number));
    expect(c.cpu_count).toBe(os.cpus().length);
    const vm = c.host_virtual_memory as Record<string, number>;
    expect(vm.total).toBe(memTotal());
    expect(vm.available).toBeGreaterThan(0);
    expect(vm.percent).toBeGreaterThan(0);
    expect(vm.percent).toBeLessThanOrEqual(100);
    // A second request has a window to measure the host over, as ipykernel's psutil does.
    const again = await kernelUsage(worker!.kernel!.id);
    expect(again.content.host_cpu_percent).toEqual(expect.any(Number));
    expect((await nb.run("await sense.stopWorkers();")).status).toBe("ok");
  });

  it("kernel CPU moves with a busy thread and memory counts the kernel's child processes", async () => {
    const nb = await open("sense-js");
    const conn = nb.session.kernel!;
    expect(await requestUsage(conn, 10_000)).toBeDefined(); // the window starts here
    // A worker thread burns 1.5 s of CPU; the kernel's event loop stays free to answer.
    const burn = await nb.run(
      'const { Worker } = require("node:worker_threads");\n' +
        'await new Promise((resolve) => new Worker("const end = Date.now() + 1500; while (Date.now() < end) {}", { eval: true }).on("exit", resolve));',
    );
    expect(burn.status).toBe("ok");
    const busy = await requestUsage(conn, 10_000);
    // A full core on a quiet machine; this 2-core machine is shared, so the bar is well below that.
    expect(busy?.kernelCpu).toBeGreaterThan(25);
    // An idle window: 1 s of a timer, nothing else.
    expect((await nb.run("await new Promise((r) => setTimeout(r, 1000));")).status).toBe("ok");
    const idle = await requestUsage(conn, 10_000);
    expect(idle?.kernelCpu).toBeLessThan((busy?.kernelCpu ?? 0) / 2);
    // A child holding 120 MB is part of the kernel's memory.
    const before = idle?.kernelMemory ?? 0;
    const child = await nb.run(
      'const { spawn } = require("node:child_process");\n' +
        'const child = spawn(process.execPath, ["-e", "globalThis.b = Buffer.alloc(120e6, 1); console.log(\'ready\'); setInterval(() => {}, 1000);"]);\n' +
        'await new Promise((resolve) => child.stdout.once("data", resolve));',
    );
    expect(child.status).toBe("ok");
    const withChild = await requestUsage(conn, 10_000);
    expect((withChild?.kernelMemory ?? 0) - before).toBeGreaterThan(100e6);
    expect((await nb.run('child.kill("SIGKILL"); await new Promise((r) => child.once("exit", r));')).status).toBe("ok");
  });
});
