/**
 * Kernel websocket connections for workers, through `@jupyterlab/services` in Node: the token
 * goes in an `Authorization` header (not the `?token=` query, which ends up in logs), and the
 * library's own console chatter is filtered out so it never lands in the user's cell.
 */
import { KernelConnection, ServerConnection } from "@jupyterlab/services";
import type { Kernel } from "@jupyterlab/services";
import WebSocket from "ws";
import type { ServerEndpoint } from "../rest";

// Exact messages @jupyterlab/services 7.6 logs from kernel/default.js (checked against 7.6.6).
const SERVICES_CHATTER = [/^Starting WebSocket: /, /^Kernel: \w+ \(/, /^Connection lost, reconnecting in /, /^Server selected unknown kernel wire protocol/];
let filtered = false;

/** Filters the console messages of @jupyterlab/services (and nothing else); idempotent. */
export function silenceServicesConsole(): void {
  if (filtered) return;
  filtered = true;
  for (const level of ["debug", "warn", "log"] as const) {
    const original = console[level].bind(console);
    console[level] = (...args: unknown[]) => {
      if (typeof args[0] === "string" && SERVICES_CHATTER.some((re) => re.test(args[0] as string))) return;
      original(...args);
    };
  }
}

/** Server settings for `endpoint` whose websockets authenticate with a header. */
export function serverSettings(endpoint: ServerEndpoint): ServerConnection.ISettings {
  const token = endpoint.token;
  class HeaderAuthWebSocket extends WebSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols, token ? { headers: { Authorization: `token ${token}` } } : {});
    }
  }
  return ServerConnection.makeSettings({
    baseUrl: endpoint.baseUrl,
    wsUrl: endpoint.baseUrl.replace(/^http/, "ws"),
    token,
    appendToken: false,
    WebSocket: HeaderAuthWebSocket as unknown as ServerConnection.ISettings["WebSocket"],
  });
}

/** Opens a websocket connection to an existing kernel; nothing is sent to the kernel until the caller does. */
export function connectKernel(endpoint: ServerEndpoint, model: { id: string; name: string }): Kernel.IKernelConnection {
  silenceServicesConsole();
  // handleComms: the worker's own front ends (if any) own its comms, not the master.
  return guardKernelInfo(new KernelConnection({ model, serverSettings: serverSettings(endpoint), handleComms: false }));
}

/**
 * Makes `requestKernelInfo` resolve `undefined` instead of rejecting when its request is cancelled.
 * @jupyterlab/services 7.6 sends a kernel_info_request itself on every (re)connect and chains it
 * with `void p.then(...)`: when the kernel restarts or dies before replying (a SIGKILLed worker),
 * the cancelled request becomes an unhandled rejection, which ends a plain Node master process.
 * `undefined` is already what the library resolves for a disposed connection. Returns `conn`.
 */
export function guardKernelInfo<T extends Kernel.IKernelConnection>(conn: T): T {
  const original = conn.requestKernelInfo.bind(conn);
  conn.requestKernelInfo = () => original().catch(() => undefined);
  return conn;
}
