/**
 * The late display of a finished cell: text accumulates in order, updates are coalesced (one per
 * interval, the whole text each time), nothing is sent when nothing changed, and past the cap
 * the oldest text goes (at a line start) and the display says how much. Issue #24 item 5: a
 * flooding worker's late display stays within a bandwidth budget, never has two updates queued,
 * and its final state always goes out.
 */
import { LATE_BYTES_PER_SEC, LATE_OUTPUT_CAP, LateOutput, LateBundle } from "../../../kernel-extension/late-output";

beforeEach(() => jest.useFakeTimers());
afterEach(() => jest.useRealTimers());

function late(cap?: number) {
  const sent: LateBundle[] = [];
  const out = new LateOutput("sense-late-1", (b) => void sent.push(b), cap, () => Date.now());
  return { out, sent };
}

test("a burst of lines becomes one update holding all of them, in order", () => {
  const { out, sent } = late();
  out.append("[w1] a\n");
  out.append("[w2] b\n");
  out.append("[w1] c\n");
  expect(sent).toEqual([]);
  jest.advanceTimersByTime(0);
  expect(sent).toEqual([{ "text/plain": "[w1] a\n[w2] b\n[w1] c\n" }]);
  // Coalesced: the next line waits for the interval, then the whole text goes again.
  out.append("[w2] d\n");
  jest.advanceTimersByTime(50);
  expect(sent).toHaveLength(1);
  jest.advanceTimersByTime(100);
  expect(sent).toHaveLength(2);
  expect(sent[1]["text/plain"]).toBe("[w1] a\n[w2] b\n[w1] c\n[w2] d\n");
});

test("flush sends at once, and only when something changed", () => {
  const { out, sent } = late();
  out.flush();
  expect(sent).toEqual([]);
  out.append("x\n");
  out.flush();
  out.flush();
  expect(sent).toEqual([{ "text/plain": "x\n" }]);
  jest.advanceTimersByTime(1_000);
  expect(sent).toHaveLength(1);
});

test("past the cap the oldest lines go, whole, and the display says so", () => {
  const { out, sent } = late(100);
  for (let i = 0; i < 20; i++) out.append(`line ${String(i).padStart(2, "0")}\n`);
  out.flush();
  const text = sent[0]["text/plain"];
  expect(text).toMatch(/^\[Sense: the first 1 KiB of this cell's late output are not shown \(it shows the last 1 KiB\); workerOutput\(id\) has each worker's own\]\n/);
  const body = text.split("\n").slice(1).filter(Boolean);
  expect(body[body.length - 1]).toBe("line 19");
  expect(body.every((l) => /^line \d\d$/.test(l))).toBe(true);
  expect(body.join("\n").length).toBeLessThanOrEqual(100);
});

test("a rich display keeps its place and its HTML; text around it is shown as preformatted", () => {
  const { out, sent } = late();
  out.append("[w1] before <b>\n");
  out.appendDisplay({ "text/plain": "Out[w1]: 1", "text/html": "<div class=x>Out[w1]: 1</div>" });
  out.append("[w2] after\n");
  out.flush();
  expect(sent[0]["text/plain"]).toBe("[w1] before <b>\nOut[w1]: 1\n[w2] after\n");
  expect(sent[0]["text/html"]).toBe("<pre>[w1] before &lt;b&gt;\n</pre><div><div class=x>Out[w1]: 1</div></div><pre>[w2] after\n</pre>");
});

const bytesOf = (b: LateBundle) => Buffer.byteLength(JSON.stringify(b));

test("a display growing at 1 MiB/s sends at most LATE_BYTES_PER_SEC (plus one update) in any second, and its final state", () => {
  const sends: { at: number; bytes: number }[] = [];
  let last: LateBundle | undefined;
  const t0 = Date.now();
  const out = new LateOutput("sense-late-1", (b) => {
    sends.push({ at: Date.now() - t0, bytes: bytesOf(b) });
    last = b;
  }, undefined, () => Date.now());
  const line = (i: number) => `[w1] flood line ${String(i).padStart(7, "0")} ${"x".repeat(80)}\n`; // 100 chars
  let i = 0;
  // 10 s of a worker flooding: 1 MiB/s in 10 ms bursts (the relay's coalesced writes).
  for (let ms = 0; ms < 10_000; ms += 10) {
    for (let k = 0; k < 105; k++) out.append(line(i++));
    jest.advanceTimersByTime(10);
  }
  out.append("[w1] LAST LINE\n");
  out.flush();
  const biggest = Math.max(...sends.map((s) => s.bytes));
  expect(biggest).toBeLessThan(LATE_OUTPUT_CAP * 1.1);
  for (let from = 0; from < 10_000; from += 250) {
    const inWindow = sends.filter((s) => s.at >= from && s.at < from + 1000).reduce((n, s) => n + s.bytes, 0);
    expect(inWindow).toBeLessThanOrEqual(LATE_BYTES_PER_SEC + biggest);
  }
  const total = sends.reduce((n, s) => n + s.bytes, 0);
  // The budget, plus the first update (at once) and the final flush (whatever the budget).
  expect(total).toBeLessThanOrEqual(10 * LATE_BYTES_PER_SEC + 2 * biggest);
  // The display kept showing progress (not one update at the end) ...
  expect(sends.length).toBeGreaterThanOrEqual(10);
  // ... and ends with the newest output, saying where the rest is.
  const text = last!["text/plain"];
  expect(text.endsWith("[w1] LAST LINE\n")).toBe(true);
  expect(text).toMatch(/^\[Sense: the first [\d.]+ MiB of this cell's late output are not shown \(it shows the last 128 KiB\); workerOutput\(id\) has each worker's own\]\n/);
  expect(text.length).toBeLessThanOrEqual(LATE_OUTPUT_CAP + 200);
});

test("while an update is still going out no other is sent; a flush then goes right after it, with the final state", async () => {
  const sent: LateBundle[] = [];
  const pending: (() => void)[] = [];
  const out = new LateOutput("sense-late-1", (b) => {
    sent.push(b);
    return new Promise<void>((resolve) => pending.push(resolve));
  }, undefined, () => Date.now());
  out.append("a\n");
  jest.advanceTimersByTime(0);
  expect(sent).toHaveLength(1);
  // The pacer holds it (a flood in another lane): more output and a long wait send nothing more.
  out.append("b\n");
  jest.advanceTimersByTime(5_000);
  out.append("c\n");
  out.flush();
  expect(sent).toHaveLength(1);
  pending.shift()!();
  await Promise.resolve();
  await Promise.resolve();
  expect(sent.map((b) => b["text/plain"])).toEqual(["a\n", "a\nb\nc\n"]);
  pending.shift()!();
  await Promise.resolve();
  jest.advanceTimersByTime(5_000);
  expect(sent).toHaveLength(2);
});

test("flushIfDue (a cell starting) sends only within the budget; the rest follows on the timer", () => {
  const { out, sent } = late();
  out.append("x".repeat(100 * 1024) + "\n");
  out.flushIfDue();
  expect(sent).toHaveLength(1);
  // ~100 KiB went: the next update is due ~0.4 s later, whoever asks.
  out.append("y\n");
  out.flushIfDue();
  jest.advanceTimersByTime(300);
  out.flushIfDue();
  expect(sent).toHaveLength(1);
  jest.advanceTimersByTime(200);
  expect(sent).toHaveLength(2);
  expect(sent[1]["text/plain"].endsWith("y\n")).toBe(true);
});
