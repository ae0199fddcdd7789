/**
 * The steps every worker kernel goes through before the user's code runs, whether it was started
 * for a launch or taken from the warm pool: wait for the kernel to answer, then load its
 * environment from a sealed 0600 file (env-file.ts) through the silent preamble (which may start
 * the watchdog).
 */
import * as fs from "node:fs";
import type { Kernel, KernelMessage } from "@jupyterlab/services";
import { isSenseError, WorkerError } from "../errors";
import type { RestClient } from "../rest";
import { writeSealedEnvFile } from "./env-file";
import { keeperForgetEnvFile, keeperTrackEnvFile } from "./keeperClient";
import { MAX_TIMER_MS } from "./options";
import { buildPreamble, PreambleLanguage } from "./preamble";

/** Rejects with WorkerError `timeout` naming `what` when `p` takes longer than `ms`. */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<T>((_, reject) => {
      // Clamped: past MAX_TIMER_MS setTimeout fires at once (options refuse such timeouts; this is the backstop).
      timer = setTimeout(() => reject(new WorkerError("timeout", `${what} did not finish within ${Math.round(ms / 1000)} s`)), Math.min(ms, MAX_TIMER_MS));
    }),
  ]).finally(() => timer && clearTimeout(timer));
}

/**
 * Rejects when the worker's websocket drops and the server no longer answers for the kernel
 * (server stopped or killed, kernel deleted): without it a launch in flight waits out the whole
 * start timeout (120 s) while the websocket keeps reconnecting to nothing.
 */
export function serverGone(rest: RestClient, conn: Kernel.IKernelConnection, kernelId: string): { promise: Promise<never>; dispose(): void } {
  let onChange: ((_: unknown, status: Kernel.ConnectionStatus) => void) | undefined;
  let timer: NodeJS.Timeout | undefined;
  const promise = new Promise<never>((_, reject) => {
    const check = () => {
      rest.getKernel(kernelId).then(
        () => undefined,
        (e: unknown) => reject(isSenseError(e) && e.code === "unreachable" ? e : new WorkerError("launch_failed", `worker kernel ${kernelId} disappeared from the server while starting`)),
      );
    };
    onChange = (_sender, status) => {
      if (status !== "connected") check();
    };
    // Optional chaining: test fakes of the connection have no status signal (the poll still runs).
    conn.connectionStatusChanged?.connect(onChange);
    // A socket that never connected stays "connecting" through its retries (no event): poll too.
    timer = setInterval(check, 1_000);
    timer.unref();
  });
  promise.catch(() => undefined);
  return {
    promise,
    dispose: () => {
      if (timer) clearInterval(timer);
      if (onChange) conn.connectionStatusChanged?.disconnect(onChange);
    },
  };
}

/** What {@link loadEnvironment} needs. */
export interface LoadEnvironmentArgs {
  rest: RestClient;
  conn: Kernel.IKernelConnection;
  kernelId: string;
  /** Shown in errors: `worker w3 (sense-fast)`. */
  what: string;
  language: PreambleLanguage;
  projectHome: string;
  env: Record<string, string>;
  watchdog: boolean;
  timeoutMs: number;
  /** The preamble's msg id is added here, so its (empty) output is not shown as the user's. */
  hidden: Set<string>;
}

/**
 * Waits until the kernel answers (kernel_info), then runs the preamble that loads `env` from a
 * fresh sealed 0600 file (deleted by the preamble, or here if it never ran, or by the keeper if
 * this process dies first); its key travels in the preamble only.
 * @throws WorkerError `timeout` (kernel or preamble too slow), `launch_failed` (the preamble
 *   raised, or the kernel vanished), RestError `unreachable` when the server went away.
 */
export async function loadEnvironment(a: LoadEnvironmentArgs): Promise<void> {
  // The keeper removes it if this process dies before the finally below runs.
  const { file: envFile, key } = writeSealedEnvFile(a.projectHome, a.env, { beforeWrite: keeperTrackEnvFile });
  try {
    const gone = serverGone(a.rest, a.conn, a.kernelId);
    let reply: KernelMessage.IExecuteReplyMsg;
    try {
      await Promise.race([withTimeout(a.conn.info, a.timeoutMs, `${a.what} start`), gone.promise]);
      const pre = a.conn.requestExecute({ code: buildPreamble(a.language, envFile, { watchdog: a.watchdog, key }), silent: true, store_history: false, stop_on_error: true }, true);
      a.hidden.add(pre.msg.header.msg_id);
      reply = await Promise.race([withTimeout(pre.done, a.timeoutMs, `${a.what} environment setup`), gone.promise]);
    } finally {
      gone.dispose();
    }
    const content = reply.content as { status: string; ename?: string; evalue?: string };
    if (content.status !== "ok") {
      throw new WorkerError("launch_failed", `${a.what} could not load its environment: ${content.ename ?? content.status}: ${content.evalue ?? ""}`);
    }
  } catch (e) {
    if (isSenseError(e)) throw e;
    throw new WorkerError("launch_failed", `${a.what} failed to start: ${(e as Error).message}`);
  } finally {
    fs.rmSync(envFile, { force: true });
    keeperForgetEnvFile(envFile);
  }
}
