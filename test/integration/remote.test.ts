/**
 * Remote execution against a real Jupyter Server with real sense-fast and python3 workers; the
 * jest process is a plain Node master. After the suite: no session, no kernel, no process left.
 */
import { JupyterServer, processesUnder, startJupyterServer } from "../helpers/jupyter";
import { RestClient } from "../../src/rest";
import { launchWorkers, stopWorkers, WorkerContextInput } from "../../src/workers";
import { execute, pull, push } from "../../src/remote";
import { isRemoteError, RemoteError } from "../../src/errors";
import type { WorkerRecord } from "../../src/schemas";
import { captureSink, CaptureSink } from "../helpers/util";

let server: JupyterServer;
let rest: RestClient;
let context: WorkerContextInput;
let js: WorkerRecord[];
let py: WorkerRecord[];
let sink: CaptureSink;

beforeAll(async () => {
  server = await startJupyterServer();
  rest = new RestClient({ baseUrl: server.url, token: server.token });
  context = { endpoint: { baseUrl: server.url, token: server.token }, projectHome: server.rootDir, serverRootDir: server.rootDir };
  sink = captureSink();
  [js, py] = await Promise.all([
    launchWorkers({ n: 3, engine: "sense-fast", keeper: false, context, sink }),
    launchWorkers({ n: 2, engine: "python3", keeper: false, context, sink }),
  ]);
});

afterAll(async () => {
  if (context) await stopWorkers({ context });
  const marker = server?.baseDir;
  await server?.stop();
  if (marker) expect(processesUnder(marker)).toEqual([]);
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
