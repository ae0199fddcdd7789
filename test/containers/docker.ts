/**
 * The container suite's harness: the Docker CLI (argv arrays, no shell) and a real Enterprise
 * Gateway whose only kernelspecs are the Docker ones (`sense-ts`, `sense-js` and their sizes,
 * kernel-extension/eg-launcher/docker-kernelspec.ts), in front of a real Jupyter Server. The
 * project home is a folder the kernels' user (1000:100) owns, mounted into every kernel container
 * at the same path. Needs `DOCKER_HOST` (scripts/docker-host.sh) and `SENSE_KERNEL_IMAGE`
 * (deploy/docker/build-image.sh); `npm run test:containers` sets both.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { writeDockerKernelSpecs } from "../../kernel-extension/eg-launcher/docker-kernelspec";
import { EG_VENV, LocalGateway, startLocalGateway } from "../../harness/local-gateway";
import { SIZES } from "../../src/workers/options";
import { REPO } from "../helpers/util";

/** Debian's client, the same version as its dockerd (another CLI on PATH may speak a newer API). */
export const DOCKER = fs.existsSync("/usr/bin/docker") ? "/usr/bin/docker" : "docker";

/**
 * Runs `docker <args>`; returns its stdout.
 * @throws Error with its stderr when it fails.
 */
export function docker(...args: string[]): string {
  const r = spawnSync(DOCKER, args, { encoding: "utf8", env: process.env, timeout: 60_000 });
  if (r.status !== 0) throw new Error(`docker ${args.join(" ")}: ${r.error?.message ?? r.stderr}`);
  return r.stdout;
}

/** Ids of the containers (running or not) EG's kernels left, optionally of one kernel. */
export function kernelContainers(kernelId?: string): string[] {
  return docker("ps", "-aq", "--no-trunc", "--filter", `label=${kernelId ? `kernel_id=${kernelId}` : "app=enterprise-gateway"}`).split("\n").filter(Boolean);
}

/** `docker inspect` of one container, parsed. */
export function inspect(id: string): { Id: string; State: { Pid: number }; Config: { Env: string[] | null; Cmd: string[] | null; Entrypoint: string[] | null; Labels: Record<string, string> }; Args: string[]; HostConfig: Record<string, unknown> } {
  return (JSON.parse(docker("inspect", id)) as ReturnType<typeof inspect>[])[0];
}

/** What the engine holds, to compare before and after the run. */
export function engineState(): { containers: string[]; volumes: string[]; networks: string[] } {
  const lines = (s: string) => s.split("\n").filter(Boolean).sort();
  return { containers: lines(docker("ps", "-aq", "--no-trunc")), volumes: lines(docker("volume", "ls", "-q")), networks: lines(docker("network", "ls", "-q", "--no-trunc")) };
}

/**
 * The host pid of the process whose pid inside its container is `nsPid`, in container `containerId`
 * (from /proc/<pid>/status NSpid and /proc/<pid>/cgroup); undefined when there is none.
 */
export function hostPid(containerId: string, nsPid: number): number | undefined {
  for (const name of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const status = fs.readFileSync(`/proc/${name}/status`, "utf8");
      const ns = /^NSpid:\s+(.+)$/m.exec(status)?.[1].trim().split(/\s+/).map(Number);
      if (!ns || ns.length < 2 || ns[ns.length - 1] !== nsPid) continue;
      if (fs.readFileSync(`/proc/${name}/cgroup`, "utf8").includes(containerId)) return Number(name);
    } catch {
      /* exited meanwhile */
    }
  }
  return undefined;
}

/** A running container gateway. */
export interface DockerGateway extends LocalGateway {
  /** The kernel image its kernelspecs name. */
  image: string;
  /** Kernelspec names it serves. */
  specs: string[];
  /** The folder the project home sits in (the only allowed mount root). */
  base: string;
}

/**
 * Starts EG with the Docker kernelspecs (host network, `SenseDockerProcessProxy`) and a Jupyter
 * Server in front of it. `stop()` stops both and removes the project folder; containers are
 * removed by EG as kernels end (the suite checks that none is left).
 * @throws Error when DOCKER_HOST or SENSE_KERNEL_IMAGE is not set, or EG/the server do not start.
 */
export async function startDockerGateway(): Promise<DockerGateway> {
  const image = process.env.SENSE_KERNEL_IMAGE;
  if (!process.env.DOCKER_HOST || !image) throw new Error("DOCKER_HOST and SENSE_KERNEL_IMAGE must be set: run `npm run test:containers`");
  const base = fs.mkdtempSync(path.join(os.tmpdir(), "sense-containers-"));
  const specsDir = path.join(base, "jupyter");
  const project = path.join(base, "project");
  fs.mkdirSync(project);
  // the kernels run as 1000:100 (EG's default KERNEL_UID/GID for containers; never root)
  fs.chownSync(project, 1000, 100);
  fs.chmodSync(project, 0o775);
  const specs = writeDockerKernelSpecs(path.join(specsDir, "kernels"), { image, python: path.join(EG_VENV, "bin", "python"), launchScript: path.join(REPO, "python", "sense_eg", "launch_docker.py"), mountRoots: [base] }, SIZES);
  let gw: LocalGateway;
  try {
    gw = await startLocalGateway({
      egEnv: {
        // these kernelspecs first (same names as the local ones EG's data folder also holds), and only these
        JUPYTER_PATH: specsDir,
        EG_ALLOWED_KERNELS: specs.join(","),
        PYTHONPATH: path.join(REPO, "python"),
        DOCKER_HOST: process.env.DOCKER_HOST,
        EG_DOCKER_NETWORK: "host",
        // a container kernel's first start on a busy 2-core machine: the image's Node, tslab's compiler
        EG_KERNEL_LAUNCH_TIMEOUT: "180",
      },
      server: { rootDir: project },
    });
  } catch (e) {
    fs.rmSync(base, { recursive: true, force: true });
    throw e;
  }
  const stop = gw.stop;
  return {
    ...gw,
    image,
    specs,
    base,
    stop: async () => {
      await stop();
      fs.rmSync(base, { recursive: true, force: true });
    },
  };
}
