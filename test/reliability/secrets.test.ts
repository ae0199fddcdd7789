/**
 * Secrets: with a token, a REST password and an SSH password in the kernels' environment, every
 * display, error, log line, session name and notebook output this file produces is scanned for
 * them; HTML tables escape worker names and values (`<script>` shows as text).
 */
import { JupyterServer, startJupyterServer } from "../helpers/jupyter";
import { NotebookKernel, openNotebook } from "../helpers/kernel";
import { RestClient } from "../../src/jupyter/rest";
import { renderWorkers } from "../../src/display/tables";
import type { WorkerRecord } from "../../src/jupyter/schemas";
import { FAST_ENGINE, Figures, SecretScan, until } from "./support";

const figures = new Figures("secrets");
const scan = new SecretScan();
const PASSWORD = "pw-Secret-7f3a9c2e";
const SSH_PASSWORD = "ssh-Secret-41b8d0aa";
let server: JupyterServer;
let rest: RestClient;
let nb: NotebookKernel | undefined;
let logStart = 0;

beforeAll(async () => {
  server = await startJupyterServer({ env: { SENSE_USERNAME: "alice", SENSE_PASSWORD: PASSWORD, SENSE_SSH_PASSWORD: SSH_PASSWORD, SENSE_SSH_PORT: "2222", SENSE_PUBLIC_SSH_PORT: "32222" } });
  logStart = server.log().length;
  rest = new RestClient({ baseUrl: server.url, token: server.token });
  nb = await openNotebook(server, "sense-ts", "secrets.ipynb");
});

afterAll(async () => {
  await nb?.shutdown();
  await server?.stop();
  figures.flush();
});

describe("secrets never shown", () => {
  const cells = [
    "%sense_auth",
    "%sense_network",
    'import * as sense from "sense-tslab";\nsense.getAuth()',
    "sense.getNetwork()",
    "sense.getContext()",
    "console.log(sense.getContext().endpoint)",
    "console.log(JSON.stringify(sense.getAuth()))",
    "console.log(String(sense.getAuth()), `${sense.getNetwork()}`)",
    "process.env.SENSE_PASSWORD === undefined",
    `%%sense_worker -n 2 --engine ${FAST_ENGINE}\nconsole.log("worker env has a token: " + (process.env.SENSE_API_TOKEN ? "yes" : "no"))`,
    "%sense_workers",
    "await sense.listWorkers()",
    "%sense_await --completion --timeout 60",
    "await sense.launchWorkers(1, { engine: 'no-such-kernel' })",
    "await new sense.RestClient({ baseUrl: sense.getContext().endpoint.baseUrl, token: 'wrong-' + sense.getContext().endpoint.token }).listKernels()",
    "%sense_stop",
  ];

  it.each(cells.map((c) => [c]))("%s", async (src) => {
    // "abort" = not run (the kernel still skips requests after the previous cell's error): send it again.
    const r = await until("the cell to run", () => nb!.run(src).then((x) => (x.status === "abort" ? undefined : x)), 30_000, 100);
    scan.addOutputs(`cell ${src.split("\n")[0]}`, r.outputs);
    expect(r.outputs.length).toBeGreaterThan(0);
    scan.add("session names", (await rest.listSessions()).map((s) => `${s.name} ${s.path}`));
  });

  it("appear in no output, error, session name or server log line", () => {
    // Jupyter's own start-up banner prints the token; everything after it is Sense's or the kernels'.
    scan.add("server log after start-up", server.log().slice(logStart));
    figures.add("texts scanned (outputs, errors, session names, server log)", `${scan.size} (${scan.chars} chars)`, "");
    const leaks = scan.leaks([server.token, PASSWORD, SSH_PASSWORD]);
    figures.add("secret occurrences found", leaks.length, "", "0");
    expect(leaks).toEqual([]);
  });
});

describe("HTML tables escape names and values", () => {
  it("shows <script> as text", () => {
    const evil = '<script>alert("x")</script>';
    const rec: WorkerRecord = {
      id: `id-${evil}`,
      name: evil,
      engine: `<img src=x onerror=alert(1)>`,
      size: "small",
      status: "failed",
      masterId: "m&m",
      startedAt: new Date(0).toISOString(),
      sessionId: "s",
      path: `p/${evil}`,
      index: 1,
      reason: `bad "quote" & <b>tag</b>`,
    };
    const bundle = renderWorkers([rec]);
    const html = String(bundle["text/html"]);
    expect(html).not.toContain("<script>");
    expect(html).not.toContain("<img");
    expect(html).not.toContain("<b>tag</b>");
    expect(html).toContain("&lt;script&gt;");
    expect(String(bundle["text/plain"])).toContain(evil);
  });
});
