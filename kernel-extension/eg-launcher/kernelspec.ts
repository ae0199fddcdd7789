/**
 * Kernelspecs that start the Sense kernels through the EG launcher under one of Enterprise
 * Gateway's remote process proxies. The launcher, the kernel and the same Node must sit at the
 * same paths on every host EG may pick (a shared volume or the kernel image).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { UsageError } from "../../src/errors";
import { SizeResources, sizeToKernelEnv } from "../../src/jupyter/gateway";
import { heapLimitMiB, withHeapLimit } from "../../src/platform/heap-limit";
import { kernelSpec, KernelSpecOptions } from "../../src/kernelspecs";
import type { LaunchableKernel } from "./protocol";

/**
 * EG process proxies whose kernelspec argv runs the launcher directly on the chosen host
 * (short name → class). Container proxies (Kubernetes, Docker) run EG's own `launch_kubernetes.py`
 * / `launch_docker.py` instead, and the kernel image's entry point runs this launcher inside the
 * pod: see `deploy/kubernetes/`.
 */
export const PROCESS_PROXIES = {
  distributed: "enterprise_gateway.services.processproxies.distributed.DistributedProcessProxy",
  yarn: "enterprise_gateway.services.processproxies.yarn.YarnClusterProcessProxy",
} as const;
/** A process proxy short name. */
export type ProcessProxyName = keyof typeof PROCESS_PROXIES;

/** Options of {@link launcherKernelSpec}. */
export interface LauncherSpecOptions extends KernelSpecOptions {
  /** Which EG process proxy starts the kernel; default `distributed` (SSH hosts). */
  processProxy?: ProcessProxyName;
  /** For `distributed`: hosts for this kernelspec only (else EG's `EG_REMOTE_HOSTS`). */
  remoteHosts?: string[];
  /** The launcher entry point; default `<dist>/kernel-extension/eg-launcher/launch.js`. */
  launcherScript?: string;
}

/** A remote kernelspec document (`kernel.json`). */
export interface LauncherKernelSpec {
  argv: string[];
  display_name: string;
  language: string;
  interrupt_mode: "signal";
  metadata: Record<string, unknown>;
  env?: Record<string, string>;
}

/**
 * Returns the `kernel.json` of `name` started by the EG launcher under `processProxy`. Pure.
 * @throws UsageError (`bad_option`) for an unknown process proxy or a host name with spaces/commas.
 */
export function launcherKernelSpec(name: LaunchableKernel, options: LauncherSpecOptions = {}): LauncherKernelSpec {
  const proxy = options.processProxy ?? "distributed";
  if (!(proxy in PROCESS_PROXIES)) throw new UsageError(`unknown process proxy ${JSON.stringify(proxy)}; use one of ${Object.keys(PROCESS_PROXIES).join(", ")}`, { code: "bad_option" });
  for (const h of options.remoteHosts ?? []) {
    if (!/^[A-Za-z0-9.:_-]+$/.test(h)) throw new UsageError(`bad remote host ${JSON.stringify(h)}`, { code: "bad_option" });
  }
  const base = kernelSpec(name, options);
  const node = base.argv[0];
  const launcher = options.launcherScript ?? path.join(path.dirname(base.argv[1]), "eg-launcher", "launch.js");
  const config: Record<string, unknown> = {};
  if (options.remoteHosts?.length) config.remote_hosts = options.remoteHosts.join(",");
  return {
    argv: [node, launcher, "--kernel-id", "{kernel_id}", "--port-range", "{port_range}", "--response-address", "{response_address}", "--public-key", "{public_key}", "--kernel-name", name],
    display_name: `${base.display_name} on ${proxy}`,
    language: base.language,
    interrupt_mode: "signal",
    metadata: { ...base.metadata, process_proxy: { class_name: PROCESS_PROXIES[proxy], config } },
  };
}

/**
 * Writes `<kernelsDir>/<name>-<proxy>/kernel.json` for both Sense kernels and returns the
 * kernelspec names written (e.g. `sense-ts-distributed`).
 * @throws UsageError as {@link launcherKernelSpec}; Node's fs errors when the folder is not writable.
 */
export function writeLauncherKernelSpecs(kernelsDir: string, options: LauncherSpecOptions = {}): string[] {
  const proxy = options.processProxy ?? "distributed";
  const specs = (["sense-ts", "sense-js"] as const).map((n) => [`${n}-${proxy}`, launcherKernelSpec(n, options)] as const);
  for (const [specName, spec] of specs) {
    const dir = path.join(kernelsDir, specName);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, "kernel.json"), JSON.stringify(spec, null, 2) + "\n");
  }
  return specs.map(([n]) => n);
}

/**
 * Writes one sized kernelspec per size, `<kernelsDir>/<name>-<size>/kernel.json`: `spec` with the
 * size's `KERNEL_CPUS`/`KERNEL_MEMORY`(/`KERNEL_GPUS`) and their limits added to its `env` (see
 * `sizeToKernelEnv` in src/jupyter/gateway.ts; EG merges a kernelspec's env into the kernel's env before
 * its process proxy reads it), and for a JavaScript/TypeScript kernel `NODE_OPTIONS` with
 * `--max-old-space-size` from the size's memory (src/platform/heap-limit.ts). Returns the kernelspec names written.
 * @throws UsageError (`bad_option`) for a size entry that is not positive; Node's fs errors.
 */
export function writeSizedKernelSpecs(
  kernelsDir: string,
  name: string,
  spec: { env?: Record<string, string> } & Record<string, unknown>,
  sizes: Record<string, SizeResources>,
): string[] {
  // every size is checked before anything is written: bad input changes nothing
  // A JavaScript/TypeScript kernel also gets V8's heap limit from the size's memory: the one limit
  // that holds without containers (src/platform/heap-limit.ts); NODE_OPTIONS, so it reaches a kernel started
  // through the EG launcher too.
  const isNode = spec.language === "typescript" || spec.language === "javascript";
  const envs = Object.entries(sizes).map(([size, resources]) => {
    const env: Record<string, string> = { ...spec.env, ...sizeToKernelEnv(resources) };
    if (isNode) env.NODE_OPTIONS = withHeapLimit(spec.env?.NODE_OPTIONS, heapLimitMiB(resources.memoryMiB));
    return [size, env] as const;
  });
  const written: string[] = [];
  for (const [size, env] of envs) {
    const specName = `${name}-${size}`;
    const doc = { ...spec, display_name: `${String(spec.display_name ?? name)} (${size})`, env };
    fs.mkdirSync(path.join(kernelsDir, specName), { recursive: true });
    fs.writeFileSync(path.join(kernelsDir, specName, "kernel.json"), JSON.stringify(doc, null, 2) + "\n");
    written.push(specName);
  }
  return written;
}
