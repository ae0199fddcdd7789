/**
 * Kernelspecs for Enterprise Gateway's Docker process proxy: each Sense kernel runs in its own
 * container of the Sense kernel image (deploy/docker), started by `python/sense_eg/launch_docker.py`
 * under `sense_eg.docker_proxy.SenseDockerProcessProxy`. The sized variants `<engine>-<size>`
 * carry the size's `KERNEL_CPUS`/`KERNEL_MEMORY` (and limits) in their env, which the launch
 * script turns into the container's CPU quota and memory limit.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { UsageError } from "../../src/errors";
import { SizeResources, sizeToKernelEnv } from "../../src/jupyter/gateway";
import { kernelSpec } from "../../src/kernelspecs";
import type { LauncherKernelSpec } from "./kernelspec";
import type { LaunchableKernel } from "./protocol";

/** The process proxy class (python/sense_eg/docker_proxy.py). */
export const SENSE_DOCKER_PROXY = "sense_eg.docker_proxy.SenseDockerProcessProxy";

/** Options of {@link dockerKernelSpec}. */
export interface DockerSpecOptions {
  /** The kernel image, e.g. `sense-tslab-kernel:0.1.0` (deploy/docker/build-image.sh). */
  image: string;
  /** Python that runs the launch script on EG's host: EG's own (it has the `docker` package). */
  python: string;
  /** Path of `launch_docker.py` on EG's host. */
  launchScript: string;
  /** Host folders a project home may be mounted from (the launch script refuses others). */
  mountRoots?: string[];
}

const IMAGE = /^[a-z0-9][a-z0-9._/:@-]{0,254}$/;

/**
 * The `kernel.json` of `name` in a container. Pure.
 * @throws UsageError (`bad_option`) for an image name, python or script path, or mount root that is not plain.
 */
export function dockerKernelSpec(name: LaunchableKernel, options: DockerSpecOptions): LauncherKernelSpec {
  if (!IMAGE.test(options.image)) throw new UsageError(`bad image name ${JSON.stringify(options.image)}`, { code: "bad_option" });
  for (const p of [options.python, options.launchScript, ...(options.mountRoots ?? [])]) {
    if (!/^[A-Za-z0-9_./-]+$/.test(p)) throw new UsageError(`bad path ${JSON.stringify(p)}`, { code: "bad_option" });
  }
  const base = kernelSpec(name);
  return {
    argv: [
      options.python, options.launchScript,
      "--kernel-id", "{kernel_id}", "--port-range", "{port_range}", "--response-address", "{response_address}", "--public-key", "{public_key}",
      "--kernel-name", name, "--image", options.image,
      ...(options.mountRoots ?? []).flatMap((r) => ["--mount-root", r]),
    ],
    display_name: `${base.display_name} in a container`,
    language: base.language,
    interrupt_mode: "signal",
    metadata: { ...base.metadata, process_proxy: { class_name: SENSE_DOCKER_PROXY, config: { image_name: options.image } } },
  };
}

/**
 * Writes `sense-ts` and `sense-js` (no limits) and one `<engine>-<size>` per size into
 * `kernelsDir`; returns the names written. Every entry is checked before anything is written.
 * @throws UsageError as {@link dockerKernelSpec} and for a bad size; Node's fs errors.
 */
export function writeDockerKernelSpecs(kernelsDir: string, options: DockerSpecOptions, sizes: Record<string, SizeResources>): string[] {
  const docs: [string, LauncherKernelSpec][] = [];
  for (const engine of ["sense-ts", "sense-js"] as const) {
    const spec = dockerKernelSpec(engine, options);
    docs.push([engine, spec]);
    for (const [size, resources] of Object.entries(sizes)) {
      docs.push([`${engine}-${size}`, { ...spec, display_name: `${spec.display_name} (${size})`, env: { ...sizeToKernelEnv(resources) } }]);
    }
  }
  for (const [specName, doc] of docs) {
    fs.mkdirSync(path.join(kernelsDir, specName), { recursive: true });
    fs.writeFileSync(path.join(kernelsDir, specName, "kernel.json"), JSON.stringify(doc, null, 2) + "\n");
  }
  return docs.map(([n]) => n);
}
