import { Pacer, paceLimits } from "../../../kernel-extension/iopub-pace";

/** A fake clock: sleeping advances time at once, so the test runs instantly and deterministically. */
function fakeClock() {
  let t = 0;
  return { now: () => t, sleep: async (ms: number) => void (t += ms), at: () => t };
}

describe("iopub pacing", () => {
  test("occasional output goes out at once", async () => {
    const c = fakeClock();
    const p = new Pacer({ bytesPerSec: 1000, msgsPerSec: 10, windowSec: 1 }, c.now, c.sleep);
    const sent: number[] = [];
    await p.send("stream", 100, async () => void sent.push(c.at()));
    await p.send("stream", 100, async () => void sent.push(c.at()));
    expect(sent).toEqual([0, 0]);
  });

  test("a flood is spread so no window holds more than the limits, and order is kept", async () => {
    const c = fakeClock();
    const limits = { bytesPerSec: 1000, msgsPerSec: 5, windowSec: 2 };
    const p = new Pacer(limits, c.now, c.sleep);
    const sent: { at: number; i: number; bytes: number; type: string }[] = [];
    const all: Promise<void>[] = [];
    for (let i = 0; i < 40; i++) {
      const type = i % 10 === 9 ? "status" : "stream";
      all.push(p.send(type, 300, async () => void sent.push({ at: c.at(), i, bytes: type === "stream" ? 300 : 0, type })));
    }
    await Promise.all(all);
    expect(sent.map((s) => s.i)).toEqual([...Array(40).keys()]);
    for (const s of sent) {
      const inWindow = sent.filter((o) => o.type !== "status" && o.at > s.at - limits.windowSec * 1000 && o.at <= s.at);
      expect(inWindow.reduce((n, o) => n + o.bytes, 0)).toBeLessThanOrEqual(limits.bytesPerSec * limits.windowSec);
      expect(inWindow.length).toBeLessThanOrEqual(limits.msgsPerSec * limits.windowSec);
    }
    expect(c.at()).toBeGreaterThan(0);
  });

  test("a new cell's messages go before an older cell's backlog; order is kept within each cell", async () => {
    const c = fakeClock();
    const p = new Pacer({ bytesPerSec: 1000, msgsPerSec: 5, windowSec: 1 }, c.now, c.sleep);
    const sent: string[] = [];
    const all: Promise<void>[] = [];
    // cell A floods (relayed worker output), then cell B runs: busy, result, idle
    for (let i = 0; i < 20; i++) all.push(p.send("stream", 100, async () => void sent.push(`A${i}`), "A"));
    for (const m of ["busy", "result", "idle"]) all.push(p.send(m === "result" ? "execute_result" : "status", 10, async () => void sent.push(`B-${m}`), "B"));
    // more of A after B started still waits behind B (A keeps its age)
    all.push(p.send("stream", 100, async () => void sent.push("A20"), "A"));
    await Promise.all(all);
    const b = sent.indexOf("B-busy");
    expect(sent.slice(b, b + 3)).toEqual(["B-busy", "B-result", "B-idle"]);
    expect(b).toBeLessThan(3); // not behind A's backlog
    expect(sent.filter((x) => x.startsWith("A"))).toEqual([...Array(21).keys()].map((i) => `A${i}`));
  });

  test("status messages are never held back by the limits, only by order", async () => {
    const c = fakeClock();
    const p = new Pacer({ bytesPerSec: 1, msgsPerSec: 1, windowSec: 1 }, c.now, c.sleep);
    await p.send("stream", 10, async () => undefined);
    const before = c.at();
    await p.send("status", 10, async () => undefined);
    expect(c.at()).toBe(before);
  });

  test("limits come from the server defaults with headroom, or from SENSE_IOPUB_* (0 = off)", () => {
    expect(paceLimits({})).toEqual({ bytesPerSec: 800_000, msgsPerSec: 800, windowSec: 3 });
    expect(paceLimits({ SENSE_IOPUB_DATA_RATE_LIMIT: "0", SENSE_IOPUB_MSG_RATE_LIMIT: "2000", SENSE_IOPUB_WINDOW: "1" })).toEqual({ bytesPerSec: 0, msgsPerSec: 1600, windowSec: 1 });
    expect(paceLimits({ SENSE_IOPUB_DATA_RATE_LIMIT: "lots" }).bytesPerSec).toBe(800_000);
  });
});

describe("iopub pacing keeps prints before a busy loop visible", () => {
  test("with nothing queued and room in the window, the send happens synchronously", () => {
    const p = new Pacer({ bytesPerSec: 1000, msgsPerSec: 10, windowSec: 1 });
    let sent = false;
    void p.send("stream", 10, async () => void (sent = true));
    expect(sent).toBe(true);
  });
});

describe("stream coalescing", () => {
  test("the first write of a turn goes out at once; the rest of the turn is one message", async () => {
    const { coalesceStream } = await import("../../../kernel-extension/stream-coalesce");
    const msgs: [string, string][] = [];
    const c = coalesceStream((n, t) => void msgs.push([n, t]));
    c.write("stdout", "starting\n");
    expect(msgs).toEqual([["stdout", "starting\n"]]);
    for (let i = 0; i < 1000; i++) c.write("stdout", `line ${i}\n`);
    c.write("stderr", "oops\n");
    await new Promise((r) => setImmediate(r));
    expect(msgs.length).toBe(3);
    expect(msgs[1][1].split("\n").filter(Boolean)).toHaveLength(1000);
    expect(msgs[2]).toEqual(["stderr", "oops\n"]);
  });
});
