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
