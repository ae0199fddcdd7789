/**
 * Kernel websocket connections for workers, through `@jupyterlab/services` in Node: the token
 * goes in an `Authorization` header (not the `?token=` query, which ends up in logs), and the
 * library's own console chatter is filtered out so it never lands in the user's cell.
 */
import { KernelConnection, ServerConnection } from "@jupyterlab/services";
import type { Kernel } from "@jupyterlab/services";
import WebSocket from "ws";
import type { ServerEndpoint } from "../../jupyter/rest";
import { silenceServicesConsole } from "../../util/services-console";

/**
 * A `ws` WebSocket that negotiates subprotocols as a browser does: the server may pick one of the
 * offered subprotocols **or none** (then `protocol` is `""`). `ws` alone fails the handshake when
 * the server picks none ("Server sent no subprotocol"), after the server already accepted it. A
 * Jupyter Server in front of Enterprise Gateway (`--gateway-url`) always picks none, so every
 * first connection failed; @jupyterlab/services then reconnected with the same session id, and
 * EG kept that reconnect waiting 30-95 s behind the orphaned first one (docs/scale-out.md).
 * The offer goes in the `Sec-WebSocket-Protocol` header instead of `ws`'s own list, the server's
 * choice is checked here against the offer, and a choice outside it still fails the handshake.
 */
export function browserLikeWebSocket(headers: Record<string, string>, expecting?: () => boolean): new (url: string, protocols?: string | string[]) => WebSocket {
  return class BrowserLikeWebSocket extends WebSocket {
    constructor(url: string, protocols?: string | string[]) {
      const offered = protocols === undefined ? [] : typeof protocols === "string" ? [protocols] : [...protocols];
      super(url, [], { headers: { ...headers, ...(offered.length ? { "Sec-WebSocket-Protocol": offered.join(", ") } : {}) } });
      let selected = "";
      // `ws` emits "upgrade" before it checks the response's subprotocol header.
      this.once("upgrade", (res: { headers: Record<string, string | string[] | undefined> }) => {
        const chosen = res.headers["sec-websocket-protocol"];
        if (typeof chosen === "string" && offered.includes(chosen)) {
          selected = chosen;
          delete res.headers["sec-websocket-protocol"];
        }
        // anything else stays in the headers: `ws` fails the handshake (none was offered to it)
      });
      Object.defineProperty(this, "protocol", { get: () => selected, configurable: true, enumerable: true });
      acknowledgePromptly(this, expecting);
    }
  };
}

/**
 * Answers every burst of incoming messages at once with an unsolicited pong (RFC 6455 §5.5.3: a
 * pong may be sent unsolicited, no answer is expected), so the TCP acknowledgement of what arrived
 * leaves now instead of after the receiver's delayed-ACK timer (40 ms on Linux).
 *
 * Why: a Jupyter Server's kernel websocket keeps Nagle's algorithm on (tornado leaves TCP_NODELAY
 * off on websockets unless a handler calls `set_nodelay(True)`, and jupyter_server's does not). A
 * request's first message back (`status: busy`) goes out at once; the kernel's next ones
 * (execute_input, execute_result, execute_reply, idle) are then held in the server until that first
 * one is acknowledged, and an idle client acknowledges only when its delayed-ACK timer fires. Every
 * round trip cost ~40 ms more than it took (measured: `execute("1")` 47.8 ms median; with this,
 * 2.7 ms, as with TCP_NODELAY set in the server). The client cannot set the server's socket
 * options; an outgoing frame carries the acknowledgement, and `ws` sends with TCP_NODELAY. One
 * 6-byte frame per burst (messages parsed in one go share it), none while nothing arrives.
 *
 * With `expecting`, the pong goes at the end of the burst (once the connection handled its
 * messages) and only while `expecting()` says answers are still due: the burst that completes the
 * last request needs none, as nothing is held behind it. That was ~1 pong in 3 (a request's answers
 * arrive in 2–3 bursts), each a write in the master and a frame the server's one thread reads: with
 * 64 workers ~170 pongs per `execute`, ~20 % of the master's work for the call. Output arriving
 * with no request due (a worker's timers) may then wait for the delayed ACK (<= 40 ms).
 */
export function acknowledgePromptly(ws: WebSocket, expecting?: () => boolean): void {
  let answered = false;
  ws.on("message", () => {
    if (answered || ws.readyState !== WebSocket.OPEN) return;
    answered = true;
    if (!expecting) {
      ws.pong();
      // the rest of this burst (frames parsed from the same read) needs no pong of its own
      setImmediate(() => (answered = false));
      return;
    }
    // after this turn's I/O and the connection's handling of it (microtasks): is anything still due?
    setImmediate(() => {
      answered = false;
      if (ws.readyState === WebSocket.OPEN && expecting()) ws.pong();
    });
  });
}

/**
 * Server settings for `endpoint` whose websockets authenticate with a header and pong every burst
 * ({@link acknowledgePromptly}); {@link connectKernel} gives each connection its own class.
 */
export function serverSettings(endpoint: ServerEndpoint): ServerConnection.ISettings {
  return ServerConnection.makeSettings({
    baseUrl: endpoint.baseUrl,
    wsUrl: endpoint.baseUrl.replace(/^http/, "ws"),
    token: endpoint.token,
    appendToken: false,
    WebSocket: headerAuthWebSocket(endpoint),
  });
}

/** The WebSocket class for `endpoint`: its token in an `Authorization` header; `expecting` as in {@link acknowledgePromptly}. */
function headerAuthWebSocket(endpoint: ServerEndpoint, expecting?: () => boolean): ServerConnection.ISettings["WebSocket"] {
  const token = endpoint.token;
  return browserLikeWebSocket(token ? { Authorization: `token ${token}` } : {}, expecting) as unknown as ServerConnection.ISettings["WebSocket"];
}

/**
 * Opens a websocket connection to an existing kernel; nothing is sent to the kernel until the
 * caller does. Its websocket acknowledges promptly while a request sent on it is unanswered.
 * `settings`: the endpoint's server settings when made already ({@link sharedSettingsConnector});
 * the connection gets a copy with a WebSocket class of its own (its due count).
 */
export function connectKernel(endpoint: ServerEndpoint, model: { id: string; name: string }, settings: ServerConnection.ISettings = serverSettings(endpoint)): Kernel.IKernelConnection {
  silenceServicesConsole();
  let due = 0;
  const own: ServerConnection.ISettings = { ...settings, WebSocket: headerAuthWebSocket(endpoint, () => due > 0) };
  // handleComms: the worker's own front ends (if any) own its comms, not the master.
  const conn = new KernelConnection({ model, serverSettings: own, handleComms: false });
  countDue(conn, (n) => (due += n));
  return guardKernelInfo(conn);
}

/**
 * A {@link connectKernel} that makes the server settings once per endpoint and shares them among
 * its connections. Why: `ServerConnection.makeSettings` parses and normalises URLs with
 * `url-parse`, a few milliseconds each on a cold master, once per worker of a launch. Never throws.
 */
export function sharedSettingsConnector(): (endpoint: ServerEndpoint, model: { id: string; name: string }) => Kernel.IKernelConnection {
  let made: { baseUrl: string; token: string | undefined; settings: ServerConnection.ISettings } | undefined;
  return (endpoint, model) => {
    if (!made || made.baseUrl !== endpoint.baseUrl || made.token !== endpoint.token) made = { baseUrl: endpoint.baseUrl, token: endpoint.token, settings: serverSettings(endpoint) };
    return connectKernel(endpoint, model, made.settings);
  };
}

/**
 * Counts the requests sent on `conn` (shell and control, the library's own kernel_info included)
 * whose future is not done yet (reply and idle both in, or cancelled): `change(+1)` at each send,
 * `change(-1)` when its future settles. Never throws.
 */
export function countDue(conn: Kernel.IKernelConnection, change: (n: number) => void): void {
  const track = <F extends { done: Promise<unknown> }>(future: F): F => {
    change(1);
    const settle = () => change(-1);
    future.done.then(settle, settle);
    return future;
  };
  const shell = conn.sendShellMessage.bind(conn);
  conn.sendShellMessage = ((...args: Parameters<typeof shell>) => track(shell(...args))) as typeof conn.sendShellMessage;
  const control = conn.sendControlMessage.bind(conn);
  conn.sendControlMessage = ((...args: Parameters<typeof control>) => track(control(...args))) as typeof conn.sendControlMessage;
}

/**
 * Makes `requestKernelInfo` resolve `undefined` instead of rejecting when its request is cancelled.
 * @jupyterlab/services 7.6 sends a kernel_info_request itself on every (re)connect and chains it
 * with `void p.then(...)`: when the kernel restarts or dies before replying (a SIGKILLed worker),
 * the cancelled request becomes an unhandled rejection, which ends a plain Node master process.
 * `undefined` is already what the library resolves for a disposed connection. Also makes
 * `reconnect` resolve once the connection is disposed (see below). Returns `conn`.
 */
export function guardKernelInfo<T extends Kernel.IKernelConnection>(conn: T): T {
  const original = conn.requestKernelInfo.bind(conn);
  conn.requestKernelInfo = () => original().catch(() => undefined);
  // The same library reconnects after a kernel's auto-restart with `void ...then(() => reconnect())`:
  // a connection disposed meanwhile (a SIGKILLed master's notebook closed, a lost worker dropped)
  // rejects it with "Kernel connection disconnected", unhandled. Once disposed that is no error.
  // Disposed before the library's own restart handling got there (a lost worker's channel goes at
  // once), `reconnect` throws at its call, not in its promise: the same unhandled rejection.
  const reconnect = conn.reconnect.bind(conn);
  conn.reconnect = () => {
    if (conn.isDisposed) return Promise.resolve();
    return reconnect().catch((e: unknown) => {
      if (!conn.isDisposed) throw e;
    });
  };
  return conn;
}
