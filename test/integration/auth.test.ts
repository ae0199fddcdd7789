import axios from "axios";
import { getAuth } from "../../src/platform/auth";
import { discover } from "../../src/jupyter/context";
import { RestError } from "../../src/errors";
import { RestClient } from "../../src/jupyter/rest";
import { JupyterServer, startJupyterServer } from "../helpers/jupyter";

// An empty proc root keeps discovery from finding a kernel the test runner might run under.
const noKernel = { procRoot: "/nonexistent", pid: 1 };

describe("getAuth against a real Jupyter Server", () => {
  let server: JupyterServer;
  beforeAll(async () => {
    server = await startJupyterServer();
  });
  afterAll(async () => {
    await server?.stop();
  });

  it("its headers make a plain axios REST call succeed", async () => {
    const auth = getAuth({ env: { SENSE_API_URL: server.url, SENSE_API_TOKEN: server.token }, discover: noKernel });
    expect(auth.baseUrl).toBe(server.url);
    const res = await axios.get(auth.baseUrl + "api/sessions", { headers: auth.headers, proxy: false });
    expect(res.status).toBe(200);
    expect(res.data).toEqual([]);
  });

  it("a discovered context's token works the same way, and through its REST client", async () => {
    const ctx = discover({ baseUrl: server.url, token: server.token, ...noKernel, env: {} });
    const auth = getAuth({ context: ctx, env: {} });
    const res = await axios.get(auth.baseUrl + "api/status", { headers: auth.headers, proxy: false });
    expect(res.status).toBe(200);
    await expect(ctx.rest.listKernels()).resolves.toEqual([]);
  });

  it("a wrong token is refused: HTTP 403 for axios, RestError unauthorized for the client", async () => {
    const wrong = "wrong-token-0000000000";
    const auth = getAuth({ env: { SENSE_API_URL: server.url, SENSE_API_TOKEN: wrong }, discover: noKernel });
    const res = await axios.get(auth.baseUrl + "api/sessions", { headers: auth.headers, proxy: false, validateStatus: () => true });
    expect(res.status).toBe(403);
    const rest = new RestClient({ baseUrl: auth.baseUrl, token: auth.user });
    let caught: unknown;
    try {
      await rest.listSessions();
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(RestError);
    expect((caught as RestError).code).toBe("unauthorized");
    expect((caught as RestError).message).not.toContain(wrong);
    expect((caught as RestError).message).not.toContain(server.token);
  });

  it("no token at all is refused too", async () => {
    const rest = new RestClient({ baseUrl: server.url, token: "" });
    await expect(rest.listSessions()).rejects.toMatchObject({ code: "unauthorized" });
  });
});
