/** The sealed worker env file (src/workers/bootstrap/env-file.ts): no plaintext on disk, 0600, stale files of dead masters swept. */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { openSealedEnvFile, sweepStaleEnvFiles, writeSealedEnvFile } from "../../../src/workers/bootstrap/env-file";

let home: string;
beforeEach(() => (home = fs.mkdtempSync(path.join(os.tmpdir(), "sense-envfile-"))));
afterEach(() => fs.rmSync(home, { recursive: true, force: true }));

it("holds no plaintext, is 0600, and opens with its key only", () => {
  const env = { SENSE_API_TOKEN: "tok-1234567890-secret", A: "é ✓" };
  const announced: string[] = [];
  const { file, key } = writeSealedEnvFile(home, env, { beforeWrite: (f) => announced.push(f) });
  expect(announced).toEqual([file]);
  const bytes = fs.readFileSync(file);
  expect(bytes.includes("tok-1234567890-secret")).toBe(false);
  expect(bytes.includes("SENSE_API_TOKEN")).toBe(false);
  expect(fs.statSync(file).mode & 0o777).toBe(0o600);
  expect(openSealedEnvFile(file, key)).toEqual(env);
  const other = writeSealedEnvFile(home, env);
  expect(() => openSealedEnvFile(file, other.key)).toThrow();
});

it("a write sweeps files of dead masters of this host, not of live ones or other hosts", () => {
  const dead = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" }).stdout;
  const stale = writeSealedEnvFile(home, { A: "1" }, { owner: { pid: Number(dead), host: os.hostname() } }).file;
  const elsewhere = writeSealedEnvFile(home, { A: "1" }, { owner: { pid: Number(dead), host: "another-host" } }).file;
  const live = writeSealedEnvFile(home, { A: "1" }).file;
  expect(fs.existsSync(stale)).toBe(false);
  expect(fs.existsSync(elsewhere)).toBe(true);
  expect(fs.existsSync(live)).toBe(true);
  expect(sweepStaleEnvFiles(path.dirname(live))).toBe(0);
});
