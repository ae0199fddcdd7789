import { RestClient } from "../../src/jupyter/rest";
import { stopWorkers, type WorkerContextInput } from "../../src/workers";
import { type JupyterServer, processesUnder, startJupyterServer } from "./jupyter";

/**
 * Sets up a real Jupyter Server with a few workers for the enclosing suite (file or `describe`).
 * Registers a `beforeAll` that starts the server from the repo's `.venv`, builds the worker
 * context for it (project home = the server's root) and awaits `launch(context)`, where the suite
 * keeps the context and launches its workers; and an `afterAll` that stops every worker, expects
 * the server to list no session, stops the server and expects no process left under its folder.
 * The `afterAll` cleans up whatever part the `beforeAll` got to, so a failed launch leaks nothing.
 *
 * @param launch - called once the server is up, with the context every call of the suite passes.
 * @throws nothing itself; the hooks fail the suite if the server does not start, `launch` rejects,
 *   a session is left on the server or a process is left under its folder.
 */
export function serverMachine(launch: (context: WorkerContextInput) => Promise<void>): void {
  let server: JupyterServer | undefined;
  let rest: RestClient | undefined;
  let context: WorkerContextInput | undefined;

  beforeAll(async () => {
    server = await startJupyterServer();
    rest = new RestClient({ baseUrl: server.url, token: server.token });
    context = { endpoint: { baseUrl: server.url, token: server.token }, projectHome: server.rootDir, serverRootDir: server.rootDir };
    await launch(context);
  });

  afterAll(async () => {
    if (context) await stopWorkers({ context });
    if (rest) expect(await rest.listSessions()).toEqual([]);
    const base = server?.baseDir;
    await server?.stop();
    if (base) expect(processesUnder(base)).toEqual([]);
  });
}
