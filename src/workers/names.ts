/**
 * The durable worker record lives in the Jupyter session's `name`, so any process that can list
 * sessions (the master, a worker, a keeper) sees the same truth without shared memory.
 * Format: `sense:<masterId>:<index>:<size>:<startedAtMs>:<status>`. Never holds a secret.
 */
import { UsageError } from "../errors";
import { WorkerSize, WorkerStatus } from "../schemas";

/** The session `type` every Sense worker session carries. */
export const WORKER_SESSION_TYPE = "sense-worker";

/** The fields a session name tag carries. */
export interface WorkerTag {
  masterId: string;
  index: number;
  size: WorkerSize;
  startedAtMs: number;
  status: WorkerStatus;
}

const SAFE_ID = /^[A-Za-z0-9._-]+$/;

/**
 * Encodes a tag as a session name.
 * @throws UsageError (`bad_option`) when `masterId` holds characters other than `[A-Za-z0-9._-]`
 * (a `:` would make the tag ambiguous) or `index`/`startedAtMs` are not non-negative integers.
 */
export function encodeWorkerTag(tag: WorkerTag): string {
  if (!SAFE_ID.test(tag.masterId)) {
    throw new UsageError(`master id ${JSON.stringify(tag.masterId)} may only hold letters, digits, '.', '_' and '-'`, { code: "bad_option" });
  }
  if (!Number.isInteger(tag.index) || tag.index < 0 || !Number.isInteger(tag.startedAtMs) || tag.startedAtMs < 0) {
    throw new UsageError("worker index and start time must be non-negative integers", { code: "bad_option" });
  }
  return ["sense", tag.masterId, String(tag.index), tag.size, String(tag.startedAtMs), tag.status].join(":");
}

/** Decodes a session name; returns `null` for anything that is not a well-formed Sense worker tag. Never throws. */
export function decodeWorkerTag(name: string | null | undefined): WorkerTag | null {
  if (!name) return null;
  const parts = name.split(":");
  if (parts.length !== 6 || parts[0] !== "sense") return null;
  const [, masterId, indexText, sizeText, startedText, statusText] = parts;
  if (!SAFE_ID.test(masterId) || !/^\d+$/.test(indexText) || !/^\d+$/.test(startedText)) return null;
  const size = WorkerSize.safeParse(sizeText);
  const status = WorkerStatus.safeParse(statusText);
  if (!size.success || !status.success) return null;
  return { masterId, index: Number(indexText), size: size.data, startedAtMs: Number(startedText), status: status.data };
}
