/**
 * The steps every worker kernel goes through before the user's code runs, whether it was started
 * for a launch or taken from the warm pool: wait for the kernel to answer, then load its
 * environment from a 0600 file through the silent preamble (which may start the watchdog).
 */
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import type { Kernel, KernelMessage } from "@jupyterlab/services";
import { isSenseError, WorkerError } from "../errors";
import type { RestClient } from "../rest";
import { precompiledMetadata } from "../transpile";
import { buildPreamble, PreambleLanguage } from "./preamble";

/** Writes the worker's env to a fresh 0600 file under `<projectHome>/.sense/`; returns its path. */
export function writeEnvFile(projectHome: string, env: Record<string, string>): string {
  const dir = path.join(projectHome, ".sense");
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = path.join(dir, `env-${randomBytes(12).toString("hex")}.json`);
  // "wx": never follow or reuse an existing file; the mode applies at creation.
  fs.writeFileSync(file, JSON.stringify(env), { mode: 0o600, flag: "wx" });
  return file;
}

/** Rejects with WorkerError `timeout` naming `what` when `p` takes longer than `ms`. */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new WorkerError("timeout", `${what} did not finish within ${Math.round(ms / 1000)} s`)), ms);
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
 * fresh 0600 file (deleted by the preamble, or here if it never ran).
 * @throws WorkerError `timeout` (kernel or preamble too slow), `launch_failed` (the preamble
 *   raised, or the kernel vanished), RestError `unreachable` when the server went away.
 */
export async function loadEnvironment(a: LoadEnvironmentArgs): Promise<void> {
  const envFile = writeEnvFile(a.projectHome, a.env);
  try {
    const gone = serverGone(a.rest, a.conn, a.kernelId);
    let reply: KernelMessage.IExecuteReplyMsg;
    try {
      await Promise.race([withTimeout(a.conn.info, a.timeoutMs, `${a.what} start`), gone.promise]);
      // The JS preamble is plain JavaScript (valid TypeScript too): a Sense kernel runs it without a compiler.
      const content = { code: buildPreamble(a.language, envFile, { watchdog: a.watchdog }), silent: true, store_history: false, stop_on_error: true };
      const pre = a.conn.requestExecute(content, true, a.language === "javascript" ? precompiledMetadata() : undefined);
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
  }
}
