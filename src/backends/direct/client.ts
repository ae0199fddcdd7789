/**
 * A client of one kernel over ZeroMQ, with signed messages (Jupyter messaging 5.3), as
 * jupyter_client's `BlockingKernelClient` is: DEALER sockets for shell and control, a SUB socket
 * for iopub, replies matched to their request by `parent_header.msg_id`.
 * Protocol: https://jupyter-client.readthedocs.io/en/stable/messaging.html
 */
import { randomBytes } from "node:crypto";
import { WorkerError } from "../../errors";
import { Codec, ConnectionInfo, Message } from "../../protocol/wire";
import { jsRuntime } from "../../jupyter/context";
import { withTimeout } from "../../util/timing";
import { ClientSocket, DealerSocket, SocketKit, SubscriberSocket, zmtpSockets } from "./zmtp";

/** The request channels. */
export type RequestChannel = "shell" | "control";

/** A message seen on iopub. */
export type IopubListener = (msg: Message) => void;

/** A connected client of one kernel; {@link KernelClient.close} it when done. */
export class KernelClient {
  private readonly codec: Codec;
  private readonly pending = new Map<string, { resolve: (m: Message) => void; reject: (e: unknown) => void }>();
  private readonly listeners = new Set<IopubListener>();
  private closed = false;
  /** An iopub message has arrived: this client's subscription is in place. */
  private iopubLive = false;

  private constructor(
    private readonly sockets: { shell: DealerSocket; control: DealerSocket; iopub: SubscriberSocket },
    info: ConnectionInfo,
  ) {
    this.codec = new Codec(info);
    void this.readReplies(sockets.shell);
    void this.readReplies(sockets.control);
    void this.readIopub();
  }

  /**
   * Connects to the kernel described by `info` (the kernel may still be starting: ZeroMQ waits
   * for it) with `zmq`'s sockets: by default libzmq's (the `zeromq` addon) in Node and the
   * TypeScript ZMTP sockets in Deno, where the addon crashes.
   */
  static connect(info: ConnectionInfo, zmq: SocketKit = defaultSockets()): KernelClient {
    const addr = (port: number) => `${info.transport}://${info.ip}:${port}`;
    const identity = randomBytes(8).toString("hex");
    const shell = new zmq.Dealer({ routingId: identity, linger: 0 });
    const control = new zmq.Dealer({ routingId: identity, linger: 0 });
    const iopub = new zmq.Subscriber({ linger: 0 });
    shell.connect(addr(info.shell_port));
    control.connect(addr(info.control_port));
    iopub.connect(addr(info.iopub_port));
    iopub.subscribe();
    return new KernelClient({ shell, control, iopub }, info);
  }

  private async readReplies(sock: ClientSocket): Promise<void> {
    try {
      for await (const frames of sock) this.settle(frames);
    } catch {
      // The socket was closed: close() rejects what is pending.
    }
  }

  private settle(frames: Buffer[]): void {
    let msg: Message;
    try {
      msg = this.codec.decode(frames);
    } catch {
      return; // A message we cannot verify is not ours to act on.
    }
    const parentId = (msg.parent as { msg_id?: string }).msg_id;
    const waiter = parentId ? this.pending.get(parentId) : undefined;
    if (!waiter) return;
    this.pending.delete(parentId as string);
    waiter.resolve(msg);
  }

  private async readIopub(): Promise<void> {
    try {
      for await (const frames of this.sockets.iopub) {
        let msg: Message;
        try {
          msg = this.codec.decode(frames);
        } catch {
          continue;
        }
        this.iopubLive = true;
        for (const l of [...this.listeners]) l(msg);
      }
    } catch {
      // Closed.
    }
  }

  /** Calls `listener` with every iopub message from now on; returns the unsubscribe function. */
  onIopub(listener: IopubListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Sends `msgType` on `channel`; resolves with its reply. `msgId` lets a caller subscribe to the
   * request's iopub messages before it goes out; `metadata` is the request's metadata (a Sense
   * kernel reads `sense.precompiled` there).
   * @throws WorkerError `timeout` when no reply came within `timeoutMs`; `kernel_error` once closed.
   */
  async request(channel: RequestChannel, msgType: string, content: Record<string, unknown>, options: { timeoutMs?: number; msgId?: string; metadata?: Record<string, unknown> } = {}): Promise<Message> {
    if (this.closed) throw new WorkerError("kernel_error", "the kernel client is closed");
    const msgId = options.msgId ?? randomBytes(16).toString("hex");
    const reply = new Promise<Message>((resolve, reject) => this.pending.set(msgId, { resolve, reject }));
    await this.sockets[channel].send(this.codec.encode(msgType, content, null, false, options.metadata ?? {}, msgId));
    return withTimeout(reply, options.timeoutMs ?? 60_000, `${msgType} on ${channel}`).finally(() => this.pending.delete(msgId));
  }

  /**
   * Resolves once the kernel answers on shell and its iopub reaches us (a SUB socket misses what
   * was published before it joined, so both are needed before anything is run), as
   * jupyter_client's `wait_for_ready`. Resolves with the kernel_info reply's content (its
   * `language_info` says what language the worker runs: remote execution needs it).
   * @throws WorkerError `timeout` after `timeoutMs`.
   */
  async ready(timeoutMs: number, exited?: Promise<unknown>): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs;
    let gone = false;
    void exited?.then(() => (gone = true));
    while (!this.closed) {
      if (gone) throw new WorkerError("launch_failed", "the kernel process exited before it was ready");
      const left = deadline - Date.now();
      if (left <= 0) break;
      const msgId = randomBytes(16).toString("hex");
      // Any iopub message proves the subscription is in place: a welcome (JEP 65: Sense kernels,
      // ipykernel 7) comes as soon as it is, else this request's status does.
      let iopubSeen: () => void = () => undefined;
      const iopub = new Promise<void>((r) => (iopubSeen = r));
      if (this.iopubLive) iopubSeen();
      const off = this.onIopub(() => iopubSeen());
      try {
        const reply = await this.request("shell", "kernel_info_request", {}, { msgId, timeoutMs: Math.min(left, 1_000) });
        await withTimeout(iopub, Math.max(1, Math.min(deadline - Date.now(), 500)), "iopub").catch(() => undefined);
        if (this.iopubLive) return reply.content as Record<string, unknown>;
      } catch {
        // Not up yet: ask again.
      } finally {
        off();
      }
    }
    if (this.closed) throw new WorkerError("launch_failed", "the kernel client was closed before the kernel was ready (the worker stopped or failed meanwhile)");
    throw new WorkerError("timeout", `the kernel did not become ready within ${Math.round(timeoutMs / 1000)} s`);
  }

  /** Closes the sockets; pending requests reject. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const [, w] of this.pending) w.reject(new WorkerError("kernel_error", "the kernel client was closed"));
    this.pending.clear();
    this.listeners.clear();
    for (const s of Object.values(this.sockets)) s.close();
  }
}

function defaultSockets(): SocketKit {
  if (jsRuntime() === "deno") return zmtpSockets;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require("zeromq") as SocketKit;
}
