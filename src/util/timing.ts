/**
 * Waiting, in one place: a sleep, a deadline on a promise, and a bounded wait that never rejects.
 * A sleep keeps the process alive while awaited (as any pending work does); a deadline's timer
 * does not.
 */
import { WorkerError } from "../errors";

/** The longest delay Node.js keeps for a timer (2^31 - 1 ms, about 24 days); a longer one fires at once. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}

/**
 * Resolves with `p`'s value, or after `ms` with `undefined` (whichever comes first); never rejects
 * because of the deadline (a rejection of `p` passes through).
 */
export async function within<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms).unref()))]);
  } finally {
    if (timer) clearTimeout(timer);
  }
}

/**
 * Resolves with `p`'s value; rejects with WorkerError `timeout` naming `what` when `p` takes longer than `ms`.
 * @throws WorkerError `timeout`, or whatever `p` rejects with.
 */
export async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        // Clamped: past MAX_TIMER_MS setTimeout fires at once (options refuse such timeouts; this is the backstop).
        timer = setTimeout(() => reject(new WorkerError("timeout", `${what} did not finish within ${Math.round(ms / 1000)} s`)), Math.min(ms, MAX_TIMER_MS));
      }),
    ]);
  } finally {
    if (timer) clearTimeout(timer);
  }
}
