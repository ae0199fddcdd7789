/**
 * `sense_cluster_request` on a real Sense master kernel's control channel (issue #26, the
 * JupyterLab panel's failed workers and actions): a kernel that never used workers lists none
 * without loading them; a malformed request is refused; a worker whose kernel was SIGKILLed is
 * listed failed with its reason though its session is gone; restart brings it back in place while
 * the control channel keeps answering (a usage request is answered before the restart's reply).
 */
import type { Kernel, KernelMessage } from "@jupyterlab/services";
import { JupyterServer, processesUnder, startJupyterServer } from "../helpers/jupyter";
import { NotebookKernel, openNotebook } from "../helpers/kernel";
import { until } from "../helpers/util";
import { RestClient } from "../../src/jupyter/rest";
import { CLUSTER_REQUEST, clusterReply, controlRequestMessage, type ClusterReply } from "../../src/protocol/control";
import { requestUsage } from "../../src/backends/jupyter/usage";
import { decodeWorkerTag } from "../../src/workers/session-tags";
import { kernelPid } from "../reliability/support";

let server: JupyterServer;
let rest: RestClient;
let nb: NotebookKernel | undefined;

beforeAll(async () => {
  server = await startJupyterServer();
  rest = new RestClient({ baseUrl: server.url, token: server.token });
});

afterAll(async () => {
  await nb?.shutdown();
  const marker = server?.baseDir;
  await server?.stop();
  if (marker) expect(processesUnder(marker)).toEqual([]);
});

/** Sends a `sense_cluster_request` on `conn`'s control channel and reads the reply (throws after `timeoutMs`). */
function ask(conn: Kernel.IKernelConnection, content: Record<string, unknown>, timeoutMs = 120_000): Promise<ClusterReply> {
  return new Promise((resolve, reject) => {
    const msg = controlRequestMessage(CLUSTER_REQUEST, content, conn.clientId, conn.username) as unknown as KernelMessage.IControlMessage;
    const future = conn.sendControlMessage(msg, true, false);
    future.done.catch(() => undefined);
    const timer = setTimeout(() => {
      future.dispose();
      reject(new Error(`no sense_cluster_reply within ${timeoutMs} ms`));
    }, timeoutMs);
    future.onReply = (reply) => {
      clearTimeout(timer);
      future.dispose();
      resolve(clusterReply(reply.content));
    };
  });
}

it("lists, refuses, shows a SIGKILLed worker failed with its reason, and restarts it without holding the control channel", async () => {
  nb = await openNotebook(server, "sense-js");
  const conn = nb.session.kernel!;
  // A kernel whose cells never used workers: none, and the workers modules stay unloaded.
  expect(await ask(conn, { action: "list" })).toEqual({ status: "ok", workers: [] });
  expect((await nb.run('Object.keys(require.cache).some((k) => k.endsWith("/dist/src/workers/api.js"))')).result).toBe("false");
  for (const bad of [{ action: "exec", code: "process.exit(1)" }, { action: "restart", workers: ["w1; rm -rf /"] }, { action: "stop" }]) {
    expect(await ask(conn, bad)).toMatchObject({ status: "error", code: "bad_option" });
  }

  const launched = await nb.run('const sense = require("sense-tslab");\nawait sense.awaitWorkers(await sense.launchWorkers(2, { engine: "sense-fast" }));');
  expect(launched.status).toBe("ok");
  const mine = async () => (await rest.listSessions()).filter((s) => decodeWorkerTag(s.name)?.masterId === nb!.kernelId);
  const w2 = (await mine()).find((s) => decodeWorkerTag(s.name)?.index === 2);
  const killed = w2?.kernel?.id;
  if (!killed) throw new Error("no w2");
  process.kill(kernelPid(killed), "SIGKILL");

  // Failed, with its reason, its session deleted: only the master's answer says so.
  const failed = await until("w2 listed failed, its session gone", async () => {
    const r = await ask(conn, { action: "list" });
    return r.status === "ok" && r.workers.length === 1 && !(await mine()).some((s) => s.kernel?.id === killed) ? r : undefined;
  }, 60_000, 250);
  expect(failed).toEqual({
    status: "ok",
    workers: [{ name: "w2", kernelId: killed, engine: "sense-fast", size: "small", status: "failed", reason: expect.stringMatching(/its kernel process exited and was restarted by the server/), startedAtMs: expect.any(Number), restartable: true }],
  });
  expect(await ask(conn, { action: "restart", workers: ["w9"] })).toMatchObject({ status: "error", code: "unknown_worker" });

  // Restart; meanwhile the control channel answers a usage request before the restart is done.
  let restarted = false;
  const restart = ask(conn, { action: "restart", workers: ["w2"] }).then((r) => ((restarted = true), r));
  const usage = await requestUsage(conn, 10_000);
  expect(usage?.pid).toEqual(expect.any(Number));
  expect(restarted).toBe(false);
  expect(await restart).toMatchObject({ status: "ok", workers: [{ name: "w2", status: expect.stringMatching(/^(running|idle)$/) }] });
  expect(await ask(conn, { action: "list" })).toEqual({ status: "ok", workers: [] });
  const fresh = await until("w2's fresh session tagged idle", async () => (await mine()).find((s) => decodeWorkerTag(s.name)?.index === 2 && decodeWorkerTag(s.name)?.status === "idle"), 30_000, 250);
  expect(fresh.kernel?.id).not.toBe(killed);
}, 240_000);
