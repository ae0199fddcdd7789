import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { stopWorkers, type WorkerContextInput } from "../../src/workers";
import { processesUnder } from "./jupyter";
import { REPO } from "./util";

/** A machine for the direct backend (no Jupyter Server), as {@link directMachine} sets it up. */
export interface DirectMachine {
  /** The temp folder that holds everything; the kernels' command lines name connection files in it. */
  tmp: string;
  /** The project folder (`<tmp>/project`, created). */
  home: string;
  /** The worker context every call of the suite passes. */
  context: WorkerContextInput;
}

/**
 * Sets up a direct-backend machine for the enclosing suite (file or `describe`): a fresh temp
 * folder with `project/` (created) and `runtime/`, and the context naming them. Registers a
 * `beforeAll` that points SENSE_JUPYTER_PREFIX at the repo's `.venv` (where the project's
 * kernelspecs are registered) and an `afterAll` that stops every worker, restores the variable,
 * expects no process left under the folder, and removes it. Call it at collection time, before the
 * suite's own `beforeAll` that launches workers, so the prefix is set first.
 *
 * @param name - part of the temp folder's name (`sense-<name>-…`), to tell suites apart.
 * @param opts.tmp - use this folder (the caller's: it makes and removes it) instead of a fresh one.
 * @param opts.homeName - the project folder's name in it (default `project`).
 * @throws only what `fs.mkdtempSync`/`fs.mkdirSync` throw; the `afterAll` fails the suite if a
 *   process is left under the folder.
 */
export function directMachine(name: string, opts: { tmp?: string; homeName?: string } = {}): DirectMachine {
  const tmp = opts.tmp ?? fs.mkdtempSync(path.join(os.tmpdir(), `sense-${name}-`));
  const home = path.join(tmp, opts.homeName ?? "project");
  fs.mkdirSync(home, { recursive: true });
  const context: WorkerContextInput = { backend: "direct", projectHome: home, runtimeDir: path.join(tmp, "runtime") };
  const savedPrefix = process.env.SENSE_JUPYTER_PREFIX;

  beforeAll(() => {
    process.env.SENSE_JUPYTER_PREFIX = path.join(REPO, ".venv");
  });

  afterAll(async () => {
    await stopWorkers({ context });
    if (savedPrefix === undefined) delete process.env.SENSE_JUPYTER_PREFIX;
    else process.env.SENSE_JUPYTER_PREFIX = savedPrefix;
    expect(processesUnder(tmp)).toEqual([]);
    if (opts.tmp === undefined) fs.rmSync(tmp, { recursive: true, force: true });
  });

  return { tmp, home, context };
}
