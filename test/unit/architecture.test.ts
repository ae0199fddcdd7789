/**
 * The import rules of docs/ARCHITECTURE.md, read from the sources: no import circle, nothing in
 * `src/` imports `kernel-extension/`, no layer imports a higher one, and `src/protocol/` (loaded
 * by kernels at start) imports nothing but Node's own modules and the dependency-free errors.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as ts from "typescript";

const REPO = path.resolve(__dirname, "..", "..");

/** Layers of `src/`, lowest first: a module may import its own layer and lower ones. */
const LAYERS: [string, RegExp][] = [
  ["base", /^src\/(errors|paths|package-root|util\/.*|protocol\/.*)$/],
  ["jupyter", /^src\/(jupyter\/.*|lifecycle|transpile)$/],
  ["display", /^src\/display\/.*$/],
  ["platform", /^src\/(platform\/.*|kernelspecs|labextension)$/],
  ["backends", /^src\/backends\/.*$/],
  ["workers", /^src\/workers\/.*$/],
  ["remote", /^src\/remote\/.*$/],
  ["magics", /^src\/magics\/.*$/],
  ["api", /^src\/(index|cli)$/],
  ["kernel", /^kernel-extension\/.*$/],
];

function layerOf(mod: string): number {
  const i = LAYERS.findIndex(([, re]) => re.test(mod));
  if (i < 0) throw new Error(`${mod} is in no layer: add it to LAYERS (and to docs/ARCHITECTURE.md)`);
  return i;
}

function sources(dir: string): string[] {
  return fs.readdirSync(path.join(REPO, dir), { withFileTypes: true }).flatMap((e) => {
    const rel = `${dir}/${e.name}`;
    if (e.isDirectory()) return sources(rel);
    return e.name.endsWith(".ts") && !e.name.endsWith(".d.ts") ? [rel.replace(/\.ts$/, "")] : [];
  });
}

/** Every module's relative imports (static, dynamic, `require`, type-only alike), as module ids. */
function importGraph(dirs: string[]): Map<string, { to: string; bare: boolean }[]> {
  const graph = new Map<string, { to: string; bare: boolean }[]>();
  const mods = new Set(dirs.flatMap(sources));
  for (const mod of mods) {
    const text = fs.readFileSync(path.join(REPO, `${mod}.ts`), "utf8");
    const specs = ts.preProcessFile(text, true, true).importedFiles.map((f) => f.fileName);
    const edges = specs.map((spec) => {
      if (!spec.startsWith(".")) return { to: spec, bare: true };
      const target = path.posix.normalize(path.posix.join(path.posix.dirname(mod), spec)).replace(/\.js$/, "");
      return { to: mods.has(target) ? target : mods.has(`${target}/index`) ? `${target}/index` : target, bare: false };
    });
    graph.set(mod, edges);
  }
  return graph;
}

/** Strongly connected components with more than one module (or a self-import): the circles. */
function circles(graph: Map<string, { to: string; bare: boolean }[]>): string[][] {
  let n = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const on = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, n);
    low.set(v, n++);
    stack.push(v);
    on.add(v);
    for (const { to: w, bare } of graph.get(v) ?? []) {
      if (bare || !graph.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || (graph.get(v) ?? []).some((e) => e.to === v)) out.push(scc.sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return out;
}

const graph = importGraph(["src", "kernel-extension"]);

describe("architecture: the import rules", () => {
  it("reads a graph of the whole tree", () => {
    expect(graph.size).toBeGreaterThan(90);
    expect(graph.get("src/workers/cluster")?.some((e) => e.to === "src/workers/worker")).toBe(true);
  });

  it("has no import circle", () => {
    expect(circles(graph)).toEqual([]);
  });

  it("finds a circle when there is one (the check itself works)", () => {
    const g = new Map([
      ["a", [{ to: "b", bare: false }]],
      ["b", [{ to: "c", bare: false }]],
      ["c", [{ to: "a", bare: false }, { to: "node:fs", bare: true }]],
      ["d", [{ to: "a", bare: false }]],
    ]);
    expect(circles(g)).toEqual([["a", "b", "c"]]);
  });

  it("src/ never imports kernel-extension/, and no layer imports a higher one", () => {
    const bad: string[] = [];
    for (const [from, edges] of graph) {
      for (const { to, bare } of edges) {
        if (bare || !graph.has(to)) continue;
        if (from.startsWith("src/") && to.startsWith("kernel-extension/")) bad.push(`${from} -> ${to} (src imports the kernel)`);
        else if (layerOf(to) > layerOf(from)) bad.push(`${from} (${LAYERS[layerOf(from)][0]}) -> ${to} (${LAYERS[layerOf(to)][0]})`);
      }
    }
    expect(bad).toEqual([]);
  });

  it("src/protocol imports only Node's own modules, itself and the errors (which import nothing)", () => {
    const light = (e: { to: string; bare: boolean }) => (e.bare ? e.to.startsWith("node:") : e.to.startsWith("src/protocol/") || e.to === "src/errors");
    const bad = [...graph].filter(([m]) => m.startsWith("src/protocol/") || m === "src/errors").flatMap(([m, edges]) => edges.filter((e) => !light(e)).map((e) => `${m} -> ${e.to}`));
    expect(bad).toEqual([]);
  });
});
