/**
 * The data channel's helpers on the master that need no worker: the progress display of long
 * transfers (in place, per worker, only after ~1 s) and scatter's partition (ipyparallel's).
 */
import type { MimeBundle, OutputSink } from "../../src/display/sink";
import type { Transfer } from "../../src/remote/channel";
import { partition } from "../../src/remote/scatter";
import { showProgress } from "../../src/remote/transfer";
import type { Target } from "../../src/workers/targets";

afterEach(() => jest.useRealTimers());

test("a transfer's progress shows after 1 s, per worker, updated in place, and its final state when it ends", () => {
  jest.useFakeTimers();
  const shown: { bundle: MimeBundle; update: boolean; id?: string }[] = [];
  const sink: OutputSink = { stdout: () => undefined, stderr: () => undefined, display: (bundle, o) => void shown.push({ bundle, update: !!o?.update, id: o?.displayId }) };
  const targets = [{ name: "w1" }, { name: "w2" }] as Target[];
  const MiB = 1 << 20;
  const transfers = [{ progress: { done: 0, total: 256 * MiB } }, { progress: { done: 0, total: 256 * MiB } }] as unknown as Transfer[];
  const stop = showProgress(sink, targets, transfers);
  jest.advanceTimersByTime(999);
  expect(shown).toEqual([]);
  transfers[0].progress.done = 12 * MiB;
  jest.advanceTimersByTime(1);
  expect(shown).toHaveLength(1);
  expect(shown[0].bundle["text/plain"]).toBe("sense data transfer\n[w1] 12.0 / 256.0 MiB\n[w2] 0.0 / 256.0 MiB");
  transfers[1].progress.done = 256 * MiB;
  jest.advanceTimersByTime(500);
  expect(shown[1]).toMatchObject({ update: true, id: shown[0].id });
  expect(shown[1].bundle["text/plain"]).toContain("[w2] 256.0 / 256.0 MiB");
  transfers[0].progress.done = 256 * MiB;
  stop();
  expect(shown[shown.length - 1].bundle["text/plain"]).toContain("[w1] 256.0 / 256.0 MiB");
  const n = shown.length;
  jest.advanceTimersByTime(5000);
  expect(shown).toHaveLength(n);
});

test("a transfer that ends within 1 s shows nothing", () => {
  jest.useFakeTimers();
  const display = jest.fn();
  const stop = showProgress({ stdout: () => undefined, stderr: () => undefined, display }, [{ name: "w1" } as Target], [{ progress: { done: 0, total: 1 } } as unknown as Transfer]);
  jest.advanceTimersByTime(900);
  stop();
  jest.advanceTimersByTime(5000);
  expect(display).not.toHaveBeenCalled();
});

test("scatter's partition is ipyparallel's: contiguous, the first n % k parts one longer, empty parts when there are fewer items than workers", () => {
  const parts = (n: number, k: number) => Array.from({ length: k }, (_, p) => partition(n, p, k));
  expect(parts(7, 3)).toEqual([[0, 3], [3, 5], [5, 7]]);
  expect(parts(2, 3)).toEqual([[0, 1], [1, 2], [2, 2]]);
  expect(parts(0, 2)).toEqual([[0, 0], [0, 0]]);
  expect(parts(8, 4)).toEqual([[0, 2], [2, 4], [4, 6], [6, 8]]);
  for (const [n, k] of [[1001, 7], [5, 8], [64, 8]]) {
    const ps = parts(n, k);
    expect(ps[0][0]).toBe(0);
    expect(ps[k - 1][1]).toBe(n);
    for (let i = 1; i < k; i++) expect(ps[i][0]).toBe(ps[i - 1][1]);
    const sizes = ps.map(([a, b]) => b - a);
    expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
  }
});

test("a transfer whose size is not known yet has no row, and nothing shows while none has one (a staged answer's size comes with its first reply)", () => {
  jest.useFakeTimers();
  const shown: MimeBundle[] = [];
  const sink: OutputSink = { stdout: () => undefined, stderr: () => undefined, display: (bundle) => void shown.push(bundle) };
  const targets = [{ name: "w1" }, { name: "w2" }] as Target[];
  const staged = [{ progress: { done: 0, total: 0 } }, { progress: { done: 0, total: 0 } }];
  const stop = showProgress(sink, targets, staged);
  jest.advanceTimersByTime(3000);
  expect(shown).toEqual([]);
  staged[1].progress = { done: 4 << 20, total: 24 << 20 };
  jest.advanceTimersByTime(500);
  expect(shown).toHaveLength(1);
  expect(shown[0]["text/plain"]).toBe("sense data transfer\n[w2] 4.0 / 24.0 MiB");
  stop();
});
