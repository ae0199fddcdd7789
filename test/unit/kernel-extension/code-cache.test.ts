/**
 * kernel-extension/code-cache.ts: modules loaded through V8's code cache land in require.cache as
 * Node's loader puts them, the first kernel writes the entry, the next one uses it, and a bad or
 * unwritable cache is no error.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { CodeCache, defaultCodeCacheDir } from "../../../kernel-extension/code-cache";
import { REPO } from "../../helpers/util";

/**
 * Loads `file` through a CodeCache on `dir` in a new Node process (as the next kernel would: V8's
 * in-process compilation cache would otherwise answer instead of the entry) and saves; a plain
 * `require` there must get the same module, as with Node's own loader (jest's require.cache is
 * its own, so only a real process shows it).
 */
function loadInNewProcess(dir: string, file: string): { exports: unknown; usedEntry: boolean } {
  const script = `const { CodeCache } = require(${JSON.stringify(path.join(REPO, "dist", "kernel-extension", "code-cache.js"))});
const c = new CodeCache(${JSON.stringify(dir)}); const exports = c.require(${JSON.stringify(file)}); const usedEntry = !c.pending; c.save();
if (require(${JSON.stringify(file)}) !== exports) throw new Error("a plain require got another module");
process.stdout.write(JSON.stringify({ exports, usedEntry }));`;
  const r = spawnSync(process.execPath, ["-e", script], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout) as { exports: unknown; usedEntry: boolean };
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "sense-code-cache-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

let n = 0;
/** A fresh module file (a new path each time, so require.cache never has it). */
function moduleFile(body = 'exports.answer = require("node:path").basename("/x/42"); exports.self = __filename;'): string {
  const file = path.join(tmp, `mod-${n++}.js`);
  fs.writeFileSync(file, body);
  return file;
}

afterEach(() => {
  for (const k of Object.keys(require.cache)) if (k.startsWith(tmp)) delete require.cache[k];
});

test("a module loads with its exports, require and __filename, into require.cache; the entry is written once and used by the next loader", () => {
  const dir = path.join(tmp, "cache-a");
  const file = moduleFile();
  const first = new CodeCache(dir);
  expect(first.require(file)).toEqual({ answer: "42", self: file });
  expect(first.pending).toBe(true);
  first.save();
  expect(first.pending).toBe(false);
  const entries = fs.readdirSync(dir);
  expect(entries).toHaveLength(1);
  expect(fs.statSync(path.join(dir, entries[0])).mode & 0o777).toBe(0o600);
  expect(loadInNewProcess(dir, file)).toEqual({ exports: { answer: "42", self: file }, usedEntry: true });
});

test("an entry V8 rejects is rewritten; a folder that cannot be written, or none, is no error", () => {
  const dir = path.join(tmp, "cache-b");
  const file = moduleFile();
  const a = new CodeCache(dir);
  a.require(file);
  a.save();
  const [entry] = fs.readdirSync(dir);
  fs.writeFileSync(path.join(dir, entry), Buffer.from("not a code cache"));
  expect(loadInNewProcess(dir, file)).toEqual({ exports: { answer: "42", self: file }, usedEntry: false });
  expect(fs.readFileSync(path.join(dir, entry)).toString()).not.toBe("not a code cache");
  expect(loadInNewProcess(dir, file).usedEntry).toBe(true);

  const blocked = path.join(tmp, "a-file");
  fs.writeFileSync(blocked, "");
  delete require.cache[file];
  const c = new CodeCache(path.join(blocked, "v8"));
  expect(c.require(file)).toEqual({ answer: "42", self: file });
  expect(() => c.save()).not.toThrow();
  delete require.cache[file];
  expect(new CodeCache(null).require(file)).toEqual({ answer: "42", self: file });
});

test("a module that throws is not left in require.cache", () => {
  const file = moduleFile('throw new Error("boom");');
  expect(() => new CodeCache(path.join(tmp, "cache-c")).require(file)).toThrow("boom");
  expect(require.cache[file]).toBeUndefined();
});

test("the default folder follows XDG_CACHE_HOME, else ~/.cache", () => {
  expect(defaultCodeCacheDir({ XDG_CACHE_HOME: "/x/cache" }, "/home/u")).toBe(path.join("/x/cache", "sense-tslab", "v8"));
  expect(defaultCodeCacheDir({}, "/home/u")).toBe(path.join("/home/u", ".cache", "sense-tslab", "v8"));
});
