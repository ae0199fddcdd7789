/**
 * TypeScript workers on the fast engine: a sense-ts master type-checks and transpiles the startup
 * code once, before anything launches, and sense-fast workers run the JavaScript.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { JupyterServer, processesUnder, startJupyterServer } from "../helpers/jupyter";
import { allText, NotebookKernel, openNotebook } from "../helpers/kernel";
import { RestClient } from "../../src/jupyter/rest";

let server: JupyterServer;
let nb: NotebookKernel;
let rest: RestClient;

beforeAll(async () => {
  server = await startJupyterServer();
  rest = new RestClient({ baseUrl: server.url, token: server.token });
  fs.writeFileSync(
    path.join(server.rootDir, "job.ts"),
    [
      "const wait = (ms: number): Promise<number> => new Promise((resolve) => setTimeout(() => resolve(ms), ms));",
      "const waited: number = await wait(5);",
      "console.log(`fast ${process.env.SENSE_WORKER_NAME} waited ${waited} for ${process.env.JOB}`);",
    ].join("\n"),
  );
  fs.writeFileSync(path.join(server.rootDir, "bad.ts"), 'const count: number = "three";\nconsole.log(count);\n');
  nb = await openNotebook(server, "sense-ts");
  const r = await nb.run('import * as sense from "sense-tslab";');
  expect(r.status).toBe("ok");
});

afterAll(async () => {
  await nb?.shutdown();
  const marker = server?.baseDir;
  await server?.stop();
  if (marker) expect(processesUnder(marker)).toEqual([]);
});

describe("sense-fast workers with TypeScript startup code", () => {
  it("runs a .ts script checked and transpiled in the master", async () => {
    const r = await nb.run(
      'const fast = await sense.launchWorkers(2, { engine: "sense-fast", script: "job.ts", env: { JOB: "squares" } });\n' +
        "const fastDone = await sense.awaitWorkers(fast, { waitForCompletion: true, timeoutSeconds: 60 });\n" +
        'console.log("done", fastDone.workers.length, fastDone.failures.length);',
    );
    expect(r.status).toBe("ok");
    expect(r.stdout).toMatch(/\[w1\] fast w1 waited 5 for squares/);
    expect(r.stdout).toMatch(/\[w2\] fast w2 waited 5 for squares/);
    expect(r.stdout).toMatch(/done 2 0/);
    const workers = (await rest.listSessions()).filter((s) => s.type === "sense-worker");
    expect(workers.map((s) => s.kernel?.name)).toEqual(["sense-fast", "sense-fast"]);
    expect((await nb.run("await sense.stopWorkers();")).status).toBe("ok");
  });

  it("a type error is shown in the master and nothing launches", async () => {
    const ids = async () => (await rest.listSessions()).map((x) => x.id).sort();
    const before = await ids();
    const r = await nb.run('await sense.launchWorkers(1, { engine: "sense-fast", script: "bad.ts" });');
    expect(r.status).toBe("error");
    expect(r.error?.evalue).toMatch(/bad\.ts:1:7 - error TS2322: Type 'string' is not assignable to type 'number'/);
    expect(await ids()).toEqual(before);
  });

  it("%%sense_worker --engine sense-fast takes a TypeScript body from a TypeScript master", async () => {
    // tslab aborts cells queued within 200 ms of a failure; wait until the kernel takes cells again.
    let r = await nb.run("1");
    for (let i = 0; r.status === "abort" && i < 50; i++) r = await nb.run("1");
    r = await nb.run('%%sense_worker -n 1 --engine sense-fast\nconst n: number = 6 * 7;\nconsole.log("answer", n);');
    expect(r.status).toBe("ok");
    const aw = await nb.run("%sense_await --completion --timeout 60");
    expect(aw.status).toBe("ok");
    // The worker's output belongs to the cell that launched it, and arrives after that cell ended.
    expect(allText(r.outputs)).toMatch(/\[w\d+\] answer 42/);
    expect((await nb.run("%sense_stop")).status).toBe("ok");
    expect((await rest.listSessions()).filter((s) => s.type === "sense-worker")).toEqual([]);
  });

  it("%sense_pool keeps sense-fast kernels warm; the next launch takes them and the pool refills", async () => {
    let r = await nb.run("%sense_pool 2 --engine sense-fast");
    expect(r.status).toBe("ok");
    expect(allText(r.outputs)).toMatch(/sense-fast\s+small\s+\S+\s+2\s+2\s+0/);
    const pooled = (await rest.listSessions()).filter((s) => s.type === "sense-pool").map((s) => s.kernel?.id);
    expect(pooled).toHaveLength(2);
    r = await nb.run('%%sense_worker -n 2 --engine sense-fast\nconst who: string = process.env.SENSE_WORKER_NAME ?? "?";\nconsole.log("warm", who, process.cwd() === process.env.SENSE_PROJECT_HOME);');
    expect(r.status).toBe("ok");
    expect((await nb.run("%sense_await --completion --timeout 60")).status).toBe("ok");
    const text = allText(r.outputs);
    expect(text).toMatch(/\[w(\d+)\] warm w\1 true/);
    const workers = (await rest.listSessions()).filter((s) => s.type === "sense-worker").map((s) => s.kernel?.id);
    expect([...workers].sort()).toEqual([...pooled].sort());
    // %sense_pool with the same N waits until the pool is full again: two new kernels
    expect((await nb.run("%sense_pool 2 --engine sense-fast")).status).toBe("ok");
    const again = (await rest.listSessions()).filter((s) => s.type === "sense-pool").map((s) => s.kernel?.id);
    expect(again).toHaveLength(2);
    expect(again.some((id) => pooled.includes(id))).toBe(false);
    expect((await nb.run("%sense_stop")).status).toBe("ok");
    expect((await nb.run("%sense_pool 0 --engine sense-fast")).status).toBe("ok");
    expect(await rest.listSessions()).toEqual([expect.objectContaining({ kernel: expect.objectContaining({ id: nb.kernelId }) })]);
  });
});
