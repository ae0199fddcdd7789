import { processesUnder, startJupyterServer, JupyterServer } from "../helpers/jupyter";
import { openNotebook } from "../helpers/kernel";
import { RestClient } from "../../src/jupyter/rest";

describe("test harness", () => {
  let server: JupyterServer;
  beforeAll(async () => {
    server = await startJupyterServer();
  });
  afterAll(async () => {
    await server?.stop();
  });

  it("runs a real Python kernel and leaves nothing behind", async () => {
    const nb = await openNotebook(server, "python3");
    const r = await nb.run("print(6 * 7)");
    expect(r.status).toBe("ok");
    expect(r.stdout).toBe("42\n");
    const rest = new RestClient({ baseUrl: server.url, token: server.token });
    expect((await rest.listKernels()).map((k) => k.id)).toContain(nb.kernelId);
    await nb.shutdown();
    expect(await rest.listKernels()).toEqual([]);
    expect(processesUnder(server.baseDir).filter((p) => p !== server.pid)).toEqual([]);
  });
});
