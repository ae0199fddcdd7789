/**
 * When the master is interrupted while it waits for workers: the caller's `AbortSignal`, and, in a
 * kernel, SIGINT (how a Jupyter Server interrupts a kernel whose interrupt mode is `signal`).
 */

/** A watch on the master's interrupts for the length of one call. */
export interface InterruptWatch {
  /** Settles (resolves) when the master is interrupted. */
  readonly interrupted: Promise<void>;
  /** True once interrupted. */
  readonly fired: boolean;
  /** Stops watching (always call it). */
  dispose(): void;
}

/** The process-level part: by default the real process. */
export interface SignalSource {
  listenerCount(event: "SIGINT"): number;
  on(event: "SIGINT", listener: () => void): unknown;
  off(event: "SIGINT", listener: () => void): unknown;
}

/**
 * Watches `signal` and SIGINT. SIGINT is only listened to when something else in the process
 * already handles it (a kernel does): in a plain Node process Ctrl-C must keep ending the master
 * (its workers then go with it), which a listener here would prevent.
 */
export function watchInterrupts(signal?: AbortSignal, proc: SignalSource = process): InterruptWatch {
  let fire!: () => void;
  let fired = false;
  const interrupted = new Promise<void>((resolve) => {
    fire = () => {
      fired = true;
      resolve();
    };
  });
  const onAbort = () => fire();
  if (signal?.aborted) fire();
  signal?.addEventListener("abort", onAbort, { once: true });
  const listening = proc.listenerCount("SIGINT") > 0;
  if (listening) proc.on("SIGINT", onAbort);
  return {
    interrupted,
    get fired() {
      return fired;
    },
    dispose() {
      signal?.removeEventListener("abort", onAbort);
      if (listening) proc.off("SIGINT", onAbort);
    },
  };
}
