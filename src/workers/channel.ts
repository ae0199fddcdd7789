/**
 * The seam between the workers layer and remote execution (src/remote): what a caller needs of a
 * worker to run code on it — its kernel connection, its label, and a way to receive the iopub
 * output of its own requests instead of the worker's launching cell.
 */
import type { Kernel, KernelMessage } from "@jupyterlab/services";
import type { WorkerRecord } from "../schemas";

/** Receives the iopub messages (not `status`) whose parent is one request. */
export type IopubRoute = (msg: KernelMessage.IIOPubMessage) => void;

/** One worker as the remote layer sees it. */
export interface WorkerChannel {
  /** The worker's current record. */
  record(): WorkerRecord;
  /** The label its output carries (`w1`). */
  label: string;
  conn: Kernel.IKernelConnection;
  /**
   * Sends the iopub output of request `msgId` to `handler`; call the returned function once the
   * request is done. Output that arrives later (a timer the code started) still reaches the handler
   * while the route is among the most recent {@link RouteTable.KEEP_DONE} finished ones.
   */
  route(msgId: string, handler: IopubRoute): () => void;
}

/**
 * Per worker: which handler takes the output of which request. Bounded: of finished requests only
 * the most recent {@link RouteTable.KEEP_DONE} keep their route (thousands of map chunks must not grow it).
 */
export class RouteTable {
  static readonly KEEP_DONE = 64;
  private readonly routes = new Map<string, IopubRoute>();
  private readonly done: string[] = [];

  /** Adds a route; returns the function that marks its request done. */
  add(msgId: string, handler: IopubRoute): () => void {
    this.routes.set(msgId, handler);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.done.push(msgId);
      while (this.done.length > RouteTable.KEEP_DONE) this.routes.delete(this.done.shift()!);
    };
  }

  get(msgId: string): IopubRoute | undefined {
    return this.routes.get(msgId);
  }

  clear(): void {
    this.routes.clear();
    this.done.length = 0;
  }
}
