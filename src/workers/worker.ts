/**
 * The handle of one worker this process launched: its kernel channel (opened before anything
 * runs in the worker, so no output is lost), its output, its status machine (persisted in the
 * session's name tag), loss detection and stop. Records (`WorkerRecord`) stay plain data; the
 * handle is what `cluster.worker(idOrName)` returns.
 */
import { takeExitNote } from "../platform/exit-note";
import { isRestError } from "../jupyter/rest";
import type { WorkerRecord, WorkerStatus } from "../jupyter/schemas";
import { bestEffort } from "../util/best-effort";
import type { ExecuteFuture, ExecuteRequest, IopubMessage, KernelBackend, KernelChannel } from "../backends/backend";
import { deleteUntilGone } from "../backends/delete-session";
import { WorkerOutput } from "./output";
import { RouteTable } from "./channel";
import type { OutputSink } from "../protocol/cell";
import { encodeWorkerTag, WorkerTag } from "./session-tags";

/** What a {@link Worker} tells its cluster. */
export interface WorkerEvents {
  /** The worker's status changed (after the change). Must not throw. */
  status(record: WorkerRecord): void;
  /** The worker ended (stopped, failed and removed): the cluster drops its channel and keeps its record. */
  ended(worker: Worker): void;
}

/** What a {@link Worker} is made from. */
export interface WorkerInit {
  tag: WorkerTag;
  kernelId: string;
  sessionId: string;
  path: string;
  engine: string;
  backend: KernelBackend;
  output: WorkerOutput;
  /** The master's project home, where a container entry leaves an exit note (src/platform/exit-note.ts). */
  projectHome?: string;
}

/** The execute request that runs a worker's startup code (sized by checkWireSize before any launch). */
export function startupRequest(code: string, precompiled = false): ExecuteRequest {
  return { code, stopOnError: true, ...(precompiled ? { precompiled } : {}) };
}

/** A request sent by {@link Worker.send}. */
export interface SentRequest {
  future: ExecuteFuture;
  /** Ends the request's output and its route (what arrives later goes to the launching cell). */
  close(): void;
}

/**
 * Shows one iopub message of a worker in `output`: streams and displays always; execute results
 * and errors when asked (a remote call returns those as data instead).
 */
function show(msg: IopubMessage, output: WorkerOutput, kinds: { results: boolean; errors: boolean }): void {
  if (msg.type === "stream") output.stream(msg.content.name, msg.content.text);
  else if (msg.type === "error") {
    if (kinds.errors) output.error(msg.content.ename, msg.content.evalue, msg.content.traceback);
  } else if (msg.type === "display_data" || msg.type === "update_display_data" || (kinds.results && msg.type === "execute_result")) {
    output.display(msg.content.data, { displayId: msg.content.displayId, update: msg.type === "update_display_data" });
  }
}

/**
 * How a kernel's process ended, for a person: its exit code or the signal that ended it (as the
 * direct backend knows it, `KernelBackend.exitOf`). Pure.
 */
export function exitText(how: number | string): string {
  if (typeof how === "number") return `its kernel process exited with code ${how}${how === 0 ? " (its code called process.exit, or it was shut down from outside)" : ""}`;
  if (how === "SIGKILL") return "its kernel was killed by SIGKILL (a kill, or the system's out-of-memory killer)";
  if (how === "SIGABRT") return "its kernel aborted (SIGABRT: how Node ends on a fatal error, most often its JavaScript heap out of memory)";
  return /^SIG[A-Z0-9]+$/.test(how) ? `its kernel was ended by ${how}` : "its kernel process ended (how is unknown)";
}

/** How a kernel lifecycle status reads as a loss (its state is gone), or `undefined`. */
function lossOf(status: string): "restarting" | "dead" | undefined {
  if (status === "dead") return "dead";
  if (status === "restarting" || status === "autorestarting") return "restarting";
  return undefined;
}

/** One worker launched by this process. */
export class Worker {
  readonly kernelId: string;
  readonly sessionId: string;
  readonly path: string;
  readonly engine: string;
  /** `w<index>`. */
  name: string;
  /** Everything the worker wrote, republished labelled through the launching cell's sink. */
  readonly output: WorkerOutput;
  /** Msg ids whose output is not the user's (the preambles). */
  readonly hidden = new Set<string>();
  /** Requests whose iopub output a remote call takes (into its calling cell) instead of {@link output}. */
  readonly routes = new RouteTable();
  private readonly backend: KernelBackend;
  private readonly projectHome?: string;
  private current: WorkerTag;
  private why?: string;
  private lostWhy?: string;
  /** The handling of a loss (its kernel deleted), while it runs: a stop waits for it. */
  private losing?: Promise<void>;
  private state?: string;
  private conn?: KernelChannel;
  private detach: (() => void)[] = [];
  /** Serialises PATCHes so the server ends with the latest status. */
  private patches: Promise<void> = Promise.resolve();
  private stopping = false;
  /** The kernel announced a shutdown it was asked for (not a restart). */
  private shutdownAsked = false;
  private worked = false;

  constructor(
    init: WorkerInit,
    private readonly events: WorkerEvents,
  ) {
    this.current = init.tag;
    this.kernelId = init.kernelId;
    this.sessionId = init.sessionId;
    this.path = init.path;
    this.engine = init.engine;
    this.name = `w${init.tag.index}`;
    this.backend = init.backend;
    this.output = init.output;
    this.projectHome = init.projectHome;
  }

  /** True once a request sent with {@link send} got an `ok` reply (the restart policy's "it finished work"). */
  get finishedWork(): boolean {
    return this.worked;
  }

  /** The worker's status now. */
  get status(): WorkerStatus {
    return this.current.status;
  }

  /** The session name tag as last set. */
  get tag(): WorkerTag {
    return this.current;
  }

  /** True once the worker is being stopped or was lost (what it answers then may be cut short), or ended. */
  get leaving(): boolean {
    return this.stopping || this.ended;
  }

  /** True once the worker stopped or failed. */
  get ended(): boolean {
    return this.current.status === "stopped" || this.current.status === "failed";
  }

  /**
   * The open channel to the worker's kernel (shell + iopub); `undefined` once the worker ended.
   * Remote execution sends its requests here and finds their output by `parentId`.
   */
  get channel(): KernelChannel | undefined {
    return this.conn;
  }

  /** The worker's record (plain data). */
  record(): WorkerRecord {
    const t = this.current;
    return {
      id: this.kernelId,
      name: this.name,
      engine: this.engine,
      size: t.size,
      status: t.status,
      masterId: t.masterId,
      startedAt: new Date(t.startedAtMs).toISOString(),
      sessionId: this.sessionId,
      path: this.path,
      index: t.index,
      ...(this.state ? { executionState: this.state } : {}),
      ...(this.why ? { reason: this.why } : {}),
    };
  }

  /**
   * Takes the channel to the worker's kernel: its iopub goes into the output (the hidden
   * requests' excepted), and a restarted or dead kernel is detected.
   */
  attach(channel: KernelChannel): void {
    this.conn = channel;
    this.detach.push(
      channel.onIopub((msg) => this.route(msg)),
      channel.onStatus((status) => {
        const loss = lossOf(status);
        if (loss) this.onLoss(loss);
      }),
      // A session deleted by someone else (the Sense panel, JupyterLab's Running panel): the server
      // asks the kernel to shut down (it says so on iopub) and then drops the session, while this
      // channel stays open and quiet. Watch for the session to go.
      channel.onIopub((msg) => {
        if (msg.type === "other" && msg.msgType === "shutdown_reply" && msg.content.restart !== true) {
          this.shutdownAsked = true;
          void this.goneIfDeleted();
        }
      }),
    );
  }

  /**
   * Records `stopped` once the worker's session no longer exists, asking for up to 30 s (the
   * server deletes the session after the kernel's shutdown); a server out of reach is not that.
   */
  private async goneIfDeleted(): Promise<void> {
    for (let i = 0; i < 60 && !this.stopping && !this.ended; i++) {
      try {
        await this.backend.getSession(this.sessionId);
      } catch (e) {
        if (isRestError(e) && e.code === "not_found") await this.lost("dead");
        return;
      }
      await new Promise((r) => setTimeout(r, 500).unref());
    }
  }

  /**
   * Sends the startup code: the worker is `running` until it replies, then `idle`, or `failed`
   * when it raised. Resolves once the status is `running`.
   */
  async runStartup(code: string, precompiled = false): Promise<void> {
    const channel = this.conn;
    if (!channel) return;
    await this.setStatus("running");
    const future: ExecuteFuture = channel.execute(startupRequest(code, precompiled));
    future.done.then(
      (reply) => {
        this.output.flushAll();
        if (reply.status === "ok") void this.setStatus("idle");
        else void this.setStatus("failed", `startup code raised ${reply.ename ?? "an error"}: ${reply.evalue ?? ""}`.trim());
      },
      () => {
        /* cancelled: the kernel restarted or was stopped; lost()/stop() record why */
      },
    );
  }

  /**
   * Gives the worker another index (and so name, `w<index>`, and output label `<label><index>`)
   * while it starts, before its environment is loaded, and retags its session at once.
   * @throws RestError when the server refuses the retag.
   */
  async renumber(index: number, label: string): Promise<void> {
    this.current = { ...this.current, index };
    this.name = `w${index}`;
    this.output.label = `${label}${index}`;
    const name = encodeWorkerTag(this.current);
    const retag = this.patches.then(() => this.backend.retag(this.sessionId, { name }));
    this.patches = retag.catch(() => undefined);
    await retag;
  }

  /**
   * Sets the status and PATCHes the session name (serialised; a session gone meanwhile is fine).
   * `stopped` and `failed` are final (a failed worker may still become stopped).
   */
  setStatus(status: WorkerStatus, reason?: string): Promise<void> {
    if (this.current.status === "stopped" || (this.current.status === "failed" && status !== "stopped")) return this.patches;
    this.current = { ...this.current, status };
    if (reason) this.why = reason;
    // Past its startup code a worker rarely prints on its own: the launching cell stops keeping a place.
    if (status !== "running") this.output.settle();
    const changed = this.record();
    this.events.status(changed);
    const name = encodeWorkerTag(this.current);
    this.patches = this.patches.then(async () => {
      if (status === "stopped") return;
      // The session is gone (stopped by someone else): the local record stays right.
      await bestEffort(`retag session of ${this.name}`, () => this.backend.retag(this.sessionId, { name }));
    });
    return this.patches;
  }

  /**
   * Stops the worker: deletes its session (a session gone already is fine) and records `stopped`.
   * Idempotent. @throws RestError when the backend fails (then, if it is unreachable, the channel
   * is closed all the same: a channel reconnecting to nothing would keep a plain Node master alive).
   */
  async stop(): Promise<void> {
    // A kernel in the middle of its server's auto-restart refuses its session's delete: the loss's
    // own delete (deleteUntilGone) goes first, and this stop then finds the session gone.
    if (this.losing) await this.losing;
    if (this.current.status === "stopped") return;
    this.stopping = true;
    try {
      await this.backend.stop(this.sessionId);
    } catch (e) {
      if (isRestError(e) && e.code === "unreachable") this.serverGone();
      if (!isRestError(e) || e.code !== "not_found") throw e;
    }
    this.output.close();
    await this.setStatus("stopped");
    this.end();
  }

  /**
   * Its server is out of reach while the worker is being stopped: closes its output and its
   * channel, which would otherwise reconnect to nothing for ever (@jupyterlab/services polls
   * `GET /api/kernels/<id>` every 10-30 s until disposed, keeping a plain Node master alive, and
   * reaching whatever listens on that port next). Its record stays as it was. Never throws.
   */
  serverGone(): void {
    this.output.close();
    this.release();
  }

  /** Undoes a launch that failed before the worker was handed out: closes and deletes it. Never throws. */
  async discard(): Promise<void> {
    this.stopping = true;
    this.output.close();
    this.release();
    await bestEffort(`delete session of ${this.name}`, () => this.backend.stop(this.sessionId));
  }

  /** Drops the channel (a disposed connection still holds ~200 KB); record and output stay. */
  release(): void {
    for (const d of this.detach.splice(0)) d();
    this.conn?.dispose();
    this.conn = undefined;
    this.hidden.clear();
    this.routes.clear();
  }

  /** Interrupts what the worker's kernel runs now (its state is kept). @throws RestError when the backend fails. */
  interrupt(): Promise<void> {
    return this.backend.interrupt(this.kernelId);
  }

  /** The language of the worker's kernel (`language_info.name`), once it answered `kernel_info`. */
  async language(): Promise<string | undefined> {
    return (await this.kernelInfo()).language;
  }

  /** The kernel's `language_info.name` and `implementation` (from its kernel_info reply), where it said them. */
  async kernelInfo(): Promise<{ language?: string; implementation?: string }> {
    const info = (await this.conn?.ready) as { language_info?: { name?: unknown }; implementation?: unknown } | undefined;
    return {
      language: typeof info?.language_info?.name === "string" ? info.language_info.name : undefined,
      implementation: typeof info?.implementation === "string" ? info.implementation : undefined,
    };
  }

  /**
   * Sends one request of a caller's (remote execution, src/workers/request.ts) on the worker's
   * kernel: its iopub messages (its own `idle` status included) go to `observe` and its output, labelled like the worker's, to
   * `sink` instead of the launching cell (its value and error are the caller's to report).
   * `undefined` when the worker has ended. Call `close()` once the request settled.
   */
  send(request: ExecuteRequest, sink: OutputSink | null, observe: (msg: IopubMessage) => void): SentRequest | undefined {
    const channel = this.conn;
    if (!channel) return undefined;
    const output = new WorkerOutput({ label: this.output.label, sink });
    const future = channel.execute(request);
    future.done.then(
      (reply) => {
        if (reply.status === "ok") this.worked = true;
      },
      () => undefined, // the caller handles a cancelled request
    );
    const release = this.routes.add(future.msgId, (msg) => {
      observe(msg);
      show(msg, output, { results: false, errors: false });
    });
    return {
      future,
      close: () => {
        output.close();
        release();
      },
    };
  }

  private route(msg: IopubMessage): void {
    if (msg.type === "status") {
      const state = msg.content.execution_state;
      this.state = state;
      if (state === "idle") this.output.flushAll();
      const loss = lossOf(state);
      if (loss) this.onLoss(loss);
      // A request's own idle goes to its caller too: its reply should follow (request.ts waits for it a bounded time).
      if (state === "idle" && msg.parentId) this.routes.get(msg.parentId)?.(msg);
      return;
    }
    if (msg.parentId && this.hidden.has(msg.parentId)) return;
    const routed = msg.parentId ? this.routes.get(msg.parentId) : undefined;
    if (routed) routed(msg);
    else show(msg, this.output, { results: true, errors: true });
  }

  /**
   * Why the worker was lost, once its kernel died or restarted (set before its requests are
   * cancelled, so they can say it); `undefined` while it runs.
   */
  get lossReason(): string | undefined {
    return this.lostWhy;
  }

  /**
   * The worker's kernel restarted (its process exited: the server restarts it with the same id and
   * no state) or died. Its channel goes first (what it was running ends at once, naming why); it
   * is marked `failed` with a reason a person understands and its kernel deleted, so the server
   * does not keep restarting a worker whose code exits again. The record stays listed until the
   * worker is restarted or stopped. A session deleted by someone else is recorded as `stopped`.
   */
  private onLoss(why: "restarting" | "dead"): void {
    if (this.stopping || this.ended) return;
    this.losing = this.lost(why);
  }

  private async lost(why: "restarting" | "dead"): Promise<void> {
    if (this.stopping || this.ended) return;
    this.stopping = true;
    if (why === "dead" && this.shutdownAsked) {
      // It said it was shutting down on request (its session deleted elsewhere: the Sense panel,
      // JupyterLab's Running panel): stopped, not lost.
      this.release();
      this.output.close();
      await this.setStatus("stopped");
      this.end();
      return;
    }
    const reason = (this.lostWhy = this.describeLoss(why));
    // The record says so at once (a table or a map's error read right after the loss agree with it).
    const failed = this.setStatus("failed", reason);
    this.release();
    let stillThere = true;
    try {
      await this.backend.getSession(this.sessionId);
    } catch {
      stillThere = false;
    }
    if (!stillThere && why === "dead") {
      this.output.close();
      await failed;
      await this.setStatus("stopped");
    } else {
      // Said where the user looks (the launching cell), not only in the record: a silent failure reads as a hang.
      this.output.notice(`Sense: worker ${this.name} failed: ${reason}; its kernel is removed, its record stays (restartWorkers("${this.name}") starts a fresh one in its place).`);
      this.output.close();
      await failed;
      await deleteUntilGone(this.backend, this.sessionId, this.kernelId);
    }
    this.end();
  }

  /** What can be known of how the kernel ended: an exit note (a container entry's), the process's exit (direct), or what the server saw. */
  private describeLoss(why: "restarting" | "dead"): string {
    const plain = why === "dead" ? "its kernel died" : "its kernel process exited and was restarted by the server, so its state is lost";
    const note = this.projectHome ? takeExitNote(this.projectHome, this.kernelId) : undefined;
    if (note) return `${note.reason} (${plain})`;
    const how = this.backend.exitOf?.(this.kernelId);
    if (how !== undefined) return exitText(how);
    return `${plain} (the server does not say how it ended: a kill, a crash, running out of memory, or its host gone)`;
  }

  private end(): void {
    this.release();
    this.events.ended(this);
  }
}
