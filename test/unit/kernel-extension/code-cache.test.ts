/**
 * kernel-extension/code-cache.ts: modules loaded through V8's code cache land in require.cache as
 * Node's loader puts them, the first kernel writes the entry, the next one uses it, and a bad or
 * unwritable cache is no error; an entry is used only when its digest matches it and its source
 * and when it and its folder are the user's own and writable by nobody else (#24 items 2 and 3).
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as vm from "node:vm";
import { CodeCache, decodeEntry, defaultCodeCacheDir, encodeEntry, untrustedReason } from "../../../kernel-extension/code-cache";
import { plantedEntry, sha256, wrapModule } from "../../helpers/code-cache";
import { REPO } from "../../helpers/util";

/**
 * Loads `file` through a CodeCache on `dir` in a new Node process (as the next kernel would: V8's
 * in-process compilation cache would otherwise answer instead of the entry) and saves; a plain
 * `require` there must get the same module, as with Node's own loader (jest's require.cache is
 * its own, so only a real process shows it).
 */
function loadInNewProcess(dir: string, file: string, uid?: number): { exports: unknown; usedEntry: boolean; log: string } {
  const script = `const { CodeCache } = require(${JSON.stringify(path.join(REPO, "dist", "kernel-extension", "code-cache.js"))});
const c = new CodeCache(${JSON.stringify(dir)}, { log: (l) => process.stderr.write(l + "\\n"), uid: ${JSON.stringify(uid)} });
const exports = c.require(${JSON.stringify(file)}); const usedEntry = c.hits === 1; c.save();
if (require(${JSON.stringify(file)}) !== exports) throw new Error("a plain require got another module");
process.stdout.write(JSON.stringify({ exports, usedEntry }));`;
  const r = spawnSync(process.execPath, ["-e", script], { encoding: "utf8", timeout: 60_000 });
  if (r.status !== 0) throw new Error(`status ${r.status} signal ${r.signal}: ${r.stderr}`);
  return { ...(JSON.parse(r.stdout) as { exports: unknown; usedEntry: boolean }), log: r.stderr };
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

/** A genuine entry for `file` in a new folder `name`; returns the folder and the entry's path. */
function cached(name: string, file: string): { dir: string; entry: string } {
  const dir = path.join(tmp, name);
  expect(loadInNewProcess(dir, file).usedEntry).toBe(false);
  const [entry] = fs.readdirSync(dir);
  return { dir, entry: path.join(dir, entry) };
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
  expect(loadInNewProcess(dir, file)).toEqual({ exports: { answer: "42", self: file }, usedEntry: true, log: "" });
});

test("an entry V8 rejects is rewritten; a folder that cannot be written, or none, is no error", () => {
  const dir = path.join(tmp, "cache-b");
  const file = moduleFile();
  const a = new CodeCache(dir);
  a.require(file);
  a.save();
  const [entry] = fs.readdirSync(dir);
  fs.writeFileSync(path.join(dir, entry), Buffer.from("not a code cache"));
  expect(loadInNewProcess(dir, file)).toMatchObject({ exports: { answer: "42", self: file }, usedEntry: false, log: expect.stringContaining("not an entry of this format") });
  expect(fs.readFileSync(path.join(dir, entry)).toString()).not.toBe("not a code cache");
  expect(loadInNewProcess(dir, file).usedEntry).toBe(true);
  // Our checks pass, V8's own does not: rejected by V8, and rewritten all the same.
  fs.writeFileSync(path.join(dir, entry), encodeEntry(sha256(fs.readFileSync(file)), Buffer.from("not V8's bytes")));
  expect(loadInNewProcess(dir, file)).toMatchObject({ exports: { answer: "42", self: file }, usedEntry: false, log: "" });
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

describe("an entry is used only when it can be trusted (#24 items 2 and 3)", () => {
  // A module with a few functions V8 compiles eagerly, so an entry has a body worth flipping.
  const body = `exports.answer = (${Array.from({ length: 40 }, (_, i) => `((x) => x + ${i})`).join(" , ")})(0) ; exports.self = __filename;`;

  test("bytes flipped in the second half of an entry: refused by its digest, compiled, and replaced by a good one", () => {
    const file = moduleFile(body);
    const { dir, entry } = cached("flip", file);
    const bytes = fs.readFileSync(entry);
    for (let i = Math.floor(bytes.length / 2); i < Math.floor(bytes.length / 2) + 16; i++) bytes[i] ^= 0xff;
    fs.writeFileSync(entry, bytes);
    const r = loadInNewProcess(dir, file);
    expect(r).toMatchObject({ exports: { answer: 39, self: file }, usedEntry: false, log: expect.stringContaining("its digest does not match (corrupted)") });
    const replaced = fs.readFileSync(entry);
    expect(replaced.equals(bytes)).toBe(false);
    expect(decodeEntry(replaced, sha256(fs.readFileSync(file)))).toHaveProperty("data");
    expect(loadInNewProcess(dir, file)).toMatchObject({ usedEntry: true, log: "" });
  });

  test("an entry made for another source of the same length (and name) is refused: the new source runs", () => {
    const file = moduleFile('exports.answer = "old"; exports.self = __filename;');
    fs.utimesSync(file, 1e9, 1e9); // a time that survives the round trip exactly: the same entry name
    const { dir, entry } = cached("other-source", file);
    const oldDigest = sha256(fs.readFileSync(file));
    fs.writeFileSync(file, 'exports.answer = "new"; exports.self = __filename;');
    fs.utimesSync(file, 1e9, 1e9);
    expect(fs.readdirSync(dir)).toEqual([path.basename(entry)]);
    // V8 alone would take it (and run the old code): it checks no more than the length.
    const data = decodeEntry(fs.readFileSync(entry), oldDigest);
    expect(new vm.Script(wrapModule(fs.readFileSync(file, "utf8")), { filename: file, cachedData: "data" in data ? data.data : undefined }).cachedDataRejected).toBe(false);
    expect(loadInNewProcess(dir, file)).toMatchObject({ exports: { answer: "new" }, usedEntry: false, log: expect.stringContaining("made for another source") });
  });

  test("planted V8 bytes (raw, or with a header matching them and the source) never run", () => {
    const file = moduleFile(body);
    const marker = path.join(tmp, "planted-ran");
    const payload = `require("fs").writeFileSync(${JSON.stringify(marker)}, "ran"); exports.answer = "planted";`;
    // Raw V8 bytes, as the cache wrote entries before: refused by the format, in an owner-only folder.
    const own = cached("planted-own", file);
    const raw = plantedEntry(file, payload, false);
    // V8 alone would take these bytes for this source (and run the payload).
    expect(new vm.Script(wrapModule(fs.readFileSync(file, "utf8")), { filename: file, cachedData: raw }).cachedDataRejected).toBe(false);
    fs.writeFileSync(own.entry, raw);
    expect(loadInNewProcess(own.dir, file)).toMatchObject({ exports: { answer: 39 }, usedEntry: false, log: expect.stringContaining("not an entry of this format") });
    // A well-formed entry in a folder others can write (a shared XDG_CACHE_HOME): no cache at all.
    const shared = cached("planted-shared", file);
    fs.chmodSync(shared.dir, 0o777);
    const planted = plantedEntry(file, payload, true);
    fs.writeFileSync(shared.entry, planted);
    expect(loadInNewProcess(shared.dir, file)).toMatchObject({ exports: { answer: 39 }, usedEntry: false, log: expect.stringContaining("is writable by others (mode 777)") });
    expect(fs.readFileSync(shared.entry).equals(planted)).toBe(true); // nothing written there either
    // The same entry, writable by others, in an owner-only folder: refused, then replaced.
    fs.chmodSync(shared.dir, 0o700);
    fs.chmodSync(shared.entry, 0o666);
    expect(loadInNewProcess(shared.dir, file)).toMatchObject({ exports: { answer: 39 }, usedEntry: false, log: expect.stringContaining("writable by others (mode 666)") });
    expect(fs.statSync(shared.entry).mode & 0o777).toBe(0o600);
    expect(loadInNewProcess(shared.dir, file)).toMatchObject({ exports: { answer: 39 }, usedEntry: true });
    expect(fs.existsSync(marker)).toBe(false);
  });

  test("a folder or entry owned by another uid, a folder that is a symlink, an entry that is a symlink or a FIFO: not used", () => {
    const file = moduleFile(body);
    const { dir, entry } = cached("owner", file);
    const me = process.geteuid?.() ?? 0;
    const other = loadInNewProcess(dir, file, me + 1);
    expect(other).toMatchObject({ usedEntry: false, log: expect.stringContaining(`is owned by uid ${me}, not ${me + 1}`) });
    expect(untrustedReason(fs.lstatSync(entry), "file", me + 1)).toBe(`owned by uid ${me}, not ${me + 1}`);
    expect(untrustedReason(fs.lstatSync(entry), "file", me)).toBeNull();
    expect(untrustedReason(fs.lstatSync(dir), "file", me)).toBe("not a file");

    const link = path.join(tmp, "owner-link");
    fs.symlinkSync(dir, link);
    expect(loadInNewProcess(link, file)).toMatchObject({ usedEntry: false, log: expect.stringContaining("is not a directory") });

    const genuine = path.join(tmp, "genuine.bin");
    fs.renameSync(entry, genuine);
    fs.symlinkSync(genuine, entry);
    expect(loadInNewProcess(dir, file)).toMatchObject({ usedEntry: false, log: expect.stringContaining("not used: a symlink") });
    expect(fs.lstatSync(entry).isFile()).toBe(true); // replaced by a file of its own

    fs.rmSync(entry);
    expect(spawnSync("mkfifo", [entry]).status).toBe(0);
    expect(loadInNewProcess(dir, file)).toMatchObject({ exports: { answer: 39 }, usedEntry: false, log: expect.stringContaining("not a file") });
    expect(loadInNewProcess(dir, file).usedEntry).toBe(true);
  });
});
