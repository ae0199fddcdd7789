/**
 * Where a workers call runs: the discovered context of this process (context.ts), or one a test
 * or tool passes, with the same defaults `discover()` gives a plain Node process.
 */
import * as path from "node:path";
import { getContext, processDashboardId, SenseContext } from "../context";
import { RestClient } from "../rest";

/**
 * Where an API call runs. Normally discovered (`getContext()`); tests and tools pass their own.
 * Only `endpoint` is required; the rest defaults as `discover()` would for a plain Node process.
 */
export type WorkerContextInput = Pick<SenseContext, "endpoint"> & Partial<Omit<SenseContext, "endpoint">>;

/** A resolved context: every field the workers layer needs. */
export type ResolvedContext = Pick<SenseContext, "endpoint" | "rest" | "dashboardId" | "masterId" | "isWorker" | "projectHome"> &
  Partial<Pick<SenseContext, "kernelId" | "serverRootDir" | "runtimeDir" | "serverPid">>;

/**
 * `input` with its defaults filled in, or the discovered context when there is none.
 * @throws ConfigError from discovery when `input` is absent and no server can be found.
 */
export function resolveContext(input?: WorkerContextInput): ResolvedContext {
  if (!input) return getContext();
  const dashboardId = input.dashboardId ?? input.kernelId ?? processDashboardId();
  const masterId = input.masterId ?? dashboardId;
  return {
    endpoint: input.endpoint,
    rest: input.rest ?? new RestClient(input.endpoint),
    dashboardId,
    masterId,
    isWorker: input.isWorker ?? masterId !== dashboardId,
    projectHome: path.resolve(input.projectHome ?? input.serverRootDir ?? process.cwd()),
    kernelId: input.kernelId,
    serverRootDir: input.serverRootDir,
    runtimeDir: input.runtimeDir,
    serverPid: input.serverPid,
  };
}
