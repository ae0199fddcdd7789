/**
 * Cleanup that must not fail the operation it belongs to (closing, deleting, notifying): one
 * helper runs it and records what it swallowed in the `sense` debug log (`NODE_DEBUG=sense`),
 * so a cleanup that keeps failing is visible instead of silent.
 */
import { debuglog } from "node:util";

/** Writes one line to the `sense` debug log (`NODE_DEBUG=sense`); never throws. */
export const debugLog: (message: string, ...args: unknown[]) => void = debuglog("sense");

/** The message of what a cleanup swallowed, for the debug log. */
function describe(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}

/**
 * Runs `fn`; a throw or rejection is recorded in the debug log under `what` and swallowed.
 * Resolves with `fn`'s value, or `undefined` when it failed. Never rejects.
 */
export async function bestEffort<T>(what: string, fn: () => T | Promise<T>): Promise<T | undefined> {
  try {
    return await fn();
  } catch (e) {
    debugLog("%s failed (ignored): %s", what, describe(e));
    return undefined;
  }
}

/** The synchronous {@link bestEffort}: runs `fn`, records and swallows a throw. Never throws. */
export function bestEffortSync<T>(what: string, fn: () => T): T | undefined {
  try {
    return fn();
  } catch (e) {
    debugLog("%s failed (ignored): %s", what, describe(e));
    return undefined;
  }
}
