/**
 * One read shared by concurrent callers that each need a result taken after they asked: the
 * workers of one launch that each must see the cluster's sessions, their own included, share one
 * listing instead of asking 64 times (each listing is O(sessions) on the server, so one listing
 * per worker made a launch of N workers O(N²) there).
 */

/**
 * Shares reads of `read` among callers. {@link FreshRead.get} resolves with the result (or the
 * rejection) of a read that started after the call, never one already under way (which may
 * predate what the caller just did); callers that arrive while a read runs share the next one.
 * With `participants` > 0 the first read waits until that many callers asked or left
 * ({@link FreshRead.leave}), and serves them all.
 */
export class FreshRead<T> {
  private running: Promise<T> | undefined;
  private next: Promise<T> | undefined;
  private count = 0;
  private gate: { promise: Promise<T>; open: () => void } | undefined;

  constructor(
    private readonly read: () => Promise<T>,
    private pending = 0,
  ) {}

  /** How many reads were started. */
  get reads(): number {
    return this.count;
  }

  /** The result of a read started after this call (and, for a participant, after every other one asked or left). */
  get(): Promise<T> {
    if (this.pending > 0) {
      const gate = (this.gate ??= this.makeGate());
      if (--this.pending === 0) gate.open();
      return gate.promise;
    }
    if (this.next) return this.next;
    const running = this.running;
    if (!running) return this.start();
    const after = () => {
      this.next = undefined;
      return this.start();
    };
    this.next = running.then(after, after);
    return this.next;
  }

  /** A participant that will never ask (its start failed): the first read no longer waits for it. */
  leave(): void {
    if (this.pending <= 0) return;
    if (--this.pending === 0) this.gate?.open();
  }

  private makeGate(): { promise: Promise<T>; open: () => void } {
    let open!: () => void;
    const opened = new Promise<void>((resolve) => (open = resolve));
    return { promise: opened.then(() => this.start()), open };
  }

  private start(): Promise<T> {
    this.count++;
    const p = Promise.resolve().then(() => this.read());
    this.running = p;
    const clear = () => {
      if (this.running === p) this.running = undefined;
    };
    p.then(clear, clear);
    return p;
  }
}
