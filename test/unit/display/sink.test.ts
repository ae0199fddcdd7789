import { consoleSink, captureSink, findTslabDisplayWriter, type TslabDisplayWriter } from "../../../src/display/sink";
import { liveDisplay, display } from "../../../src/display/live";
import { makeDisplayable } from "../../../src/display/bundle";
import { isUsageError } from "../../../src/errors";

function streams() {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, stream: { stdout: { write: (t: string) => out.push(t) }, stderr: { write: (t: string) => err.push(t) } } };
}

describe("consoleSink", () => {
  test("streams pass through; displays print text/plain with a newline", () => {
    const s = streams();
    const sink = consoleSink(s.stream);
    sink.stdout("a");
    sink.stderr("b");
    sink.display({ "text/plain": "TABLE", "text/html": "<table/>" });
    expect(s.out).toEqual(["a", "TABLE\n"]);
    expect(s.err).toEqual(["b"]);
  });

  test("an update of a display id prints again only when the text changed", () => {
    const s = streams();
    const sink = consoleSink(s.stream);
    sink.display({ "text/plain": "v1" }, { displayId: "d" });
    sink.display({ "text/plain": "v1", "text/html": "<i>changed html only</i>" }, { displayId: "d", update: true });
    sink.display({ "text/plain": "v2" }, { displayId: "d", update: true });
    expect(s.out).toEqual(["v1\n", "v2\n"]);
  });
});

describe("captureSink", () => {
  function fakeKernel() {
    const calls: { content: Parameters<TslabDisplayWriter>[0]; update: boolean }[] = [];
    const writer: TslabDisplayWriter = (content, update) => calls.push({ content, update });
    const cache = {
      "/x/node_modules/other/dist/jupyter.js": { exports: { lastWriteDisplayData: "not a function" } },
      "/y/node_modules/tslab/dist/jupyter.js": { exports: { lastWriteDisplayData: null } },
      "/z/node_modules/tslab/dist/jupyter.js": { exports: { lastWriteDisplayData: writer } },
    };
    return { calls, writer, cache };
  }

  test("finds the tslab copy whose writer is set", () => {
    const k = fakeKernel();
    expect(findTslabDisplayWriter(k.cache)).toBe(k.writer);
    expect(findTslabDisplayWriter({ "C:\\a\\tslab\\dist\\jupyter.js": { exports: { lastWriteDisplayData: k.writer } } })).toBe(k.writer);
    expect(findTslabDisplayWriter({})).toBeUndefined();
  });

  test("captures stdout/stderr writers and the display writer at call time", () => {
    const k = fakeKernel();
    const cellA: string[] = [];
    const cellB: string[] = [];
    const proc = { stdout: { write: (t: string) => cellA.push(`out:${t}`) }, stderr: { write: (t: string) => cellA.push(`err:${t}`) } };
    const sink = captureSink({ process: proc, moduleCache: k.cache });
    // The kernel moves on to another cell: it swaps the process writers and its display writer.
    proc.stdout.write = (t: string) => cellB.push(t);
    proc.stderr.write = (t: string) => cellB.push(t);
    const laterCalls: unknown[] = [];
    k.cache["/z/node_modules/tslab/dist/jupyter.js"].exports.lastWriteDisplayData = () => laterCalls.push(1);
    sink.stdout("x");
    sink.stderr("y");
    sink.display({ "text/plain": "t", "text/html": "<b>t</b>" }, { displayId: "id1" });
    sink.display({ "text/plain": "u" }, { displayId: "id1", update: true });
    sink.display({ "text/plain": "plain" });
    expect(cellA).toEqual(["out:x", "err:y"]);
    expect(cellB).toEqual([]);
    expect(laterCalls).toEqual([]);
    expect(k.calls).toEqual([
      { content: { data: { "text/plain": "t", "text/html": "<b>t</b>" }, metadata: {}, transient: { display_id: "id1" } }, update: false },
      { content: { data: { "text/plain": "u" }, metadata: {}, transient: { display_id: "id1" } }, update: true },
      { content: { data: { "text/plain": "plain" }, metadata: {}, transient: {} }, update: false },
    ]);
  });

  test("an update without a display id is a usage error", () => {
    const k = fakeKernel();
    const sink = captureSink({ process: streams().stream, moduleCache: k.cache });
    let err: unknown;
    try {
      sink.display({ "text/plain": "x" }, { update: true });
    } catch (e) {
      err = e;
    }
    expect(isUsageError(err)).toBe(true);
    expect(k.calls).toEqual([]);
  });

  test("outside tslab it is a console sink on the given streams", () => {
    const s = streams();
    const sink = captureSink({ process: s.stream, moduleCache: {} });
    sink.display({ "text/plain": "hello" });
    expect(s.out).toEqual(["hello\n"]);
  });
});

describe("liveDisplay and display", () => {
  test("sends the first display at creation, then updates with the same id", () => {
    const sent: { bundle: unknown; options: unknown }[] = [];
    const sink = { stdout: () => {}, stderr: () => {}, display: (bundle: unknown, options: unknown) => sent.push({ bundle, options }) };
    const live = liveDisplay(sink, { "text/plain": "starting" });
    expect(sent).toEqual([{ bundle: { "text/plain": "starting" }, options: { displayId: live.id } }]);
    expect(live.id).toMatch(/^sense-[0-9a-f-]{36}$/);
    live.update(makeDisplayable({}, () => ({ "text/plain": "running" })));
    live.update({ "text/plain": "running" }); // identical: not resent
    live.update({ "text/plain": "idle" });
    expect(sent.slice(1)).toEqual([
      { bundle: { "text/plain": "running" }, options: { displayId: live.id, update: true } },
      { bundle: { "text/plain": "idle" }, options: { displayId: live.id, update: true } },
    ]);
    expect(liveDisplay(sink, { "text/plain": "x" }).id).not.toBe(live.id);
  });

  test("display() shows displayables, bundles and other values", () => {
    const shown: unknown[] = [];
    const sink = { stdout: () => {}, stderr: () => {}, display: (b: unknown) => shown.push(b) };
    display(makeDisplayable({}, () => ({ "text/plain": "D" })), sink);
    display({ "text/plain": "B", "text/html": "<i>B</i>" }, sink);
    display({ a: 1 }, sink);
    expect(shown).toEqual([{ "text/plain": "D" }, { "text/plain": "B", "text/html": "<i>B</i>" }, { "text/plain": "{ a: 1 }" }]);
  });
});
