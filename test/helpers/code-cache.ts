/**
 * Test helper for kernel-extension/code-cache.ts: what someone who can write a code-cache folder
 * would plant there (#24 item 3), and the digests the cache's entries hold.
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as vm from "node:vm";
import { encodeEntry } from "../../kernel-extension/code-cache";

/** sha256 of `data`. */
export function sha256(data: Buffer | string): Buffer {
  return createHash("sha256").update(data).digest();
}

/** A module's source as Node's loader (and the code cache) wraps it. */
export function wrapModule(source: string): string {
  return `(function (exports, require, module, __filename, __dirname) { ${source}\n});`;
}

/**
 * V8's code cache of `body`, padded to the length of `file`'s wrapped source (all V8 checks of a
 * source), so V8 takes it for `file`: raw, or with the header the cache itself writes (the digest
 * of these bytes and of `file`'s real source, all public), as a planter with write access would.
 */
export function plantedEntry(file: string, body: string, withHeader: boolean): Buffer {
  const length = wrapModule(fs.readFileSync(file, "utf8")).length;
  const padded = body + " ".repeat(length - wrapModule(body).length);
  const data = new vm.Script(wrapModule(padded), { filename: file }).createCachedData();
  return withHeader ? encodeEntry(sha256(fs.readFileSync(file)), data) : data;
}
