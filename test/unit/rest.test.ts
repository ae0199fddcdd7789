/**
 * The REST client. What it sends is checked against the fake Jupyter Server (test/support);
 * every error path is played with nock (the HTTP layer intercepted, no socket opened), and no
 * error may show the token.
 */
import nock from "nock";
import { RestError } from "../../src/errors";
import { RestClient, isRestError, normalizeBaseUrl } from "../../src/jupyter/rest";
import { FakeJupyter, startFakeJupyter } from "../support/fake-jupyter";

const PREFIX = "/user/alice/";
const TOKEN = "tok-5e3a9c1f7b2d4e6a8c0b";

/** Runs `fn`, expects a RestError, and checks the token shows up nowhere in it. */
async function restError(fn: () => Promise<unknown>): Promise<RestError> {
  let caught: unknown;
  try {
    await fn();
  } catch (e) {
    caught = e;
  }
  expect(isRestError(caught)).toBe(true);
  const err = caught as RestError;
  const everything = [err.message, err.url, String(err.stack), JSON.stringify(err.details), String(err.cause), JSON.stringify(err)].join("\n");
  expect(everything).not.toContain(TOKEN);
  return err;
}

describe("RestClient requests (fake Jupyter Server)", () => {
  let fake: FakeJupyter;
  let client: RestClient;
  let BASE = "";
  beforeAll(async () => {
    fake = await startFakeJupyter({ prefix: PREFIX });
    BASE = fake.baseUrl;
  });
  afterAll(() => fake.close());
  beforeEach(() => {
    fake.seen.length = 0;
    fake.handler = () => undefined;
    client = new RestClient({ baseUrl: BASE.replace(/\/$/, ""), token: TOKEN }, { timeoutMs: 5_000 });
  });

  it("sends the token as an Authorization header and validates the answer", async () => {
    fake.handler = (r) => (r.method === "GET" && r.url === `${PREFIX}api/kernels` ? { status: 200, body: [{ id: "k1", name: "python3", execution_state: "idle", extra: 1 }] } : undefined);
    const kernels = await client.listKernels();
    expect(kernels).toEqual([{ id: "k1", name: "python3", execution_state: "idle", extra: 1 }]);
    expect(fake.seen.map((r) => ({ method: r.method, url: r.url, authorization: r.authorization, body: r.text }))).toEqual([{ method: "GET", url: `${PREFIX}api/kernels`, authorization: `token ${TOKEN}`, body: "" }]);
  });

  it("sends JSON bodies", async () => {
    fake.handler = (r) => (r.method === "POST" ? { status: 201, body: { id: "s1", path: "a", name: "n", type: "t", kernel: { id: "k1", name: "python3" } } } : undefined);
    const s = await client.createSession({ path: "a", type: "t", name: "n", kernel: { name: "python3" } });
    expect(s.id).toBe("s1");
    expect(fake.seen[0].body).toEqual({ path: "a", type: "t", name: "n", kernel: { name: "python3" } });
  });

  it("sends no Authorization header without a token", async () => {
    fake.handler = (r) => (r.url === `${PREFIX}api` ? { status: 200, body: { version: "2.21.0" } } : undefined);
    const open = new RestClient({ baseUrl: BASE, token: "" });
    await expect(open.version()).resolves.toEqual({ version: "2.21.0" });
    expect(fake.seen[0].authorization).toBeUndefined();
  });

  it("normalises base URLs to one trailing slash", () => {
    expect(normalizeBaseUrl("http://h:1/x///")).toBe("http://h:1/x/");
    expect(normalizeBaseUrl("http://h:1")).toBe("http://h:1/");
    expect(client.endpoint.baseUrl).toBe(BASE);
  });
});

describe("RestClient error paths (nock)", () => {
  const ORIGIN = "http://127.0.0.1:18888";
  const BASE = `${ORIGIN}${PREFIX}`;
  let client: RestClient;
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
    client = new RestClient({ baseUrl: BASE, token: TOKEN }, { timeoutMs: 5_000 });
    server = nock(ORIGIN, { reqheaders: { authorization: `token ${TOKEN}` } });
  });
  afterEach(() => {
    // every reply a test set up was asked for, and nothing more
    expect(server.pendingMocks()).toEqual([]);
    nock.cleanAll();
  });

  it("unreachable: the connection is refused", async () => {
    server.get(`${PREFIX}api/sessions`).replyWithError(Object.assign(new Error(`connect ECONNREFUSED 127.0.0.1:18888 ${TOKEN}`), { code: "ECONNREFUSED" }));
    const err = await restError(() => client.listSessions());
    expect(err.code).toBe("unreachable");
    expect(err.status).toBeUndefined();
    expect(err.url).toBe(`${BASE}api/sessions`);
    expect(err.message).toMatch(/did not answer GET .*ECONNREFUSED/);
  });

  it.each([401, 403])("unauthorized: HTTP %i", async (status) => {
    server.get(`${PREFIX}api/sessions`).reply(status, { message: `Forbidden ${TOKEN}` });
    const err = await restError(() => client.listSessions());
    expect(err.code).toBe("unauthorized");
    expect(err.status).toBe(status);
    expect(err.message).toMatch(/SENSE_API_TOKEN/);
  });

  it("unauthorized: a redirect to a login page", async () => {
    server.get(`${PREFIX}api/sessions`).reply(302, "", { Location: `/hub/login?next=x&token=${TOKEN}` });
    const err = await restError(() => client.listSessions());
    expect(err.code).toBe("unauthorized");
    expect(err.status).toBe(302);
  });

  it("not_found: HTTP 404", async () => {
    server.get(`${PREFIX}api/kernels/nope`).reply(404, { message: "Kernel does not exist: nope" });
    const err = await restError(() => client.getKernel("nope"));
    expect(err.code).toBe("not_found");
    expect(err.status).toBe(404);
    expect(err.method).toBe("GET");
    expect(err.url).toBe(`${BASE}api/kernels/nope`);
  });

  it("bad_response: JSON of the wrong shape", async () => {
    server.get(`${PREFIX}api/sessions`).reply(200, [{ id: 7, path: null }]);
    const err = await restError(() => client.listSessions());
    expect(err.code).toBe("bad_response");
    expect(err.status).toBeUndefined();
    expect(err.message).toMatch(/not a valid Jupyter response/);
  });

  it("bad_response: HTML instead of JSON", async () => {
    server.get(`${PREFIX}api/kernelspecs`).reply(200, "<html>login</html>", { "Content-Type": "text/html" });
    const err = await restError(() => client.kernelspecs());
    expect(err.code).toBe("bad_response");
  });

  it("http_error: HTTP 500, with the server's message and the token removed from it", async () => {
    server.post(`${PREFIX}api/sessions`).reply(500, { message: `boom near ?token=${TOKEN}` });
    const err = await restError(() => client.createSession({ path: "a", type: "t", name: "n", kernel: { name: "python3" } }));
    expect(err.code).toBe("http_error");
    expect(err.status).toBe(500);
    expect(err.method).toBe("POST");
    expect(err.message).toMatch(/HTTP 500: boom/);
  });

  it("retries a GET answered with HTTP 500 (a kernel still starting), never a POST", async () => {
    const ok = [{ id: "k1", name: "python3", execution_state: "idle" }];
    server.get(`${PREFIX}api/kernels`).times(2).reply(500, { message: "Unhandled error" });
    server.get(`${PREFIX}api/kernels`).reply(200, ok);
    expect(await client.listKernels()).toEqual(ok);

    // three 500s in a row: the GET gives up with the last answer
    server.get(`${PREFIX}api/kernels`).times(3).reply(500, { message: "Unhandled error" });
    expect(await restError(() => client.listKernels())).toMatchObject({ code: "http_error", status: 500 });

    // a POST is sent once (a retried create would start a second kernel)
    server.post(`${PREFIX}api/sessions`).once().reply(500, {});
    await restError(() => client.createSession({ path: "a", type: "t", name: "n", kernel: { name: "python3" } }));
  });

  it("never shows a token that was passed in the path's query", async () => {
    // a GET answered 500 is asked three times (see the retry test)
    server.get(`${PREFIX}api/status`).query({ token: TOKEN }).times(3).reply(500, {});
    const err = await restError(() => client.raw("get", `api/status?token=${TOKEN}`));
    expect(err.code).toBe("http_error");
    expect(err.url).toBe(`${BASE}api/status?token=***`);
  });

  it("a request's own timeout: POST /api/sessions waits as long as its caller's start deadline, others the client's; a timeout says how long it waited", async () => {
    const quick = new RestClient({ baseUrl: BASE, token: TOKEN }, { timeoutMs: 100 });
    const body = { id: "s1", path: "a", name: "n", type: "t", kernel: { id: "k1", name: "python3" } };
    // a server behind a gateway answers the create once the kernel's container runs
    server.post(`${PREFIX}api/sessions`).delay(400).reply(201, body);
    await expect(quick.createSession({ path: "a", type: "t", name: "n", kernel: { name: "python3" } }, { timeoutMs: 5_000 })).resolves.toMatchObject({ id: "s1" });
    server.post(`${PREFIX}api/sessions`).delay(400).reply(201, body);
    const late = await restError(() => quick.createSession({ path: "a", type: "t", name: "n", kernel: { name: "python3" } }));
    expect(late.code).toBe("unreachable");
    expect(late.message).toBe(`The Jupyter Server at ${BASE} gave no answer to POST ${BASE}api/sessions within 0.1 s (ECONNABORTED).`);
    server.get(`${PREFIX}api/sessions`).delay(400).reply(200, []);
    expect((await restError(() => quick.listSessions())).message).toMatch(/gave no answer to GET .* within 0\.1 s/);
  });

  it("returns nothing for 204", async () => {
    server.delete(`${PREFIX}api/sessions/s1`).twice().reply(204);
    await expect(client.deleteSession("s1")).resolves.toBeUndefined();
    await expect(client.raw("delete", "api/sessions/s1")).resolves.toBeNull();
  });
});
