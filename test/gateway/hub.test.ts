/**
 * Inside a JupyterHub single-user server.
 * 1. A real JupyterHub (6.1, .venv + configurable-http-proxy, scripts/setup-hub.sh): a user's
 *    `jupyterhub-singleuser` server spawned by the hub; the test reaches it through the hub's proxy
 *    with a hub service token; a sense-ts kernel there finds the server and authenticates from the
 *    JUPYTERHUB_* variables the hub gave it, and launches, lists and stops workers.
 * 2. The same variables on a plain Jupyter Server (no Hub API behind them), as a hub sets them
 *    (JUPYTERHUB_SERVICE_URL, _SERVICE_PREFIX, _API_TOKEN = the token the server accepts, _USER,
 *    _API_URL ...): Sense must not need the Hub API itself.
 */
import { randomBytes } from "node:crypto";
import { freePort, JupyterServer, processesUnder, startJupyterServer } from "../helpers/jupyter";
import { allText, NotebookKernel, openNotebook } from "../helpers/kernel";
import { RestClient } from "../../src/jupyter/rest";
import { HubUserServer, LocalHub, startLocalHub } from "../../harness/local-hub";
import { buildWorkers } from "../fixtures/workers/build";

let server: JupyterServer;
let rest: RestClient;
let nb: NotebookKernel | undefined;

async function until<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  const port = await freePort();
  const token = randomBytes(16).toString("hex");
  server = await startJupyterServer({
    port,
    token,
    env: {
      JUPYTERHUB_SERVICE_URL: `http://127.0.0.1:${port}/`,
      JUPYTERHUB_SERVICE_PREFIX: "/",
      JUPYTERHUB_API_TOKEN: token,
      JUPYTERHUB_USER: "alice",
      JUPYTERHUB_SERVER_NAME: "",
      JUPYTERHUB_BASE_URL: "/",
      // the Hub API itself is not running: Sense must not need it
      JUPYTERHUB_API_URL: "http://127.0.0.1:9/hub/api",
    },
  });
  rest = new RestClient({ baseUrl: server.url, token: server.token });
});

afterAll(async () => {
  try {
    await nb?.shutdown();
  } finally {
    await server?.stop();
  }
  expect(processesUnder(server.baseDir)).toEqual([]);
});

test("a sense-ts kernel discovers the server from JUPYTERHUB_* and launches a worker", async () => {
  nb = await openNotebook(server, "sense-ts");
  const r = await nb.run(
    [
      'const sense = require("sense-tslab");',
      "const ctx = sense.getContext();",
      'const [w] = await sense.launchWorkers(1, { engine: "python3", code: "import os; print(\'worker of\', os.environ[\'SENSE_MASTER_ID\'][:8])" });',
      "const done = await sense.awaitWorkers([w], { waitForCompletion: true, timeoutSeconds: 90 });",
      "console.log(JSON.stringify({ source: ctx.source, baseUrl: ctx.endpoint.baseUrl, failures: done.failures.length, out: sense.workerOutput(w.id), master: ctx.masterId.slice(0, 8) }));",
      "await sense.stopWorkers([w]);",
    ].join("\n"),
  );
  expect(r.status).toBe("ok");
  const line = r.stdout.trim().split("\n").pop() ?? "";
  const got = JSON.parse(line) as { source: string; baseUrl: string; failures: number; out: string; master: string };
  expect(got.source).toBe("jupyterhub");
  expect(got.baseUrl).toBe(server.url);
  expect(got.failures).toBe(0);
  expect(got.out).toBe(`worker of ${got.master}\n`);
  expect(r.text).not.toContain(server.token);
  await until("the worker's session is gone", async () => ((await rest.listSessions()).length === 1 ? true : undefined));
});

describe("a real JupyterHub", () => {
  let hub: LocalHub | undefined;
  let alice: HubUserServer;
  let hubNb: NotebookKernel | undefined;
  const figures: string[] = [];

  beforeAll(async () => {
    const t0 = Date.now();
    hub = await startLocalHub({ env: { SENSE_KEEPER_SCRIPT: buildWorkers().keeper } });
    figures.push(`JupyterHub + proxy up: ${Date.now() - t0} ms`);
    const t1 = Date.now();
    alice = await hub.startServer("alice");
    figures.push(`alice's single-user server spawned: ${Date.now() - t1} ms`);
  });

  afterAll(async () => {
    try {
      await hubNb?.close();
      if (hub) await hub.stopServer("alice").catch(() => undefined);
    } finally {
      const marker = hub?.baseDir;
      if (process.env.SENSE_HUB_TEST_LOGS) console.log(hub?.log().slice(-8000));
      await hub?.stop();
      if (marker) expect(processesUnder(marker)).toEqual([]);
      if (figures.length) console.log(figures.join("\n"));
    }
  });

  test("a sense-ts kernel in a hub-spawned server discovers it and authenticates from JUPYTERHUB_*, then launches, lists and stops workers", async () => {
    // the test reaches alice's server only through the hub's proxy, with a hub token
    expect(alice.url).toBe(`${hub!.url}user/alice/`);
    const t0 = Date.now();
    hubNb = await openNotebook(alice, "sense-ts");
    figures.push(`sense-ts kernel through the hub's proxy: ${Date.now() - t0} ms to ready`);
    const outside = new RestClient({ baseUrl: alice.url, token: alice.token });
    const r = await hubNb.run(
      [
        'const sense = require("sense-tslab");',
        "const ctx = sense.getContext();",
        "const auth = sense.getAuth();",
        'const ws = await sense.launchWorkers(2, { engine: "python3", env: { FOO: "from the hub" }, code: "import os; print(os.environ[\'FOO\'], os.environ[\'SENSE_MASTER_ID\'] == os.environ[\'MASTER\'])".replace("os.environ[\'MASTER\']", JSON.stringify(ctx.masterId)) });',
        "const done = await sense.awaitWorkers(ws, { waitForCompletion: true, timeoutSeconds: 90 });",
        'console.log("HUB " + JSON.stringify({ source: ctx.source, baseUrl: ctx.endpoint.baseUrl, authSource: auth.source, user: process.env.JUPYTERHUB_USER, failures: done.failures.length, out: ws.map((w) => sense.workerOutput(w.id)), listed: (await sense.listWorkers()).map((w) => w.name), ids: ws.map((w) => w.id) }));',
      ].join("\n"),
    );
    if (r.status !== "ok") throw new Error(allText(r.outputs));
    const line = r.stdout.split("\n").find((l) => l.startsWith("HUB ")) ?? "";
    const got = JSON.parse(line.slice(4)) as { source: string; baseUrl: string; authSource: string; user: string; failures: number; out: string[]; listed: string[]; ids: string[] };
    expect(got.source).toBe("jupyterhub");
    // the kernel talks to its own server directly (JUPYTERHUB_SERVICE_URL + prefix), not through the proxy
    expect(got.baseUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/user\/alice\/$/);
    expect(got.baseUrl).not.toBe(alice.url);
    expect(got.user).toBe("alice");
    expect(got.failures).toBe(0);
    expect(got.out).toEqual(["from the hub True\n", "from the hub True\n"]);
    expect(got.listed).toEqual(["w1", "w2"]);
    // the workers are sessions of alice's server, seen from outside through the proxy too
    const workers = (await outside.listSessions()).filter((s) => s.type === "sense-worker");
    expect(workers.map((s) => s.kernel?.id).sort()).toEqual([...got.ids].sort());
    const s = await hubNb.run('const stopped = await sense.stopWorkers();\nconsole.log("STOPPED " + stopped.map((w) => w.status).join(","));');
    expect(s.stdout).toContain("STOPPED stopped,stopped");
    expect((await outside.listSessions()).filter((x) => x.type === "sense-worker")).toEqual([]);
    expect(allText(r.outputs) + allText(s.outputs) + hub!.log()).not.toContain(hub!.token);
  });
});
