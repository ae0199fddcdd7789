/**
 * A worker whose session someone else deletes (the Sense panel's Stop, JupyterLab's Running
 * panel, a REST call) is recorded `stopped` by its master within seconds, so the notebook's live
 * table says so: the kernel's websocket stays open and quiet, so the master watches for the
 * kernel's `shutdown_reply` and then for the session to go (src/workers/worker.ts).
 */
import type { JupyterServer } from "../helpers/jupyter";
import { NotebookKernel } from "../helpers/kernel";
import { notebookMachine } from "../helpers/notebook-machine";
import { RestClient } from "../../src/jupyter/rest";

let server: JupyterServer;
let nb: NotebookKernel;

notebookMachine("sense-js", async (n, s) => {
  nb = n;
  server = s;
});

it("a worker whose session was deleted through the REST API becomes stopped in its master", async () => {
  const launched = await nb.run(
    'const sense = require("sense-tslab");\n' +
      'const [w] = await sense.launchWorkers(1, { engine: "sense-fast" });\n' +
      "await sense.awaitWorkers([w]);\n" +
      // Resolves with the first final status the master records for the worker.
      'globalThis.ended = new Promise((resolve) => { const off = sense.onWorkerStatus((r) => { if (r.id === w.id && (r.status === "stopped" || r.status === "failed")) { off(); resolve(r.status); } }); });\n' +
      "w.sessionId",
  );
  expect(launched.status).toBe("ok");
  const sessionId = (launched.result ?? "").replace(/^'|'$/g, "");
  const rest = new RestClient({ baseUrl: server.url, token: server.token });
  await rest.deleteSession(sessionId);
  const ended = await nb.run('await Promise.race([globalThis.ended, new Promise((r) => setTimeout(() => r("still idle after 30 s"), 30_000))])');
  expect(ended.result).toBe("'stopped'");
});
