/**
 * Where this package is and which version it is: what every Sense kernel reads as it boots, kept
 * apart from the kernelspec writer (kernelspecs.ts) so a kernel's boot loads no more than this.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { ConfigError } from "./errors";

/**
 * The root folder of this package (the one whose package.json is named `sense-tslab`), found by
 * walking up from this file: the same code runs from `dist/src` and, under ts-jest, from `src`.
 * @throws ConfigError (`bad_config`) when no such folder exists above this file.
 */
export function packageRoot(from: string = __dirname): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const pj = path.join(dir, "package.json");
    if (fs.existsSync(pj)) {
      try {
        if ((JSON.parse(fs.readFileSync(pj, "utf8")) as { name?: string }).name === "sense-tslab") return dir;
      } catch {
        /* an unreadable package.json is not ours; keep walking */
      }
    }
    if (path.dirname(dir) === dir) throw new ConfigError("bad_config", `sense-tslab: no package root above ${from}`);
  }
}

/** This package's version (from its package.json). */
export function packageVersion(root: string = packageRoot()): string {
  return (JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8")) as { version: string }).version;
}
