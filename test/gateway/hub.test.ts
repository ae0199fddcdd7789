/**
 * Inside a JupyterHub single-user server, with the environment a hub gives it. No JupyterHub runs
 * here (not in the project's environments), so the server is a plain Jupyter Server started with
 * the variables JupyterHub's Spawner.get_env sets (JUPYTERHUB_SERVICE_URL, _SERVICE_PREFIX,
 * _API_TOKEN = the token the server accepts, _USER, _API_URL ...). Its kernels inherit them, as in a
 * hub; a sense-ts kernel then discovers the server from them and launches a worker.
 */
import { randomBytes } from "node:crypto";
import { freePort, JupyterServer, processesUnder, startJupyterServer } from "../helpers/jupyter";
import { NotebookKernel, openNotebook } from "../helpers/kernel";
import { RestClient } from "../../src/rest";

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
