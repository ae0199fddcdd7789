import { inspect } from "node:util";
import { getAuth, SenseAuth } from "../../src/platform/auth";
import { discover } from "../../src/jupyter/context";
import { ConfigError } from "../../src/errors";

const TOKEN = "env-token-abcdef123456";
const PASSWORD = "pw-hunter2-secret";
const base = { SENSE_API_URL: "http://127.0.0.1:8888/" };
// An empty proc root: the test process's own kernel (if any) must not be discovered.
const discoverOpts = { procRoot: "/nonexistent", pid: 1 };

function expectMasked(auth: SenseAuth, secrets: string[]) {
  const shown = [inspect(auth), JSON.stringify(auth), String(JSON.stringify({ nested: auth })), inspect({ nested: auth }, { depth: 5 })];
  for (const text of shown) for (const s of secrets) expect(text).not.toContain(s);
  expect(inspect(auth)).toContain("***");
}

describe("getAuth", () => {
  it("uses SENSE_USERNAME and SENSE_PASSWORD when both are set (Basic auth)", () => {
    const auth = getAuth({ env: { ...base, SENSE_API_TOKEN: TOKEN, SENSE_USERNAME: "alice", SENSE_PASSWORD: PASSWORD }, discover: discoverOpts });
    expect(auth.source).toBe("credentials");
    expect(auth.user).toBe("alice");
    expect(auth.password).toBe(PASSWORD);
    expect(auth.headers).toEqual({ Authorization: `Basic ${Buffer.from(`alice:${PASSWORD}`).toString("base64")}` });
    expect(auth.baseUrl).toBe("http://127.0.0.1:8888/");
    expectMasked(auth, [PASSWORD, Buffer.from(`alice:${PASSWORD}`).toString("base64")]);
    expect(JSON.parse(JSON.stringify(auth)).user).toBe("alice");
  });

  it.each([
    ["only SENSE_USERNAME", { SENSE_USERNAME: "alice" }],
    ["only SENSE_PASSWORD", { SENSE_PASSWORD: PASSWORD }],
    ["neither", {}],
  ])("falls back to SENSE_API_TOKEN with %s", (_label, extra) => {
    const auth = getAuth({ env: { ...base, SENSE_API_TOKEN: TOKEN, ...extra }, discover: discoverOpts });
    expect(auth.source).toBe("token");
    expect(auth.user).toBe(TOKEN);
    expect(auth.password).toBe("");
    expect(auth.headers).toEqual({ Authorization: `token ${TOKEN}` });
    expectMasked(auth, [TOKEN]);
  });

  it("uses the discovered server's token when SENSE_API_TOKEN is unset", () => {
    const ctx = discover({ baseUrl: "http://127.0.0.1:9999/x", token: "ctx-token-777777" });
    const auth = getAuth({ context: ctx, env: {} });
    expect(auth).toMatchObject({ source: "token", user: "ctx-token-777777", baseUrl: "http://127.0.0.1:9999/x/" });
    expect(auth.headers.Authorization).toBe("token ctx-token-777777");
    expectMasked(auth, ["ctx-token-777777"]);
  });

  it("not_configured when there is no token and no credentials", () => {
    let caught: unknown;
    try {
      getAuth({ env: { ...base }, discover: discoverOpts });
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as ConfigError).code).toBe("not_configured");
    expect((caught as Error).message).toMatch(/SENSE_API_TOKEN/);
  });

  it("not_configured when no server can be found", () => {
    expect(() => getAuth({ env: { SENSE_API_TOKEN: TOKEN }, discover: discoverOpts })).toThrow(expect.objectContaining({ code: "not_configured" }));
  });

  it("the masked JSON keeps the shape", () => {
    const auth = getAuth({ env: { ...base, SENSE_API_TOKEN: TOKEN }, discover: discoverOpts });
    expect(JSON.parse(JSON.stringify(auth))).toEqual({ user: "***", password: "", source: "token", headers: { Authorization: "token ***" }, baseUrl: "http://127.0.0.1:8888/" });
  });
});
