/**
 * The Jupyter project's kernel conformance suite, `jupyter_kernel_test` (pinned in
 * python/requirements.lock), on every Sense kernel: sense-ts, sense-js and sense-fast, with the
 * project's samples (test/conformance/sense_kernels.py). Real kernels, started by jupyter_client.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { REPO } from "../helpers/jupyter";

const KERNELS = ["SenseTs", "SenseJs", "SenseFast"];
// jupyter_kernel_test has no sample for a pager (Sense kernels have none); everything else runs.
const EXPECTED_SKIPS = new Set(KERNELS.map((k) => `test_pager (__main__.${k}.test_pager)`));

describe("jupyter_kernel_test", () => {
  it("passes on sense-ts, sense-js and sense-fast", () => {
    const python = path.join(REPO, ".venv", "bin", "python");
    const cwd = fs.mkdtempSync(path.join(os.tmpdir(), "sense-conformance-"));
    try {
      const r = spawnSync(python, [path.join(REPO, "test", "conformance", "sense_kernels.py")], {
        cwd,
        encoding: "utf8",
        timeout: 600_000,
        // This project's kernelspecs first, whatever a user installed elsewhere.
        env: { ...process.env, JUPYTER_PATH: path.join(REPO, ".venv", "share", "jupyter") },
      });
      const out = `${r.stdout}${r.stderr}`;
      const lines = out.split("\n");
      const results = lines.filter((l) => / \.\.\. (ok|skipped|FAIL|ERROR)/.test(l));
      const skipped = results.filter((l) => / \.\.\. skipped/.test(l)).map((l) => l.replace(/ \.\.\. .*/, ""));
      if (r.status !== 0) console.log(out);
      expect(r.status).toBe(0);
      expect(out).toMatch(/\nOK/);
      for (const k of KERNELS) expect(results.filter((l) => l.includes(`__main__.${k}.`) && / \.\.\. ok/.test(l)).length).toBe(11);
      expect(new Set(skipped)).toEqual(EXPECTED_SKIPS);
    } finally {
      fs.rmSync(cwd, { recursive: true, force: true });
    }
  });
});

describe("nbclient with allow_errors", () => {
  type Out = { output_type: string; name?: string; text?: string; ename?: string; evalue?: string; data?: Record<string, string> };
  for (const kernel of ["sense-ts", "sense-js", "sense-fast"]) {
    it(`${kernel}: every cell after a failing one runs, and its output is saved`, () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sense-allow-errors-"));
      try {
        const out = path.join(dir, "executed.ipynb");
        const r = spawnSync(path.join(REPO, ".venv", "bin", "python"), [path.join(REPO, "test", "conformance", "allow_errors.py"), kernel, out], {
          cwd: dir,
          encoding: "utf8",
          timeout: 300_000,
          env: { ...process.env, JUPYTER_PATH: path.join(REPO, ".venv", "share", "jupyter") },
        });
        if (r.status !== 0) console.log(r.stdout, r.stderr);
        expect(r.status).toBe(0);
        expect(fs.existsSync(out)).toBe(true);
        const cells = JSON.parse(r.stdout.trim().split("\n").pop() ?? "[]") as { count: number; outputs: Out[] }[];
        expect(cells.map((c) => c.count)).toEqual([1, 2, 3, 4, 5, 6, 7]);
        const text = (c: { outputs: Out[] }) => c.outputs.filter((o) => o.output_type === "stream").map((o) => o.text).join("");
        const result = (c: { outputs: Out[] }) => c.outputs.find((o) => o.output_type === "execute_result")?.data?.["text/plain"];
        expect([text(cells[0]), result(cells[0])]).toEqual(["first\n", "41"]);
        expect(cells[1].outputs).toContainEqual(expect.objectContaining({ output_type: "error", ename: "Error", evalue: "runtime failure" }));
        expect([text(cells[2]), result(cells[2])]).toEqual(["after a runtime error\n", "42"]);
        const second = cells[3].outputs.find((o) => o.output_type === "error");
        expect(second?.ename).toBe(kernel === "sense-ts" ? "CompileError" : "SyntaxError");
        if (kernel === "sense-ts") expect(second?.evalue).toMatch(/^cell-4\.ts:1:7 - error TS2322: /);
        expect([text(cells[4]), result(cells[4])]).toEqual(["after a second error\n", "43"]);
        // A magic's usage error is its one stderr line (no stack), and the notebook goes on.
        expect(text(cells[5])).toMatch(/^UsageError: .*no_such_magic/);
        expect([text(cells[6]), result(cells[6])]).toEqual(["after a magic error\n", "44"]);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
