/**
 * Big transfers and their faults (issue #22), with real workers started directly (no server: the
 * data channel is the same through one): a 1 GiB total push (256 MiB to each of 4 workers) with the
 * master's extra resident memory measured and bounded; a worker SIGKILLed mid-transfer and a worker
 * that runs out of memory while receiving are named in the RemoteError, the others get the value,
 * the old value stays where it was not replaced, and nothing hangs. No process is left after.
 */
import { launchWorkers } from "../../src/workers";
import { execute, pull, push } from "../../src/remote";
import { isRemoteError, type RemoteError } from "../../src/errors";
import type { WorkerRecord } from "../../src/jupyter/schemas";
import { captureSink } from "../helpers/util";
import { directMachine } from "../helpers/direct-machine";

const MiB = 1 << 20;
const sink = captureSink();
jest.setTimeout(600_000);

const { context } = directMachine("data-transfer");
let js: WorkerRecord[];
let py: WorkerRecord[];

/** A Float64Array of `bytes` bytes of small whole numbers: their sum is exact in JavaScript and numpy alike. */
const wholes = (bytes: number) => new Float64Array(bytes / 8).map((_, i) => i % 1000);
const sumOf = (a: Float64Array) => a.reduce((s, x) => s + x, 0);

/** The kernel process id of each worker. */
async function pids(targets: WorkerRecord[]): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const t of targets) {
    const [r] = await execute(t.engine === "python3" ? "__import__('os').getpid()" : "process.pid", { targets: t, context, sink });
    out.set(t.name, r.value as number);
  }
  return out;
}

beforeAll(async () => {
  [js, py] = await Promise.all([launchWorkers({ n: 2, engine: "sense-fast", keeper: false, context, sink }), launchWorkers({ n: 2, engine: "python3", keeper: false, context, sink })]);
});

test("1 GiB in one push (256 MiB to each of 4 workers): every worker holds it exactly; the master's extra RSS stays under 128 MiB", async () => {
  const targets = [...js, ...py];
  const value = wholes(256 * MiB);
  const want = sumOf(value);
  // the runtimes installed and numpy imported first, so the measure is the transfer's
  await push({ warm: new Float64Array(4) }, { targets, context, sink });
  const base = process.memoryUsage.rss();
  let peak = base;
  const sample = () => (peak = Math.max(peak, process.memoryUsage.rss()));
  const timer = setInterval(sample, 20);
  try {
    await push({ big: value }, { targets, context, sink, onProgress: sample });
  } finally {
    clearInterval(timer);
  }
  sample();
  const extraMiB = (peak - base) / MiB;
  process.stdout.write(`master RSS before ${(base / MiB).toFixed(0)} MiB, peak extra during the 1 GiB push ${extraMiB.toFixed(1)} MiB\n`);
  expect(extraMiB).toBeLessThan(128);
  const sums = await execute("float(big.sum())", { targets: py, context, sink });
  const jsSums = await execute("big.reduce((s, x) => s + x, 0)", { targets: js, context, sink });
  for (const r of [...sums, ...jsSums]) expect(r.value).toBe(want);
  await execute("del big", { targets: py, context, sink });
  await execute("big = undefined", { targets: js, context, sink });
});

test("a worker SIGKILLed mid-transfer is named in the RemoteError; the other workers get the value; nothing hangs", async () => {
  const [victim, ...rest] = [js[1], js[0], py[0]];
  const targets = [victim, ...rest];
  await push({ keep: "old" }, { targets, context, sink });
  const pid = (await pids([victim])).get(victim.name)!;
  const value = wholes(128 * MiB);
  let killed = false;
  const t0 = Date.now();
  const e = (await push(
    { keep: "new", big: value },
    {
      targets,
      context,
      sink,
      onProgress: (w, done) => {
        if (w === victim.name && done > 0 && !killed) {
          killed = true;
          process.kill(pid, "SIGKILL");
        }
      },
    },
  ).catch((x: unknown) => x)) as RemoteError;
  expect(killed).toBe(true);
  expect(isRemoteError(e)).toBe(true);
  expect(e.failures.map((f) => f.worker)).toEqual([victim.name]);
  expect(e.message).toContain(victim.name);
  process.stdout.write(`push with a worker SIGKILLed mid-transfer ended in ${Date.now() - t0} ms: ${e.message.split("\n")[1]}\n`);
  // the others hold the whole new value
  expect(await pull("keep", { targets: rest, context, sink })).toEqual(["new", "new"]);
  const [onJs] = await execute("big.reduce((s, x) => s + x, 0)", { targets: rest[0], context, sink });
  const [onPy] = await execute("float(big.sum())", { targets: rest[1], context, sink });
  expect([onJs.value, onPy.value]).toEqual([sumOf(value), sumOf(value)]);
  await execute("del big", { targets: rest[1], context, sink });
  await execute("big = undefined", { targets: rest[0], context, sink });
});

test("a worker that runs out of memory while receiving is named in the RemoteError and keeps its old value; the others get the new one", async () => {
  const [tight, roomy] = py;
  const targets = [tight, roomy, js[0]];
  await push({ keep: "old" }, { targets, context, sink });
  // the tight worker may map at most 64 MiB more than it has now: 256 MiB cannot arrive there
  await execute("import resource as _r\n_vm = int([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmSize:')][0]) * 1024\n_old = _r.getrlimit(_r.RLIMIT_AS)\n_r.setrlimit(_r.RLIMIT_AS, (_vm + 64 * 2**20, _old[1]))", { targets: tight, context, sink });
  try {
    const value = wholes(256 * MiB);
    const t0 = Date.now();
    const e = (await push({ keep: "new", big: value }, { targets, context, sink }).catch((x: unknown) => x)) as RemoteError;
    expect(isRemoteError(e)).toBe(true);
    expect(e.failures.map((f) => [f.worker, f.ename])).toEqual([[tight.name, "MemoryError"]]);
    process.stdout.write(`push with a worker out of memory ended in ${Date.now() - t0} ms: ${e.message.split("\n")[1]}\n`);
    expect(await pull("keep", { targets, context, sink })).toEqual(["old", "new", "new"]);
    const [has] = await execute("'big' in globals()", { targets: tight, context, sink });
    expect(has.value).toBe(false);
    const [onPy] = await execute("float(big.sum())", { targets: roomy, context, sink });
    expect(onPy.value).toBe(sumOf(value));
  } finally {
    await execute("_r.setrlimit(_r.RLIMIT_AS, _old)", { targets: tight, context, sink });
  }
});
