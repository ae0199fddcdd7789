/**
 * One kernel this process started from its kernelspec, with no Jupyter Server: its process, its
 * client, and the lifecycle a server's kernel manager would give it (ready, interrupt, shutdown
 * with a deadline, then SIGKILL of its whole process group).
 */
import { randomUUID } from "node:crypto";
import { WorkerError } from "../../src/errors";
import type { Message } from "../../src/protocol/wire";
import { KernelClient } from "../../src/backends/direct/client";
import { findKernelSpec } from "../../src/backends/direct/kernelspecs";
import { launchKernel, LaunchedKernel, LaunchKernelOptions } from "../../src/backends/direct/spawn";
import type { PathEnv } from "../../src/jupyter/paths";

/** Options of {@link DirectKernel.start}. */
export interface StartKernelOptions extends LaunchKernelOptions {
  /** How long the kernel may take to answer (default 60 s). */
  readyTimeoutMs?: number;
}

/** What one `execute_request` produced. */
export interface ExecuteOutcome {
  reply: Message;
  /** Every iopub message parented to the request, in order, up to its `idle` status. */
  iopub: Message[];
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // The group is already gone.
  }
}

/** A running kernel; stop it with {@link DirectKernel.shutdown}. */
export class DirectKernel {
  private stopped = false;

  private constructor(
    /** The kernelspec's name. */
    readonly name: string,
    private readonly launched: LaunchedKernel,
    /** The kernel's client (shell, control, iopub). */
    readonly client: KernelClient,
  ) {}

  /** The kernel id. */
  get id(): string {
    return this.launched.id;
  }

  /** The kernel process's pid (the leader of its process group). */
  get pid(): number {
    return this.launched.pid;
  }

  /** Its connection file (0600, removed when the process ends). */
  get connectionFile(): string {
    return this.launched.connectionFile;
  }

  /** Resolves when the kernel process has ended. */
  get exited(): Promise<number | string> {
    return this.launched.exited;
  }

  /**
   * Starts kernelspec `name` and waits until it answers on shell and iopub.
   * @throws WorkerError `unknown_engine` (no such kernelspec, naming where it looked), `launch_failed`, `timeout`.
   */
  static async start(name: string, options: StartKernelOptions & { paths?: PathEnv }): Promise<DirectKernel> {
    const spec = findKernelSpec(name, options.paths);
    const launched = await launchKernel(spec, options);
    const client = KernelClient.connect(launched.info);
    const kernel = new DirectKernel(spec.name, launched, client);
    try {
      await client.ready(options.readyTimeoutMs ?? 60_000, launched.exited);
    } catch (e) {
      await kernel.kill();
      throw e;
    }
    return kernel;
  }

  /** Runs `code`; resolves with the reply and the request's iopub messages (streams, results, errors). */
  async execute(code: string, options: { silent?: boolean; storeHistory?: boolean; stopOnError?: boolean; timeoutMs?: number; onIopub?: (m: Message) => void } = {}): Promise<ExecuteOutcome> {
    const msgId = randomUUID();
    const iopub: Message[] = [];
    let idle: () => void = () => undefined;
    const done = new Promise<void>((r) => (idle = r));
    const off = this.client.onIopub((m) => {
      if ((m.parent as { msg_id?: string }).msg_id !== msgId) return;
      iopub.push(m);
      options.onIopub?.(m);
      if (m.header.msg_type === "status" && (m.content as { execution_state?: string }).execution_state === "idle") idle();
    });
    try {
      const reply = await this.client.request(
        "shell",
        "execute_request",
        { code, silent: options.silent ?? false, store_history: options.storeHistory ?? !options.silent, user_expressions: {}, allow_stdin: false, stop_on_error: options.stopOnError ?? true },
        { msgId, timeoutMs: options.timeoutMs ?? 24 * 3600_000 },
      );
      await done;
      return { reply, iopub };
    } finally {
      off();
    }
  }

  /** Interrupts what the kernel runs: SIGINT to its process group, or `interrupt_request` when its spec says `message`. */
  async interrupt(): Promise<void> {
    if (this.launched.interruptMode === "message") {
      await this.client.request("control", "interrupt_request", {}, { timeoutMs: 10_000 });
    } else {
      signalGroup(this.pid, "SIGINT");
    }
  }

  /**
   * Asks the kernel to shut down (`shutdown_request` on control) and waits up to `timeoutMs` for
   * its process to end, then kills its process group. Safe to call twice.
   */
  async shutdown(timeoutMs = 5_000): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<"late">((r) => (timer = setTimeout(() => r("late"), timeoutMs)));
    try {
      await Promise.race([this.client.request("control", "shutdown_request", { restart: false }, { timeoutMs }).catch(() => undefined), deadline]);
      await Promise.race([this.exited, deadline]);
      // Late or not: what the kernel started (its subprocesses, its group) goes with it.
      signalGroup(this.pid, "SIGKILL");
      await this.exited;
    } finally {
      if (timer) clearTimeout(timer);
      this.client.close();
    }
  }

  /** Kills the kernel's process group at once. */
  async kill(): Promise<void> {
    this.stopped = true;
    signalGroup(this.pid, "SIGKILL");
    await this.exited;
    this.client.close();
  }
}

/** @throws WorkerError `kernel_error` naming ename/evalue when `outcome`'s reply is an error. */
export function expectOk(outcome: ExecuteOutcome): ExecuteOutcome {
  const c = outcome.reply.content as { status?: string; ename?: string; evalue?: string };
  if (c.status !== "ok") throw new WorkerError("kernel_error", `${c.ename ?? "Error"}: ${c.evalue ?? c.status ?? "no status"}`);
  return outcome;
}
