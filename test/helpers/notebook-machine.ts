import { type JupyterServer, processesUnder, startJupyterServer } from "./jupyter";
import { type NotebookKernel, openNotebook } from "./kernel";

/**
 * Sets up a real Jupyter Server with one notebook kernel open on it for the enclosing suite (file
 * or `describe`). Registers a `beforeAll` that starts the server from the repo's `.venv`, opens a
 * `kernel` notebook on it and awaits `setup(nb, server)`, where the suite keeps what it needs and
 * runs its first cells (launching workers through the magics, say); and an `afterAll` that shuts
 * the notebook down, stops the server and expects no process left under its folder (the workers
 * the notebook launched among them). The `afterAll` cleans up whatever part the `beforeAll` got to.
 *
 * @param kernel - the notebook's kernelspec name, e.g. `"sense-js"`.
 * @param setup - called once the notebook is open, with the notebook and the server.
 * @throws nothing itself; the hooks fail the suite if the server or notebook does not start,
 *   `setup` rejects, or a process is left under the server's folder.
 */
export function notebookMachine(kernel: string, setup: (nb: NotebookKernel, server: JupyterServer) => Promise<void>): void {
  let server: JupyterServer | undefined;
  let nb: NotebookKernel | undefined;

  beforeAll(async () => {
    server = await startJupyterServer();
    nb = await openNotebook(server, kernel);
    await setup(nb, server);
  });

  afterAll(async () => {
    await nb?.shutdown();
    const marker = server?.baseDir;
    await server?.stop();
    if (marker) expect(processesUnder(marker)).toEqual([]);
  });
}
