/** The worker output ring (src/workers/output.ts) and the ended workers' budget (limitEndedOutput). */
import { limitEndedOutput } from "../../../src/workers/cluster";
import { outputKeepBytes, WorkerOutput } from "../../../src/workers/output";

const KiB = 1024;

it("keeps the last keepBytes, in order, and says how much went", () => {
  const o = new WorkerOutput({ label: "w1", sink: null, keepBytes: 64 * KiB });
  for (let i = 0; i < 5000; i++) o.stream(i % 2 ? "stdout" : "stderr", `${String(i).padStart(5, "0")} ${"x".repeat(94)}\n`);
  o.error("E", "boom", []);
  const text = o.text();
  expect(o.bytes).toBeLessThanOrEqual(64 * KiB);
  expect(o.droppedBytes + o.bytes).toBe(5000 * 101 + "E".length + "boom".length);
  expect(text).toMatch(/^\[Sense: output truncated: the first 0\.4 MiB were dropped; only the last 0\.1 MiB/);
  expect(text.endsWith("04999 " + "x".repeat(94) + "\nE: boom\n")).toBe(true);
  const lines = text.split("\n").slice(1, -2).map((l) => Number(l.slice(0, 5)));
  expect(lines).toEqual(lines.map((_, i) => lines[0] + i));
});

it("a single chunk bigger than the ring keeps its end", () => {
  const o = new WorkerOutput({ label: "w1", sink: null, keepBytes: 1000 });
  o.stream("stdout", "a".repeat(5000) + "END");
  expect(o.bytes).toBe(1000);
  expect(o.text().endsWith("aEND")).toBe(true);
});

it("nothing dropped: the text is exactly what the worker wrote", () => {
  const o = new WorkerOutput({ label: "w1", sink: null, keepBytes: 1000 });
  o.stream("stdout", "hello\n");
  expect(o.text()).toBe("hello\n");
  expect(o.droppedBytes).toBe(0);
});

it("ended workers share one budget, newest first; older ones' output is dropped and says why", () => {
  const outs = [1, 2, 3].map((i) => {
    const o = new WorkerOutput({ label: `w${i}`, sink: null, keepBytes: 100 * KiB });
    o.stream("stdout", `${i}`.repeat(40 * KiB));
    return o;
  });
  limitEndedOutput(outs, 60 * KiB);
  expect(outs[2].bytes).toBe(40 * KiB);
  expect(outs[1].bytes).toBe(20 * KiB);
  expect(outs[0].bytes).toBe(0);
  expect(outs[0].text()).toMatch(/^\[Sense: output truncated: .*the worker ended, and the output of newer ended workers is kept instead/);
});

it("SENSE_WORKER_OUTPUT_MIB: default 4 MiB, fractions allowed, garbage refused", () => {
  expect(outputKeepBytes("SENSE_WORKER_OUTPUT_MIB", {})).toBe(4 * 1024 * KiB);
  expect(outputKeepBytes("SENSE_WORKER_OUTPUT_MIB", { SENSE_WORKER_OUTPUT_MIB: "0.5" })).toBe(512 * KiB);
  expect(outputKeepBytes("SENSE_ENDED_OUTPUT_MIB", {})).toBe(16 * 1024 * KiB);
  for (const bad of ["0", "-1", "lots", "Infinity"]) expect(() => outputKeepBytes("SENSE_WORKER_OUTPUT_MIB", { SENSE_WORKER_OUTPUT_MIB: bad })).toThrow(expect.objectContaining({ code: "bad_config" }) as Error);
});
