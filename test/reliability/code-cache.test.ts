/**
 * The V8 code cache through real `sense-ts` kernels (#24 items 2 and 3), started from their
 * kernelspec with no server (src/direct), each with an `XDG_CACHE_HOME` of its own: a kernel
 * started against a corrupted entry or against a planted one starts and answers, the planted code
 * never runs, and a corrupted entry is replaced by a good one.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { decodeEntry } from "../../kernel-extension/code-cache";
import { tslabTypeScriptPath } from "../../kernel-extension/resolve";
import { DirectKernel, expectOk } from "../support/direct-kernel";
import type { PathEnv } from "../../src/jupyter/paths";
import { plantedEntry, sha256 } from "../helpers/code-cache";
import { REPO } from "../helpers/util";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "sense-code-cache-kernel-"));
const runtimeDir = path.join(tmp, "runtime");
const paths: PathEnv = { env: { JUPYTER_PATH: path.join(tmp, "share"), SENSE_JUPYTER_PREFIX: path.join(REPO, ".venv"), JUPYTER_DATA_DIR: path.join(tmp, "data") }, home: tmp, procRoot: "/proc" };
const started: DirectKernel[] = [];
const TS = tslabTypeScriptPath().tsPath;
/** The entry's file name, as the first kernel wrote it (the same for every kernel here). */
let entryName = "";
/** That genuine entry's bytes. */
let genuine: Buffer;

/** A cache home `name` holding `entry` (bytes) under the entry's name; its v8 folder. */
function cacheHome(name: string, entry: Buffer): { home: string; v8: string; entry: string } {
  const home = path.join(tmp, name);
  const v8 = path.join(home, "sense-tslab", "v8");
  fs.mkdirSync(v8, { recursive: true, mode: 0o700 });
  fs.writeFileSync(path.join(v8, entryName), entry, { mode: 0o600 });
  return { home, v8, entry: path.join(v8, entryName) };
}

/**
 * Starts a `sense-ts` kernel on cache home `home` and has it type-check and run a cell (which loads
 * the compiler through the cache); its answer, or what ended it.
 */
async function answer(home: string): Promise<string> {
  const k = await DirectKernel.start("sense-ts", { cwd: tmp, runtimeDir, paths, env: { XDG_CACHE_HOME: home }, stdio: "ignore" });
  started.push(k);
  const died = k.exited.then((how) => {
    throw new Error(`the kernel ended (${how}) before it answered`);
  });
  const o = expectOk(await Promise.race([k.execute("const answer: number = 6 * 7;\nanswer", { timeoutMs: 120_000 }), died]));
  const r = o.iopub.find((m) => m.header.msg_type === "execute_result");
  await k.shutdown();
  return String((r?.content.data as Record<string, unknown> | undefined)?.["text/plain"]);
}

afterAll(async () => {
  await Promise.all(started.map((k) => k.kill()));
  fs.rmSync(tmp, { recursive: true, force: true });
});

beforeAll(async () => {
  const home = path.join(tmp, "genuine");
  expect(await answer(home)).toBe("42");
  const v8 = path.join(home, "sense-tslab", "v8");
  [entryName] = fs.readdirSync(v8);
  genuine = fs.readFileSync(path.join(v8, entryName));
  expect(decodeEntry(genuine, sha256(fs.readFileSync(TS)))).toHaveProperty("data");
}, 180_000);

test("a corrupted entry (bytes flipped in its second half): the kernel starts and answers, and a good entry replaces it", async () => {
  const bad = Buffer.from(genuine);
  const half = Math.floor(bad.length / 2);
  for (let i = half; i < half + 64; i++) bad[i] ^= 0xff;
  const c = cacheHome("corrupted", bad);
  expect(await answer(c.home)).toBe("42");
  const replaced = fs.readFileSync(c.entry);
  expect(replaced.equals(bad)).toBe(false);
  expect(decodeEntry(replaced, sha256(fs.readFileSync(TS)))).toHaveProperty("data");
  // Not a one-off: the next kernel starts on the replaced entry.
  expect(await answer(c.home)).toBe("42");
}, 300_000);

test.each([
  ["V8's bytes alone (as entries were written before)", false],
  ["with a header matching them and the real source", true],
])("a planted entry, %s, in a cache folder others can write: the kernel starts and answers, the planted code never runs", async (_what, withHeader) => {
  const marker = path.join(tmp, `planted-ran-${String(withHeader)}`);
  // The planted module also loads the real one, so a kernel that runs it works as ever: silently.
  const payload = [
    `require("fs").writeFileSync(${JSON.stringify(marker)}, "ran");`,
    'require("vm").runInThisContext(require("module").wrap(require("fs").readFileSync(__filename, "utf8")), { filename: __filename })(exports, require, module, __filename, __dirname);',
  ].join(" ");
  const planted = plantedEntry(TS, payload, withHeader);
  const c = cacheHome(`planted-${String(withHeader)}`, planted);
  fs.chmodSync(c.v8, 0o777); // a shared XDG_CACHE_HOME
  expect(await answer(c.home)).toBe("42");
  expect(fs.existsSync(marker)).toBe(false);
  expect(fs.readFileSync(c.entry).equals(planted)).toBe(true); // nor is anything written to that folder

  // The same entry, writable by others, in the user's own folder: refused, and replaced.
  fs.chmodSync(c.v8, 0o700);
  fs.chmodSync(c.entry, 0o666);
  expect(await answer(c.home)).toBe("42");
  expect(fs.existsSync(marker)).toBe(false);
  expect(decodeEntry(fs.readFileSync(c.entry), sha256(fs.readFileSync(TS)))).toHaveProperty("data");
}, 300_000);
