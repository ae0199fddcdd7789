/**
 * Kernelspecs on disk, found and read as jupyter_client's `KernelSpecManager` does: every
 * `<folder>/kernels/<name>/kernel.json` on {@link jupyterPath}, the first folder holding a name
 * winning. Spec format: https://jupyter-client.readthedocs.io/en/stable/kernels.html#kernel-specs
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { z } from "zod";
import { WorkerError } from "../../errors";
import { jupyterPath, PathEnv, processPathEnv } from "../../jupyter/paths";

/** `kernel.json`, the fields a launcher needs (others are kept). */
export const KernelSpecFile = z.looseObject({
  argv: z.array(z.string()).min(1),
  display_name: z.string(),
  language: z.string().optional(),
  env: z.record(z.string(), z.string()).optional(),
  interrupt_mode: z.enum(["signal", "message"]).optional(),
  metadata: z.record(z.string(), z.unknown()).optional(),
});
export type KernelSpecFile = z.infer<typeof KernelSpecFile>;

/** One kernelspec found on disk. */
export interface DiskKernelSpec {
  name: string;
  /** The spec's folder (`{resource_dir}`). */
  resourceDir: string;
  spec: KernelSpecFile;
}

// jupyter_client's `_kernel_name_pat`: names are folder names Jupyter accepts.
const KERNEL_NAME = /^[a-z0-9._-]+$/i;

/**
 * Every kernelspec on the search path, by name. Folders that are not valid specs are passed over,
 * as jupyter_client passes them over.
 */
export function findKernelSpecs(p: PathEnv = processPathEnv()): Map<string, DiskKernelSpec> {
  const found = new Map<string, DiskKernelSpec>();
  for (const dir of jupyterPath("kernels", p)) {
    let names: string[];
    try {
      names = fs.readdirSync(dir);
    } catch {
      continue;
    }
    for (const name of names.sort()) {
      const key = name.toLowerCase();
      if (!KERNEL_NAME.test(name) || found.has(key)) continue;
      const resourceDir = path.join(dir, name);
      try {
        const spec = KernelSpecFile.safeParse(JSON.parse(fs.readFileSync(path.join(resourceDir, "kernel.json"), "utf8")));
        if (spec.success) found.set(key, { name: key, resourceDir, spec: spec.data });
      } catch {
        // Not a kernelspec folder (no or unreadable kernel.json).
      }
    }
  }
  return found;
}

/**
 * The kernelspec `name` (case-insensitive, as Jupyter treats names).
 * @throws WorkerError `unknown_engine`, naming the folders searched and the names found.
 */
export function findKernelSpec(name: string, p: PathEnv = processPathEnv()): DiskKernelSpec {
  const all = findKernelSpecs(p);
  const hit = all.get(name.toLowerCase());
  if (hit) return hit;
  const searched = jupyterPath("kernels", p);
  throw new WorkerError("unknown_engine", `No kernelspec named ${JSON.stringify(name)}. Searched ${searched.join(", ")}; found ${[...all.keys()].join(", ") || "none"}.`, {
    engine: name,
    searched,
    available: [...all.keys()],
  });
}
