/**
 * Issue #25: a `sense-ts` master type-checks the TypeScript startup code of its workers with the
 * library declarations (`lib.*.d.ts`, `@types/node`) its own tslab converter already parsed, so the
 * first launch in a fresh master parses none of them, like every later launch. Counted with the
 * master's transpiler (files it parsed itself), in a real kernel through a real Jupyter Server.
 */
import { JupyterServer, processesUnder, startJupyterServer } from "../helpers/jupyter";
import { NotebookKernel, openNotebook } from "../helpers/kernel";

let server: JupyterServer;
let nb: NotebookKernel | undefined;

beforeAll(async () => {
  server = await startJupyterServer();
});

afterAll(async () => {
  await nb?.shutdown();
  const marker = server?.baseDir;
  await server?.stop();
  if (marker) expect(processesUnder(marker)).toEqual([]);
});

/** A launch of one worker (no engine: the master's own) with TypeScript startup code; the master's transpiler figures after it. */
function launchCell(i: number): string {
  return [
    i === 0 ? 'import * as sense from "sense-tslab";' : "",
    `const seen${i} = new Promise<void>((resolve, reject) => {`,
    `  const sink = { stdout(t: string) { if (t.includes("started-${i}")) resolve(); }, stderr() {}, display() {} };`,
    `  sense.launchWorkers(1, { code: 'const word: string = "started-${i}";\\nconsole.log(word);', sink, keeper: false }).catch(reject);`,
    "});",
    `await seen${i};`,
    "await sense.stopWorkers();",
    'console.log("stats " + JSON.stringify(require("sense-tslab/dist/src/transpile").defaultTranspiler().stats()));',
  ].join("\n");
}

const isLibrary = (f: string) => /[\\/]lib\.[^\\/]*\.d\.ts$|[\\/]@types[\\/]/.test(f);

describe("a sense-ts master's launches with TypeScript startup code", () => {
  it("parse no library declarations, neither the first nor a later one: the converter's are reused", async () => {
    nb = await openNotebook(server, "sense-ts");
    const stats: { parsed: string[]; adopted: number; checks: number }[] = [];
    for (let i = 0; i < 2; i++) {
      const r = await nb.run(launchCell(i));
      expect(r.status).toBe("ok");
      const line = (r.stdout ?? "").split("\n").find((l) => l.startsWith("stats "));
      expect(line).toBeDefined();
      stats.push(JSON.parse(line!.slice("stats ".length)) as { parsed: string[]; adopted: number; checks: number });
    }
    const [first, later] = stats;
    // The idle warm-up (at the notebook's kernel_info) ran one check before any launch: the first
    // launch's check was the second of the process (checker code warm), the later one the third.
    expect(first.checks).toBe(2);
    expect(later.checks).toBe(3);
    // Without sharing, the first check parses lib.es5.d.ts, lib.es2022*.d.ts and @types/node again.
    expect(first.parsed.filter(isLibrary)).toEqual([]);
    expect(later.parsed.filter(isLibrary)).toEqual([]);
    expect(first.adopted).toBeGreaterThan(10);
    // Nothing was parsed twice either (a later launch reuses what the first one had).
    expect(new Set(later.parsed).size).toBe(later.parsed.length);
  });
});
