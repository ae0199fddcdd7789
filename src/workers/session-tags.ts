/**
 * Session name tags: the durable record of Sense's sessions lives in the Jupyter session's `name`,
 * so any process that can list sessions (the master, a worker, the keeper) sees the same truth
 * without shared memory. Two kinds, one grammar (`:`-separated, ids of `[A-Za-z0-9._-]`):
 * - a worker: `sense:<masterId>:<index>:<size>:<startedAtMs>:<status>` (session type `sense-worker`);
 * - a warm-pool kernel: `sense-pool:<masterId>:<engine>:<size>:<startedAtMs>` (session type `sense-pool`).
 * A tag never holds a secret.
 */
import { UsageError } from "../errors";
import { POOL_SESSION_TYPE, POOL_TAG_PREFIX as POOL_PREFIX, WORKER_SESSION_TYPE, WORKER_TAG_PREFIX as WORKER_PREFIX } from "../protocol/marks";
import { WorkerSize, WorkerStatus } from "../jupyter/schemas";

export { POOL_SESSION_TYPE, WORKER_SESSION_TYPE };
/** What a master id or engine in a tag may hold: a `:` would make the tag ambiguous. */
const SAFE_ID = /^[A-Za-z0-9._-]+$/;
const DIGITS = /^\d+$/;

/** True when `text` may stand in a tag (letters, digits, `.`, `_`, `-`). */
export function isTagSafe(text: string): boolean {
  return SAFE_ID.test(text);
}

/** The fields a worker session's name tag carries. */
export interface WorkerTag {
  masterId: string;
  index: number;
  size: WorkerSize;
  startedAtMs: number;
  status: WorkerStatus;
}

/** The fields of a pooled session's name. */
export interface PoolTag {
  masterId: string;
  engine: string;
  size: WorkerSize;
  startedAtMs: number;
}

/**
 * Encodes a worker tag as a session name.
 * @throws UsageError (`bad_option`) when `masterId` holds characters other than `[A-Za-z0-9._-]`
 * or `index`/`startedAtMs` are not non-negative integers.
 */
export function encodeWorkerTag(tag: WorkerTag): string {
  if (!isTagSafe(tag.masterId)) {
    throw new UsageError(`master id ${JSON.stringify(tag.masterId)} may only hold letters, digits, '.', '_' and '-'`, { code: "bad_option" });
  }
  if (!Number.isInteger(tag.index) || tag.index < 0 || !Number.isInteger(tag.startedAtMs) || tag.startedAtMs < 0) {
    throw new UsageError("worker index and start time must be non-negative integers", { code: "bad_option" });
  }
  return [WORKER_PREFIX, tag.masterId, String(tag.index), tag.size, String(tag.startedAtMs), tag.status].join(":");
}

/** Decodes a session name; returns `null` for anything that is not a well-formed worker tag. Never throws. */
export function decodeWorkerTag(name: string | null | undefined): WorkerTag | null {
  const parts = (name ?? "").split(":");
  if (parts.length !== 6 || parts[0] !== WORKER_PREFIX) return null;
  const [, masterId, indexText, sizeText, startedText, statusText] = parts;
  if (!isTagSafe(masterId) || !DIGITS.test(indexText) || !DIGITS.test(startedText)) return null;
  const size = WorkerSize.safeParse(sizeText);
  const status = WorkerStatus.safeParse(statusText);
  if (!size.success || !status.success) return null;
  return { masterId, index: Number(indexText), size: size.data, startedAtMs: Number(startedText), status: status.data };
}

/**
 * Encodes a pool tag as a session name.
 * @throws UsageError `bad_option` when the master id or engine hold characters other than `[A-Za-z0-9._-]`.
 */
export function encodePoolTag(tag: PoolTag): string {
  if (!isTagSafe(tag.masterId) || !isTagSafe(tag.engine)) {
    throw new UsageError("master id and engine may only hold letters, digits, '.', '_' and '-'", { code: "bad_option" });
  }
  return [POOL_PREFIX, tag.masterId, tag.engine, tag.size, String(tag.startedAtMs)].join(":");
}

/** Decodes a pooled session's name; `null` for anything else. Never throws. */
export function decodePoolTag(name: string | null | undefined): PoolTag | null {
  const parts = (name ?? "").split(":");
  if (parts.length !== 5 || parts[0] !== POOL_PREFIX) return null;
  const [, masterId, engine, sizeText, started] = parts;
  const size = WorkerSize.safeParse(sizeText);
  if (!isTagSafe(masterId) || !isTagSafe(engine) || !size.success || !DIGITS.test(started)) return null;
  return { masterId, engine, size: size.data, startedAtMs: Number(started) };
}

/** True when a session name is a worker or warm-pool tag of `masterId` (what the keeper deletes). */
export function taggedFor(name: unknown, masterId: string): boolean {
  if (typeof name !== "string") return false;
  return decodeWorkerTag(name)?.masterId === masterId || decodePoolTag(name)?.masterId === masterId;
}
