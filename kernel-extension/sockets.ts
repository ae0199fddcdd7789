/**
 * A kernel's five ZeroMQ sockets (Jupyter messaging 5.3): bound on the connection file's ports,
 * messages decoded and signature-checked (src/protocol/wire.ts), shell and control requests handed
 * to the request handler, iopub paced under the Jupyter Server's rate limits (iopub-pace.ts), the
 * heartbeat echoed, and each new iopub subscriber welcomed. It knows nothing of cells or code.
 */
import type * as Zmq from "zeromq";
import { Codec, type ConnectionInfo, type Message, SendQueue } from "../src/protocol/wire";
import { frameBytes, Pacer, paceLimits } from "./iopub-pace";

/** Where a request came in: answer it there. */
export type RequestSocket = SendQueue;

/** What the sockets hand requests to. */
export interface RequestHandlers {
  /** A shell request (answered in order by the handler). */
  shell(sock: RequestSocket, req: Message): void;
  /** A control request (read one at a time: the loop waits for the handler). */
  control(sock: RequestSocket, req: Message): Promise<void>;
  /** The execution state a new iopub subscriber is told, and the request it belongs to. */
  status(): { state: "busy" | "idle"; parent: Message | null };
}

/** The bound sockets of one kernel. */
export class KernelSockets {
  private readonly codec: Codec;
  private readonly pacer = new Pacer(paceLimits());
  private iopubQ: SendQueue | null = null;
  private sockets: Zmq.Socket[] = [];
  private closing = false;

  constructor(
    private readonly info: ConnectionInfo,
    private readonly zmq: typeof Zmq,
    private readonly log: (line: string) => void,
  ) {
    this.codec = new Codec(info);
  }

  /**
   * Publishes one iopub message, paced under the server's IOPub limits: a flood is delayed, never
   * dropped by the server. Before {@link bind} nothing is sent.
   */
  publish(msgType: string, content: unknown, parent: Message | null, metadata?: Record<string, unknown>): Promise<void> {
    const queue = this.iopubQ;
    if (!queue) return Promise.resolve();
    const frames = this.codec.encode(msgType, content, parent, false, metadata);
    return this.pacer.send(msgType, frameBytes(frames), () => queue.send(frames), parent?.header.msg_id ?? "");
  }

  /** Answers `req` on the socket it came in on. */
  reply(sock: RequestSocket, req: Message, msgType: string, content: unknown): Promise<void> {
    return sock.send(this.codec.encode(msgType, content, req, true));
  }

  /**
   * Binds the sockets and starts serving `handlers`; resolves once every socket is bound.
   * @throws ZeroMQ's error when a port cannot be bound.
   */
  async bind(handlers: RequestHandlers): Promise<void> {
    const { zmq, info } = this;
    const addr = (port: number) => `${info.transport}://${info.ip}:${port}`;
    // sendTimeout 0: see SendQueue. No high-water mark on iopub: output is never dropped.
    // XPUB, as ipykernel 7: each new subscriber gets an `iopub_welcome` (JEP 65), proof that its
    // subscription is in place. Without it a client whose SUB joined after a request's status went
    // out waits for its next try: jupyter_server nudges every 0.5 s, and a worker lost that much.
    const iopub = new zmq.XPublisher({ sendHighWaterMark: 0, sendTimeout: 0, verbosity: "allSubs" });
    const shell = new zmq.Router({ sendTimeout: 0 });
    const control = new zmq.Router({ sendTimeout: 0 });
    const stdin = new zmq.Router();
    const hb = new zmq.Reply({ sendTimeout: 0 });
    this.sockets = [iopub, shell, control, stdin, hb];
    // Once closing, a send that meets its closed socket (a welcome queued behind the pacer, say) is
    // the shutdown itself, not an event to log.
    const onErr = (e: unknown) => {
      if (!this.closing) this.log(`sense: send failed: ${e instanceof Error ? e.message : String(e)}`);
    };
    this.iopubQ = new SendQueue(iopub, onErr);
    const shellQ = new SendQueue(shell, onErr);
    const controlQ = new SendQueue(control, onErr);
    await Promise.all([iopub.bind(addr(info.iopub_port)), shell.bind(addr(info.shell_port)), control.bind(addr(info.control_port)), stdin.bind(addr(info.stdin_port)), hb.bind(addr(info.hb_port))]);
    const loop = async (sock: Zmq.Router, handle: (m: Message) => void | Promise<void>) => {
      for await (const frames of sock) {
        let msg: Message;
        try {
          msg = this.codec.decode(frames);
        } catch (e) {
          this.log(`sense: dropped a message: ${e instanceof Error ? e.message : String(e)}`);
          continue;
        }
        await handle(msg);
      }
    };
    // A loop ends when its socket closes (shutdown): nothing to report then.
    const ended = (which: string) => (e: unknown) => {
      if (!this.closing) this.log(`sense: ${which} loop ended: ${e instanceof Error ? e.message : String(e)}`);
    };
    void loop(shell, (m) => handlers.shell(shellQ, m)).catch(ended("shell"));
    void loop(control, (m) => handlers.control(controlQ, m)).catch(ended("control"));
    void (async () => {
      for await (const frames of hb) await hb.send(frames);
    })().catch(() => undefined);
    void this.welcomeSubscribers(iopub, handlers).catch(ended("iopub"));
  }

  /** Closes the sockets; messages already sent get `lingerMs` to leave. */
  close(lingerMs = 200): void {
    this.closing = true;
    for (const s of this.sockets) {
      s.linger = lingerMs;
      s.close();
    }
  }

  /**
   * Answers every subscription on iopub (a frame 0x01 + topic) with an `iopub_welcome` and the
   * kernel's status now. The status is for jupyter_server: it waits for a kernel to leave
   * `starting` by the status messages its activity watcher sees, and a watcher that subscribed
   * after the first request's status would otherwise wait for the next nudge, 0.5 s later.
   */
  private async welcomeSubscribers(iopub: AsyncIterable<Buffer[]>, handlers: RequestHandlers): Promise<void> {
    for await (const [frame] of iopub) {
      if (frame?.[0] !== 1 || this.closing) continue;
      void this.publish("iopub_welcome", { subscription: frame.subarray(1).toString("utf8") }, null);
      const { state, parent } = handlers.status();
      void this.publish("status", { execution_state: state }, parent);
    }
  }
}
