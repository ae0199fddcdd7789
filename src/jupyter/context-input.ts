/**
 * Where a workers call runs: the discovered context of this process (context.ts, either backend),
 * or one a test or tool passes, with the same defaults discovery gives a plain Node process.
 */
import * as path from "node:path";
import { DirectContext, getRunContext, processDashboardId, SenseContext } from "./context";
import { jupyterRuntimeDir, processPathEnv } from "./paths";
import { ConfigError } from "../errors";
import { RestClient } from "./rest";

/**
 * Where an API call runs. Normally discovered (`getRunContext()`); tests and tools pass their own:
 * a server context needs only `endpoint`, a direct one only `backend: "direct"`; the rest defaults
 * as discovery would for a plain Node process.
 */
export type WorkerContextInput =
  | (Pick<SenseContext, "endpoint"> & Partial<Omit<SenseContext, "endpoint">>)
  | (Pick<DirectContext, "backend"> & Partial<Omit<DirectContext, "backend">>);

type Common = Pick<SenseContext, "dashboardId" | "masterId" | "isWorker" | "projectHome" | "kernelId"> & Partial<Pick<SenseContext, "serverRootDir">>;

/** A resolved context: every field the workers layer needs, for either backend. */
export type ResolvedContext =
  | (Common & Pick<SenseContext, "backend" | "endpoint" | "rest"> & Partial<Pick<SenseContext, "runtimeDir" | "serverPid">>)
  | (Common & Pick<DirectContext, "backend" | "runtimeDir"> & Partial<Pick<DirectContext, "connectionFile">>);

/**
 * `input` with its defaults filled in, or the discovered context when there is none.
 * @throws ConfigError from discovery when `input` is absent and `SENSE_BACKEND` is malformed, or is `server` with no server found.
 */
export function resolveContext(input?: WorkerContextInput): ResolvedContext {
  if (!input) return getRunContext();
  const dashboardId = input.dashboardId ?? input.kernelId ?? processDashboardId();
  const masterId = input.masterId ?? dashboardId;
  const common: Common = { dashboardId, masterId, isWorker: input.isWorker ?? masterId !== dashboardId, projectHome: "", kernelId: input.kernelId };
  if (input.backend === "direct") {
    return { ...common, backend: "direct", projectHome: path.resolve(input.projectHome ?? process.cwd()), runtimeDir: input.runtimeDir ?? jupyterRuntimeDir(processPathEnv()), connectionFile: input.connectionFile };
  }
  const server = input as Pick<SenseContext, "endpoint"> & Partial<Omit<SenseContext, "endpoint">>;
  return {
    ...common,
    backend: "server",
    endpoint: server.endpoint,
    rest: server.rest ?? new RestClient(server.endpoint),
    projectHome: path.resolve(server.projectHome ?? server.serverRootDir ?? process.cwd()),
    serverRootDir: server.serverRootDir,
    runtimeDir: server.runtimeDir,
    serverPid: server.serverPid,
  };
}

/**
 * The REST client of a server context.
 * @throws ConfigError `not_configured` for a direct context (no Jupyter Server serves it).
 */
export function serverRest(ctx: ResolvedContext): RestClient {
  if (ctx.backend !== "server") throw new ConfigError("not_configured", "This needs a Jupyter Server, but workers here are started directly (no server was found, or SENSE_BACKEND=direct).");
  return ctx.rest;
}
