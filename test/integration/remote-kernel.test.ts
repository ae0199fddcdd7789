/**
 * Remote execution from a real sense-ts master kernel (a notebook): `%%sense_px` cells, the
 * execute-results table hook, and map's live progress display updated in place.
 */
import { JupyterServer, processesUnder, startJupyterServer } from "../helpers/jupyter";
import { allText, NotebookKernel, openNotebook, Output, shownText } from "../helpers/kernel";
import { until } from "../helpers/util";

let server: JupyterServer;
let nb: NotebookKernel;

/** A cell that must succeed (tslab aborts cells queued right after a failure: retry those). */
async function ok(code: string) {
  let r = await nb.run(code);
  for (let i = 0; r.status === "abort" && i < 50; i++) r = await nb.run(code);
  if (r.status !== "ok") throw new Error(`cell failed (${r.status}):\n${code}\n---\n${allText(r.outputs)}`);
  return r;
}

const plains = (outputs: Output[]) => outputs.flatMap((o) => (o.type === "display_data" || o.type === "update_display_data" || o.type === "execute_result" ? [String(o.data["text/plain"])] : []));

beforeAll(async () => {
  server = await startJupyterServer();
  nb = await openNotebook(server, "sense-ts");
  await ok('import * as sense from "sense-tslab";');
  await ok('const js = await sense.launchWorkers(2, { engine: "sense-fast" });\nconst py = await sense.launchWorkers(1, { engine: "python3" });');
});

afterAll(async () => {
  await nb?.shutdown();
  const marker = server?.baseDir;
  await server?.stop();
  if (marker) expect(processesUnder(marker)).toEqual([]);
});

describe("%%sense_px in a sense-ts master", () => {
  it("runs the body on the targets: labelled output and Out[w] values", async () => {
    const r = await ok('%%sense_px w1 w2\nconst who: string = process.env.SENSE_WORKER_NAME!;\nconsole.log("on", who);\n({ who, twice: who + who })');
    expect(r.stdout).toMatch(/\[w1\] on w1\n/);
    expect(r.stdout).toMatch(/\[w2\] on w2\n/);
    const outs = plains(r.outputs);
    expect(outs).toContain("Out[w1]: { who: 'w1', twice: 'w1w1' }");
    expect(outs).toContain("Out[w2]: { who: 'w2', twice: 'w2w2' }");
    const p = await ok("%%sense_px w3\nimport sys\nsys.version_info.major * 10");
    expect(plains(p.outputs)).toContain("Out[w3]: 30");
  });

  it("a failing worker fails the cell, shown like a CompositeError", async () => {
    const r = await nb.run('%%sense_px\nif (typeof process !== "undefined" && process.env.SENSE_WORKER_NAME === "w2") throw new Error("w2 says no");\n1');
    expect(r.status).toBe("error");
    // w3 is Python: the JavaScript body is a SyntaxError there
    expect(r.stderr).toMatch(/RemoteError: one or more exceptions raised in: execute\n\[w2:execute\]\nError: w2 says no\n/);
    expect(r.stderr).toMatch(/\[w3:execute\] SyntaxError: /);
    expect(plains(r.outputs)).toContain("Out[w1]: 1");
  });

  it("--timeout interrupts and keeps state; --noblock lands results after the cell ended", async () => {
    await ok("%%sense_px w1\nglobalThis.count = 1");
    const t = await nb.run("%%sense_px w1 --timeout 1\nfor (;;) {}");
    expect(t.status).toBe("error");
    expect(t.stderr).toMatch(/TimeoutError: interrupted after 1\.0 s; the worker's state is kept/);
    const c = await ok("%%sense_px w1\ncount + 1");
    expect(plains(c.outputs)).toContain("Out[w1]: 2");
    const nbk = await ok("%%sense_px w1 w2 --noblock\nawait new Promise((r) => setTimeout(r, 300));\nprocess.env.SENSE_WORKER_NAME");
    // The cell ended before the results: they land in its late display (what notebooks save).
    const outs = () => shownText(nbk.outputs).split("\n").filter((l) => l.startsWith("Out["));
    await until("both results", () => (outs().length >= 2 ? true : undefined), 60_000);
    expect(outs().sort()).toEqual(["Out[w1]: 'w1'", "Out[w2]: 'w2'"]);
  });

  it("execute's results render as a table; map shows progress updated in place", async () => {
    const r = await ok('await sense.execute("6 * 7", { targets: js })');
    const table = r.outputs.find((o) => o.type !== "stream" && o.type !== "error" && typeof o.data["text/html"] === "string" && /<table/.test(String(o.data["text/html"])));
    expect(table && table.type !== "stream" && table.type !== "error" ? String(table.data["text/plain"]) : "").toMatch(/worker\s+status\s+value\s+time[\s\S]*w1\s+ok\s+42\s+[\d.]+ ms[\s\S]*w2\s+ok\s+42/);
    const m = await ok(
      "const squares = await sense.map(async (x: number) => { await new Promise((r) => setTimeout(r, 20)); return x * x; }, Array.from({ length: 200 }, (_, i) => i), { targets: js, chunkSize: 5 });\nconsole.log(squares.length, squares[199]);",
    );
    expect(m.stdout).toMatch(/200 39601/);
    const first = m.outputs.find((o) => o.type === "display_data" && /^map /.test(String(o.data["text/plain"])));
    const updates = m.outputs.filter((o) => o.type === "update_display_data" && first?.type === "display_data" && o.displayId === first.displayId);
    expect(first && first.type === "display_data" ? String(first.data["text/plain"]) : "").toMatch(/^map \[\.{20}\] 0\/200 0%/);
    expect(updates.length).toBeGreaterThan(1);
    const texts = updates.map((u) => (u.type === "update_display_data" ? String(u.data["text/plain"]) : ""));
    expect(texts.some((t) => /^map \[#*\.+\] \d+\/200 /.test(t))).toBe(true);
    expect(texts[texts.length - 1]).toMatch(/^map done \[#{20}\] 200\/200 100% · w1 \d+ · w2 \d+ · [\d.]+ s$/);
    await ok("await sense.stopWorkers();");
  });
});

describe("remote code on sense-ts workers", () => {
  it("goes as the master's JavaScript: the workers run it without loading their TypeScript compiler", async () => {
    await ok('const tsw = await sense.launchWorkers(2);\nawait sense.awaitWorkers(tsw, { waitForCompletion: true });');
    const r = await ok('const rr = await sense.execute("const n: number = 6 * 7;\\nn", { targets: tsw });\nconsole.log("VALUES", JSON.stringify(rr.map((x) => [x.status, x.value])));');
    expect(r.stdout).toContain('VALUES [["ok",42],["ok",42]]');
    // push, pull and map go the same way; none of them made a worker load the compiler.
    const pm = await ok('await sense.push({ base: 10 }, { targets: tsw });\nconst mapped = await sense.map((x: number) => x + (globalThis as any).base, [1, 2, 3, 4], { targets: tsw });\nconsole.log("MAPPED", mapped.join(","), (await sense.pull("base", { targets: tsw })).join(","));');
    expect(pm.stdout).toContain("MAPPED 11,12,13,14 10,10");
    const loaded = await ok('const lr = await sense.execute("Object.keys(require.cache).some((k) => k.endsWith(\\"/typescript/lib/typescript.js\\"))", { targets: tsw });\nconsole.log("COMPILER", JSON.stringify(lr.map((x) => x.value)));');
    expect(loaded.stdout).toContain("COMPILER [false,false]");
    await ok("await sense.stopWorkers(tsw);");
  });

  it("sense-js workers: execute, push, pull and map with values in order", async () => {
    await ok('const jsw = await sense.launchWorkers(2, { engine: "sense-js" });\nawait sense.awaitWorkers(jsw, { waitForCompletion: true });');
    const r = await ok('const jr = await sense.execute("process.env.SENSE_WORKER_NAME + \\":\\" + (6 * 7)", { targets: jsw });\nconsole.log("VALUES", JSON.stringify(jr.map((x) => x.value)));');
    expect(r.stdout).toMatch(/VALUES \["w\d+:42","w\d+:42"\]/);
    const m = await ok('await sense.push({ k: 3 }, { targets: jsw });\nconst jm = await sense.map((x: number) => x * (globalThis as any).k, Array.from({ length: 100 }, (_, i) => i), { targets: jsw });\nconsole.log("MAPPED", jm.length, jm[99], jm.every((v, i) => v === i * 3), (await sense.pull("k", { targets: jsw })).join(","));');
    expect(m.stdout).toContain("MAPPED 100 297 true 3,3");
    await ok("await sense.stopWorkers(jsw);");
  });
});
