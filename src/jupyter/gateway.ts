/**
 * Enterprise Gateway awareness: whether this Jupyter Server's kernels run through a gateway
 * (`jupyter server --gateway-url`), and how a worker size becomes the gateway's resource settings.
 *
 * The Jupyter REST API takes no per-kernel env, and a gateway-backed Jupyter Server forwards only
 * its own process's `KERNEL_*` variables, so sizes travel in kernelspecs instead: a sized
 * kernelspec `<engine>-<size>` (e.g. `sense-ts-medium`) carries `KERNEL_CPUS`/`KERNEL_MEMORY`/
 * `KERNEL_GPUS` in its `env`, which EG merges into the kernel's env before its process proxy
 * (e.g. the Kubernetes pod template) reads them. `writeSizedKernelSpecs` in
 * `kernel-extension/eg-launcher/kernelspec.ts` writes them from the same size table.
 * See docs/scale-out.md.
 */
import { ConfigError, UsageError } from "../errors";
import type { RestClient } from "./rest";
import { type KernelSpecs, WorkerSize } from "./schemas";

/** What {@link gatewayInfo} found out. */
export interface GatewayInfo {
  /** True when this server's kernels run through a gateway. */
  gateway: boolean;
  /**
   * Why: `SENSE_GATEWAY` (explicit setting), `KERNEL_GATEWAY` (this process is a kernel the
   * Jupyter Server started through a gateway: jupyter_server sets `KERNEL_GATEWAY=1`), or
   * `process_proxy` (a kernelspec names an EG process proxy).
   */
  evidence: ("SENSE_GATEWAY" | "KERNEL_GATEWAY" | "process_proxy")[];
  /** Kernelspec name → EG process-proxy class, for the kernelspecs that declare one. */
  processProxies: Record<string, string>;
  /** Sized kernelspecs: engine → size → kernelspec name (`<engine>-<size>` with `KERNEL_CPUS` in its env). */
  sizedSpecs: Record<string, Record<string, string>>;
}

/** The resources of one size (same shape as the workers' size table, plus optional GPUs). */
export interface SizeResources {
  /** CPUs; may be fractional. */
  cpu: number;
  /** Memory in MiB. */
  memoryMiB: number;
  /** GPUs (whole numbers); omitted or 0 for none. */
  gpus?: number;
}

/** The `KERNEL_*` variables EG's Kubernetes (and Spark operator) pod templates read. */
export interface KernelResourceEnv {
  KERNEL_CPUS: string;
  KERNEL_MEMORY: string;
  KERNEL_CPUS_LIMIT: string;
  KERNEL_MEMORY_LIMIT: string;
  KERNEL_GPUS?: string;
  KERNEL_GPUS_LIMIT?: string;
}

/**
 * Maps one size-table entry to EG's resource variables (Kubernetes units: CPUs as a number or
 * millicores, memory in `Mi`), requests equal to limits so a worker gets what its size says.
 * Pure.
 * @throws UsageError (`bad_option`) for a CPU or memory that is not a positive finite number, or
 * a GPU count that is not a non-negative integer.
 */
export function sizeToKernelEnv(size: SizeResources): KernelResourceEnv {
  const { cpu, memoryMiB, gpus = 0 } = size;
  if (typeof cpu !== "number" || !Number.isFinite(cpu) || cpu <= 0) throw new UsageError(`cpu must be a positive number, not ${JSON.stringify(cpu)}`, { code: "bad_option" });
  if (typeof memoryMiB !== "number" || !Number.isFinite(memoryMiB) || memoryMiB <= 0) throw new UsageError(`memoryMiB must be a positive number, not ${JSON.stringify(memoryMiB)}`, { code: "bad_option" });
  if (typeof gpus !== "number" || !Number.isInteger(gpus) || gpus < 0) throw new UsageError(`gpus must be a whole number ≥ 0, not ${JSON.stringify(gpus)}`, { code: "bad_option" });
  // Kubernetes takes "2" or "500m"; a fraction like 0.3333 would be rejected, so round to millicores.
  const cpus = Number.isInteger(cpu) ? String(cpu) : `${Math.max(1, Math.round(cpu * 1000))}m`;
  const memory = `${Math.ceil(memoryMiB)}Mi`;
  const env: KernelResourceEnv = { KERNEL_CPUS: cpus, KERNEL_MEMORY: memory, KERNEL_CPUS_LIMIT: cpus, KERNEL_MEMORY_LIMIT: memory };
  if (gpus > 0) {
    env.KERNEL_GPUS = String(gpus);
    env.KERNEL_GPUS_LIMIT = String(gpus);
  }
  return env;
}

function parseFlag(value: string): boolean {
  const v = value.trim().toLowerCase();
  if (["1", "true", "yes", "on"].includes(v)) return true;
  if (["0", "false", "no", "off"].includes(v)) return false;
  throw new ConfigError("bad_config", `SENSE_GATEWAY must be 1/true or 0/false, not ${JSON.stringify(value)}`, { variable: "SENSE_GATEWAY" });
}

/**
 * Tells whether the server behind `rest` runs its kernels through a gateway, reading (in order)
 * `SENSE_GATEWAY` (an explicit 1/0 wins), `KERNEL_GATEWAY=1` in `env` (set by jupyter_server in
 * every kernel it starts through a gateway, so true inside a master kernel), and the server's
 * kernelspecs (an EG `metadata.process_proxy` means remote kernels). A plain Node process in
 * front of a gateway whose kernelspecs name no process proxy cannot tell: set `SENSE_GATEWAY=1`.
 * Reads only; changes nothing.
 * @throws ConfigError (`bad_config`) for a `SENSE_GATEWAY` that is not a flag; RestError from
 * `GET /api/kernelspecs` (`unreachable`, `unauthorized`, `bad_response`, ...).
 */
export async function gatewayInfo(rest: RestClient, env: NodeJS.ProcessEnv = process.env): Promise<GatewayInfo> {
  return gatewayInfoFromSpecs(await rest.kernelspecs(), env);
}

/**
 * {@link gatewayInfo} from kernelspecs already fetched (`launchWorkers` has them). Pure.
 * @throws ConfigError (`bad_config`) for a `SENSE_GATEWAY` that is not a flag.
 */
export function gatewayInfoFromSpecs(specs: KernelSpecs, env: NodeJS.ProcessEnv = process.env): GatewayInfo {
  const evidence: GatewayInfo["evidence"] = [];
  let explicit: boolean | undefined;
  if (env.SENSE_GATEWAY !== undefined && env.SENSE_GATEWAY !== "") {
    explicit = parseFlag(env.SENSE_GATEWAY);
    evidence.push("SENSE_GATEWAY");
  }
  if (env.KERNEL_GATEWAY === "1") evidence.push("KERNEL_GATEWAY");
  const processProxies: Record<string, string> = {};
  const sizedSpecs: Record<string, Record<string, string>> = {};
  for (const [name, model] of Object.entries(specs.kernelspecs)) {
    const pp = (model.spec.metadata?.process_proxy ?? undefined) as { class_name?: unknown } | undefined;
    if (pp && typeof pp.class_name === "string") processProxies[name] = pp.class_name;
    const cut = name.lastIndexOf("-");
    const size = WorkerSize.safeParse(name.slice(cut + 1));
    if (cut > 0 && size.success && model.spec.env?.KERNEL_CPUS !== undefined) (sizedSpecs[name.slice(0, cut)] ??= {})[size.data] = name;
  }
  if (Object.keys(processProxies).length > 0) evidence.push("process_proxy");
  const gateway = explicit ?? evidence.length > 0;
  return { gateway, evidence, processProxies, sizedSpecs };
}

/**
 * The kernelspec a worker of `engine` and `size` should use: the sized kernelspec when the
 * server is behind a gateway and has one, else `engine` itself (sizes stay advisory). Pure.
 */
export function kernelSpecForSize(info: GatewayInfo, engine: string, size: string): string {
  return (info.gateway && info.sizedSpecs[engine]?.[size]) || engine;
}
