/**
 * Remote execution against a real Jupyter Server with real sense-fast and python3 workers; the
 * jest process is a plain Node master. After the suite: no session, no kernel, no process left.
 */
import { launchWorkers, WorkerContextInput } from "../../src/workers";
import { execute, map, pull, push } from "../../src/remote";
import { isRemoteError, RemoteError } from "../../src/errors";
import type { WorkerRecord } from "../../src/jupyter/schemas";
import { captureSink, CaptureSink, until } from "../helpers/util";
import { serverMachine } from "../helpers/server-machine";
import { connectKernel } from "../../src/backends/jupyter/connection";
import type { ServerEndpoint } from "../../src/jupyter/rest";
import { Worker } from "../../src/workers/worker";
import type { ExecuteRequest } from "../../src/backends/backend";
import * as runtime from "../../src/remote/runtime";

let context: WorkerContextInput;
let js: WorkerRecord[];
let py: WorkerRecord[];
let sink: CaptureSink;

serverMachine(async (c) => {
  context = c;
  sink = captureSink();
  [js, py] = await Promise.all([
    launchWorkers({ n: 3, engine: "sense-fast", keeper: false, context, sink }),
    launchWorkers({ n: 2, engine: "python3", keeper: false, context, sink }),
  ]);
});

async function rejection(p: Promise<unknown>): Promise<RemoteError> {
  const e = await p.then(
    () => undefined,
    (x: unknown) => x,
  );
  if (!isRemoteError(e)) throw new Error(`expected a RemoteError, got ${String(e)}`);
  return e;
}

describe("execute", () => {
  it("returns each worker's last value as data, in target order, from JavaScript and Python", async () => {
    const out = captureSink();
    const r = await execute('const who = process.env.SENSE_WORKER_NAME;\nconsole.log("hi from", who);\n({ who, n: Number(who.slice(1)) * 10, list: [1, "two", null, { deep: true }] })', {
      targets: [js[2], js[0].name, js[1].id],
      sink: out,
      context,
    });
    expect(r.map((x) => x.worker)).toEqual([js[2].name, js[0].name, js[1].name]);
    expect(r.map((x) => x.status)).toEqual(["ok", "ok", "ok"]);
    expect(r[0].value).toEqual({ who: js[2].name, n: js[2].index * 10, list: [1, "two", null, { deep: true }] });
    expect(r[1].value).toEqual({ who: js[0].name, n: js[0].index * 10, list: [1, "two", null, { deep: true }] });
    expect(String(r[0].data["text/plain"])).toContain("deep: true");
    expect(r[0].stdout).toBe(`hi from ${js[2].name}\n`);
    // Streams live in the calling sink, labelled per worker.
    for (const w of js) expect(out.out.join("")).toContain(`[${w.name}] hi from ${w.name}\n`);

    const p = await execute("import os\nn = int(os.environ['SENSE_WORKER_NAME'][1:])\nprint('py', n)\n{'n': n, 'f': 0.5, 'xs': [1, 2, 3], 's': 'é'}", { targets: py, sink: out, context });
    expect(p.map((x) => x.value)).toEqual(py.map((w) => ({ n: w.index, f: 0.5, xs: [1, 2, 3], s: "é" })));
    expect(p[0].stdout).toBe(`py ${py[0].index}\n`);
    // Not JSON-exact: its text/plain.
    const t = await execute("(1, 2)", { targets: py[0], sink: out, context });
    expect(t[0].value).toBe("(1, 2)");
    const m = await execute("new Map([[1, 2]])", { targets: js[0], sink: out, context });
    expect(m[0].value).toBe("Map(1) { 1 => 2 }");
    const none = await execute("let unused = 1;", { targets: js[0], sink: out, context });
    expect(none[0].value).toBeUndefined();
  });

  it("a failing worker among good ones: RemoteError with every result and the failures", async () => {
    const out = captureSink();
    const e = await rejection(
      execute('if (process.env.SENSE_WORKER_NAME === "' + js[1].name + '") throw new RangeError("bad worker " + process.env.SENSE_WORKER_NAME);\n7', { targets: js, sink: out, context }),
    );
    expect(e.code).toBe("remote_error");
    expect(e.results.map((x) => (x as { status: string }).status)).toEqual(["ok", "error", "ok"]);
    expect(e.results.map((x) => (x as { value: unknown }).value)).toEqual([7, undefined, 7]);
    expect(e.failures).toEqual([expect.objectContaining({ worker: js[1].name, ename: "RangeError", evalue: `bad worker ${js[1].name}` })]);
    expect(e.render()).toMatch(new RegExp(`\\[${js[1].name}:execute\\]\\nRangeError: bad worker ${js[1].name}\\n\\s+at `));
    // raiseOnError: false resolves with the results instead
    const r = await execute("1 / 0\nthrow new Error('x')", { targets: js[0], raiseOnError: false, sink: out, context });
    expect(r[0]).toMatchObject({ status: "error", error: { ename: "Error", evalue: "x" } });
  });

  it("a syntax error fails in the master before anything is sent", async () => {
    const before = await execute("globalThis.__sent = (globalThis.__sent ?? 0) + 1", { targets: js[0], context, sink: captureSink() });
    await expect(execute("let = = 1", { targets: js[0], context })).rejects.toMatchObject({ code: "compile_error" });
    const after = await execute("globalThis.__sent", { targets: js[0], context, sink: captureSink() });
    expect(after[0].value).toBe(before[0].value);
  });
});

describe("what a remote call costs the server (64 workers: issue #25)", () => {
  it("a Sense worker answers the master's request with busy, reply and idle only: no execute_input, no execute_result; value, bundle and count as before", async () => {
    // Another client of the same kernel sees every iopub message the kernel publishes.
    const observer = connectKernel((context as { endpoint: ServerEndpoint }).endpoint, { id: js[0].id, name: "sense-fast" });
    try {
      await observer.info;
      const seen: string[] = [];
      const listen = (_: unknown, msg: { header: { msg_type: string }; parent_header: unknown }) => {
        if ((msg.parent_header as { msg_type?: string }).msg_type === "execute_request") seen.push(msg.header.msg_type);
      };
      observer.iopubMessage.connect(listen);
      const [first] = await execute("6 * 7", { targets: js[0], sink: captureSink(), context });
      const [second] = await execute("({ a: 1 })", { targets: js[0], sink: captureSink(), context });
      await until("the observer to see both idles", () => (seen.filter((t) => t === "status").length >= 4 ? true : undefined), 10_000);
      expect(seen).toEqual(["status", "status", "status", "status"]);
      expect(first).toMatchObject({ status: "ok", value: 42, data: { "text/plain": "42" } });
      expect(second).toMatchObject({ status: "ok", value: { a: 1 }, data: { "text/plain": "{ a: 1 }" } });
      expect(second.executionCount).toBe((first.executionCount ?? NaN) + 1);
    } finally {
      observer.dispose();
    }
  });

  it("the remote runtime's source goes to a worker once, later calls send its short call; a worker whose runtime was deleted still answers with data", async () => {
    const [w] = await launchWorkers({ n: 1, engine: "sense-fast", keeper: false, context, sink });
    const sent: ExecuteRequest[] = [];
    const send = Worker.prototype.send;
    const spy = jest.spyOn(Worker.prototype, "send").mockImplementation(function (this: Worker, request, ...rest) {
      if (this.kernelId === w.id) sent.push(request);
      return send.call(this, request, ...rest);
    });
    try {
      const expressionSize = () => JSON.stringify(sent.splice(0).map((r) => r.userExpressions ?? {})).length;
      expect((await execute("1", { targets: w, sink: captureSink(), context }))[0].value).toBe(1);
      expect(expressionSize()).toBeGreaterThan(10_000);
      expect((await execute("2", { targets: w, sink: captureSink(), context }))[0].value).toBe(2);
      expect(expressionSize()).toBeLessThan(200);
      // Its code deletes the runtime: the short call fails after the code ran, the value is asked for again.
      const gone = await execute('for (const s of Object.getOwnPropertySymbols(globalThis)) if (String(s).startsWith("Symbol(sense.remote.v")) delete globalThis[s];\n[3]', { targets: w, sink: captureSink(), context });
      expect(gone[0]).toMatchObject({ status: "ok", value: [3] });
      expect((await execute("4", { targets: w, sink: captureSink(), context }))[0].value).toBe(4);
    } finally {
      spy.mockRestore();
    }
  });
});

describe("what map's chunks carry", () => {
  it("each chunk request reads its results with the installed runtime's short call, not with its 16 KB source", async () => {
    const sizes: number[] = [];
    const send = Worker.prototype.send;
    const spy = jest.spyOn(Worker.prototype, "send").mockImplementation(function (this: Worker, request, ...rest) {
      if (request.userExpressions && Object.keys(request.userExpressions).length) sizes.push(JSON.stringify(request.userExpressions).length);
      return send.call(this, request, ...rest);
    });
    try {
      const out = await map((x: number) => x * 2, Array.from({ length: 60 }, (_, i) => i), { targets: js, sink: captureSink(), context });
      expect(out).toEqual(Array.from({ length: 60 }, (_, i) => i * 2));
      expect(sizes.length).toBeGreaterThanOrEqual(js.length);
      expect(Math.max(...sizes)).toBeLessThan(200);
    } finally {
      spy.mockRestore();
    }
  });
});

describe("what a remote call costs the master", () => {
  it("results of code without a value are not parsed as runtime answers (a failed parse is zod's slow path)", async () => {
    const parse = jest.spyOn(runtime, "readReply");
    try {
      const r = await execute("for (let i = 0; i < 3; i++) console.log('line ' + i)", { targets: js, sink: captureSink(), context });
      expect(r.map((x) => [x.status, x.value])).toEqual(js.map(() => ["ok", undefined]));
      expect(parse).not.toHaveBeenCalled();
      expect((await execute("5", { targets: js, sink: captureSink(), context })).map((x) => x.value)).toEqual([5, 5, 5]);
      expect(parse).toHaveBeenCalled();
    } finally {
      parse.mockRestore();
    }
  });
});

describe("timeouts and interrupts", () => {
  it("a worker still running at the timeout is interrupted, its status is timeout, its state is kept", async () => {
    const out = captureSink();
    await execute("globalThis.kept = 41", { targets: js[0], sink: out, context });
    await execute("kept = 41", { targets: py[0], sink: out, context });
    const t0 = Date.now();
    const r = await execute(
      "for (;;) {}",
      { targets: js[0], timeoutSeconds: 1, raiseOnError: false, sink: out, context },
    );
    expect(r[0].status).toBe("timeout");
    expect(r[0].error?.ename).toBe("TimeoutError");
    const p = await execute("import time\nwhile True: time.sleep(0.01)", { targets: py[0], timeoutSeconds: 1, raiseOnError: false, sink: out, context });
    expect(p[0].status).toBe("timeout");
    expect(Date.now() - t0).toBeLessThan(60_000);
    // Interrupted, not restarted: the state is still there.
    expect((await execute("kept + 1", { targets: js[0], sink: out, context }))[0].value).toBe(42);
    expect((await execute("kept + 1", { targets: py[0], sink: out, context }))[0].value).toBe(42);
    // a timeout is a failure when raising
    const e = await rejection(execute("for (;;) {}", { targets: [js[0], js[1]], timeoutSeconds: 1, sink: out, context }));
    expect(e.failures).toHaveLength(2);
    expect(e.failures.map((f) => f.ename)).toEqual(["TimeoutError", "TimeoutError"]);
  });

  it("interrupting the master (its AbortSignal) interrupts the targets while it waits", async () => {
    const out = captureSink();
    const ac = new AbortController();
    // (A synchronous loop cannot print first: its output would wait for the event loop it blocks.)
    const running = execute("console.log('spinning');\nawait new Promise(() => {})", { targets: js[1], signal: ac.signal, raiseOnError: false, sink: out, context });
    const pyRunning = execute("import time\nprint('sleeping', flush=True)\ntime.sleep(600)", { targets: py[1], signal: ac.signal, raiseOnError: false, sink: out, context });
    // Abort once both workers are demonstrably running the code.
    await until("both workers to run the code", () => (/spinning/.test(out.out.join("")) && /sleeping/.test(out.out.join("")) ? true : undefined), 60_000);
    ac.abort();
    const [r, p] = await Promise.all([running, pyRunning]);
    expect(r[0]).toMatchObject({ status: "error", error: { ename: "KeyboardInterrupt" } });
    expect(p[0]).toMatchObject({ status: "error", error: { ename: "KeyboardInterrupt" } });
    expect((await execute("1 + 1", { targets: [js[1], py[1]], sink: out, context })).map((x) => x.value)).toEqual([2, 2]);
  });
});

describe("push and pull", () => {
  it("moves structured values to JavaScript workers and back", async () => {
    const values = { m: new Map<string, unknown>([["a", 1], ["b", new Set([1, 2])]]), d: new Date(86_400_000), big: 2n ** 70n, u8: new Uint8Array([1, 2, 3]), buf: Buffer.from("hi"), plain: { x: [1, "2"] } };
    await push(values, { targets: js, context, sink: captureSink() });
    const back = await pull(["m", "d", "big", "u8", "buf", "plain"], { targets: js, context, sink: captureSink() });
    expect(back).toHaveLength(3);
    for (const row of back) {
      expect(row.m).toEqual(values.m);
      expect(row.d).toEqual(values.d);
      expect(row.big).toBe(2n ** 70n);
      expect(row.u8).toEqual(values.u8);
      expect(Buffer.isBuffer(row.buf) && (row.buf as Buffer).toString()).toBe("hi");
      expect(row.plain).toEqual(values.plain);
    }
    // pushed names are globals the workers' code can use
    const r = await execute("m.get('b').size + Number(big % 7n)", { targets: js, context, sink: captureSink() });
    expect(r.map((x) => x.value)).toEqual(js.map(() => 2 + Number(2n ** 70n % 7n)));
    expect(await pull("plain", { targets: js[0], context, sink: captureSink() })).toEqual([values.plain]);
  });

  it("Python workers: push and pull JSON values; a missing name is a RemoteError", async () => {
    await push({ cfg: { rate: 0.25, names: ["a", "b"] }, n: 3 }, { targets: py, context, sink: captureSink() });
    const r = await execute("cfg['rate'] * n", { targets: py, context, sink: captureSink() });
    expect(r.map((x) => x.value)).toEqual([0.75, 0.75]);
    expect(await pull(["cfg", "n"], { targets: py, context, sink: captureSink() })).toEqual([
      { cfg: { rate: 0.25, names: ["a", "b"] }, n: 3 },
      { cfg: { rate: 0.25, names: ["a", "b"] }, n: 3 },
    ]);
    const e = await rejection(pull("nope", { targets: [py[0], js[0]], context, sink: captureSink() }));
    expect(e.failures.map((f) => [f.worker, f.ename])).toEqual([
      [py[0].name, "NameError"],
      [js[0].name, "ReferenceError"],
    ]);
    await expect(push({ m: new Map() }, { targets: py, context })).rejects.toMatchObject({ code: "bad_option" });
    await expect(push({ "bad-name": 1 }, { targets: js, context })).rejects.toMatchObject({ code: "bad_option" });
  });
});

describe("map", () => {
  it("1,000 items over three workers: results in input order, structured data both ways, load-balanced", async () => {
    const out = captureSink();
    const items = Array.from({ length: 1000 }, (_, i) => ({ i, when: new Date(i * 1000), tags: new Set([i % 3]) }));
    const r = await map(
      (x: { i: number; when: Date; tags: Set<number> }, index: number) => ({ sq: BigInt(x.i) ** 2n, sec: x.when.getTime() / 1000, tag: [...x.tags][0], index, by: process.env.SENSE_WORKER_NAME }),
      items,
      { targets: js, sink: out, context },
    );
    expect(r).toHaveLength(1000);
    r.forEach((x, i) => expect(x).toMatchObject({ sq: BigInt(i) ** 2n, sec: i, tag: i % 3, index: i }));
    // every worker took chunks
    expect(new Set(r.map((x) => x.by))).toEqual(new Set(js.map((w) => w.name)));
    // progress was displayed and its last update says done
    const final = out.displays[out.displays.length - 1];
    expect(String(final["text/plain"])).toMatch(/^map done \[#{20}\] 1000\/1000 100%/);
  });

  it("a throwing item: RemoteError naming the index, the worker and the error", async () => {
    const e = await rejection(
      map((x: number) => {
        if (x === 617) throw new TypeError(`cannot take ${x}`);
        return x;
      }, Array.from({ length: 1000 }, (_, i) => i), { targets: js, sink: captureSink(), context }),
    );
    expect(e.failures).toHaveLength(1);
    expect(e.failures[0]).toMatchObject({ index: 617, ename: "TypeError", evalue: "cannot take 617" });
    expect(js.map((w) => w.name)).toContain(e.failures[0].worker);
    expect(e.message).toMatch(new RegExp(`\\[${e.failures[0].worker}:map item 617\\] TypeError: cannot take 617`));
    // a closure that did not travel says so
    const k = 3;
    const c = await rejection(map((x: number) => x * k, [1, 2], { targets: js[0], sink: captureSink(), context }));
    expect(c.failures[0]).toMatchObject({ index: 0, ename: "ReferenceError" });
    expect(c.failures[0].evalue).toMatch(/k is not defined .*closures do not travel/);
  });

  it("async functions, require of project packages; Python targets get a clear error", async () => {
    const r = await map(async (x: number) => {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const os = require("node:os") as typeof import("node:os");
      await new Promise((res) => setTimeout(res, 1));
      return `${x}:${typeof os.cpus().length}`;
    }, [1, 2, 3], { targets: js, sink: captureSink(), context });
    expect(r).toEqual(["1:number", "2:number", "3:number"]);
    await expect(map((x: number) => x, [1], { targets: [js[0], py[0]], context })).rejects.toMatchObject({ code: "unsupported_worker" });
    await expect(map(Math.max, [1], { targets: js, context })).rejects.toMatchObject({ code: "bad_option" });
  });
});
