import { FreshRead } from "../../../src/util/fresh-read";

/** A read whose calls are answered by the test, in order. */
function controlled(): { read: () => Promise<number>; answer: (v: number) => void; calls: () => number } {
  const waiting: ((v: number) => void)[] = [];
  let calls = 0;
  return {
    read: () => {
      calls++;
      return new Promise<number>((r) => waiting.push(r));
    },
    answer: (v) => waiting.shift()?.(v),
    calls: () => calls,
  };
}

const tick = () => new Promise((r) => setImmediate(r));

describe("FreshRead", () => {
  it("never hands a caller a read that started before it asked; callers arriving meanwhile share the next one", async () => {
    const c = controlled();
    const f = new FreshRead(c.read);
    const a = f.get();
    await tick();
    const b = f.get();
    const b2 = f.get();
    await tick();
    expect(c.calls()).toBe(1);
    c.answer(1);
    await expect(a).resolves.toBe(1);
    await tick();
    expect(c.calls()).toBe(2);
    c.answer(2);
    await expect(b).resolves.toBe(2);
    await expect(b2).resolves.toBe(2);
    expect(f.reads).toBe(2);
  });

  it("with participants, the first read waits until each asked or left, and serves them all", async () => {
    const c = controlled();
    const f = new FreshRead(c.read, 3);
    const a = f.get();
    f.leave();
    await tick();
    expect(c.calls()).toBe(0);
    const b = f.get();
    await tick();
    expect(c.calls()).toBe(1);
    c.answer(7);
    await expect(Promise.all([a, b])).resolves.toEqual([7, 7]);
    // Past the first read, a caller gets a read of its own.
    const d = f.get();
    await tick();
    c.answer(8);
    await expect(d).resolves.toBe(8);
  });

  it("a failed read rejects its callers; the next caller reads again", async () => {
    let n = 0;
    const f = new FreshRead(() => (++n === 1 ? Promise.reject(new Error("down")) : Promise.resolve(n)));
    await expect(f.get()).rejects.toThrow("down");
    await expect(f.get()).resolves.toBe(2);
  });
});
