import { RestClient } from "../../src/jupyter/rest";
import type { Figures, SecretScan } from "../reliability/support";
import { type JupyterServer, startJupyterServer } from "./jupyter";

/** What {@link scannedServer} is told: the suite's secret scan and figures, and its own parts of set-up and clean-up. */
export interface ScannedServerOptions {
  /** The suite's scan: the server's log (after its start-up banner) is added to it, then checked for the server's token. */
  scan: SecretScan;
  /** The suite's figures, flushed at the end. */
  figures: Figures;
  /** Called once the server is up, with it and a REST client on it (the suite keeps them). */
  started: (server: JupyterServer, rest: RestClient) => void;
  /** The suite's own clean-up (notebooks, masters, the keeper), run before the server stops; it should not throw. */
  cleanup?: () => Promise<void>;
}

/**
 * Sets up a real Jupyter Server for a reliability suite whose texts are scanned for secrets.
 * Registers a `beforeAll` that starts the server, notes where its log stands (Jupyter's start-up
 * banner prints the token; what comes after is ours to check) and hands the server and a REST
 * client to `started`; and an `afterAll` that runs `cleanup`, adds the server's log to the scan,
 * stops the server, flushes the figures and expects no secret in anything scanned.
 *
 * @throws nothing itself; the hooks fail the suite if the server does not start or a secret leaked.
 */
export function scannedServer(o: ScannedServerOptions): void {
  let server: JupyterServer | undefined;
  let logStart = 0;

  beforeAll(async () => {
    server = await startJupyterServer();
    logStart = server.log().length;
    o.started(server, new RestClient({ baseUrl: server.url, token: server.token }));
  });

  afterAll(async () => {
    await o.cleanup?.();
    if (server) {
      o.scan.add("server log", server.log().slice(logStart));
      await server.stop();
    }
    o.figures.flush();
    expect(o.scan.leaks(server ? [server.token] : [])).toEqual([]);
  });
}
