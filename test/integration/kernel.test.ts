/**
 * The seam between tslab 1.0.22 and the Sense kernels, through a real Jupyter Server and real
 * kernels, cell by cell as a notebook runs them. The server's root is a fresh temp folder with
 * no node_modules anywhere above it, which is also the "empty folder" case.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { KernelMessage } from "@jupyterlab/services";
import { JupyterServer, REPO, startJupyterServer } from "../helpers/jupyter";
import { NotebookKernel, openNotebook, shownText } from "../helpers/kernel";
import { until } from "../helpers/util";

let server: JupyterServer;
let nb: NotebookKernel;
const figures: Record<string, number> = {};

beforeAll(async () => {
  expect(fs.existsSync(path.join(REPO, "dist", "kernel-extension", "kernel.js"))).toBe(true);
  server = await startJupyterServer();
  const t0 = Date.now();
  nb = await openNotebook(server, "sense-ts");
  figures.startupMs = Date.now() - t0;
});

afterAll(async () => {
  await nb?.shutdown();
  await server?.stop();
  // Figures for the report (the test's console output).
  console.log(`sense-ts figures: ${JSON.stringify(figures)}`);
});

describe("sense-ts kernel, cell by cell", () => {
  it("runs a TypeScript cell (console.log compiles with no node_modules anywhere above the folder)", async () => {
    expect(fs.readdirSync(server.rootDir).filter((f) => f === "node_modules")).toEqual([]);
    const t0 = Date.now();
    const r = await nb.run("const x: number = 41;\nconsole.log('hello');\nx + 1");
    figures.firstCellMs = Date.now() - t0;
    expect(r.stderr).toBe("");
    expect(r.status).toBe("ok");
    expect(r.stdout).toBe("hello\n");
    // The last expression is an execute_result, not printed text.
    expect(r.result).toBe("42");
  });

  it("reports a type error and fails the cell", async () => {
    const r = await nb.run("const s: string = x;");
    expect(r.status).toBe("error");
    // A compile error is an error with the diagnostics' file:line:col, in the reply and on iopub.
    expect(r.error?.ename).toBe("CompileError");
    expect(r.error?.evalue).toMatch(/^cell-\d+\.ts:1:7 - error TS2322: Type 'number' is not assignable to type 'string'/);
    expect(r.outputs).toContainEqual(expect.objectContaining({ type: "error", ename: "CompileError", evalue: r.error?.evalue }));
    const next = await nb.run("x * 2");
    expect(next.status).toBe("ok");
    expect(next.result).toBe("82");
  });

  it("supports top-level await", async () => {
    const r = await nb.run("const v = await Promise.resolve(5);\nv * 2");
    expect(r.status).toBe("ok");
    expect(r.result).toBe("10");
  });

  it("answers complete_request and inspect_request", async () => {
    const kernel = nb.session.kernel!;
    const code = "Math.flo";
    const c = await kernel.requestComplete({ code, cursor_pos: code.length });
    const content = c.content as KernelMessage.ICompleteReplyMsg["content"] & { matches: string[] };
    expect(content.status).toBe("ok");
    expect(content.matches).toContain("floor");
    const i = await kernel.requestInspect({ code: "Math.floor(1)", cursor_pos: 7, detail_level: 0 });
    const ic = i.content as { status: string; found: boolean; data: Record<string, string> };
    expect(ic.status).toBe("ok");
    expect(ic.found).toBe(true);
    expect(ic.data["text/plain"]).toMatch(/floor\(x: number\): number/);
  });

  it("keeps tslab's display API", async () => {
    const r = await nb.run('import * as tslab from "tslab";\ntslab.display.html("<b>bold</b>");');
    expect(r.status).toBe("ok");
    expect(r.outputs).toContainEqual(expect.objectContaining({ type: "display_data", data: { "text/html": "<b>bold</b>" } }));
  });

  it("interrupts a busy loop: the cell fails and the kernel answers the next cell", async () => {
    const running = nb.run('console.log("spinning");\nwhile (true) {}');
    await nb.waitFor((m) => m.header.msg_type === "stream" && (m.content as { text?: string }).text === "spinning\n", 60_000);
    const res = await fetch(`${server.url}api/kernels/${nb.kernelId}/interrupt`, { method: "POST", headers: { Authorization: `token ${server.token}` } });
    expect(res.status).toBe(204);
    const r = await running;
    expect(r.status).toBe("error");
    expect(r.error?.ename).toBe("KeyboardInterrupt");
    const next = await nb.run("x + 100");
    expect(next.status).toBe("ok");
    expect(next.result).toBe("141");
  });

  it("reports a runtime error with ename, evalue and a traceback naming the cell", async () => {
    const r = await nb.run('function fails(): never { throw new RangeError("too far"); }\nfails();');
    expect(r.status).toBe("error");
    expect(r.error).toEqual(expect.objectContaining({ ename: "RangeError", evalue: "too far" }));
    expect(r.error?.traceback.join("\n")).toMatch(/RangeError: too far\n\s+at fails \(cell-\d+\.js/);
    expect(r.outputs.filter((o) => o.type === "error")).toHaveLength(1);
  });

  it("routes a magic cell to the registry (%lsmagic)", async () => {
    const t0 = Date.now();
    const r = await nb.run("%lsmagic");
    figures.firstMagicCellMs = Date.now() - t0;
    expect(r.status).toBe("ok");
    const shown = r.outputs.filter((o) => o.type === "display_data");
    expect(shown.length).toBe(1);
    const data = (shown[0] as { data: Record<string, unknown> }).data;
    expect(String(data["text/plain"])).toMatch(/%lsmagic/);
    expect(String(data["text/plain"])).toMatch(/%sense_help/);
    expect(typeof data["text/html"]).toBe("string");
    const t1 = Date.now();
    const again = await nb.run("%lsmagic");
    figures.magicCellMs = Date.now() - t1;
    expect(again.status).toBe("ok");
  });

  it("expands $var in a magic's argument line from an earlier cell's variable", async () => {
    const def = await nb.run('const which = "lsmagic";');
    expect(def.status).toBe("ok");
    const r = await nb.run("%sense_help $which");
    expect(r.status).toBe("ok");
    expect(r.stdout).toMatch(/List every available magic/);
    expect(r.stdout).not.toMatch(/sense_help/);
  });

  it("fails the cell on a usage error, printing UsageError and no stack", async () => {
    const r = await nb.run("%sense_help no_such_magic_here");
    expect(r.status).toBe("error");
    expect(r.stderr).toMatch(/^UsageError: no magic named no_such_magic_here/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    const unknown = await nb.run("%no_such_magic");
    expect(unknown.status).toBe("error");
    expect(unknown.stderr).toMatch(/^UsageError: .*no_such_magic/);
    // Nothing changed: the notebook's variables are all still there.
    const after = await nb.run("which + x");
    expect(after.status).toBe("ok");
    expect(after.result).toBe("'lsmagic41'");
  });

  it("keeps counting executions across magic and code cells", async () => {
    const kernel = nb.session.kernel!;
    const a = await kernel.requestExecute({ code: "%lsmagic" }).done;
    const b = await kernel.requestExecute({ code: "1" }).done;
    const ca = (a.content as { execution_count: number }).execution_count;
    const cb = (b.content as { execution_count: number }).execution_count;
    expect(cb).toBe(ca + 1);
  });

  it("resolves sense-tslab in any folder, type-checked, as the kernel's own module instance", async () => {
    const r = await nb.run(
      [
        'import * as sense from "sense-tslab";',
        "const installFn: typeof sense.install = sense.install;",
        'const own = require.cache[require.resolve("sense-tslab")];',
        `console.log(require.resolve("sense-tslab") === ${JSON.stringify(path.join(REPO, "dist", "src", "index.js"))});`,
        "console.log(own !== undefined && own.exports === sense, typeof installFn);",
      ].join("\n"),
    );
    expect(r.stderr).toBe("");
    expect(r.status).toBe("ok");
    expect(r.stdout).toBe("true\ntrue function\n");
    // Types are real: a wrong use is a compile error, not an `any`.
    const bad = await nb.run('import * as sense2 from "sense-tslab";\nconst n: number = sense2.install;');
    expect(bad.status).toBe("error");
    expect(bad.error?.evalue).toMatch(/is not assignable to type 'number'/);
    // The lifecycle module the kernel runs at shutdown is the one cells reach.
    const same = await nb.run(
      'const lc = require("sense-tslab/dist/src/lifecycle");\nconsole.log(lc === require.cache[require.resolve("sense-tslab/dist/src/lifecycle")]?.exports, typeof lc.onShutdown);',
    );
    expect(same.status).toBe("ok");
    expect(same.stdout).toBe("true function\n");
  });
});

describe("stop_on_error and interrupts", () => {
  // Cell `a` waits for `release` to exist, so the test knows b and c are queued behind it: the
  // kernel answers comm_info at once, in order, so its reply means b and c were read.
  async function queuedBehindFailure(stopOnError: boolean): Promise<string[]> {
    const kernel = nb.session.kernel!;
    const release = path.join(server.rootDir, `release-${stopOnError}-${Date.now()}`);
    const wait = `await new Promise<void>((r) => { const t = setInterval(() => { if (require("fs").existsSync(${JSON.stringify(release)})) { clearInterval(t); r(); } }, 10); });`;
    const a = kernel.requestExecute({ code: `${wait}\nthrow new Error("first fails");`, stop_on_error: stopOnError });
    const b = kernel.requestExecute({ code: "1 + 1", stop_on_error: true });
    const c = kernel.requestExecute({ code: "2 + 2", stop_on_error: true });
    await kernel.requestCommInfo({});
    fs.writeFileSync(release, "");
    const replies = await Promise.all([a.done, b.done, c.done]);
    return replies.map((r) => r.content.status);
  }

  it("with stop_on_error: true, aborts what was queued when the error happened, and only that", async () => {
    expect(await queuedBehindFailure(true)).toEqual(["error", "aborted", "aborted"]);
    const after = await nb.run("3 + 3");
    expect(after.status).toBe("ok");
    expect(after.result).toBe("6");
  });

  it("with stop_on_error: false, aborts nothing", async () => {
    expect(await queuedBehindFailure(false)).toEqual(["error", "ok", "ok"]);
  });

  it("interrupts a cell that is still compiling: it never runs, and the kernel goes on", async () => {
    const fresh = await openNotebook(server, "sense-ts");
    try {
      // A fresh kernel's first TypeScript cell builds the converter (seconds): it is compiling
      // from its execute_input on.
      const running = fresh.run('console.log("it ran");\nconst compiled: number = 1;');
      await fresh.waitFor((m) => m.header.msg_type === "execute_input", 60_000);
      const res = await fetch(`${server.url}api/kernels/${fresh.kernelId}/interrupt`, { method: "POST", headers: { Authorization: `token ${server.token}` } });
      expect(res.status).toBe(204);
      const r = await running;
      expect(r.status).toBe("error");
      expect(r.error?.ename).toBe("KeyboardInterrupt");
      expect(r.stdout).toBe("");
      const next = await fresh.run("1 + 2");
      expect(next.status).toBe("ok");
      expect(next.result).toBe("3");
    } finally {
      await fresh.shutdown();
    }
  });
});

describe("live worker tables from a sense-ts master", () => {
  it("never miss a transition: startup code that ends within milliseconds leaves the table saying idle", async () => {
    const r = await nb.run('%%sense_worker -n 3\nconsole.log("up " + process.env.SENSE_WORKER_NAME);');
    expect(r.status).toBe("ok");
    const first = r.outputs.find((o) => o.type === "display_data" && o.displayId);
    const id = first && first.type === "display_data" ? first.displayId : undefined;
    expect(id).toBeDefined();
    const tables = () => r.outputs.filter((o) => (o.type === "display_data" || o.type === "update_display_data") && o.displayId === id);
    const plain = (o: unknown) => String((o as { data: Record<string, unknown> }).data["text/plain"]);
    // Every worker printed (its startup code is done), and the table caught up.
    // (in the cell, as streams or, after the cell ended, in its late display)
    await until("every worker's line in the launching cell", () => (["w1", "w2", "w3"].every((w) => shownText(r.outputs).includes(`[${w}] up ${w}\n`)) ? true : undefined), 120_000);
    await until("a table update saying 3 idle", () => (tables().some((o) => /3 workers · 3 idle/.test(plain(o))) ? true : undefined), 60_000);
    expect(plain(tables().at(-1))).toMatch(/3 workers · 3 idle/);
    // Workers of a sense-ts master with no engine are sense-ts kernels (their code came precompiled).
    expect(plain(tables().at(-1))).toMatch(/sense-ts/);
    const stop = await nb.run("%sense_stop");
    expect(stop.status).toBe("ok");
  });
});

describe("rich display hooks in the sense-ts kernel", () => {
  it("renders a cell's last expression as a table (text/html and text/plain) when a hook knows it", async () => {
    const r = await nb.run('import * as senseRich from "sense-tslab";\nsenseRich.getNetwork({ env: { SENSE_PROJECT_IP: "10.1.2.3", SENSE_SSH_PASSWORD: "s3cret-pw", SENSE_PORT1: "8080", SENSE_PUBLIC_PORT1: "31000" } })');
    expect(r.status).toBe("ok");
    // The last expression's execute_result carries the hook's bundle.
    const shown = r.outputs.filter((o) => o.type === "execute_result");
    expect(shown).toHaveLength(1);
    const data = shown[0].type === "execute_result" ? shown[0].data : {};
    expect(String(data["text/html"])).toMatch(/<table/);
    expect(String(data["text/html"])).toContain("10.1.2.3");
    expect(String(data["text/plain"])).toContain("31000");
    expect(JSON.stringify(r.outputs)).not.toContain("s3cret-pw");
    // A value no hook knows is an execute_result with text/plain only.
    const plain = await nb.run("({ a: 1 })");
    expect(plain.result).toBe("{ a: 1 }");
    expect(plain.outputs.filter((o) => o.type === "display_data")).toEqual([]);
  });

  it("sense.display() renders a worker record through the same hooks", async () => {
    const r = await nb.run(
      'senseRich.display({ id: "k-1", name: "w1<script>", engine: "sense-ts", size: "small", status: "idle", masterId: "m", startedAt: "2026-01-01T00:00:00Z", sessionId: "s", path: "p", index: 1 })',
    );
    expect(r.status).toBe("ok");
    const shown = r.outputs.find((o) => o.type === "display_data");
    const html = shown?.type === "display_data" ? String(shown.data["text/html"]) : "";
    expect(html).toMatch(/<table/);
    expect(html).toContain("w1&lt;script&gt;");
    expect(html).not.toContain("<script>");
  });
});

describe("sense-js kernel", () => {
  it("runs JavaScript, magics included", async () => {
    const js = await openNotebook(server, "sense-js");
    try {
      const r = await js.run("const a = 20;\na + 22");
      expect(r.status).toBe("ok");
      expect(r.result).toBe("42");
      const info = await js.session.kernel!.info;
      expect(info.language_info.name).toBe("javascript");
      const m = await js.run("%sense_help lsmagic");
      expect(m.status).toBe("ok");
      expect(m.stdout).toMatch(/List every available magic/);
    } finally {
      await js.shutdown();
    }
  });
});
