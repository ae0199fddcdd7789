import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { JupyterServer, processesUnder, startJupyterServer } from "../helpers/jupyter";
import { NotebookKernel, openNotebook } from "../helpers/kernel";
import { DIST, ensureBuilt, pyRunNode } from "../helpers/util";

const sha = (s: string) => createHash("sha256").update(s).digest("hex");

/** Node code that prints what discover() and getAuth() found, with secrets replaced by hashes. */
const REPORT = `
const { discover } = require(${JSON.stringify(path.join(DIST, "jupyter", "context.js"))});
const { getAuth } = require(${JSON.stringify(path.join(DIST, "platform", "auth.js"))});
const sha = (s) => require("crypto").createHash("sha256").update(s).digest("hex");
const c = discover();
const a = getAuth({ context: c });
console.log("REPORT " + JSON.stringify({
  pid: process.pid, source: c.source, baseUrl: c.endpoint.baseUrl, tokenHash: sha(c.endpoint.token), tokenLength: c.endpoint.token.length,
  kernelId: c.kernelId, dashboardId: c.dashboardId, masterId: c.masterId, isWorker: c.isWorker, projectHome: c.projectHome,
  serverRootDir: c.serverRootDir, runtimeDir: c.runtimeDir, serverPid: c.serverPid,
  authSource: a.source, authHeaderHash: sha(a.headers.Authorization), printed: require("util").inspect(c) + JSON.stringify(c) + require("util").inspect(a),
}));
`;
// The same report from a grandchild of the kernel (kernel → node → node): discovery walks up.
const NESTED = `
const r = require("child_process").spawnSync(process.execPath, ["-e", ${JSON.stringify(REPORT)}], { encoding: "utf8" });
process.stdout.write(r.stdout); process.stderr.write(r.stderr);
`;

interface Report {
  source: string;
  baseUrl: string;
  tokenHash: string;
  tokenLength: number;
  kernelId?: string;
  dashboardId: string;
  masterId: string;
  isWorker: boolean;
  projectHome: string;
  serverRootDir?: string;
  runtimeDir?: string;
  serverPid?: number;
  authSource: string;
  authHeaderHash: string;
  printed: string;
}

function parseReport(stdout: string): Report {
  const line = stdout.split("\n").find((l) => l.startsWith("REPORT "));
  if (!line) throw new Error(`no report in kernel output:\n${stdout}`);
  return JSON.parse(line.slice("REPORT ".length)) as Report;
}

describe("discovery from inside a real kernel", () => {
  let server: JupyterServer;
  let nb: NotebookKernel | undefined;
  beforeAll(async () => {
    ensureBuilt(["jupyter/context", "platform/auth", "jupyter/rest", "errors", "jupyter/schemas"]);
    server = await startJupyterServer();
    nb = await openNotebook(server, "python3");
  });
  afterAll(async () => {
    await nb?.shutdown();
    await server?.stop();
  });

  it.each([
    ["a child of the kernel", REPORT],
    ["a grandchild of the kernel", NESTED],
  ])("finds the server, token, kernel id and project home from %s", async (_label, script) => {
    const r = await nb!.run(pyRunNode(script));
    expect(r.status).toBe("ok");
    expect(r.stdout).toContain("EXIT 0");
    const rep = parseReport(r.stdout);
    expect(rep.source).toBe("runtime_file");
    expect(rep.baseUrl).toBe(server.url);
    expect(rep.tokenLength).toBe(server.token.length);
    expect(rep.tokenHash).toBe(sha(server.token));
    expect(rep.kernelId).toBe(nb!.kernelId);
    expect(rep.dashboardId).toBe(nb!.kernelId);
    expect(rep.masterId).toBe(nb!.kernelId);
    expect(rep.isWorker).toBe(false);
    expect(fs.realpathSync(rep.projectHome)).toBe(fs.realpathSync(server.rootDir));
    expect(fs.realpathSync(rep.serverRootDir!)).toBe(fs.realpathSync(server.rootDir));
    expect(fs.realpathSync(rep.runtimeDir!)).toBe(fs.realpathSync(server.runtimeDir));
    expect(rep.serverPid).toBe(server.pid);
    expect(rep.authSource).toBe("token");
    expect(rep.authHeaderHash).toBe(sha(`token ${server.token}`));
    // printing the context or the auth object shows no secret
    expect(rep.printed).not.toContain(server.token);
    expect(r.text).not.toContain(server.token);
  });

  it("leaves no process behind but the server and the notebook kernel", async () => {
    const kernels = await fetch(`${server.url}api/kernels`, { headers: { Authorization: `token ${server.token}` } }).then((res) => res.json() as Promise<{ id: string }[]>);
    expect(kernels.map((k) => k.id)).toEqual([nb!.kernelId]);
    await nb!.shutdown();
    nb = undefined;
    expect(processesUnder(server.baseDir).filter((p) => p !== server.pid)).toEqual([]);
  });
});
