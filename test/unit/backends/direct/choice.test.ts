import { backendChoice, discoverRun } from "../../../../src/jupyter/context";
import { ConfigError } from "../../../../src/errors";

const none = { procRoot: "/nonexistent", pid: 4321, cwd: "/work/p" };

test("SENSE_BACKEND is an allowlist: auto (default), server, direct; anything else is bad_config naming the choices", () => {
  expect(backendChoice({})).toBe("auto");
  expect(backendChoice({ SENSE_BACKEND: " Direct " })).toBe("direct");
  expect(backendChoice({ SENSE_BACKEND: "server" })).toBe("server");
  for (const bad of ["gateway", "1", "__proto__"]) {
    let err: unknown;
    try {
      backendChoice({ SENSE_BACKEND: bad });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).code).toBe("bad_config");
    expect((err as Error).message).toMatch(/"server", "direct" or "auto"/);
  }
});

test("auto: a server when one is named, else the direct backend saying what was looked for", () => {
  expect(discoverRun({ ...none, env: { SENSE_API_URL: "http://127.0.0.1:1/" } }).backend).toBe("server");
  const d = discoverRun({ ...none, env: { JUPYTER_RUNTIME_DIR: "/r" } });
  expect(d).toMatchObject({ backend: "direct", projectHome: "/work/p", runtimeDir: "/r", isWorker: false });
  if (d.backend !== "direct") throw new Error("unreachable");
  expect(d.why).toMatch(/SENSE_API_URL/);
  expect(d.dashboardId).toMatch(/^process-4321-/);
});

test("direct wins over a named server; server refuses to fall back; a worker reads its master's runtime folder", () => {
  expect(discoverRun({ ...none, env: { SENSE_BACKEND: "direct", SENSE_API_URL: "http://127.0.0.1:1/" } }).backend).toBe("direct");
  expect(() => discoverRun({ ...none, env: { SENSE_BACKEND: "server" } })).toThrow(expect.objectContaining({ code: "not_configured" }));
  const w = discoverRun({ ...none, env: { SENSE_BACKEND: "direct", SENSE_RUNTIME_DIR: "/m/runtime", JUPYTER_RUNTIME_DIR: "/other", SENSE_MASTER_ID: "m1", SENSE_DASHBOARD_ID: "k2", SENSE_PROJECT_HOME: "/home/p" } });
  expect(w).toMatchObject({ backend: "direct", runtimeDir: "/m/runtime", masterId: "m1", dashboardId: "k2", isWorker: true, projectHome: "/home/p" });
});
