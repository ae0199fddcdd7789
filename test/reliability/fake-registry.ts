/**
 * A fake npm registry on loopback for install tests: serves one package built with the real
 * `npm pack` (packument with its integrity, and the tarball), nothing from the internet.
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as path from "node:path";

/** The npm the package installs with (the one next to this Node), as an argv prefix. */
export function npmArgv(): string[] {
  const cli = fs.realpathSync(path.join(path.dirname(process.execPath), "..", "lib", "node_modules", "npm", "bin", "npm-cli.js"));
  return [process.execPath, cli];
}

/** Packs a package `name@version` whose main file exports `value`; returns the tarball's path. */
export function packPackage(dir: string, name: string, version: string, value: string): string {
  const src = path.join(dir, `src-${name}`);
  fs.mkdirSync(src, { recursive: true });
  fs.writeFileSync(path.join(src, "package.json"), JSON.stringify({ name, version, main: "index.js" }));
  fs.writeFileSync(path.join(src, "index.js"), `module.exports = ${JSON.stringify(value)};\n`);
  const [cmd, ...pre] = npmArgv();
  const r = spawnSync(cmd, [...pre, "pack", "--pack-destination", dir, "--loglevel=error"], { cwd: src, encoding: "utf8", env: { PATH: process.env.PATH, HOME: dir } });
  const file = path.join(dir, `${name}-${version}.tgz`);
  if (!fs.existsSync(file)) throw new Error(`npm pack failed: ${r.stderr}`);
  return file;
}

/** A running fake registry; `close()` stops it. */
export interface FakeRegistry {
  url: string;
  /** Paths requested, in order. */
  requests: string[];
  close(): Promise<void>;
}

/** Serves `tarball` as `name@version` at `http://127.0.0.1:<free port>/`. */
export async function startFakeRegistry(name: string, version: string, tarball: string): Promise<FakeRegistry> {
  const bytes = fs.readFileSync(tarball);
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    requests.push(req.url ?? "");
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    if (req.url === `/${name}`) {
      const dist = {
        tarball: `${base}/${name}/-/${name}-${version}.tgz`,
        shasum: createHash("sha1").update(bytes).digest("hex"),
        integrity: `sha512-${createHash("sha512").update(bytes).digest("base64")}`,
      };
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify({ name, "dist-tags": { latest: version }, versions: { [version]: { name, version, main: "index.js", dist } } }));
    } else if (req.url === `/${name}/-/${name}-${version}.tgz`) {
      res.setHeader("content-type", "application/octet-stream");
      res.end(bytes);
    } else {
      res.statusCode = 404;
      res.end("{}");
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    requests,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** A loopback port nothing listens on (bound, then released). */
export async function closedPort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((resolve) => s.listen(0, "127.0.0.1", resolve));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}
