/**
 * Process lifecycle hooks: code that must run before this process (a master kernel or a plain
 * Node master) goes away, such as stopping its workers. A {@link Lifecycle} owns the hooks of one
 * process; the functional API below (`onShutdown`, `runShutdownHooks`, ...) uses one default
 * instance, made on first use. The Sense kernel calls {@link runShutdownHooks} on
 * `shutdown_request` (also on restart); plain Node processes run them on SIGINT/SIGTERM/beforeExit
 * once {@link installProcessHooks} was called.
 */

import { bestEffort } from "./util/best-effort";
import { processDefault } from "./util/process-default";
import { within } from "./util/timing";

type Hook = () => Promise<void> | void;

/**
 * What a {@link Lifecycle} needs of the process it watches (default: `process`); tests pass a fake
 * emitter so no real signal handler is installed.
 */
export interface LifecycleProcess {
  once(event: string, listener: () => void): unknown;
  on(event: string, listener: () => void): unknown;
  off(event: string, listener: () => void): unknown;
  listenerCount(event: string): number;
  exit(code: number): void;
}

/** The shutdown hooks of one process, and the signal handlers that run them. */
export class Lifecycle {
  private readonly hooks = new Set<Hook>();
  private installed = false;

  constructor(private readonly proc: LifecycleProcess = process) {}

  /** Registers `hook` to run before shutdown; returns a function that unregisters it. */
  onShutdown(hook: Hook): () => void {
    this.hooks.add(hook);
    return () => this.hooks.delete(hook);
  }

  /**
   * Runs every hook registered here concurrently and waits for them, at most `timeoutMs`.
   * Never throws: a failing hook must not keep the others (or the shutdown) from happening.
   */
  async runShutdownHooks(timeoutMs = 5_000): Promise<void> {
    await within(Promise.all([...this.hooks].map((h) => bestEffort("shutdown hook", h))), timeoutMs);
  }

  /**
   * Calls `listener` each time the process is interrupted while it is registered: SIGINT, which is
   * how a Jupyter Server interrupts a kernel (`interrupt_mode: "signal"`, every Sense kernel). Only
   * when something handles SIGINT already (a kernel; a plain master after {@link installProcessHooks}):
   * a listener of ours alone would keep Ctrl-C from ending a process. Returns the unregister function.
   */
  onInterrupt(listener: () => void): () => void {
    if (this.proc.listenerCount("SIGINT") === 0) return () => undefined;
    this.proc.on("SIGINT", listener);
    return () => void this.proc.off("SIGINT", listener);
  }

  /**
   * For a plain Node master: run the hooks on SIGINT/SIGTERM (then exit with the usual code) and
   * on `beforeExit`. Once per instance. Inside a kernel the kernel itself calls
   * {@link runShutdownHooks}; this is a no-op there when `insideKernel` is true.
   */
  installProcessHooks(options: { insideKernel?: boolean } = {}): void {
    if (this.installed || options.insideKernel) return;
    this.installed = true;
    for (const sig of ["SIGINT", "SIGTERM"] as const) {
      this.proc.once(sig, () => {
        // Held until the hooks end: their deadline timers are unref'd, and a process whose loop
        // empties mid-shutdown would exit 0 instead of with the signal's code.
        const hold = setInterval(() => undefined, 60_000);
        void this.runShutdownHooks().finally(() => {
          clearInterval(hold);
          this.proc.exit(sig === "SIGINT" ? 130 : 143);
        });
      });
    }
    this.proc.once("beforeExit", () => {
      void this.runShutdownHooks();
    });
  }
}

/**
 * The process's default lifecycle (the one the functions below and the default `Cluster` use).
 * One for the process: the kernel runs the hooks it finds through `runShutdownHooks` here.
 */
export const defaultLifecycle: () => Lifecycle = processDefault(() => new Lifecycle());

/** Registers `hook` to run before this process shuts down; returns a function that unregisters it. */
export function onShutdown(hook: Hook): () => void {
  return defaultLifecycle().onShutdown(hook);
}

/**
 * Runs every hook registered with {@link onShutdown} concurrently and waits for them, at most
 * `timeoutMs`. Never throws.
 */
export function runShutdownHooks(timeoutMs = 5_000): Promise<void> {
  return defaultLifecycle().runShutdownHooks(timeoutMs);
}

/** As {@link Lifecycle.onInterrupt}, for this process. Never throws. */
export function onInterrupt(listener: () => void): () => void {
  return defaultLifecycle().onInterrupt(listener);
}

/** As {@link Lifecycle.installProcessHooks}, for this process's default hooks. Never throws. */
export function installProcessHooks(options: { insideKernel?: boolean } = {}): void {
  defaultLifecycle().installProcessHooks(options);
}
