/**
 * `usage_request` / `usage_reply` on a kernel's control channel: the resource figures ipykernel
 * (≥ 6.11) and every Sense kernel answer with (kernel-extension/usage.ts), read by
 * jupyter-resource-usage's Kernel Usage panel and by Sense's worker tables. Imports only control.ts (which imports
 * nothing), so the JupyterLab panel (labextension/) bundles it too.
 */
import { controlRequestMessage, type ControlMessage } from "./control";

/** The figures of one `usage_reply` that Sense reads (the reply may hold more). */
export interface UsageReply {
  /** CPU % of the kernel's process tree since the kernel's previous reply (100 = one core busy). */
  kernelCpu?: number;
  /** Memory of the kernel's process tree, bytes. */
  kernelMemory?: number;
  /** The host's CPU % (0-100). */
  hostCpuPercent?: number;
  cpuCount?: number;
  hostname?: string;
  pid?: number;
}

/** How long a table waits for a kernel's usage reply before it shows `—`. */
export const USAGE_TIMEOUT_MS = 1_500;

const num = (v: unknown): number | undefined => (typeof v === "number" && Number.isFinite(v) && v >= 0 ? v : undefined);

/**
 * The figures of a `usage_reply`'s content; fields of the wrong type are left out (a kernel's bug
 * must not break a table). Never throws.
 */
export function usageReply(content: unknown): UsageReply {
  const c = content !== null && typeof content === "object" ? (content as Record<string, unknown>) : {};
  const out: UsageReply = {};
  const put = <K extends keyof UsageReply>(key: K, value: UsageReply[K] | undefined) => {
    if (value !== undefined) out[key] = value;
  };
  put("kernelCpu", num(c.kernel_cpu));
  put("kernelMemory", num(c.kernel_memory));
  put("hostCpuPercent", num(c.host_cpu_percent));
  put("cpuCount", num(c.cpu_count));
  put("hostname", typeof c.hostname === "string" ? c.hostname : undefined);
  put("pid", num(c.pid));
  return out;
}

/** A `usage_request` message (`@jupyterlab/services` cannot build it: src/protocol/control.ts). */
export function usageRequestMessage(session: string, username: string): ControlMessage<Record<string, never>> {
  return controlRequestMessage("usage_request", {}, session, username);
}

/** Bytes as `512 KiB`, `12.3 MiB`, `1.20 GiB`. */
export function formatBytes(bytes: number): string {
  if (bytes >= 1024 ** 3) return `${(bytes / 1024 ** 3).toFixed(2)} GiB`;
  if (bytes >= 1024 ** 2) return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
  return `${Math.round(bytes / 1024)} KiB`;
}
