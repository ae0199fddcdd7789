/**
 * Remote execution on the direct backend (no Jupyter Server: kernels started from their
 * kernelspecs, reached over ZeroMQ). The worker's language comes from its kernel_info reply, as
 * through a server; it was missing (every call failed `unsupported_worker`). After the suite: no
 * worker process left.
 */
import { execute, pull, push } from "../../src/remote";
import { launchWorkers, listWorkers } from "../../src/workers";
import { processesUnder } from "../helpers/jupyter";
import { captureSink } from "../helpers/util";
import { directMachine } from "../helpers/direct-machine";

// the project's kernelspecs (sense-fast) are registered into .venv
const { tmp, context } = directMachine("remote-direct");

test("execute, push and pull run on a sense-fast worker started directly", async () => {
  const sink = captureSink();
  const [w] = await launchWorkers({ n: 1, engine: "sense-fast", keeper: false, context, sink });
  expect(processesUnder(tmp).length).toBeGreaterThan(0);
  const [r] = await execute('console.log("hi from", process.env.SENSE_WORKER_NAME);\n6 * 7', { targets: [w], sink, context });
  expect(r).toMatchObject({ worker: w.name, status: "ok", value: 42, stdout: `hi from ${w.name}\n` });
  await push({ table: new Map([["a", 1]]) }, { targets: [w], sink, context });
  expect(await pull("table", { targets: [w], sink, context })).toEqual([new Map([["a", 1]])]);
  expect((await listWorkers({ context })).map((x) => x.id)).toEqual([w.id]);
});

test("a sense-ts worker started directly runs the master's JavaScript without loading its compiler, and knows it is a worker", async () => {
  // The precompiled mark travels in the request's metadata, and the session name in
  // JPY_SESSION_NAME, as through a Jupyter Server: without them every worker compiled its startup
  // code again (seconds, ~200 MiB each) or warmed its compiler up while it waited.
  const sink = captureSink();
  const [w] = await launchWorkers({ n: 1, engine: "sense-ts", code: 'console.log("started", typeof process.env.SENSE_WORKER_NAME)', keeper: false, context, sink });
  const [r] = await execute('JSON.stringify({ compiler: Object.keys(require.cache).some((k) => /typescript\\.js$/.test(k)), session: process.env.JPY_SESSION_NAME ?? null })', { targets: [w], sink, context });
  expect(r.status).toBe("ok");
  const seen = JSON.parse(String(r.value)) as { compiler: boolean; session: string | null };
  expect(seen.compiler).toBe(false);
  expect(seen.session).toMatch(/\/sense:[^/]+$/);
  expect(sink.text()).toContain("started string");
});
