/**
 * Reads Sense's session name tags in the browser (the grammar is src/workers/session-tags.ts's;
 * that module pulls Node's `path` in through its imports, so the panel reads the two tag shapes
 * here, and test/unit/labextension-tags.test.ts checks both agree on every shape).
 * - a worker: `sense:<masterId>:<index>:<size>:<startedAtMs>:<status>`;
 * - a warm-pool kernel: `sense-pool:<masterId>:<engine>:<size>:<startedAtMs>`.
 */

/** A worker session's tag. */
export interface WorkerTag {
  masterId: string;
  index: number;
  size: string;
  startedAtMs: number;
  status: string;
}

const SAFE_ID = /^[A-Za-z0-9._-]+$/;
const DIGITS = /^\d+$/;
const SIZES = new Set(["small", "medium", "large"]);
const STATUSES = new Set(["starting", "running", "idle", "failed", "stopped"]);

/** A worker tag, or null for any other session name. Never throws. */
export function decodeWorkerTag(name: string | null | undefined): WorkerTag | null {
  const parts = (name ?? "").split(":");
  if (parts.length !== 6 || parts[0] !== "sense") return null;
  const [, masterId, index, size, started, status] = parts;
  if (!SAFE_ID.test(masterId) || !DIGITS.test(index) || !DIGITS.test(started) || !SIZES.has(size) || !STATUSES.has(status)) return null;
  return { masterId, index: Number(index), size, startedAtMs: Number(started), status };
}

/** The master id of a warm-pool session's tag, or null. Never throws. */
export function poolMasterId(name: string | null | undefined): string | null {
  const parts = (name ?? "").split(":");
  if (parts.length !== 5 || parts[0] !== "sense-pool" || !SAFE_ID.test(parts[1]) || !SAFE_ID.test(parts[2]) || !SIZES.has(parts[3]) || !DIGITS.test(parts[4])) return null;
  return parts[1];
}
