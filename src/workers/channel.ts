/**
 * Routing of a worker's iopub output by request: remote execution (src/remote) sends requests on a
 * worker's channel and takes their output into the calling cell instead of the launching one.
 */
import type { IopubMessage } from "../backends/backend";

/** Receives the iopub messages (not `status`) whose parent is one request. */
export type IopubRoute = (msg: IopubMessage) => void;

/**
 * Per worker: which handler takes the output of which request. Bounded: of finished requests only
 * the most recent {@link RouteTable.KEEP_DONE} keep their route (thousands of map chunks must not grow
 * it); output a timer of a finished request writes later still lands while its route is kept.
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
