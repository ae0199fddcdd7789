/**
 * Display hooks: how the client core's plain results (worker records and lists, network info,
 * credentials, install results) render as notebook tables. The core returns plain data; this
 * layer decides how it looks. The Sense kernels use {@link richBundle} for a cell's last
 * expression, and {@link display} uses it for anything passed to it.
 */
import { WorkerRecord } from "../jupyter/schemas";
import { isDisplayable } from "./bundle";
import type { MimeBundle } from "./sink";
import { processDefault } from "../util/process-default";
import { renderAuth, renderExecuteResults, renderInstall, renderNetwork, renderPools, renderWorker, renderWorkers, type AuthLike, type ExecuteResultLike, type InstallResultLike, type NetworkInfoLike, type PoolInfoLike } from "./tables";

/** One display hook: which values it renders, and how. */
export interface DisplayHook {
  name: string;
  matches(value: unknown): boolean;
  render(value: unknown): MimeBundle;
}


const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null;
const isRecord = (v: unknown): v is WorkerRecord => WorkerRecord.safeParse(v).success;
// Matched by shape (and class name), not instanceof: a notebook can load a second copy of the package.
const hasKeys = (v: unknown, keys: string[]): v is Record<string, unknown> => isObject(v) && keys.every((k) => k in v);

/** Credentials as the tables show them: with a token, `user` IS the token, so both are masked. */
export function authForDisplay(auth: { user: string; password: string; source: string; baseUrl?: string }): AuthLike {
  return auth.source === "token"
    ? { token: auth.user, source: "token (SENSE_API_TOKEN or the server's token)", url: auth.baseUrl }
    : { username: auth.user, password: auth.password, source: "SENSE_USERNAME / SENSE_PASSWORD", url: auth.baseUrl };
}

const isExecuteResult = (v: unknown) =>
  hasKeys(v, ["worker", "id", "status", "value", "data", "durationMs"]) && typeof v.worker === "string" && typeof v.status === "string" && typeof v.durationMs === "number";

const builtins: DisplayHook[] = [
  {
    name: "execute results",
    matches: (v) => Array.isArray(v) && v.length > 0 && v.every(isExecuteResult),
    render: (v) => renderExecuteResults(v as ExecuteResultLike[]),
  },
  { name: "worker list", matches: (v) => Array.isArray(v) && v.length > 0 && v.every(isRecord), render: (v) => renderWorkers(v as WorkerRecord[]) },
  { name: "worker", matches: isRecord, render: (v) => renderWorker(v as WorkerRecord) },
  {
    name: "await result",
    matches: (v) => hasKeys(v, ["workers", "failures"]) && Array.isArray(v.workers) && Array.isArray(v.failures) && [...v.workers, ...v.failures].every(isRecord),
    render: (v) => {
      const r = v as { workers: WorkerRecord[]; failures: WorkerRecord[] };
      return renderWorkers([...r.workers, ...r.failures]);
    },
  },
  { name: "network", matches: (v) => hasKeys(v, ["publicDns", "publicPortMapping", "projectIp"]), render: (v) => renderNetwork(v as unknown as NetworkInfoLike) },
  {
    name: "auth",
    matches: (v) => hasKeys(v, ["user", "password", "source", "headers"]),
    render: (v) => renderAuth(authForDisplay(v as unknown as { user: string; password: string; source: string; baseUrl?: string })),
  },
  {
    name: "warm pool",
    matches: (v) => {
      const isPool = (x: unknown) => hasKeys(x, ["engine", "size", "folder", "target", "ready", "starting"]);
      return isPool(v) || (Array.isArray(v) && v.length > 0 && v.every(isPool));
    },
    render: (v) => renderPools((Array.isArray(v) ? v : [v]) as PoolInfoLike[]),
  },
  { name: "install result", matches: (v) => hasKeys(v, ["packages", "versions", "durationMs", "cwd"]), render: (v) => renderInstall(v as unknown as InstallResultLike) },
];

/**
 * The display hooks registered on top of the built-in ones. One per process backs
 * {@link registerDisplayHook} and {@link richBundle} ({@link defaultDisplayHooks}).
 */
export class DisplayHooks {
  private readonly hooks: DisplayHook[] = [];

  /** Adds a hook, tried before the built-in ones (later registrations first). Returns an unregister function. */
  register(hook: DisplayHook): () => void {
    this.hooks.unshift(hook);
    return () => {
      const i = this.hooks.indexOf(hook);
      if (i >= 0) this.hooks.splice(i, 1);
    };
  }

  /**
   * The rich MIME bundle for `value`: its own (a `Displayable`), or a hook's; `undefined` when
   * nothing renders it richly (print it as text then). Never throws: a hook that throws is no match.
   */
  bundle(value: unknown): MimeBundle | undefined {
    if (isDisplayable(value)) return value.toMimeBundle();
    for (const h of [...this.hooks, ...builtins]) {
      try {
        if (h.matches(value)) return h.render(value);
      } catch {
        /* a hook that cannot render this value is no match */
      }
    }
    return undefined;
  }
}

/** The process's display hooks: the ones every cell's last value and `display()` go through. */
export const defaultDisplayHooks: () => DisplayHooks = processDefault(() => new DisplayHooks());

/** Adds a hook to the process's display hooks, tried before the built-in ones (later registrations first). Returns an unregister function. */
export function registerDisplayHook(hook: DisplayHook): () => void {
  return defaultDisplayHooks().register(hook);
}

/**
 * The rich MIME bundle for `value`: its own (a `Displayable`), or a hook's; `undefined` when
 * nothing renders it richly (print it as text then). Never throws.
 */
export function richBundle(value: unknown): MimeBundle | undefined {
  return defaultDisplayHooks().bundle(value);
}
