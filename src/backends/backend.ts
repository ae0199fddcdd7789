/**
 * The one interface through which workers are started, listed, connected to (shell + iopub),
 * interrupted and stopped. A {@link Cluster} talks to kernels only through a backend; the first
 * implementation is the Jupyter Server (REST + websocket, a gateway behind it included), see
 * jupyter-backend.ts. Tests pass a fake one.
 *
 * Failures are {@link RestError}s with their stable codes (`not_found` for a session or kernel
 * that is gone, `unreachable` when the backend cannot be asked), whatever the backend is.
 */
import type { KernelModel, KernelSpecs, SessionModel } from "../jupyter/schemas";
import type { UsageReply } from "../protocol/usage";

/** What starts a kernel: a session at `path` of `type`, named with its tag. */
export interface StartRequest {
  /** The session path (unique: an existing path answers the old session). */
  path: string;
  /** The session type (`sense-worker`, `sense-pool`). */
  type: string;
  /** The session name: a tag (session-tags.ts), never a secret. */
  name: string;
  /** The kernelspec to start. */
  kernelName: string;
  /**
   * How long starting the kernel may take (the launch's start timeout), when the backend waits for
   * it: a Jupyter Server answers `POST /api/sessions` only once the kernel runs, which behind a
   * gateway (Enterprise Gateway's Docker or Kubernetes process proxy) is once its container started.
   */
  timeoutMs?: number;
}

/** A change of a session's tag, type or path (the worker status machine, pool adoption). */
export type SessionChange = Partial<Pick<StartRequest, "name" | "type" | "path">>;

/** What every iopub message has: the msg id of the request that caused it, if any. */
interface IopubBase {
  parentId?: string;
}

/**
 * One iopub message, reduced to what Sense routes on: a union on `type`, each with the content it
 * is read for, checked once where it enters ({@link iopubMessage}); anything else is `other`.
 * See https://jupyter-client.readthedocs.io/en/stable/messaging.html#messages-on-the-iopub-pub-sub-channel
 */
export type IopubMessage =
  | (IopubBase & { type: "stream"; content: { name: "stdout" | "stderr"; text: string } })
  | (IopubBase & { type: "error"; content: { ename: string; evalue: string; traceback: string[] } })
  | (IopubBase & { type: "display_data" | "execute_result" | "update_display_data"; content: { data: Record<string, unknown>; displayId?: string } })
  | (IopubBase & { type: "status"; content: { execution_state: string } })
  | (IopubBase & { type: "other"; msgType: string; content: Record<string, unknown> });

const isRecord = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v);

/**
 * An iopub message as a kernel sent it (`msg_type`, `content`, the parent's msg id) in the shape
 * Sense reads: fields of the wrong type become empty (a kernel's bug must not crash its master).
 * Never throws.
 */
export function iopubMessage(msgType: string, content: unknown, parentId?: string): IopubMessage {
  const c = isRecord(content) ? content : {};
  const base: IopubBase = parentId ? { parentId } : {};
  const str = (v: unknown) => (typeof v === "string" ? v : v === undefined || v === null ? "" : String(v));
  switch (msgType) {
    case "stream":
      return { ...base, type: "stream", content: { name: c.name === "stderr" ? "stderr" : "stdout", text: str(c.text) } };
    case "error":
      return { ...base, type: "error", content: { ename: str(c.ename), evalue: str(c.evalue), traceback: Array.isArray(c.traceback) ? c.traceback.map(str) : [] } };
    case "display_data":
    case "execute_result":
    case "update_display_data": {
      const displayId = isRecord(c.transient) && typeof c.transient.display_id === "string" ? c.transient.display_id : undefined;
      return { ...base, type: msgType, content: { data: isRecord(c.data) ? c.data : {}, ...(displayId !== undefined ? { displayId } : {}) } };
    }
    case "status":
      return { ...base, type: "status", content: { execution_state: str(c.execution_state) } };
    default:
      return { ...base, type: "other", msgType, content: c };
  }
}

/** An execute request's options (the Jupyter messaging protocol's `execute_request`). */
export interface ExecuteRequest {
  code: string;
  /** JavaScript the master already checked: a Sense kernel runs it without a compiler (src/transpile.ts precompiledMetadata). */
  precompiled?: boolean;
  /**
   * A Sense kernel publishes no execute_input/execute_result for it and sends the result's bundle
   * in the reply (`sense_result`, protocol/marks.ts wantsResultInReply). Other kernels ignore it.
   */
  resultInReply?: boolean;
  silent?: boolean;
  storeHistory?: boolean;
  stopOnError?: boolean;
  /** Expressions the kernel evaluates after the code; their values come back in the reply (remote execution). */
  userExpressions?: Record<string, string>;
}

/** The content of an `execute_reply`. */
export interface ExecuteReply {
  status: "ok" | "error" | "aborted" | string;
  ename?: string;
  evalue?: string;
  traceback?: string[];
  execution_count?: number | null;
  /** The values of the request's `userExpressions`, each `{ status, data, metadata }` or an error. */
  user_expressions?: Record<string, unknown>;
  /** The result's `{ data, metadata }` from a Sense kernel asked for it in the reply ({@link ExecuteRequest.resultInReply}). */
  sense_result?: unknown;
}

/** One request in flight: its msg id (its iopub output carries it as `parentId`) and its reply. */
export interface ExecuteFuture {
  msgId: string;
  /** Resolves with the reply; rejects when the request is cancelled (kernel restarted, channel disposed). */
  done: Promise<ExecuteReply>;
}

/**
 * The kernel's lifecycle as the channel sees it: `busy`/`idle`/`starting` come and go;
 * `restarting`, `autorestarting` and `dead` mean the worker's state is lost.
 */
export type KernelLifeStatus = "unknown" | "starting" | "idle" | "busy" | "terminating" | "restarting" | "autorestarting" | "dead";

/** The transport's state: a `disconnected` channel may come back (`connecting` → `connected`). */
export type ChannelStatus = "connected" | "connecting" | "disconnected";

/**
 * An open connection to one kernel's shell and iopub channels. Nothing is sent to the kernel
 * until the caller does, so a listener attached right after `connect` sees all output.
 */
export interface KernelChannel {
  /** Resolves with the `kernel_info` reply's content when the kernel answered it (it is ready for requests). */
  readonly ready: Promise<unknown>;
  /** Sends an `execute_request`. */
  execute(request: ExecuteRequest): ExecuteFuture;
  /** Calls `listener` with every iopub message; returns a function that detaches it. */
  onIopub(listener: (msg: IopubMessage) => void): () => void;
  /** Calls `listener` on each kernel lifecycle change; returns a function that detaches it. */
  onStatus(listener: (status: KernelLifeStatus) => void): () => void;
  /** Calls `listener` on each transport change; returns a function that detaches it. */
  onConnection(listener: (status: ChannelStatus) => void): () => void;
  /**
   * Asks the kernel for its CPU and memory (`usage_request` on the control channel, as
   * jupyter-resource-usage does). Resolves `undefined` when no reply came within `timeoutMs` (a
   * kernel that does not know the request, or whose event loop is blocked). Never rejects.
   */
  usage(timeoutMs: number): Promise<UsageReply | undefined>;
  /** Closes the connection (the kernel keeps running); idempotent. */
  dispose(): void;
}

/** Everything a {@link Cluster} needs from where kernels run. */
export interface KernelBackend {
  /** A name for messages, e.g. the server's base URL (never a token). */
  readonly label: string;
  /** The kernelspecs this backend can start. */
  kernelSpecs(): Promise<KernelSpecs>;
  /** Every session (workers, pooled kernels, notebooks): the cluster's durable records. */
  listSessions(): Promise<SessionModel[]>;
  /** One session. @throws RestError `not_found` when it is gone. */
  getSession(sessionId: string): Promise<SessionModel>;
  /** One kernel. @throws RestError `not_found` when it is gone. */
  getKernel(kernelId: string): Promise<KernelModel>;
  /** Starts a kernel in a new session; resolves with the session (its `kernel` set). */
  start(request: StartRequest): Promise<SessionModel>;
  /** Changes a session's name, type or path. */
  retag(sessionId: string, change: SessionChange): Promise<void>;
  /** Opens shell + iopub to a running kernel. */
  connect(kernel: { id: string; name: string }): KernelChannel;
  /** Interrupts what the kernel runs now (SIGINT or `interrupt_request`, as its spec says). */
  interrupt(kernelId: string): Promise<void>;
  /** Stops a session and its kernel. @throws RestError `not_found` when it was gone already. */
  stop(sessionId: string): Promise<void>;
  /** Stops a kernel directly (when its session cannot be deleted, e.g. mid auto-restart). */
  stopKernel(kernelId: string): Promise<void>;
  /**
   * Enters a kernel master that no server knows (one started by nbclient, VS Code, `jupyter
   * console`) among the sessions, so its workers and the keeper find it. Only backends with no
   * server of their own (direct) have it.
   */
  registerMaster?(masterId: string, connectionFile: string | undefined): void;
  /**
   * How the process of a kernel this backend started ended: its exit code, or the signal that
   * ended it (`SIGKILL`); `undefined` while it runs or when the backend cannot know. Only backends
   * that own their kernels' processes (direct) have it: a Jupyter Server says `dead`/`restarting` only.
   */
  exitOf?(kernelId: string): number | string | undefined;
}

/** The content of an `execute_request` (messaging protocol 5.3). */
export interface ExecuteRequestContent {
  code: string;
  silent: boolean;
  store_history: boolean;
  stop_on_error: boolean;
  user_expressions?: Record<string, string>;
  allow_stdin?: boolean;
}

/** The `execute_request` content of `request`, as it goes on the wire. */
export function executeContent(request: ExecuteRequest): ExecuteRequestContent {
  return {
    code: request.code,
    silent: request.silent ?? false,
    store_history: request.storeHistory ?? !request.silent,
    stop_on_error: request.stopOnError ?? true,
    ...(request.userExpressions ? { user_expressions: request.userExpressions, allow_stdin: false } : {}),
  };
}
