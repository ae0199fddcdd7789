import type { NetworkInterfaceInfo } from "node:os";
import { inspect } from "node:util";
import { ConfigError } from "../../src/errors";
import { getNetwork, networkInfo } from "../../src/platform/network";

const lo: NetworkInterfaceInfo = { address: "127.0.0.1", netmask: "255.0.0.0", family: "IPv4", mac: "00:00:00:00:00:00", internal: true, cidr: "127.0.0.1/8" };
const eth = (address: string, family: "IPv4" | "IPv6" = "IPv4"): NetworkInterfaceInfo =>
  family === "IPv4"
    ? { address, netmask: "255.255.255.0", family, mac: "02:00:00:00:00:01", internal: false, cidr: `${address}/24` }
    : { address, netmask: "ffff:ffff:ffff:ffff::", family, mac: "02:00:00:00:00:01", internal: false, cidr: `${address}/64`, scopeid: 0 };
const interfaces = { lo: [lo], docker0: [eth("172.17.0.1")], eth0: [eth("fe80::1", "IPv6"), eth("10.1.2.3")] };
const remote = { baseUrl: "http://jupyter.example:8888/", interfaces, hostname: "box1" };

function badConfig(env: NodeJS.ProcessEnv, variable: string): ConfigError {
  let caught: unknown;
  try {
    getNetwork({ ...remote, env });
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(ConfigError);
  const err = caught as ConfigError;
  expect(err.code).toBe("bad_config");
  expect(err.message).toContain(variable);
  expect(err.details).toEqual({ variable });
  return err;
}

describe("getNetwork", () => {
  it("reads every SENSE_* network variable, as integers", () => {
    const env = {
      SENSE_PUBLIC_DNS: "dash1.example.com",
      SENSE_PORT1: "8000",
      SENSE_PUBLIC_PORT1: "31000",
      SENSE_PORT2: "8001",
      SENSE_PUBLIC_PORT2: "31001",
      SENSE_PORT10: "9000",
      SENSE_PUBLIC_PORT10: "32000",
      SENSE_SSH_PORT: "22",
      SENSE_PUBLIC_SSH_PORT: "30022",
      SENSE_SSH_PASSWORD: "ssh-secret-pw",
      SENSE_PROJECT_IP: "10.9.8.7",
    };
    const n = getNetwork({ ...remote, env });
    expect(n.publicDns).toBe("dash1.example.com");
    expect(n.publicPortMapping).toEqual({ 8000: 31000, 8001: 31001, 9000: 32000, 22: 30022 });
    for (const [k, v] of Object.entries(n.publicPortMapping)) {
      expect(typeof Number(k)).toBe("number");
      expect(typeof v).toBe("number");
    }
    expect(n.sshPort).toBe(22);
    expect(n.publicSshPort).toBe(30022);
    expect(n.sshPassword).toBe("ssh-secret-pw");
    expect(n.projectIp).toBe("10.9.8.7");
  });

  it("masks the ssh password when printed or JSON-encoded", () => {
    const n = getNetwork({ ...remote, env: { SENSE_SSH_PASSWORD: "ssh-secret-pw" } });
    expect(inspect(n)).not.toContain("ssh-secret-pw");
    expect(JSON.stringify(n)).not.toContain("ssh-secret-pw");
    expect(JSON.parse(JSON.stringify(n)).sshPassword).toBe("***");
    expect(inspect(n)).toMatch(/^NetworkInfo /);
  });

  it("defaults: host name, empty mapping, no password, primary non-internal IPv4 of a real interface", () => {
    const n = getNetwork({ ...remote, env: {} });
    expect(JSON.parse(JSON.stringify(n))).toEqual({ publicDns: "box1", publicPortMapping: {}, sshPassword: "", projectIp: "10.1.2.3" });
  });

  it("defaults projectIp to loopback when the server is on loopback", () => {
    expect(getNetwork({ env: {}, baseUrl: "http://127.0.0.1:8888/", interfaces }).projectIp).toBe("127.0.0.1");
    expect(getNetwork({ env: {}, baseUrl: "http://localhost:8888/", interfaces }).projectIp).toBe("127.0.0.1");
    expect(getNetwork({ env: {}, baseUrl: "http://[::1]:8888/", interfaces }).projectIp).toBe("127.0.0.1");
  });

  it("takes the server URL from discovery (SENSE_API_URL) when not given", () => {
    expect(getNetwork({ env: { SENSE_API_URL: "http://127.0.0.1:1/" }, interfaces }).projectIp).toBe("127.0.0.1");
    expect(getNetwork({ env: { SENSE_API_URL: "http://10.0.0.1:1/" }, interfaces }).projectIp).toBe("10.1.2.3");
  });

  it("falls back to 127.0.0.1 with no non-internal interface", () => {
    expect(getNetwork({ env: {}, baseUrl: "http://h:1/", interfaces: { lo: [lo] } }).projectIp).toBe("127.0.0.1");
  });

  it("treats empty variables as unset", () => {
    const n = getNetwork({ ...remote, env: { SENSE_PORT1: "", SENSE_PUBLIC_PORT1: "", SENSE_PROJECT_IP: "", SENSE_PUBLIC_DNS: "" } });
    expect(n.publicPortMapping).toEqual({});
    expect(n.publicDns).toBe("box1");
  });

  it.each([
    ["SENSE_PORT1", { SENSE_PORT1: "80a", SENSE_PUBLIC_PORT1: "1" }],
    ["SENSE_PUBLIC_PORT1", { SENSE_PORT1: "80", SENSE_PUBLIC_PORT1: "70000" }],
    ["SENSE_PORT3", { SENSE_PORT3: "0", SENSE_PUBLIC_PORT3: "1" }],
    ["SENSE_PORT1", { SENSE_PORT1: "-5", SENSE_PUBLIC_PORT1: "1" }],
    ["SENSE_PORT1", { SENSE_PORT1: "8.5", SENSE_PUBLIC_PORT1: "1" }],
    ["SENSE_PUBLIC_PORT2", { SENSE_PORT2: "80" }],
    ["SENSE_PORT4", { SENSE_PUBLIC_PORT4: "80" }],
    ["SENSE_SSH_PORT", { SENSE_SSH_PORT: "twenty-two", SENSE_PUBLIC_SSH_PORT: "1" }],
    ["SENSE_PUBLIC_SSH_PORT", { SENSE_SSH_PORT: "22" }],
    ["SENSE_PROJECT_IP", { SENSE_PROJECT_IP: "not-an-ip" }],
  ])("bad_config naming %s", (variable, env) => {
    badConfig(env, variable);
  });

  it("networkInfo is the same function", () => {
    expect(networkInfo).toBe(getNetwork);
  });
});
