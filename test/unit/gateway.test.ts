import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { ConfigError, UsageError } from "../../src/errors";
import { gatewayInfo, kernelSpecForSize, sizeToKernelEnv } from "../../src/jupyter/gateway";
import { RestClient } from "../../src/jupyter/rest";
import { encryptConnectionInfo, listenInRange, parseLauncherArgs, parseListenerRequest, parsePortRange, selectPorts } from "../../kernel-extension/eg-launcher/protocol";
import { launcherKernelSpec, writeSizedKernelSpecs } from "../../kernel-extension/eg-launcher/kernelspec";
import { FakeJupyter, startFakeJupyter } from "../support/fake-jupyter";

// The fake Jupyter Server of the unit tests answers the kernelspecs; anything else is a 404.
let fake: FakeJupyter;
let base = "";
let specsBody: unknown;
beforeAll(async () => {
  fake = await startFakeJupyter({ handler: (r) => (r.url === "/api/kernelspecs" ? { status: 200, body: specsBody } : { status: 404 }) });
  base = fake.baseUrl;
});
afterAll(() => fake.close());

const spec = (name: string, extra: Record<string, unknown> = {}) => ({ name, spec: { display_name: name, language: "typescript", argv: ["node"], ...extra }, resources: {} });

describe("gatewayInfo", () => {
  test("a plain server: no gateway", async () => {
    specsBody = { default: "sense-ts", kernelspecs: { "sense-ts": spec("sense-ts") } };
    const info = await gatewayInfo(new RestClient({ baseUrl: base, token: "" }), {});
    expect(info).toEqual({ gateway: false, evidence: [], processProxies: {}, sizedSpecs: {} });
  });
  test("KERNEL_GATEWAY=1 (a kernel started through a gateway) and sized kernelspecs", async () => {
    specsBody = {
      default: "sense-ts",
      kernelspecs: { "sense-ts": spec("sense-ts"), "sense-ts-medium": spec("sense-ts-medium", { env: { KERNEL_CPUS: "2" } }), "other-large": spec("other-large") },
    };
    const rest = new RestClient({ baseUrl: base, token: "" });
    const info = await gatewayInfo(rest, { KERNEL_GATEWAY: "1" });
    expect(info.gateway).toBe(true);
    expect(info.evidence).toEqual(["KERNEL_GATEWAY"]);
    expect(info.sizedSpecs).toEqual({ "sense-ts": { medium: "sense-ts-medium" } });
    expect(kernelSpecForSize(info, "sense-ts", "medium")).toBe("sense-ts-medium");
    expect(kernelSpecForSize(info, "sense-ts", "large")).toBe("sense-ts");
    expect(kernelSpecForSize({ ...info, gateway: false }, "sense-ts", "medium")).toBe("sense-ts");
  });
  test("a process proxy in a kernelspec means a gateway; SENSE_GATEWAY=0 overrides", async () => {
    const cls = "enterprise_gateway.services.processproxies.k8s.KubernetesProcessProxy";
    specsBody = { default: "k", kernelspecs: { k: spec("k", { metadata: { process_proxy: { class_name: cls } } }) } };
    const rest = new RestClient({ baseUrl: base, token: "" });
    expect(await gatewayInfo(rest, {})).toMatchObject({ gateway: true, evidence: ["process_proxy"], processProxies: { k: cls } });
    expect((await gatewayInfo(rest, { SENSE_GATEWAY: "0" })).gateway).toBe(false);
    expect((await gatewayInfo(rest, { SENSE_GATEWAY: "true" })).gateway).toBe(true);
  });
  test("a bad SENSE_GATEWAY is a ConfigError", async () => {
    await expect(gatewayInfo(new RestClient({ baseUrl: base, token: "" }), { SENSE_GATEWAY: "maybe" })).rejects.toMatchObject({ code: "bad_config" });
    await expect(gatewayInfo(new RestClient({ baseUrl: base, token: "" }), { SENSE_GATEWAY: "maybe" })).rejects.toBeInstanceOf(ConfigError);
  });
});

describe("sizeToKernelEnv", () => {
  test("the size table in Kubernetes units, requests = limits", () => {
    expect(sizeToKernelEnv({ cpu: 2, memoryMiB: 4096 })).toEqual({ KERNEL_CPUS: "2", KERNEL_MEMORY: "4096Mi", KERNEL_CPUS_LIMIT: "2", KERNEL_MEMORY_LIMIT: "4096Mi" });
    expect(sizeToKernelEnv({ cpu: 0.5, memoryMiB: 512, gpus: 1 })).toEqual({
      KERNEL_CPUS: "500m", KERNEL_MEMORY: "512Mi", KERNEL_CPUS_LIMIT: "500m", KERNEL_MEMORY_LIMIT: "512Mi", KERNEL_GPUS: "1", KERNEL_GPUS_LIMIT: "1",
    });
  });
  test.each([[{ cpu: 0, memoryMiB: 1 }], [{ cpu: 1, memoryMiB: -1 }], [{ cpu: Number.NaN, memoryMiB: 1 }], [{ cpu: 1, memoryMiB: 1, gpus: 0.5 }]])("refuses %j", (bad) => {
    expect(() => sizeToKernelEnv(bad)).toThrow(UsageError);
  });
  test("sized kernelspecs carry the env", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sense-unit-sized-"));
    try {
      const names = writeSizedKernelSpecs(dir, "sense-ts", { argv: ["node"], display_name: "TS", env: { A: "1" } }, { small: { cpu: 1, memoryMiB: 2048 } });
      expect(names).toEqual(["sense-ts-small"]);
      const doc = JSON.parse(fs.readFileSync(path.join(dir, "sense-ts-small", "kernel.json"), "utf8"));
      expect(doc.env).toEqual({ A: "1", KERNEL_CPUS: "1", KERNEL_MEMORY: "2048Mi", KERNEL_CPUS_LIMIT: "1", KERNEL_MEMORY_LIMIT: "2048Mi" });
      expect(() => writeSizedKernelSpecs(dir, "x", {}, { small: { cpu: -1, memoryMiB: 1 } })).toThrow(UsageError);
      expect(fs.existsSync(path.join(dir, "x-small"))).toBe(false);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("EG launcher protocol", () => {
  const key = "MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQC7";
  test("parses both EG spellings; the new one wins", () => {
    const a = parseLauncherArgs(["--RemoteProcessProxy.kernel-id", "old", "--kernel-id", "k-1", "--public-key", key, "--response-address", "127.0.0.1:8877", "--port-range", "0..0", "--kernel-name", "sense-js"], {});
    expect(a).toEqual({ kernelId: "k-1", publicKey: key, responseAddress: { host: "127.0.0.1", port: 8877 }, portRange: { lower: 0, upper: 0 }, kernelName: "sense-js" });
    const b = parseLauncherArgs(["conn.json", "--RemoteProcessProxy.kernel-id=k-2", "--RemoteProcessProxy.public-key", key, "--RemoteProcessProxy.spark-context-initialization-mode", "none"], {});
    expect(b).toMatchObject({ kernelId: "k-2", kernelName: "sense-ts", responseAddress: undefined });
  });
  test.each([
    [[]],
    [["--kernel-id", "{kernel_id}", "--public-key", key]],
    [["--kernel-id", "k", "--public-key", key, "--response-address", "nohost"]],
    [["--kernel-id", "k", "--public-key", key, "--kernel-name", "python3"]],
    [["--kernel-id", "k", "--public-key", key, "--spark-context-initialization-mode", "eager"]],
    [["--kernel-id", "k", "--public-key", key, "--bogus", "1"]],
    [["--kernel-id", "k; rm -rf /", "--public-key", key]],
  ])("refuses %j with bad_option", (argv) => {
    expect(() => parseLauncherArgs(argv, {})).toThrow(expect.objectContaining({ code: "bad_option" }));
  });
  test("port ranges: unsubstituted and 0..0 mean any; narrow ranges are refused as EG does", () => {
    expect(parsePortRange("{port_range}")).toEqual({ lower: 0, upper: 0 });
    expect(parsePortRange("40000..41000")).toEqual({ lower: 40000, upper: 41000 });
    expect(() => parsePortRange("40000..40010")).toThrow(UsageError);
    expect(parsePortRange("40000..40010", 5)).toEqual({ lower: 40000, upper: 40010 });
    expect(() => parsePortRange("5..1", 0)).toThrow(UsageError);
    expect(() => parsePortRange("a..b")).toThrow(UsageError);
  });
  test("ports are distinct and inside the range", async () => {
    const ports = await selectPorts(5, { lower: 41000, upper: 42000 });
    expect(new Set(ports).size).toBe(5);
    for (const p of ports) expect(p >= 41000 && p <= 42000).toBe(true);
    const s = net.createServer();
    const p = await listenInRange(s, { lower: 0, upper: 0 });
    expect(p).toBeGreaterThan(0);
    await new Promise<void>((r) => s.close(() => r()));
  });
  test("the payload decrypts the way EG's ResponseManager decrypts version 1", () => {
    const { publicKey, privateKey } = crypto.generateKeyPairSync("rsa", { modulusLength: 1024 });
    // EG sends the PEM body without header, footer and newlines
    const pem = publicKey.export({ type: "spki", format: "pem" }).toString();
    const b64 = pem.replace(/-----[^-]+-----/g, "").replace(/\n/g, "");
    const info = JSON.stringify({ shell_port: 1, key: "k", comm_port: 9, kernel_id: "id" });
    const payload = JSON.parse(Buffer.from(encryptConnectionInfo(info, b64).toString("ascii"), "base64").toString("utf8"));
    expect(payload.version).toBe(1);
    // Node 20 refuses PKCS#1 v1.5 private decryption, so undo the padding by hand (00 02 PS 00 M)
    const raw = crypto.privateDecrypt({ key: privateKey, padding: crypto.constants.RSA_NO_PADDING }, Buffer.from(payload.key, "base64"));
    expect(raw[0]).toBe(0);
    expect(raw[1]).toBe(2);
    const aesKey = raw.subarray(raw.indexOf(0, 2) + 1);
    expect(aesKey.length).toBe(16);
    const decipher = crypto.createDecipheriv("aes-128-ecb", aesKey, null);
    const plain = Buffer.concat([decipher.update(Buffer.from(payload.conn_info, "base64")), decipher.final()]).toString("utf8");
    expect(JSON.parse(plain)).toEqual(JSON.parse(info));
  });
  test("listener requests", () => {
    expect(parseListenerRequest('{"signum": 2}')).toEqual({ signum: 2 });
    expect(parseListenerRequest('{"signum": 0}')).toEqual({ signum: 0 });
    expect(parseListenerRequest('{"shutdown": 1}')).toEqual({ shutdown: true });
    expect(parseListenerRequest('{"signum": "x"}')).toBeNull();
    expect(parseListenerRequest("not json")).toBeNull();
    expect(parseListenerRequest('{"signum": 99}')).toBeNull();
  });
  test("launcher kernelspecs carry EG's placeholders and the process proxy", () => {
    const s = launcherKernelSpec("sense-js", { remoteHosts: ["10.0.0.5", "node-b"], kernelScript: "/opt/sense/dist/kernel-extension/kernel.js", version: "1", nodePath: "/usr/bin/node" });
    expect(s.argv).toEqual(["/usr/bin/node", "/opt/sense/dist/kernel-extension/eg-launcher/launch.js", "--kernel-id", "{kernel_id}", "--port-range", "{port_range}", "--response-address", "{response_address}", "--public-key", "{public_key}", "--kernel-name", "sense-js"]);
    expect(s.metadata.process_proxy).toEqual({ class_name: "enterprise_gateway.services.processproxies.distributed.DistributedProcessProxy", config: { remote_hosts: "10.0.0.5,node-b" } });
    expect(() => launcherKernelSpec("sense-ts", { remoteHosts: ["a b"] })).toThrow(UsageError);
  });
});
