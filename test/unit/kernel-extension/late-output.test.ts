/**
 * The late display of a finished cell: text accumulates in order, updates are coalesced (one per
 * interval, the whole text each time), nothing is sent when nothing changed, and past the cap
 * the oldest text goes (at a line start) and the display says how much.
 */
import { LateOutput, LateBundle } from "../../../kernel-extension/late-output";

beforeEach(() => jest.useFakeTimers());
afterEach(() => jest.useRealTimers());

function late(cap?: number) {
  const sent: LateBundle[] = [];
  const out = new LateOutput("sense-late-1", (b) => sent.push(b), cap, () => Date.now());
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
  expect(text).toMatch(/^\[Sense: the first 1 KiB of this cell's late output were dropped \(it keeps the last 1 KiB\)/);
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
