/**
 * The Jupyter Server backend: kernels are sessions started over the REST API (rest.ts) and
 * reached over the kernel websocket (connection.ts), so a server with a gateway behind it
 * (`--gateway-url`, Enterprise Gateway) works unchanged.
 */
import { requestMetadata } from "../../protocol/marks";
import type { Kernel, KernelMessage } from "@jupyterlab/services";
import type { RestClient, ServerEndpoint } from "../../jupyter/rest";
import type { KernelModel, KernelSpecs, SessionModel } from "../../jupyter/schemas";
import { bestEffortSync } from "../../util/best-effort";
import { iopubMessage, type ChannelStatus, type ExecuteReply, type KernelBackend, KernelChannel, KernelLifeStatus, SessionChange, StartRequest } from "../backend";
import { executeContent } from "../backend";
import { sharedSettingsConnector } from "./connection";
import { requestUsage } from "./usage";

/** Opens a `@jupyterlab/services` kernel connection (tests pass one that plays the kernel). */
export type KernelConnector = (endpoint: ServerEndpoint, model: { id: string; name: string }) => Kernel.IKernelConnection;

/** Options of {@link JupyterServerBackend}. */
export interface JupyterServerBackendOptions {
  /** How kernel connections are opened (default: a websocket through @jupyterlab/services, one server-settings object per backend). */
  connect?: KernelConnector;
}

/** A {@link KernelBackend} on a Jupyter Server's REST API and kernel websockets. */
export class JupyterServerBackend implements KernelBackend {
  readonly label: string;
  private readonly connector: KernelConnector;

  constructor(
    /** The server's REST client (its endpoint also addresses the websockets). */
    readonly rest: RestClient,
    options: JupyterServerBackendOptions = {},
  ) {
    this.label = rest.displayUrl("");
    this.connector = options.connect ?? sharedSettingsConnector();
  }

  kernelSpecs(): Promise<KernelSpecs> {
    return this.rest.kernelspecs();
  }
  listSessions(): Promise<SessionModel[]> {
    return this.rest.listSessions();
  }
  getSession(sessionId: string): Promise<SessionModel> {
    return this.rest.getSession(sessionId);
  }
  getKernel(kernelId: string): Promise<KernelModel> {
    return this.rest.getKernel(kernelId);
  }
  start(r: StartRequest): Promise<SessionModel> {
    return this.rest.createSession({ path: r.path, type: r.type, name: r.name, kernel: { name: r.kernelName } }, { timeoutMs: r.timeoutMs });
  }
  async retag(sessionId: string, change: SessionChange): Promise<void> {
    await this.rest.patchSession(sessionId, change);
  }
  connect(kernel: { id: string; name: string }): KernelChannel {
    return channelOf(this.connector(this.rest.endpoint, kernel));
  }
  interrupt(kernelId: string): Promise<void> {
    return this.rest.interruptKernel(kernelId);
  }
  stop(sessionId: string): Promise<void> {
    return this.rest.deleteSession(sessionId);
  }
  stopKernel(kernelId: string): Promise<void> {
    return this.rest.deleteKernel(kernelId);
  }
}


/** A {@link KernelChannel} over a `@jupyterlab/services` kernel connection. */
export function channelOf(conn: Kernel.IKernelConnection): KernelChannel {
  // Signals are optional: test fakes of the connection may leave some out.
  const attach = <A>(signal: { connect(fn: (s: unknown, a: A) => void): unknown; disconnect(fn: (s: unknown, a: A) => void): unknown } | undefined, listener: (a: A) => void) => {
    const slot = (_: unknown, a: A) => listener(a);
    signal?.connect(slot);
    return () => void signal?.disconnect(slot);
  };
  return {
    get ready() {
      return conn.info;
    },
    execute(request) {
      const future = conn.requestExecute(executeContent(request), true, requestMetadata(request));
      return { msgId: future.msg.header.msg_id, done: future.done.then((reply: KernelMessage.IExecuteReplyMsg) => reply.content as ExecuteReply) };
    },
    onIopub: (listener) =>
      attach<KernelMessage.IIOPubMessage>(conn.iopubMessage, (msg) => {
        const parent = (msg.parent_header as Partial<KernelMessage.IHeader> | undefined)?.msg_id;
        const m = iopubMessage(msg.header.msg_type, msg.content, parent || undefined);
        listener(m);
      }),
    onStatus: (listener) => attach<Kernel.Status>(conn.statusChanged, (s) => listener(s as KernelLifeStatus)),
    onConnection: (listener) => attach<Kernel.ConnectionStatus>(conn.connectionStatusChanged, (s) => listener(s as ChannelStatus)),
    usage: (timeoutMs) => requestUsage(conn, timeoutMs),
    dispose: () => void bestEffortSync("dispose kernel connection", () => conn.dispose()),
  };
}
