/**
 * The prebuilt JupyterLab extension (the Sense panel, labextension/ built into
 * dist/labextension by `npm run build`): `sense-tslab install` copies it into the Jupyter data
 * folder's `labextensions/` beside the kernelspecs (`--user`, `--sys-prefix`, `--prefix`), where
 * JupyterLab 4 loads prebuilt extensions without a rebuild; `uninstall` removes it.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { packageRoot } from "./kernelspecs";
import { replaceDir } from "./util/replace-dir";

/** The panel's package name: its folder name under `labextensions/` (labextension/package.json). */
export const LABEXTENSION_NAME = "sense-tslab-panel";

/** Where the built extension is in this package. */
export function labextensionSource(root: string = packageRoot()): string {
  return path.join(root, "dist", "labextension");
}

/** The `labextensions` folder beside a `kernels` folder (both under `<data>/`, e.g. `<prefix>/share/jupyter`). */
export function labextensionsDirBeside(kernelsDirPath: string): string {
  return path.join(path.dirname(kernelsDirPath), "labextensions");
}

/** Result of installing or removing the extension. */
export interface LabextensionChange {
  dir: string;
  /** false: nothing to do (uninstall: not there; install: this package has no built extension). */
  changed: boolean;
}

function isOurs(dir: string): boolean {
  try {
    return (JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8")) as { name?: unknown }).name === LABEXTENSION_NAME;
  } catch {
    return false;
  }
}

/**
 * Copies the built extension into `labextensionsDir/sense-tslab-panel`, replacing an older copy;
 * written beside its place and renamed over it, so JupyterLab never reads half of it. A package
 * without a built extension (`changed: false`) installs its kernels all the same.
 * @throws Node's fs errors (e.g. EACCES) when the folder is not writable.
 */
export function installLabextension(labextensionsDir: string, source: string = labextensionSource()): LabextensionChange {
  const dir = path.join(labextensionsDir, LABEXTENSION_NAME);
  if (!isOurs(source)) return { dir, changed: false };
  replaceDir(labextensionsDir, LABEXTENSION_NAME, (tmp) => fs.cpSync(source, tmp, { recursive: true }));
  return { dir, changed: true };
}

/** Removes the extension from `labextensionsDir`; only a folder whose package.json names it is removed. */
export function uninstallLabextension(labextensionsDir: string): LabextensionChange {
  const dir = path.join(labextensionsDir, LABEXTENSION_NAME);
  const ours = isOurs(dir);
  if (ours) fs.rmSync(dir, { recursive: true, force: true });
  return { dir, changed: ours };
}
