/** Line coalescing and labelling of worker output (src/workers/output.ts). */
import type { MimeBundle, OutputSink } from "../../../src/display/sink";
import { WorkerOutput } from "../../../src/workers/output";

function sinkRecorder(): OutputSink & { log: string[] } {
  const log: string[] = [];
  return { log, stdout: (t) => void log.push(`out:${t}`), stderr: (t) => void log.push(`err:${t}`), display: (b: MimeBundle) => void log.push(`display:${b["text/plain"]}`) };
}

describe("worker output coalescing", () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it("emits whole lines labelled, holds partial lines until newline, idle or the flush delay", () => {
    const sink = sinkRecorder();
    const o = new WorkerOutput({ label: "w1", sink, flushMs: 50 });
    o.stream("stdout", "hel");
    o.stream("stdout", "lo\nwor");
    expect(sink.log).toEqual(["out:[w1] hello\n"]);
    o.stream("stdout", "ld\nA\nB");
    expect(sink.log).toEqual(["out:[w1] hello\n", "out:[w1] world\n[w1] A\n"]);
    jest.advanceTimersByTime(49);
    expect(sink.log).toHaveLength(2);
    jest.advanceTimersByTime(1);
    expect(sink.log[2]).toBe("out:[w1] B\n");
    o.stream("stderr", "warn");
    o.flushAll(); // the worker went idle
    expect(sink.log[3]).toBe("err:[w1] warn\n");
    expect(o.text()).toBe("hello\nworld\nA\nBwarn");
  });

  it("labels every line of a chunk, drops one carriage return before each newline and keeps a bare one; a label with `$` stays as written", () => {
    const sink = sinkRecorder();
    const o = new WorkerOutput({ label: "w$&1", sink });
    o.stream("stdout", "a\r\nb\r\r\nc\rd\n\n\r\n");
    expect(sink.log).toEqual(["out:[w$&1] a\n[w$&1] b\r\n[w$&1] c\rd\n[w$&1] \n[w$&1] \n"]);
    o.stream("stdout", "tail\r");
    o.flushAll();
    expect(sink.log[1]).toBe("out:[w$&1] tail\n");
    o.close();
  });

  it("keeps per-stream order, shows errors without colour codes and labels rich output", () => {
    const sink = sinkRecorder();
    const o = new WorkerOutput({ label: "w2", sink });
    o.stream("stdout", "partial");
    o.error("ValueError", "boom", ["\u001b[0;31mTraceback\u001b[0m", "ValueError: boom"]);
    o.display({ "text/plain": "42", "text/html": "<b>42</b>" });
    expect(sink.log).toEqual(["out:[w2] partial\n", "err:[w2] Traceback\n[w2] ValueError: boom\n", "display:[w2] 42"]);
    expect(o.list().map((i) => i.type)).toEqual(["stream", "error", "display"]);
    o.close();
  });
});

