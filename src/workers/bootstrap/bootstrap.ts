/**
 * Env bootstrap: the steps every worker kernel goes through before the user's code runs, whether
 * it was started for a launch or taken from the warm pool. The master's part of the environment
 * is built here ({@link masterEnv}); it reaches the kernel in a fresh sealed 0600 file (env-file.ts)
 * that the silent preamble (preamble.ts) reads with its one-time key, deletes, and then starts the watchdog.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import { isSenseError, WorkerError } from "../../errors";
import { getNetwork } from "../../platform/network";
import { isRestError } from "../../jupyter/rest";
import type { WorkerSize } from "../../jupyter/schemas";
import { withTimeout } from "../../util/timing";
import type { ExecuteReply, KernelBackend, KernelChannel } from "../../backends/backend";
import type { ResolvedContext } from "../../jupyter/context-input";
import { SIZES } from "../options";
import { writeSealedEnvFile } from "./env-file";
import { buildPreamble, PreambleLanguage } from "./preamble";

/**
 * The master's part of every worker's environment (the same for pooled kernels and fresh ones).
 * `projectIp` is the address workers reach the master's services at.
 */
export function masterEnv(ctx: ResolvedContext, sizeName: WorkerSize, watchdog: boolean, projectIp: string): Record<string, string> {
  const size = SIZES[sizeName];
  return {
    SENSE_MASTER_ID: ctx.masterId,
    SENSE_MASTER_KIND: ctx.kernelId && !ctx.isWorker ? "kernel" : "process",
    SENSE_MASTER_PID: String(process.pid),
    SENSE_MASTER_HOST: os.hostname(),
    // How the worker reaches the cluster: the server's API, or the direct backend's session store.
    ...(ctx.backend === "server" ? { SENSE_API_URL: ctx.endpoint.baseUrl, SENSE_API_TOKEN: ctx.endpoint.token } : { SENSE_BACKEND: "direct", SENSE_RUNTIME_DIR: ctx.runtimeDir }),
    SENSE_PROJECT_HOME: ctx.projectHome,
    SENSE_PROJECT_IP: projectIp,
    SENSE_WORKER_SIZE: sizeName,
    SENSE_WORKER_CPUS: String(size.cpu),
    SENSE_WORKER_MEMORY_MB: String(size.memoryMiB),
    ...(watchdog ? {} : { SENSE_WATCHDOG: "0" }),
  };
}

/**
 * Rejects when the worker's channel drops and the backend no longer answers for the kernel
 * (server stopped or killed, kernel deleted): without it a launch in flight waits out the whole
 * start timeout (120 s) while the websocket keeps reconnecting to nothing.
 */
export function serverGone(backend: KernelBackend, channel: KernelChannel, kernelId: string): { promise: Promise<never>; dispose(): void } {
  let timer: NodeJS.Timeout | undefined;
  let detach: () => void = () => undefined;
  const promise = new Promise<never>((_, reject) => {
    const check = () => {
      backend.getKernel(kernelId).then(
        () => undefined,
        (e: unknown) => reject(isRestError(e) && e.code === "unreachable" ? e : new WorkerError("launch_failed", `worker kernel ${kernelId} disappeared from the server while starting`)),
      );
    };
    detach = channel.onConnection((status) => {
      if (status !== "connected") check();
    });
    // A socket that never connected stays "connecting" through its retries (no event): poll too.
    timer = setInterval(check, 1_000);
    timer.unref();
  });
  promise.catch(() => undefined);
  return {
    promise,
    dispose: () => {
      if (timer) clearInterval(timer);
      detach();
    },
  };
}

/** What {@link loadEnvironment} needs. */
export interface LoadEnvironmentArgs {
  backend: KernelBackend;
  channel: KernelChannel;
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
  /** Told about the env file before it exists and once it is gone (the keeper removes it if this process dies between). */
  envFiles?: EnvFileTracker;
}

/** Who learns about worker env files in flight (the keeper link). */
export interface EnvFileTracker {
  track(file: string): void;
  forget(file: string): void;
}

/**
 * Waits until the kernel answers (kernel_info), then runs the preamble that loads `env` from a
 * fresh sealed 0600 file (deleted by the preamble, or here if it never ran, or by the keeper if
 * this process dies first); its key travels in the preamble only.
 * @throws WorkerError `timeout` (kernel or preamble too slow), `launch_failed` (the preamble
 *   raised, or the kernel vanished), RestError `unreachable` when the server went away.
 */
export async function loadEnvironment(a: LoadEnvironmentArgs): Promise<void> {
  const { file: envFile, key } = writeSealedEnvFile(a.projectHome, a.env, { beforeWrite: (f) => a.envFiles?.track(f) });
  try {
    const gone = serverGone(a.backend, a.channel, a.kernelId);
    let reply: ExecuteReply;
    try {
      await Promise.race([withTimeout(a.channel.ready, a.timeoutMs, `${a.what} start`), gone.promise]);
      // The JS preamble is plain JavaScript (valid TypeScript too): a Sense kernel runs it without a compiler.
      const pre = a.channel.execute({ code: buildPreamble(a.language, envFile, { watchdog: a.watchdog, key }), silent: true, storeHistory: false, stopOnError: true, precompiled: a.language === "javascript" });
      a.hidden.add(pre.msgId);
      reply = await Promise.race([withTimeout(pre.done, a.timeoutMs, `${a.what} environment setup`), gone.promise]);
    } finally {
      gone.dispose();
    }
    if (reply.status !== "ok") {
      throw new WorkerError("launch_failed", `${a.what} could not load its environment: ${reply.ename ?? reply.status}: ${reply.evalue ?? ""}`);
    }
  } catch (e) {
    if (isSenseError(e)) throw e;
    throw new WorkerError("launch_failed", `${a.what} failed to start: ${(e as Error).message}`);
  } finally {
    fs.rmSync(envFile, { force: true });
    a.envFiles?.forget(envFile);
  }
}

/** The address workers reach the master's project at (loopback when the network cannot tell). */
export function projectIpFor(ctx: ResolvedContext): string {
  try {
    // Direct workers run on this host: they reach the master on loopback unless SENSE_PROJECT_IP says otherwise.
    return getNetwork({ baseUrl: ctx.backend === "server" ? ctx.endpoint.baseUrl : "http://127.0.0.1/" }).projectIp;
  } catch {
    return "127.0.0.1";
  }
}
