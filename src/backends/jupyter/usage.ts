/**
 * `usage_request` over a `@jupyterlab/services` kernel connection: services has no method for it
 * (JupyterLab's Kernel Usage panel asks through jupyter-resource-usage's server extension), so the
 * request goes as a plain control message and the reply is read off the future's reply hook. The
 * future is not awaited: kernels do not publish busy/idle for it (a table polling every worker
 * every 2 s would make each of them flicker busy), and services' `done` waits for that idle.
 */
import type { Kernel, KernelMessage } from "@jupyterlab/services";
import { bestEffortSync } from "../../util/best-effort";
import { usageReply, usageRequestMessage, type UsageReply } from "../../protocol/usage";

/**
 * Sends a `usage_request` on `conn`'s control channel; resolves with the reply's figures, or
 * `undefined` when none came within `timeoutMs` or the connection cannot send. Never rejects.
 */
export function requestUsage(conn: Kernel.IKernelConnection, timeoutMs: number): Promise<UsageReply | undefined> {
  return new Promise((resolve) => {
    let future: Kernel.IControlFuture | undefined;
    let timer: NodeJS.Timeout | undefined;
    const finish = (answer: UsageReply | undefined) => {
      if (timer) clearTimeout(timer);
      timer = undefined;
      bestEffortSync("dispose usage future", () => future?.dispose());
      future = undefined;
      resolve(answer);
    };
    try {
      const msg = usageRequestMessage(conn.clientId, conn.username) as unknown as KernelMessage.IControlMessage;
      future = conn.sendControlMessage(msg, true, false);
    } catch {
      resolve(undefined);
      return;
    }
    future.done.catch(() => undefined);
    future.onReply = (reply) => finish(usageReply(reply.content));
    timer = setTimeout(() => finish(undefined), timeoutMs);
  });
}
