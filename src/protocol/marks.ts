/**
 * The marks the kernels and the package agree on, in one place: the Sense kernel names, the
 * precompiled-code mark, the remote reply key and MIME type, the session-name grammar's prefixes,
 * and where the built package's modules are (kernels load them lazily, by path). Constants and
 * pure functions only: kernels load it at start, so it imports only Node and control.ts.
 */
import * as path from "node:path";
import { SENSE_KERNEL_NAMES } from "./control";

/** The npm package's name (what notebooks import). */
export const PACKAGE_NAME = "sense-tslab";

/** The kernelspec names (and kernel_info `implementation`s) of the Sense kernels (control.ts: the JupyterLab panel reads them too). */
export { SENSE_KERNEL_NAMES };
/** One of {@link SENSE_KERNEL_NAMES}. */
export type SenseKernelName = (typeof SENSE_KERNEL_NAMES)[number];
/** The lean JavaScript worker kernel. */
export const FAST_KERNEL_NAME: SenseKernelName = "sense-fast";

/** True when a kernel_info `implementation` is a Sense kernel's (it honours {@link precompiledMetadata}). */
export function isSenseKernel(implementation: string | undefined): boolean {
  return (SENSE_KERNEL_NAMES as readonly string[]).includes(implementation ?? "");
}

/**
 * Execute-request metadata marking code as JavaScript the master already type-checked and
 * transpiled (a worker's startup code, remote calls): every Sense kernel runs such a cell without
 * loading a compiler. Other kernels ignore it. Returns a fresh object each call.
 */
export function precompiledMetadata(): { sense: { precompiled: "javascript" } } {
  return { sense: { precompiled: "javascript" } };
}

/**
 * The Sense metadata of an execute request from the master, `undefined` when it needs none: the
 * precompiled mark ({@link precompiledMetadata}) and/or `result: "reply"` ({@link wantsResultInReply}).
 * Other kernels ignore both. Returns a fresh object each call.
 */
export function requestMetadata(request: { precompiled?: boolean; resultInReply?: boolean }): { sense: { precompiled?: "javascript"; result?: "reply" } } | undefined {
  if (!request.precompiled && !request.resultInReply) return undefined;
  return { sense: { ...(request.precompiled ? precompiledMetadata().sense : {}), ...(request.resultInReply ? { result: "reply" as const } : {}) } };
}

/**
 * True when execute-request metadata (from {@link requestMetadata} with `resultInReply`) asks a
 * Sense kernel for the master's short form of a request: no `execute_input` and no
 * `execute_result` on iopub, the result's bundle in the `execute_reply` under
 * {@link RESULT_IN_REPLY_KEY} instead (the count and history stay as for any request). Why: a Jupyter
 * Server deserializes every iopub message of every kernel (its activity monitor) and forwards it;
 * with 64 workers those two messages nobody but the master reads were ~40 % of its work for a
 * remote call. Never throws.
 */
export function wantsResultInReply(metadata: Record<string, unknown> | undefined): boolean {
  const sense = metadata?.sense as { result?: unknown } | null | undefined;
  return typeof sense === "object" && sense !== null && sense.result === "reply";
}

/** The `execute_reply` content key of a result sent in the reply ({@link wantsResultInReply}): `{ data, metadata }`. */
export const RESULT_IN_REPLY_KEY = "sense_result";

/** True when execute-request metadata carries {@link precompiledMetadata}. Never throws. */
export function isPrecompiled(metadata: Record<string, unknown> | undefined): boolean {
  const sense = metadata?.sense as { precompiled?: unknown } | null | undefined;
  return typeof sense === "object" && sense !== null && sense.precompiled === "javascript";
}

/** The MIME type under which a worker's remote runtime answers (its `user_expressions` entry). */
export const REMOTE_MIME = "application/vnd.sense.remote+json";
/** The `user_expressions` key of the runtime's answer. */
export const REPLY_KEY = "sense";

/** The session `type` every Sense worker session carries. */
export const WORKER_SESSION_TYPE = "sense-worker";
/** The session `type` of pooled (not yet adopted) kernels. */
export const POOL_SESSION_TYPE = "sense-pool";
/** First field of a worker session's name tag (`sense:<masterId>:...`, src/workers/session-tags.ts). */
export const WORKER_TAG_PREFIX = "sense";
/** First field of a pooled kernel's name tag (`sense-pool:<masterId>:...`). */
export const POOL_TAG_PREFIX = "sense-pool";
/** Leaf prefixes of worker and pooled session paths (src/workers/session-paths.ts). */
export const WORKER_PATH_PREFIX = ".sense-worker-";
export const POOL_PATH_PREFIX = ".sense-pool-";

/**
 * Whether a session path (`JPY_SESSION_NAME`) is a Sense worker's or pooled kernel's (`true`), a
 * notebook's (`false`), or unknown (`undefined`: no such variable, e.g. behind a gateway).
 * jupyter_server sets it to `<cwd>/<session name>` when a session has a name: a worker's name is
 * its tag, else its path's leaf counts.
 */
export function isSenseSessionName(name: string | undefined): boolean | undefined {
  if (!name) return undefined;
  const leaf = name.split("/").pop() ?? "";
  return [WORKER_TAG_PREFIX, POOL_TAG_PREFIX].some((p) => leaf.startsWith(`${p}:`)) || [WORKER_PATH_PREFIX, POOL_PATH_PREFIX].some((p) => leaf.startsWith(p));
}

/** Built modules the kernels and processes load by path, relative to the package root. */
export const DIST = {
  /** The public API (`import "sense-tslab"`). */
  index: "dist/src/index.js",
  /** The magics registry (`runCell`): a folder, its index or, failing that, its runner. */
  magics: "dist/src/magics",
  /** Shutdown hooks. */
  lifecycle: "dist/src/lifecycle.js",
  /** How a value is shown. */
  present: "dist/src/display/present.js",
  /** The functional workers API (its default cluster: loaded once a cell used workers). */
  workersApi: "dist/src/workers/api.js",
  /** The master's answers to `sense_cluster_request` (the JupyterLab panel's failed workers and actions). */
  clusterRequests: "dist/src/workers/cluster-requests.js",
  /** `npm install` into the project home (`onInstalled`). */
  npmInstall: "dist/src/platform/npm-install.js",
  /** The keeper process (cleanup layer 2). */
  keeper: "dist/src/workers/cleanup/keeper.js",
  /** The Sense kernels' entry point. */
  kernel: "dist/kernel-extension/kernel.js",
  /** `sense-fast`'s entry point. */
  fastKernel: "dist/kernel-extension/fast-kernel.js",
  /** The Enterprise Gateway launcher. */
  egLauncher: "dist/kernel-extension/eg-launcher/launch.js",
} as const;

/** The absolute path of a built module under the package root `root`. */
export function distPath(root: string, which: keyof typeof DIST): string {
  return path.join(root, ...DIST[which].split("/"));
}
