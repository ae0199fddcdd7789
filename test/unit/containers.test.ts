/**
 * The container path's pure parts: the Docker launch script's validation and container spec
 * (python/sense_eg/launch_docker.py, run with the system's Python: no Docker call), the container
 * entry's stdin document, cgroup readings and memory reasons, exit notes, heap limits, the Docker
 * kernelspecs, and that the image name is the same for Docker, Kubernetes and Helm.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Readable } from "node:stream";
import { UsageError } from "../../src/errors";
import { exitNotePath, takeExitNote, writeExitNote } from "../../src/platform/exit-note";
import { heapLimitMiB, withHeapLimit } from "../../src/platform/heap-limit";
import { cgroupMemoryLimit, cgroupOomKills, leftoverProcesses, memoryReason, readEntryDocument } from "../../kernel-extension/eg-launcher/container-entry";
import { dockerKernelSpec, SENSE_DOCKER_PROXY, writeDockerKernelSpecs } from "../../kernel-extension/eg-launcher/docker-kernelspec";
import { writeSizedKernelSpecs } from "../../kernel-extension/eg-launcher/kernelspec";
import { kernelListenIp } from "../../kernel-extension/eg-launcher/protocol";

const REPO = path.resolve(__dirname, "..", "..");
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), "sense-unit-containers-"));

/** Runs `body` (Python) with launch_docker imported as `L`; returns what it printed as JSON. */
function py(body: string, env: Record<string, string> = {}): { status: number | null; out: unknown; err: string } {
  const code = `import json, sys\nsys.path.insert(0, ${JSON.stringify(path.join(REPO, "python"))})\nfrom sense_eg import launch_docker as L\n${body}`;
  const r = spawnSync("python3", ["-c", code], { encoding: "utf8", env: { PATH: process.env.PATH ?? "", ...env } });
  let out: unknown = r.stdout;
  try {
    out = JSON.parse(r.stdout);
  } catch {
    /* not JSON */
  }
  return { status: r.status, out, err: r.stderr };
}

describe("launch_docker.py (EG's host side)", () => {
  const argv = '["--kernel-id", "k-1", "--port-range", "20000..29999", "--response-address", "127.0.0.1:9", "--public-key", "PUB", "--kernel-name", "sense-js", "--mount-root", ROOT]';
  test("sizes become a CPU quota and a memory limit without swap; unsized kernels get none", () => {
    const r = py(`print(json.dumps([L.limits({"KERNEL_CPUS_LIMIT": "2", "KERNEL_MEMORY_LIMIT": "2048Mi"}), L.limits({"KERNEL_CPUS": "500m", "KERNEL_MEMORY": "1Gi"}), L.limits({})]))`);
    expect(r.out).toEqual([
      { cpu_period: 100000, cpu_quota: 200000, mem_limit: 2048 * 2 ** 20, memswap_limit: 2048 * 2 ** 20 },
      { cpu_period: 100000, cpu_quota: 50000, mem_limit: 2 ** 30, memswap_limit: 2 ** 30 },
      {},
    ]);
  });
  test("bad sizes, ids, images and networks are refused before Docker is asked", () => {
    for (const body of [
      'L.limits({"KERNEL_CPUS": "lots"})',
      'L.limits({"KERNEL_MEMORY": "1Ki"})',
      'L.parse_args(["--kernel-id", "../x", "--public-key", "P"])',
      'L.container_spec(L.parse_args(["--kernel-id", "k", "--public-key", "P"]), {})',
      'L.container_spec(L.parse_args(["--kernel-id", "k", "--public-key", "P"]), {"KERNEL_IMAGE": "i", "EG_DOCKER_NETWORK": "bridge"})',
      'L.container_spec(L.parse_args(["--kernel-id", "k", "--public-key", "P"]), {"KERNEL_IMAGE": "i", "KERNEL_UID": "0; x"})',
      // a client's KERNEL_IMAGE cannot swap the kernelspec's image
      'L.container_spec(L.parse_args(["--kernel-id", "k", "--public-key", "P", "--image", "sense-tslab-kernel:0.1.0"]), {"KERNEL_IMAGE": "evil:latest"})',
    ]) {
      expect(py(`try:\n    ${body}\n    print('"accepted"')\nexcept L.BadInput as e:\n    print(json.dumps("refused"))`).out).toBe("refused");
    }
    // the script itself: exit 2, nothing created, no Docker client imported
    const r = spawnSync("python3", [path.join(REPO, "python", "sense_eg", "launch_docker.py"), "--kernel-id", "k-1", "--public-key", "P"], { encoding: "utf8", env: { PATH: process.env.PATH ?? "" } });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("KERNEL_IMAGE is not set");
  });
  test("the environment travels on stdin: only KERNEL_* and EG_CLIENT_ENVS names, never EG's own settings; host network on loopback", () => {
    const root = tmp();
    const home = path.join(root, "project");
    fs.mkdirSync(home);
    try {
      const env = { KERNEL_IMAGE: "sense-tslab-kernel:0.1.0", KERNEL_ID: "k-1", KERNEL_WORKING_DIR: home, SENSE_PROJECT_HOME: home, SENSE_API_TOKEN: "s3cret", EG_CLIENT_ENVS: "SENSE_API_TOKEN,SENSE_PROJECT_HOME,EG_AUTH_TOKEN", EG_AUTH_TOKEN: "eg-secret", OTHER: "x", KERNEL_MEMORY: "2048Mi" };
      const r = py(`ROOT = ${JSON.stringify(root)}\nimport os\nspec = L.container_spec(L.parse_args(${argv}), dict(os.environ))\nspec["stdin"] = json.loads(spec["stdin"])\nprint(json.dumps(spec))`, env);
      expect(r.err).toBe("");
      const spec = r.out as { stdin: { argv: string[]; env: Record<string, string> }; binds: Record<string, unknown>; network: string; user: string; limits: Record<string, number>; name: string; labels: Record<string, string> };
      expect(spec.stdin.argv).toEqual(["--kernel-id", "k-1", "--public-key", "PUB", "--kernel-name", "sense-js", "--port-range", "20000..29999", "--response-address", "127.0.0.1:9"]);
      expect(Object.keys(spec.stdin.env).sort()).toEqual(["KERNEL_ID", "KERNEL_IMAGE", "KERNEL_MEMORY", "KERNEL_WORKING_DIR", "SENSE_API_TOKEN", "SENSE_KERNEL_IP", "SENSE_PROJECT_HOME"]);
      expect(spec.stdin.env.SENSE_KERNEL_IP).toBe("127.0.0.1");
      expect({ network: spec.network, user: spec.user, name: spec.name, labels: spec.labels }).toEqual({ network: "host", user: "1000:100", name: "sense-k-1", labels: { kernel_id: "k-1", component: "kernel", app: "enterprise-gateway", "sense.kernel": "sense-js" } });
      expect(spec.binds).toEqual({ [fs.realpathSync(home)]: { bind: fs.realpathSync(home), mode: "rw" } });
      // a project folder outside the allowed roots is refused
      const outside = py(`ROOT = "/nonexistent-root"\nimport os\ntry:\n    L.container_spec(L.parse_args(${argv}), dict(os.environ))\nexcept L.BadInput as e:\n    print(json.dumps(str(e)))`, env);
      expect(outside.out).toContain("outside the allowed mount roots");
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});

describe("container entry", () => {
  test("reads one {argv, env} document from stdin; refuses anything else", async () => {
    await expect(readEntryDocument(Readable.from([Buffer.from('{"argv": ["--kernel-id", "k"], "env": {"A": "1"}}')]))).resolves.toEqual({ argv: ["--kernel-id", "k"], env: { A: "1" } });
    await expect(readEntryDocument(Readable.from([Buffer.from("not json")]))).rejects.toThrow(UsageError);
    await expect(readEntryDocument(Readable.from([Buffer.from('{"argv": [], "env": {"BAD NAME": "1"}}')]))).rejects.toThrow(/bad launch document/);
    await expect(readEntryDocument(Readable.from([Buffer.alloc(64, 32)]), 16)).rejects.toThrow(/longer than 16 bytes/);
  });
  test("cgroup v1 and v2 memory limits and OOM kill counts", () => {
    const files = (m: Record<string, string>) => (f: string) => m[f];
    expect(cgroupMemoryLimit(files({ "/sys/fs/cgroup/memory/memory.limit_in_bytes": "2147483648\n" }))).toBe(2 ** 31);
    expect(cgroupMemoryLimit(files({ "/sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n" }))).toBeUndefined();
    expect(cgroupMemoryLimit(files({ "/sys/fs/cgroup/memory.max": "max\n" }))).toBeUndefined();
    expect(cgroupMemoryLimit(files({ "/sys/fs/cgroup/memory.max": "1073741824\n" }))).toBe(2 ** 30);
    expect(cgroupOomKills(files({ "/sys/fs/cgroup/memory/memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n" }))).toBe(3);
    expect(cgroupOomKills(files({ "/sys/fs/cgroup/memory.events": "low 0\nhigh 0\nmax 5\noom 1\noom_kill 1\n" }))).toBe(1);
    expect(cgroupOomKills(files({}))).toBe(0);
  });
  test("a memory reason only when memory ended the kernel", () => {
    expect(memoryReason(0, 1, "", 2 ** 31, 1536)).toBe("out of memory: the kernel was killed at its container's memory limit of 2048 MiB");
    expect(memoryReason(0, 0, "FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory", 2 ** 31, 1536)).toBe("out of memory: the JavaScript heap reached its limit (1536 MiB, from the container's memory limit of 2048 MiB)");
    expect(memoryReason(2, 2, "Error: boom", 2 ** 31, 1536)).toBeUndefined();
  });
  test("leftover processes: not init, not itself, not zombies", () => {
    const stat: Record<string, string> = { "/proc/1/stat": "1 (tini) S 0", "/proc/7/stat": "7 (node) S 1", "/proc/9/stat": "9 (node) Z 1", "/proc/12/stat": "12 (node (keeper)) S 1" };
    expect(leftoverProcesses(7, (f) => stat[f], () => ["1", "7", "9", "12", "self", "meminfo"])).toEqual([12]);
  });
  test("SENSE_KERNEL_IP: the address kernel and comm port listen on", () => {
    expect(kernelListenIp({})).toBe("0.0.0.0");
    expect(kernelListenIp({ SENSE_KERNEL_IP: "127.0.0.1" })).toBe("127.0.0.1");
    expect(() => kernelListenIp({ SENSE_KERNEL_IP: "localhost; x" })).toThrow(UsageError);
  });
});

describe("exit notes", () => {
  test("written atomically, taken once, invalid ones ignored", () => {
    const home = tmp();
    try {
      const file = writeExitNote(home, { kernelId: "k-1", reason: "out of memory: x", exitCode: 137 });
      expect(file).toBe(exitNotePath(home, "k-1"));
      expect(takeExitNote(home, "k-1")).toEqual({ kernelId: "k-1", reason: "out of memory: x", exitCode: 137 });
      expect(fs.existsSync(file)).toBe(false);
      expect(takeExitNote(home, "k-1")).toBeUndefined();
      fs.writeFileSync(exitNotePath(home, "k-2"), '{"kernelId": "other", "reason": "x", "exitCode": 1}');
      expect(takeExitNote(home, "k-2")).toBeUndefined();
      expect(() => writeExitNote(home, { kernelId: "../x", reason: "r", exitCode: 1 })).toThrow();
    } finally {
      fs.rmSync(home, { recursive: true, force: true });
    }
  });
});

describe("heap limits and kernelspecs", () => {
  test("75 % of the memory; an explicit NODE_OPTIONS flag wins", () => {
    expect(heapLimitMiB(2048)).toBe(1536);
    expect(() => heapLimitMiB(0)).toThrow(UsageError);
    expect(withHeapLimit(undefined, 1536)).toBe("--max-old-space-size=1536");
    expect(withHeapLimit("--enable-source-maps", 1536)).toBe("--enable-source-maps --max-old-space-size=1536");
    expect(withHeapLimit("--max-old-space-size=100", 1536)).toBe("--max-old-space-size=100");
  });
  test("sized kernelspecs of JavaScript/TypeScript kernels carry the heap limit in NODE_OPTIONS", () => {
    const dir = tmp();
    try {
      writeSizedKernelSpecs(dir, "sense-js", { argv: ["node"], display_name: "JS", language: "javascript" }, { small: { cpu: 1, memoryMiB: 2048 } });
      expect(JSON.parse(fs.readFileSync(path.join(dir, "sense-js-small", "kernel.json"), "utf8")).env.NODE_OPTIONS).toBe("--max-old-space-size=1536");
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
  test("Docker kernelspecs: the Sense proxy, the image, the launch script; sized ones carry the size", () => {
    const options = { image: "sense-tslab-kernel:0.1.0", python: "/eg/bin/python", launchScript: "/eg/launch_docker.py", mountRoots: ["/home"] };
    const spec = dockerKernelSpec("sense-ts", options);
    expect(spec.metadata.process_proxy).toEqual({ class_name: SENSE_DOCKER_PROXY, config: { image_name: "sense-tslab-kernel:0.1.0" } });
    expect(spec.argv.slice(0, 2)).toEqual(["/eg/bin/python", "/eg/launch_docker.py"]);
    expect(spec.argv.slice(-6)).toEqual(["--kernel-name", "sense-ts", "--image", "sense-tslab-kernel:0.1.0", "--mount-root", "/home"]);
    expect(() => dockerKernelSpec("sense-ts", { ...options, image: "bad image; rm" })).toThrow(UsageError);
    const dir = tmp();
    try {
      expect(writeDockerKernelSpecs(dir, options, { small: { cpu: 1, memoryMiB: 2048 } })).toEqual(["sense-ts", "sense-ts-small", "sense-js", "sense-js-small"]);
      expect(JSON.parse(fs.readFileSync(path.join(dir, "sense-js-small", "kernel.json"), "utf8")).env).toEqual({ KERNEL_CPUS: "1", KERNEL_MEMORY: "2048Mi", KERNEL_CPUS_LIMIT: "1", KERNEL_MEMORY_LIMIT: "2048Mi" });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
  test("one image name: build-image.sh's default tag is what the Kubernetes kernelspec and the Helm values name", () => {
    const version = (JSON.parse(fs.readFileSync(path.join(REPO, "package.json"), "utf8")) as { version: string }).version;
    const image = `sense-tslab-kernel:${version}`;
    expect(fs.readFileSync(path.join(REPO, "deploy", "docker", "build-image.sh"), "utf8")).toContain('tag="sense-tslab-kernel:$version"');
    const k8s = JSON.parse(fs.readFileSync(path.join(REPO, "deploy", "kubernetes", "kernelspecs", "sense-ts-k8s", "kernel.json"), "utf8"));
    expect(k8s.metadata.process_proxy.config.image_name).toBe(image);
    expect(fs.readFileSync(path.join(REPO, "deploy", "kubernetes", "eg-values.yaml"), "utf8")).toContain(`KERNEL_IMAGE: "${image}"`);
  });
});

describe("container entry in a Kubernetes pod", () => {
  test("EG's pod env becomes the launcher's arguments; without it the document comes on stdin", () => {
    const { podDocument } = jest.requireActual<typeof import("../../kernel-extension/eg-launcher/container-entry")>("../../kernel-extension/eg-launcher/container-entry");
    expect(podDocument({ KERNEL_ID: "k-1", EG_RESPONSE_ADDRESS: "10.0.0.5:8877", EG_PUBLIC_KEY: "PUB", KERNEL_LANGUAGE: "javascript", EG_PORT_RANGE: "0..0" })).toEqual({
      argv: ["--kernel-id", "k-1", "--response-address", "10.0.0.5:8877", "--public-key", "PUB", "--kernel-name", "sense-js", "--port-range", "0..0"],
      env: {},
    });
    expect(podDocument({ KERNEL_ID: "k-1" })).toBeUndefined();
  });
});
