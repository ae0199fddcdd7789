/**
 * Removing what a worker leaves on the server, when the polite way fails: a kernel in the middle
 * of an auto-restart can refuse its session's delete, so its kernel is deleted directly, until
 * the server no longer has it.
 */
import { isRestError } from "../jupyter/rest";
import { bestEffort } from "../util/best-effort";
import { sleep } from "../util/timing";
import type { KernelBackend } from "./backend";

/**
 * Deletes a session, and its kernel if the session delete fails, retrying for up to `timeoutMs`
 * until the backend answers `not_found` for the kernel. Never throws (gives up at the deadline).
 */
export async function deleteUntilGone(backend: KernelBackend, sessionId: string, kernelId: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await backend.stop(sessionId);
    } catch {
      // The session would not go: the kernel itself, then check below either way.
      await bestEffort(`delete kernel ${kernelId}`, () => backend.stopKernel(kernelId));
    }
    let gone = false;
    try {
      await backend.getKernel(kernelId);
    } catch (e) {
      gone = isRestError(e) && e.code === "not_found";
    }
    if (gone || Date.now() > deadline) return;
    await sleep(200);
  }
}

/** Stops a session; a session that is gone already counts as stopped. @throws RestError otherwise. */
export async function stopSession(backend: KernelBackend, sessionId: string): Promise<void> {
  try {
    await backend.stop(sessionId);
  } catch (e) {
    if (!isRestError(e) || e.code !== "not_found") throw e;
  }
}
