import * as net from "node:net";
import * as http from "node:http";
import { RestError } from "../../src/errors";
import { RestClient, isRestError, normalizeBaseUrl } from "../../src/rest";

// A real loopback HTTP server stands in for Jupyter. (nock 15 is ESM only and cannot be loaded
// by Jest 30's CommonJS runtime on Node 20; see the core issue note.)
interface Reply {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}
interface Seen {
  method: string;
  url: string;
  authorization?: string;
  body: string;
}
let replies = new Map<string, Reply>();
const seen: Seen[] = [];
let server: http.Server;
let BASE = "";
const PREFIX = "/user/alice/";
const TOKEN = "tok-5e3a9c1f7b2d4e6a8c0b";

function route(method: string, path: string, reply: Reply): void {
  replies.set(`${method} ${PREFIX}${path}`, reply);
}

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

/** A loopback port nothing listens on. */
function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address() as net.AddressInfo;
      srv.close(() => resolve(addr.port));
    });
  });
}

describe("RestClient", () => {
  let client: RestClient;
  beforeAll(async () => {
    server = http.createServer((req, res) => {
      let body = "";
      req.on("data", (c: Buffer) => (body += c.toString()));
      req.on("end", () => {
        const path = (req.url ?? "").split("?")[0];
        seen.push({ method: req.method ?? "", url: req.url ?? "", authorization: req.headers.authorization, body });
        const reply = replies.get(`${req.method} ${path}`);
        if (!reply) {
          res.writeHead(599).end();
          return;
        }
        const text = reply.body === undefined ? "" : typeof reply.body === "string" ? reply.body : JSON.stringify(reply.body);
        res.writeHead(reply.status, { "Content-Type": "application/json", ...reply.headers }).end(text);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    BASE = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}${PREFIX}`;
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  beforeEach(() => {
    replies = new Map();
    seen.length = 0;
    client = new RestClient({ baseUrl: BASE.replace(/\/$/, ""), token: TOKEN }, { timeoutMs: 5_000 });
  });

  it("sends the token as an Authorization header and validates the answer", async () => {
    route("GET", "api/kernels", { status: 200, body: [{ id: "k1", name: "python3", execution_state: "idle", extra: 1 }] });
    const kernels = await client.listKernels();
    expect(kernels).toEqual([{ id: "k1", name: "python3", execution_state: "idle", extra: 1 }]);
    expect(seen).toEqual([{ method: "GET", url: `${PREFIX}api/kernels`, authorization: `token ${TOKEN}`, body: "" }]);
  });

  it("sends JSON bodies", async () => {
    route("POST", "api/sessions", { status: 201, body: { id: "s1", path: "a", name: "n", type: "t", kernel: { id: "k1", name: "python3" } } });
    const s = await client.createSession({ path: "a", type: "t", name: "n", kernel: { name: "python3" } });
    expect(s.id).toBe("s1");
    expect(JSON.parse(seen[0].body)).toEqual({ path: "a", type: "t", name: "n", kernel: { name: "python3" } });
  });

  it("sends no Authorization header without a token", async () => {
    route("GET", "api", { status: 200, body: { version: "2.21.0" } });
    const open = new RestClient({ baseUrl: BASE, token: "" });
    await expect(open.version()).resolves.toEqual({ version: "2.21.0" });
    expect(seen[0].authorization).toBeUndefined();
  });

  it("normalises base URLs to one trailing slash", () => {
    expect(normalizeBaseUrl("http://h:1/x///")).toBe("http://h:1/x/");
    expect(normalizeBaseUrl("http://h:1")).toBe("http://h:1/");
    expect(client.endpoint.baseUrl).toBe(BASE);
  });

  it("unreachable: nothing listens on the port", async () => {
    const port = await closedPort();
    const c = new RestClient({ baseUrl: `http://127.0.0.1:${port}/`, token: TOKEN }, { timeoutMs: 5_000 });
    const err = await restError(() => c.listSessions());
    expect(err.code).toBe("unreachable");
    expect(err.status).toBeUndefined();
    expect(err.url).toBe(`http://127.0.0.1:${port}/api/sessions`);
    expect(err.message).toMatch(/did not answer GET .*ECONNREFUSED/);
  });

  it.each([401, 403])("unauthorized: HTTP %i", async (status) => {
    route("GET", "api/sessions", { status, body: { message: `Forbidden ${TOKEN}` } });
    const err = await restError(() => client.listSessions());
    expect(err.code).toBe("unauthorized");
    expect(err.status).toBe(status);
    expect(err.message).toMatch(/SENSE_API_TOKEN/);
  });

  it("unauthorized: a redirect to a login page", async () => {
    route("GET", "api/sessions", { status: 302, headers: { Location: `/hub/login?next=x&token=${TOKEN}` } });
    const err = await restError(() => client.listSessions());
    expect(err.code).toBe("unauthorized");
    expect(err.status).toBe(302);
  });

  it("not_found: HTTP 404", async () => {
    route("GET", "api/kernels/nope", { status: 404, body: { message: "Kernel does not exist: nope" } });
    const err = await restError(() => client.getKernel("nope"));
    expect(err.code).toBe("not_found");
    expect(err.status).toBe(404);
    expect(err.method).toBe("GET");
    expect(err.url).toBe(`${BASE}api/kernels/nope`);
  });

  it("bad_response: JSON of the wrong shape", async () => {
    route("GET", "api/sessions", { status: 200, body: [{ id: 7, path: null }] });
    const err = await restError(() => client.listSessions());
    expect(err.code).toBe("bad_response");
    expect(err.status).toBeUndefined();
    expect(err.message).toMatch(/not a valid Jupyter response/);
  });

  it("bad_response: HTML instead of JSON", async () => {
    route("GET", "api/kernelspecs", { status: 200, body: "<html>login</html>", headers: { "Content-Type": "text/html" } });
    const err = await restError(() => client.kernelspecs());
    expect(err.code).toBe("bad_response");
  });

  it("http_error: HTTP 500, with the server's message and the token removed from it", async () => {
    route("POST", "api/sessions", { status: 500, body: { message: `boom near ?token=${TOKEN}` } });
    const err = await restError(() => client.createSession({ path: "a", type: "t", name: "n", kernel: { name: "python3" } }));
    expect(err.code).toBe("http_error");
    expect(err.status).toBe(500);
    expect(err.method).toBe("POST");
    expect(err.message).toMatch(/HTTP 500: boom/);
  });

  it("retries a GET answered with HTTP 500 (a kernel still starting), never a POST", async () => {
    /** Answers `key` with `list` in turn (the last one from then on). */
    const sequence = (key: string, list: Reply[]) => {
      let i = 0;
      const original = replies.get.bind(replies);
      replies.get = (k: string) => (k === key ? list[Math.min(i++, list.length - 1)] : original(k));
    };
    const busy: Reply = { status: 500, body: { message: "Unhandled error" } };
    const ok = [{ id: "k1", name: "python3", execution_state: "idle" }];
    sequence(`GET ${PREFIX}api/kernels`, [busy, busy, { status: 200, body: ok }]);
    expect(await client.listKernels()).toEqual(ok);
    expect(seen).toHaveLength(3);

    seen.length = 0;
    sequence(`GET ${PREFIX}api/kernels`, [busy]);
    expect(await restError(() => client.listKernels())).toMatchObject({ code: "http_error", status: 500 });
    expect(seen).toHaveLength(3);

    seen.length = 0;
    route("POST", "api/sessions", { status: 500, body: {} });
    await restError(() => client.createSession({ path: "a", type: "t", name: "n", kernel: { name: "python3" } }));
    expect(seen).toHaveLength(1);
  });

  it("never shows a token that was passed in the path's query", async () => {
    route("GET", "api/status", { status: 500, body: {} });
    const err = await restError(() => client.raw("get", `api/status?token=${TOKEN}`));
    expect(err.code).toBe("http_error");
    expect(err.url).toBe(`${BASE}api/status?token=***`);
  });

  it("returns nothing for 204", async () => {
    route("DELETE", "api/sessions/s1", { status: 204 });
    await expect(client.deleteSession("s1")).resolves.toBeUndefined();
    await expect(client.raw("delete", "api/sessions/s1")).resolves.toBeNull();
  });
});
