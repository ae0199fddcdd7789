/**
 * Which backend a context uses (context-input.ts resolves a server context or a direct one): the
 * Jupyter Server backend, one per REST client, or the direct backend, one per runtime folder and
 * project home (one session store each). Owned by a Cluster, so its backends live as long as it.
 */
import type { RestClient } from "../jupyter/rest";
import type { ResolvedContext } from "../jupyter/context-input";
import type { KernelBackend } from "./backend";
import { DirectBackend } from "./direct/backend";
import { SessionStore } from "./direct/session-store";
import { JupyterServerBackend } from "./jupyter/backend";

/** The backends made for the contexts one owner was asked about. */
export class BackendsByContext {
  private readonly servers = new WeakMap<RestClient, KernelBackend>();
  private readonly direct = new Map<string, DirectBackend>();

  /** The backend for `ctx`, made on first use. Never throws. */
  for(ctx: ResolvedContext): KernelBackend {
    if (ctx.backend === "direct") return this.directFor(ctx.runtimeDir, ctx.projectHome);
    let backend = this.servers.get(ctx.rest);
    if (!backend) {
      backend = new JupyterServerBackend(ctx.rest);
      this.servers.set(ctx.rest, backend);
    }
    return backend;
  }

  /** Closes the direct backends' kernel clients (the server backends hold none of their own). */
  close(): void {
    for (const d of this.direct.values()) d.close();
  }

  private directFor(runtimeDir: string, projectHome: string): DirectBackend {
    const key = `${runtimeDir}\u0000${projectHome}`;
    let direct = this.direct.get(key);
    if (!direct) {
      direct = new DirectBackend({ root: projectHome, runtimeDir });
      this.direct.set(key, direct);
    }
    return direct;
  }
}

/** The session-store folder of a direct backend's runtime folder (the keeper reads it). */
export function sessionStoreDir(runtimeDir: string): string {
  return new SessionStore(runtimeDir).dir;
}
