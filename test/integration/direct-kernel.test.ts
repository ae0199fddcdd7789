/**
 * Kernels started from their kernelspecs with no Jupyter Server (src/direct): real python3 and
 * Sense kernels from the project's .venv, real ZeroMQ, signed messages.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { DirectKernel, expectOk } from "../support/direct-kernel";
import type { PathEnv } from "../../src/jupyter/paths";
import { isSenseError } from "../../src/errors";
import { REPO, processAlive } from "../helpers/util";
import { Codec, ConnectionInfo, Message } from "../../src/protocol/wire";
import * as zmq from "zeromq";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "sense-direct-"));
const runtimeDir = path.join(tmp, "runtime");
// The project's environment as nbclient started from it would see it, plus a folder of our own specs.
const ownSpecs = path.join(tmp, "share");
const paths: PathEnv = { env: { JUPYTER_PATH: ownSpecs, SENSE_JUPYTER_PREFIX: path.join(REPO, ".venv"), JUPYTER_DATA_DIR: path.join(tmp, "data") }, home: tmp, procRoot: "/proc" };
const started: DirectKernel[] = [];

async function start(name: string, env?: Record<string, string>): Promise<DirectKernel> {
  const k = await DirectKernel.start(name, { cwd: tmp, runtimeDir, paths, env, stdio: "ignore" });
  started.push(k);
  return k;
}

function streamText(o: { iopub: { header: { msg_type: string }; content: Record<string, unknown> }[] }): string {
  return o.iopub.filter((m) => m.header.msg_type === "stream").map((m) => String(m.content.text)).join("");
}

function resultText(o: { iopub: { header: { msg_type: string }; content: Record<string, unknown> }[] }): string | undefined {
  const r = o.iopub.find((m) => m.header.msg_type === "execute_result");
  return r ? String((r.content.data as Record<string, unknown>)["text/plain"]) : undefined;
}

afterAll(async () => {
  await Promise.all(started.map((k) => k.kill()));
  fs.rmSync(tmp, { recursive: true, force: true });
});

test.each(["python3", "sense-fast"])("%s: started from its kernelspec, runs code, reports streams and results, shuts down", async (name) => {
  const k = await start(name, { SENSE_DIRECT_PROBE: "probe-value" });
  expect(path.dirname(k.connectionFile)).toBe(runtimeDir);
  expect(fs.statSync(k.connectionFile).mode & 0o777).toBe(0o600);
  const code =
    name === "python3"
      ? "import os\nprint('hello', os.environ['SENSE_DIRECT_PROBE'], os.environ['JPY_PARENT_PID'])\n6 * 7"
      : "console.log('hello', process.env.SENSE_DIRECT_PROBE, process.env.JPY_PARENT_PID);\n6 * 7";
  const o = expectOk(await k.execute(code));
  expect(streamText(o)).toBe(`hello probe-value ${process.pid}\n`);
  expect(resultText(o)).toBe("42");
  const pid = k.pid;
  await k.shutdown();
  expect(processAlive(pid)).toBe(false);
  expect(fs.existsSync(k.connectionFile)).toBe(false);
});

test.each(["sense-fast", "sense-ts"])("%s: a new iopub subscriber gets a welcome and the kernel's status, with no request sent", async (name) => {
  // jupyter_server waits for a status its own late-joining subscriber saw before it opens a
  // kernel's websocket (its nudge asks again only every 0.5 s): the kernel answers each subscription.
  const k = await start(name);
  expectOk(await k.execute("1"));
  const info = JSON.parse(fs.readFileSync(k.connectionFile, "utf8")) as ConnectionInfo;
  const codec = new Codec(info);
  const sub = new zmq.Subscriber({ linger: 0 });
  try {
    sub.connect(`${info.transport}://${info.ip}:${info.iopub_port}`);
    sub.subscribe();
    const seen: Message[] = [];
    for await (const frames of sub) {
      seen.push(codec.decode(frames));
      if (seen.length === 2) break;
    }
    expect(seen.map((m) => m.header.msg_type)).toEqual(["iopub_welcome", "status"]);
    expect(seen[0].content).toEqual({ subscription: "" });
    expect(seen[1].content).toEqual({ execution_state: "idle" });
  } finally {
    sub.close();
  }
});

test("an interrupt stops a running cell and keeps the kernel's state (python3, signal mode)", async () => {
  const k = await start("python3");
  expectOk(await k.execute("kept = 5"));
  const running = k.execute("import time\nprint('sleeping', flush=True)\ntime.sleep(120)", {
    onIopub: (m) => {
      if (m.header.msg_type === "stream") void k.interrupt();
    },
  });
  const o = await running;
  expect((o.reply.content as { ename?: string }).ename).toBe("KeyboardInterrupt");
  expect(resultText(expectOk(await k.execute("kept + 1")))).toBe("6");
  await k.shutdown();
});

test("the spec's env is templated from ours, and argv's {resource_dir} is filled in", async () => {
  const dir = path.join(ownSpecs, "kernels", "probe-py");
  fs.mkdirSync(dir, { recursive: true });
  const py = path.join(REPO, ".venv", "bin", "python");
  fs.writeFileSync(
    path.join(dir, "kernel.json"),
    JSON.stringify({ argv: [py, "-m", "ipykernel_launcher", "-f", "{connection_file}"], display_name: "probe", language: "python", env: { PROBE_FROM_SPEC: "${SENSE_DIRECT_BASE}/x-$$", PROBE_DIR: "{resource_dir}" } }),
  );
  const k = await start("probe-py", { SENSE_DIRECT_BASE: "base" });
  const o = expectOk(await k.execute("import os\nprint(os.environ['PROBE_FROM_SPEC'])"));
  expect(streamText(o)).toBe("base/x-$\n");
  await k.shutdown();
});

test("an unknown kernelspec names where it looked and what it found; a spec whose program is missing fails and leaves no connection file", async () => {
  let err: unknown;
  await DirectKernel.start("no-such-kernel", { cwd: tmp, runtimeDir, paths }).catch((e: unknown) => (err = e));
  expect(isSenseError(err) && err.code).toBe("unknown_engine");
  expect(String((err as Error).message)).toContain(path.join(REPO, ".venv", "share", "jupyter", "kernels"));
  expect(String((err as Error).message)).toContain("python3");

  const dir = path.join(ownSpecs, "kernels", "missing-exe");
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, "kernel.json"), JSON.stringify({ argv: [path.join(tmp, "no-such-program"), "{connection_file}"], display_name: "missing" }));
  const before = fs.existsSync(runtimeDir) ? fs.readdirSync(runtimeDir) : [];
  err = undefined;
  await DirectKernel.start("missing-exe", { cwd: tmp, runtimeDir, paths }).catch((e: unknown) => (err = e));
  expect(isSenseError(err) && err.code).toBe("launch_failed");
  expect(fs.readdirSync(runtimeDir)).toEqual(before);
});
