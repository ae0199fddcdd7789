/**
 * Under Jupyter Enterprise Gateway a kernel starts in EG's own folder: EG 3.3 applies the
 * notebook's folder (sent by the Jupyter Server as `KERNEL_WORKING_DIR`) only to container
 * kernels. A Sense kernel then moves there itself, so that a notebook's kernel (and a worker's)
 * imports packages from its project's `node_modules` and opens files relative to the notebook,
 * as on a plain Jupyter Server.
 */
import * as fs from "node:fs";
import * as path from "node:path";

/**
 * Changes to `KERNEL_WORKING_DIR` when this process is a kernel started through a gateway
 * (`KERNEL_GATEWAY=1`) and that folder exists here. Returns the folder entered, or null when
 * nothing changed (not a gateway kernel, no folder, or the folder is not on this host).
 */
export function enterGatewayWorkingDir(env: NodeJS.ProcessEnv = process.env, chdir: (dir: string) => void = process.chdir): string | null {
  if (env.KERNEL_GATEWAY !== "1") return null;
  const dir = env.KERNEL_WORKING_DIR;
  if (!dir || !path.isAbsolute(dir)) return null;
  try {
    if (!fs.statSync(dir).isDirectory()) return null;
    chdir(dir);
    return dir;
  } catch {
    return null;
  }
}
