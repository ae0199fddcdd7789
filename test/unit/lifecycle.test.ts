/**
 * Lifecycle instances with a fake process: each runs its own hooks, signal handlers run them and
 * exit with the signal's code, nothing touches the real process's handlers.
 */
import { EventEmitter } from "node:events";
import { defaultLifecycle, Lifecycle, type LifecycleProcess } from "../../src/lifecycle";

/** An emitter standing for `process`: it records exit codes instead of exiting. */
function fakeProcess(): LifecycleProcess & { emit(event: string): boolean; exits: number[]; exited: Promise<number> } {
  const emitter = new EventEmitter();
  const exits: number[] = [];
  let resolveExit: (code: number) => void = () => undefined;
  const exited = new Promise<number>((r) => (resolveExit = r));
  return Object.assign(emitter, {
    exits,
    exited,
    exit(code: number) {
      exits.push(code);
      resolveExit(code);
    },
  });
}

describe("Lifecycle", () => {
  it("runs its own hooks, not another instance's, and stops running an unregistered one", async () => {
    const a = new Lifecycle(fakeProcess());
    const b = new Lifecycle(fakeProcess());
    const ran: string[] = [];
    const offA = a.onShutdown(() => void ran.push("a1"));
    a.onShutdown(async () => {
      await new Promise((r) => setTimeout(r, 5));
      ran.push("a2");
    });
    b.onShutdown(() => void ran.push("b"));
    await a.runShutdownHooks();
    expect(ran.sort()).toEqual(["a1", "a2"]);
    offA();
    ran.length = 0;
    await a.runShutdownHooks();
    expect(ran).toEqual(["a2"]);
    expect(defaultLifecycle()).not.toBe(a);
  });

  it("a failing or hanging hook keeps neither the others nor the shutdown from happening", async () => {
    const lc = new Lifecycle(fakeProcess());
    const ran: string[] = [];
    lc.onShutdown(() => {
      throw new Error("hook bug");
    });
    lc.onShutdown(() => new Promise<void>(() => undefined));
    lc.onShutdown(() => void ran.push("ok"));
    const started = Date.now();
    await expect(lc.runShutdownHooks(50)).resolves.toBeUndefined();
    expect(ran).toEqual(["ok"]);
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it("installProcessHooks: SIGTERM runs the hooks, then exits 143; installed once per instance", async () => {
    const proc = fakeProcess();
    const lc = new Lifecycle(proc);
    const ran: string[] = [];
    lc.onShutdown(() => void ran.push("hook"));
    lc.installProcessHooks({ insideKernel: true });
    expect(proc.listenerCount("SIGTERM")).toBe(0);
    lc.installProcessHooks();
    lc.installProcessHooks();
    expect(proc.listenerCount("SIGINT")).toBe(1);
    expect(proc.listenerCount("SIGTERM")).toBe(1);
    expect(proc.listenerCount("beforeExit")).toBe(1);
    proc.emit("SIGTERM");
    expect(await proc.exited).toBe(143);
    expect(ran).toEqual(["hook"]);
    expect(proc.exits).toEqual([143]);
  });

  it("onInterrupt listens only when something handles SIGINT already", () => {
    const proc = fakeProcess();
    const lc = new Lifecycle(proc);
    let interrupts = 0;
    const offNone = lc.onInterrupt(() => interrupts++);
    expect(proc.listenerCount("SIGINT")).toBe(0);
    offNone();
    lc.installProcessHooks();
    const off = lc.onInterrupt(() => interrupts++);
    expect(proc.listenerCount("SIGINT")).toBe(2);
    off();
    expect(proc.listenerCount("SIGINT")).toBe(1);
    expect(interrupts).toBe(0);
  });
});
