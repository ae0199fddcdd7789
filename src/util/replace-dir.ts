/**
 * Replacing an installed folder (a kernelspec, the JupyterLab panel) so that a reader never sees
 * it half written: filled in a fresh sibling, then swapped in place.
 */
import * as fs from "node:fs";
import * as path from "node:path";

/**
 * Replaces `parent/name` with a folder that `fill` writes into (mode 0755). Returns its path.
 * @throws what `fill` or the file system throws; the folder in place is then left as it was.
 */
export function replaceDir(parent: string, name: string, fill: (dir: string) => void): string {
  const dir = path.join(parent, name);
  fs.mkdirSync(parent, { recursive: true });
  const tmp = fs.mkdtempSync(path.join(parent, `.${name}-`));
  try {
    fill(tmp);
    fs.chmodSync(tmp, 0o755);
    fs.rmSync(dir, { recursive: true, force: true });
    fs.renameSync(tmp, dir);
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  return dir;
}
