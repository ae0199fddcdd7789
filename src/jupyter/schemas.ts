/**
 * Zod schemas for every Jupyter Server REST response this package reads, with the types
 * derived from them, so runtime checks and static types cannot drift.
 * Protocol: https://jupyter-server.readthedocs.io/en/latest/developers/rest-api.html
 */
import { z } from "zod";

/** `GET /api/kernels/{id}` and the `kernel` of a session. */
export const KernelModel = z.looseObject({
  id: z.string().min(1),
  name: z.string(),
  last_activity: z.string().optional(),
  execution_state: z.string().optional(),
  connections: z.number().optional(),
  reason: z.string().optional(),
});
export type KernelModel = z.infer<typeof KernelModel>;

/** `GET /api/kernels`. */
export const KernelList = z.array(KernelModel);
export type KernelList = z.infer<typeof KernelList>;

/** `GET /api/sessions/{id}`. `type` and `name` are free text (Sense tags workers through them). */
export const SessionModel = z.looseObject({
  id: z.string().min(1),
  path: z.string(),
  name: z.string().nullable().optional().transform((v) => v ?? ""),
  type: z.string().nullable().optional().transform((v) => v ?? ""),
  kernel: KernelModel.nullable(),
});
export type SessionModel = z.infer<typeof SessionModel>;

/** `GET /api/sessions`. */
export const SessionList = z.array(SessionModel);
export type SessionList = z.infer<typeof SessionList>;

/** One kernelspec in `GET /api/kernelspecs`. */
export const KernelSpecModel = z.looseObject({
  name: z.string(),
  spec: z.looseObject({
    language: z.string().optional(),
    display_name: z.string(),
    argv: z.array(z.string()).optional(),
    env: z.record(z.string(), z.string()).optional(),
    metadata: z.record(z.string(), z.unknown()).optional(),
  }),
  resources: z.record(z.string(), z.string()).optional(),
});
export type KernelSpecModel = z.infer<typeof KernelSpecModel>;

/** `GET /api/kernelspecs`. */
export const KernelSpecs = z.object({
  default: z.string(),
  kernelspecs: z.record(z.string(), KernelSpecModel),
});
export type KernelSpecs = z.infer<typeof KernelSpecs>;

/** `GET /api/status`. */
export const ServerStatus = z.looseObject({
  started: z.string().optional(),
  last_activity: z.string().optional(),
  connections: z.number().optional(),
  kernels: z.number().optional(),
});
export type ServerStatus = z.infer<typeof ServerStatus>;

/** `GET /api` (version). */
export const ServerVersion = z.looseObject({ version: z.string() });
export type ServerVersion = z.infer<typeof ServerVersion>;

/** A `jpserver-<pid>.json` runtime file, written by the Jupyter Server that started this kernel. */
export const ServerInfoFile = z.looseObject({
  url: z.string(),
  token: z.string().default(""),
  root_dir: z.string().optional(),
  notebook_dir: z.string().optional(),
  base_url: z.string().optional(),
  pid: z.number().optional(),
  hostname: z.string().optional(),
  port: z.number().optional(),
  secure: z.boolean().optional(),
  sock: z.string().optional(),
  version: z.string().optional(),
});
export type ServerInfoFile = z.infer<typeof ServerInfoFile>;

/** The documented, closed set of worker statuses. See the README, "Worker status". */
export const WorkerStatus = z.enum(["starting", "running", "idle", "failed", "stopped"]);
/**
 * `starting` (kernel coming up) → `running` (startup code executing) → `idle` (startup code done;
 * the worker stays up until stopped) | `failed` (startup code raised, or the kernel died) | `stopped`.
 * Written out (not `z.infer`) so that declarations emitted for notebook cells can name it.
 */
export type WorkerStatus = "starting" | "running" | "idle" | "failed" | "stopped";

/** Worker sizes; each maps to resource settings through the sizes table. */
export const WorkerSize = z.enum(["small", "medium", "large"]);
/** A worker size. */
export type WorkerSize = "small" | "medium" | "large";

/**
 * One worker (or master) record, as returned by launch/list/stop/getMaster.
 * An interface rather than `z.infer`: tslab emits declarations for every cell, and an inferred
 * zod type cannot be named there ("This is likely not portable").
 */
export interface WorkerRecord {
  /** The worker's kernel id (its SENSE_DASHBOARD_ID). */
  id: string;
  /** A short, human name, e.g. `w1`. */
  name: string;
  /** The kernelspec it runs. */
  engine: string;
  size: WorkerSize;
  status: WorkerStatus;
  /** The master's id (the master kernel id; empty for a master record). */
  masterId: string;
  /** ISO-8601 time the worker was launched. */
  startedAt: string;
  /** The Jupyter session id. */
  sessionId: string;
  /** The Jupyter session path. */
  path: string;
  /** Launch index within its master, starting at 1. */
  index: number;
  /** Kernel execution state as the server reports it. */
  executionState?: string;
  /** Why a worker failed, when it did. */
  reason?: string;
}

/** Validates a {@link WorkerRecord}. */
export const WorkerRecord = z.object({
  id: z.string(),
  name: z.string(),
  engine: z.string(),
  size: WorkerSize,
  status: WorkerStatus,
  masterId: z.string(),
  startedAt: z.string(),
  sessionId: z.string(),
  path: z.string(),
  index: z.number().int(),
  executionState: z.string().optional(),
  reason: z.string().optional(),
});

// The interface and the schema must describe the same thing.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const _recordMatches: Same<z.infer<typeof WorkerRecord>, WorkerRecord> = true;
void _recordMatches;
