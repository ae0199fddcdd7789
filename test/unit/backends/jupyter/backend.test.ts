/**
 * REST error paths of the Jupyter Server backend as a Cluster meets them, played with nock: a
 * session create refused mid-launch (the launch fails whole, what it started is deleted), a
 * session already gone at stop (fine), a server gone at stop (a clear error), a master kernel
 * the server no longer knows (its engine is not needed). The kernel side is a fake connection.
 */
import { serverRest } from "../../../../src/jupyter/context-input";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { Kernel } from "@jupyterlab/services";
import nock from "nock";
import type { OutputSink } from "../../../../src/display/sink";
import { Cluster, JupyterServerBackend, WorkerContextInput } from "../../../../src/workers";

const ORIGIN = "http://127.0.0.1:18889";
const TOKEN = "nock-token-3f1e";
const sink: OutputSink = { stdout: () => undefined, stderr: () => undefined, display: () => undefined };
const specs = { default: "python3", kernelspecs: { python3: { name: "python3", spec: { display_name: "Python 3", language: "python" } } } };

/** A connection that answers kernel_info and every execute with `ok`, and deletes the env file the preamble names. */
function fakeConnector() {
  return () => {
    const noop = { connect: () => true, disconnect: () => true };
    let n = 0;
    return {
      info: Promise.resolve({}),
      iopubMessage: noop,
      statusChanged: noop,
      dispose: () => undefined,
      requestExecute: (content: { code: string }) => {
        const m = /p = ("[^"]+")/.exec(content.code);
        if (m) fs.rmSync(JSON.parse(m[1]) as string, { force: true });
        return { msg: { header: { msg_id: `m${n++}` } }, done: Promise.resolve({ content: { status: "ok" } }) };
      },
    } as unknown as Kernel.IKernelConnection;
  };
}

const session = (i: number, body: { path: string; name: string; type: string }) => ({ id: `s${i}`, path: body.path, name: body.name, type: body.type, kernel: { id: `k${i}`, name: "python3" } });

describe("Jupyter Server backend error paths (nock)", () => {
  let home: string;
  let context: WorkerContextInput;
  let cluster: Cluster;
  let server: nock.Scope;
  beforeAll(() => {
    if (!nock.isActive()) nock.activate();
    nock.disableNetConnect();
  });
  afterAll(() => {
    nock.cleanAll();
    nock.enableNetConnect();
    // Unpatch Node's http: Jest runs later test files in this process (real sockets, websockets).
    nock.restore();
  });
  beforeEach(() => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), "sense-nock-"));
    context = { endpoint: { baseUrl: `${ORIGIN}/`, token: TOKEN }, projectHome: home, dashboardId: "process-2-nock", masterId: "process-2-nock" };
    cluster = new Cluster({ backend: (ctx) => new JupyterServerBackend(serverRest(ctx), { connect: fakeConnector() }), hooks: { onShutdown: () => () => undefined, installProcessHooks: () => undefined } });
    server = nock(ORIGIN, { reqheaders: { authorization: `token ${TOKEN}` } });
  });
  afterEach(() => {
    expect(server.pendingMocks()).toEqual([]);
    nock.cleanAll();
    fs.rmSync(home, { recursive: true, force: true });
  });

  it("a session create refused with HTTP 500 fails the launch with http_error and deletes what started", async () => {
    server.get("/api/kernelspecs").reply(200, specs);
    // The launch's own listing, then each started worker's check that its name is unique.
    server.get("/api/sessions").twice().reply(200, []);
    let posts = 0;
    server
      .post("/api/sessions")
      .twice()
      .reply((_uri, body) => (++posts === 2 ? [500, { message: "no room" }] : [201, session(1, body as { path: string; name: string; type: string })]));
    server.patch("/api/sessions/s1").reply(200, (_uri, body) => ({ ...session(1, { path: "p", name: "n", type: "sense-worker" }), ...(body as object) }));
    const deleted = server.delete("/api/sessions/s1").reply(204);
    await expect(cluster.launch({ n: 2, engine: "python3", keeper: false, sink, context })).rejects.toMatchObject({ code: "http_error", status: 500 });
    expect(deleted.isDone()).toBe(true);
  });

  it("stop: a session already gone (404) counts as stopped; a server gone is a RestError unreachable", async () => {
    server.get("/api/kernelspecs").reply(200, specs);
    // The plan's listing and one listing shared by both workers' name claims.
    server.get("/api/sessions").twice().reply(200, []);
    server.post("/api/sessions").twice().reply(201, (_uri, body) => session(Number((body as { name: string }).name.split(":")[2]), body as { path: string; name: string; type: string }));
    server.patch(/\/api\/sessions\/s\d/).twice().reply(200, (uri, body) => ({ ...session(Number(uri.slice(-1)), { path: "p", name: "n", type: "sense-worker" }), ...(body as object) }));
    const [w1, w2] = await cluster.launch({ n: 2, engine: "python3", keeper: false, sink, context });

    server.get("/api/sessions").reply(200, [session(1, { path: w1.path, name: `sense:process-2-nock:1:small:1:idle`, type: "sense-worker" })]);
    server.delete("/api/sessions/s1").reply(404, { message: "Session not found" });
    await expect(cluster.stop(["w1"], { context })).resolves.toEqual([expect.objectContaining({ id: w1.id, status: "stopped" })]);

    server.get("/api/sessions").reply(200, [session(2, { path: w2.path, name: `sense:process-2-nock:2:small:1:idle`, type: "sense-worker" })]);
    server.delete("/api/sessions/s2").replyWithError(Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }));
    await expect(cluster.stop(["w2"], { context })).rejects.toMatchObject({ code: "unreachable" });
    // Its handle (and record) stays; its channel is closed, not left reconnecting to the server (Worker.serverGone).
    expect(cluster.worker("w2").channel).toBeUndefined();
  });

  it("a master kernel the server answers 404 for: the launch goes on with the engine asked for", async () => {
    server.get("/api/kernelspecs").reply(200, specs);
    server.get("/api/kernels/gone-kernel").reply(404, { message: "Kernel does not exist" });
    server.get("/api/sessions").twice().reply(200, []);
    server.post("/api/sessions").reply(201, (_uri, body) => session(1, body as { path: string; name: string; type: string }));
    server.patch("/api/sessions/s1").reply(200, (_uri, body) => ({ ...session(1, { path: "p", name: "n", type: "sense-worker" }), ...(body as object) }));
    const [w] = await cluster.launch({ n: 1, engine: "python3", keeper: false, sink, context: { ...context, kernelId: "gone-kernel", dashboardId: "gone-kernel", masterId: "gone-kernel" } });
    expect(w).toMatchObject({ engine: "python3", status: "idle", masterId: "gone-kernel" });
  });
});
