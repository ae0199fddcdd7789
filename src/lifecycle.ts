/**
 * Process lifecycle hooks: code that must run before this process (a master kernel or a plain
 * Node master) goes away, such as stopping its workers. The Sense kernel calls
 * {@link runShutdownHooks} on `shutdown_request` (also on restart); plain Node processes run them
 * on SIGINT/SIGTERM/beforeExit once {@link installProcessHooks} was called.
 */

import { bestEffort } from "./util/best-effort";
import { within } from "./util/timing";

type Hook = () => Promise<void> | void;
const hooks = new Set<Hook>();
let installed = false;

/** Registers `hook` to run before shutdown; returns a function that unregisters it. */
export function onShutdown(hook: Hook): () => void {
  hooks.add(hook);
  return () => hooks.delete(hook);
}

/**
 * Runs every registered hook concurrently and waits for them, at most `timeoutMs`.
 * Never throws: a failing hook must not keep the others (or the shutdown) from happening.
 */
export async function runShutdownHooks(timeoutMs = 5_000): Promise<void> {
  await within(Promise.all([...hooks].map((h) => bestEffort("shutdown hook", h))), timeoutMs);
}

/**
 * Calls `listener` each time this process is interrupted while it is registered: SIGINT, which is
 * how a Jupyter Server interrupts a kernel (`interrupt_mode: "signal"`, every Sense kernel). Only
 * when something handles SIGINT already (a kernel; a plain master after {@link installProcessHooks}):
 * a listener of ours alone would keep Ctrl-C from ending a process. Returns the unregister function.
 */
export function onInterrupt(listener: () => void): () => void {
  if (process.listenerCount("SIGINT") === 0) return () => undefined;
  process.on("SIGINT", listener);
  return () => void process.off("SIGINT", listener);
}

/**
 * For a plain Node master: run the hooks on SIGINT/SIGTERM (then exit with the usual code) and
 * on `beforeExit`. Inside a kernel the kernel itself calls {@link runShutdownHooks}; this is a no-op there
 * when `insideKernel` is true.
 */
export function installProcessHooks(options: { insideKernel?: boolean } = {}): void {
  if (installed || options.insideKernel) return;
  installed = true;
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    process.once(sig, () => {
      // Held until the hooks end: their deadline timers are unref'd, and a process whose loop
      // empties mid-shutdown would exit 0 instead of with the signal's code.
      const hold = setInterval(() => undefined, 60_000);
      void runShutdownHooks().finally(() => {
        clearInterval(hold);
        process.exit(sig === "SIGINT" ? 130 : 143);
      });
    });
  }
  process.once("beforeExit", () => {
    void runShutdownHooks();
  });
}
