/**
 * The `sense-fast` kernel through a real Jupyter Server: execution, top-level await, require,
 * stream coalescing, errors, rich display, interrupt, completion, shutdown, idle memory.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { KernelMessage } from "@jupyterlab/services";
import { JupyterServer, REPO, processesUnder, startJupyterServer, waitForExit } from "../helpers/jupyter";
import { NotebookKernel, openNotebook } from "../helpers/kernel";
import { fastKernelSpec, FAST_KERNEL_NAME } from "../../src/kernelspecs";

const KERNEL_JS = path.join(REPO, "dist", "kernel-extension", "fast-kernel.js");

function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) : NaN;
}

describe("sense-fast kernel", () => {
  let server: JupyterServer;
  let kernelDir: string;
  let nb: NotebookKernel;

  beforeAll(async () => {
    if (!fs.existsSync(KERNEL_JS)) throw new Error(`${KERNEL_JS} is missing: build first (npx tsc -p tsconfig.json)`);
    kernelDir = fs.mkdtempSync(path.join(os.tmpdir(), "sense-fast-spec-"));
    const specDir = path.join(kernelDir, "kernels", FAST_KERNEL_NAME);
    fs.mkdirSync(specDir, { recursive: true });
    fs.writeFileSync(path.join(specDir, "kernel.json"), JSON.stringify(fastKernelSpec({ kernelScript: KERNEL_JS })));
    server = await startJupyterServer({ env: { JUPYTER_PATH: kernelDir } });
    fs.writeFileSync(path.join(server.rootDir, "helper.js"), "exports.answer = () => 42;\n");
    fs.mkdirSync(path.join(server.rootDir, "node_modules", "localpkg"), { recursive: true });
    fs.writeFileSync(path.join(server.rootDir, "node_modules", "localpkg", "index.js"), "module.exports = { name: 'localpkg' };\n");
    nb = await openNotebook(server, FAST_KERNEL_NAME);
  });

  afterAll(async () => {
    await nb?.shutdown();
    await server?.stop();
    fs.rmSync(kernelDir, { recursive: true, force: true });
  });

  it("answers kernel_info as a JavaScript kernel", async () => {
    const info = await nb.session.kernel!.info;
    expect(info.language_info.name).toBe("javascript");
    expect(info.protocol_version).toBe("5.3");
  });

  it("executes code, counts executions and returns the last value", async () => {
    const kernel = nb.session.kernel!;
    const future = kernel.requestExecute({ code: "const a = 20; console.log('hi'); a * 2 + 2" });
    const iopub: KernelMessage.IIOPubMessage[] = [];
    future.onIOPub = (m) => void iopub.push(m);
    const reply = await future.done;
    expect(reply.content.status).toBe("ok");
    const count = reply.content.execution_count;
    expect(count).toBeGreaterThan(0);
    const types = iopub.map((m) => m.header.msg_type);
    expect(types[0]).toBe("status");
    expect(types[types.length - 1]).toBe("status");
    expect(iopub.filter(KernelMessage.isStatusMsg).map((m) => m.content.execution_state)).toEqual(["busy", "idle"]);
    const result = iopub.find(KernelMessage.isExecuteResultMsg);
    expect(result?.content.data["text/plain"]).toBe("42");
    expect(result?.content.execution_count).toBe(count);
    expect(iopub.filter(KernelMessage.isStreamMsg).map((m) => m.content.text).join("")).toBe("hi\n");
    const next = await nb.run("a");
    expect(next.outputs).toEqual([{ type: "execute_result", data: { "text/plain": "20" }, displayId: undefined }]);
  });

  it("supports top-level await and keeps its declarations for later cells", async () => {
    const r = await nb.run("const v = await new Promise((res) => setTimeout(() => res(41), 5));\nfunction inc(x) { return x + 1; }\ninc(v)");
    expect(r.status).toBe("ok");
    expect(r.outputs).toContainEqual(expect.objectContaining({ type: "execute_result", data: { "text/plain": "42" } }));
    const later = await nb.run("console.log(v, inc(1))");
    expect(later.stdout).toBe("41 2\n");
  });

  it("requires modules from the kernel's folder and maps sense-tslab to this package", async () => {
    const r = await nb.run("console.log(require('./helper').answer(), require('localpkg').name, require.resolve('sense-tslab'))");
    expect(r.status).toBe("ok");
    expect(r.stdout).toBe(`42 localpkg ${path.join(REPO, "dist", "src", "index.js")}\n`);
  });

  it("coalesces 20 000 quick lines into a few messages, complete and in order", async () => {
    const kernel = nb.session.kernel!;
    const future = kernel.requestExecute({ code: "for (let i = 0; i < 20000; i++) console.log('line ' + i)" });
    const streams: string[] = [];
    future.onIOPub = (m) => {
      if (KernelMessage.isStreamMsg(m)) streams.push(m.content.text);
    };
    expect((await future.done).content.status).toBe("ok");
    const expected = Array.from({ length: 20000 }, (_, i) => `line ${i}\n`).join("");
    expect(streams.join("")).toBe(expected);
    // ~230 KB of text at 64 KiB per message
    expect(streams.length).toBeLessThanOrEqual(8);
  });

  it("sends an occasional line written after the cell finished, to that cell", async () => {
    const kernel = nb.session.kernel!;
    const a = kernel.requestExecute({ code: "setTimeout(() => console.log('late from A'), 200); 'A done'" }, false);
    const aId = a.msg.header.msg_id;
    await a.done;
    const b = await nb.run("console.log('B')");
    expect(b.stdout).toBe("B\n");
    const late = await nb.waitFor((m) => KernelMessage.isStreamMsg(m) && m.content.text === "late from A\n");
    expect((late.parent_header as KernelMessage.IHeader).msg_id).toBe(aId);
    a.dispose();
  });

  it("reports an error with a traceback and marks the cell failed", async () => {
    const r = await nb.run("function fail() { throw new TypeError('bad thing'); }\nfail()");
    expect(r.status).toBe("error");
    const err = r.outputs.find((o) => o.type === "error");
    expect(err).toMatchObject({ type: "error", ename: "TypeError", evalue: "bad thing" });
    const tb = err && err.type === "error" ? err.traceback.join("\n") : "";
    expect(tb).toMatch(/TypeError: bad thing/);
    expect(tb).toMatch(/at fail \(cell-\d+\.js:1:\d+\)/);
    // the kernel carries on
    expect((await nb.run("1 + 1")).status).toBe("ok");
  });

  it("shows a display bundle with two MIME types in one message", async () => {
    const r = await nb.run("display({ 'text/plain': 'plain', 'text/html': '<b>bold</b>' })");
    expect(r.outputs).toEqual([{ type: "display_data", data: { "text/plain": "plain", "text/html": "<b>bold</b>" }, displayId: undefined }]);
  });

  it("answers is_complete, complete and inspect", async () => {
    const kernel = nb.session.kernel!;
    expect((await kernel.requestIsComplete({ code: "function f() {" })).content.status).toBe("incomplete");
    expect((await kernel.requestIsComplete({ code: "1 +* 2" })).content.status).toBe("invalid");
    expect((await kernel.requestIsComplete({ code: "await f()" })).content.status).toBe("complete");
    await nb.run("globalThis.myObject = { alpha: 1, alphabet: 2, beta: 3 }");
    const c = await kernel.requestComplete({ code: "myObject.alp", cursor_pos: 12 });
    expect(c.content.status).toBe("ok");
    if (c.content.status === "ok") {
      expect(c.content.matches).toEqual(["alpha", "alphabet"]);
      expect(c.content.cursor_start).toBe(9);
    }
    const i = await kernel.requestInspect({ code: "myObject", cursor_pos: 3, detail_level: 0 });
    expect(i.content.status).toBe("ok");
    if (i.content.status === "ok") {
      expect(i.content.found).toBe(true);
      expect(String(i.content.data["text/plain"])).toContain("alphabet: 2");
    }
  });

  it("interrupts a busy loop and stays usable", async () => {
    const kernel = nb.session.kernel!;
    const future = kernel.requestExecute({ code: "while (true) {}" });
    const id = future.msg.header.msg_id;
    // The loop has started once the kernel published execute_input for it.
    await nb.waitFor((m) => m.header.msg_type === "execute_input" && (m.parent_header as KernelMessage.IHeader).msg_id === id);
    await kernel.interrupt();
    const reply = await future.done;
    expect(reply.content.status).toBe("error");
    if (reply.content.status === "error") expect(reply.content.ename).toBe("KeyboardInterrupt");
    expect((await nb.run("'still alive'")).outputs).toContainEqual(expect.objectContaining({ data: { "text/plain": "'still alive'" } }));
  });

  it("runs magics, like every Sense kernel", async () => {
    const r = await nb.run("%sense_help lsmagic");
    expect(r.status).toBe("ok");
    expect(r.stdout).toMatch(/List every available magic/);
    const bad = await nb.run("%no_such_magic");
    expect(bad.status).toBe("error");
    expect(bad.error?.ename).toBe("UsageError");
    expect(bad.stderr).toMatch(/^UsageError: .*no_such_magic/);
  });

  it("has a small idle footprint and exits promptly on shutdown", async () => {
    const other = await openNotebook(server, FAST_KERNEL_NAME);
    let pid: number;
    try {
      const r = await other.run("process.pid");
      pid = Number((r.outputs[0] as { data: Record<string, string> }).data["text/plain"]);
      expect(pid).toBeGreaterThan(0);
      const rssMiB = rssKiB(pid) / 1024;
      console.log(`sense-fast idle kernel RSS: ${rssMiB.toFixed(1)} MiB (target <= 60)`);
      expect(rssMiB).toBeGreaterThan(0);
    } finally {
      await other.shutdown();
    }
    expect(await waitForExit(pid, 10_000)).toBe(true);
    expect(processesUnder(server.baseDir)).not.toContain(pid);
  });
});
