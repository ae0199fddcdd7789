/**
 * Where workers and pooled kernels live on the server: in the master's folder (so their cwd is
 * the master's), at a unique hidden session path (an existing path would answer the old session).
 */
import { randomBytes } from "node:crypto";
import * as path from "node:path";
import { relativeInside } from "../paths";
import { POOL_PATH_PREFIX, WORKER_PATH_PREFIX } from "../protocol/marks";
import type { SessionModel } from "../jupyter/schemas";
import type { ResolvedContext } from "../jupyter/context-input";

/** The folder (server API path) the master lives in: its notebook's folder, or the project home. */
export function masterFolder(ctx: ResolvedContext, sessions: SessionModel[]): string {
  if (ctx.kernelId) {
    const own = sessions.find((s) => s.kernel?.id === ctx.kernelId);
    if (own) return path.posix.dirname(own.path) === "." ? "" : path.posix.dirname(own.path);
  }
  const root = ctx.serverRootDir;
  if (root) {
    const rel = relativeInside(root, ctx.projectHome);
    if (rel) return rel.split(path.sep).join("/");
  }
  return "";
}

/** A short form of a master id for session paths. */
function masterShort(masterId: string): string {
  return masterId.replace(/^process-/, "").slice(0, 8);
}

/** A fresh session path for worker `index` of `masterId` in `folder`. */
export function workerSessionPath(masterId: string, index: number, folder: string): string {
  const leaf = `${WORKER_PATH_PREFIX}${masterShort(masterId)}-${index}-${randomBytes(3).toString("hex")}`;
  return folder ? `${folder}/${leaf}` : leaf;
}

/** A fresh session path for a pooled kernel of `masterId` in `folder`. */
export function poolSessionPath(masterId: string, folder: string): string {
  const leaf = `${POOL_PATH_PREFIX}${masterShort(masterId)}-${randomBytes(4).toString("hex")}`;
  return folder ? `${folder}/${leaf}` : leaf;
}
