import {
  ConfigError,
  InstallError,
  RestError,
  SenseError,
  UsageError,
  WorkerError,
  isSenseError,
  isUsageError,
  redact,
} from "../../src/errors";
import { isRestError } from "../../src/jupyter/rest";

describe("error classes", () => {
  const cases: [SenseError, string, string][] = [
    [new SenseError("timeout", "m"), "SenseError", "timeout"],
    [new UsageError("m"), "UsageError", "usage"],
    [new UsageError("m", { code: "bad_option", usage: "%x [-n N]" }), "UsageError", "bad_option"],
    [new ConfigError("not_configured", "m"), "ConfigError", "not_configured"],
    [new ConfigError("bad_config", "m", { variable: "SENSE_PORT1" }), "ConfigError", "bad_config"],
    [new RestError("unreachable", "m", { method: "GET", url: "http://h/api" }), "RestError", "unreachable"],
    [new RestError("unauthorized", "m", { method: "GET", url: "http://h/api", status: 403 }), "RestError", "unauthorized"],
    [new RestError("not_found", "m", { method: "GET", url: "http://h/api", status: 404 }), "RestError", "not_found"],
    [new RestError("bad_response", "m", { method: "GET", url: "http://h/api" }), "RestError", "bad_response"],
    [new RestError("http_error", "m", { method: "GET", url: "http://h/api", status: 500 }), "RestError", "http_error"],
    [new InstallError("install_failed", "m"), "InstallError", "install_failed"],
    [new InstallError("bad_package", "m"), "InstallError", "bad_package"],
    [new WorkerError("launch_failed", "m"), "WorkerError", "launch_failed"],
    [new WorkerError("kernel_error", "m"), "WorkerError", "kernel_error"],
  ];

  it.each(cases.map(([err, name, code]) => [name, code, err] as const))("%s(%s) has its name, code and guards", (name, code, err) => {
    expect(err).toBeInstanceOf(Error);
    expect(err).toBeInstanceOf(SenseError);
    expect(err.name).toBe(name);
    expect(err.code).toBe(code);
    expect(err.message).toBe("m");
    expect(isSenseError(err)).toBe(true);
    expect(isUsageError(err)).toBe(name === "UsageError");
    expect(isRestError(err)).toBe(name === "RestError");
    expect(String(err)).toBe(`${name}: m`);
  });

  it("keeps details, cause, status and usage", () => {
    const cause = new Error("low level");
    const r = new RestError("http_error", "m", { method: "POST", url: "http://h/api/sessions", status: 500, cause });
    expect(r.cause).toBe(cause);
    expect(r.status).toBe(500);
    expect(r.details).toEqual({ method: "POST", url: "http://h/api/sessions", status: 500 });
    expect(new ConfigError("bad_config", "m", { variable: "X" }).details).toEqual({ variable: "X" });
    expect(new UsageError("m", { usage: "u" }).usage).toBe("u");
    expect(new SenseError("usage", "m").details).toEqual({});
  });

  it("guards recognise errors from another copy of the package by name and code", () => {
    const foreign = Object.assign(new Error("m"), { name: "RestError", code: "not_found" });
    expect(isSenseError(foreign)).toBe(true);
    expect(isRestError(foreign)).toBe(true);
    const foreignUsage = Object.assign(new Error("m"), { name: "UsageError", code: "usage" });
    expect(isUsageError(foreignUsage)).toBe(true);
  });

  it("guards reject look-alikes", () => {
    expect(isSenseError(new Error("m"))).toBe(false);
    expect(isSenseError(Object.assign(new Error("m"), { name: "RestError" }))).toBe(false); // no code
    expect(isSenseError({ name: "RestError", code: "x", message: "m" })).toBe(false); // not an Error
    expect(isSenseError(null)).toBe(false);
    expect(isSenseError("RestError")).toBe(false);
    expect(isUsageError(new ConfigError("bad_config", "m"))).toBe(false);
  });
});

describe("redact", () => {
  it("masks token query values, Authorization headers and literal secrets", () => {
    expect(redact("GET http://h/api?token=abc123&x=1")).toBe("GET http://h/api?token=***&x=1");
    expect(redact("ws://h/api/kernels/1/channels?session_id=2&token=abc")).toBe("ws://h/api/kernels/1/channels?session_id=2&token=***");
    expect(redact('{"Authorization": "token s3cr3t"}')).toBe('{"Authorization": "token ***"}');
    expect(redact("Authorization: Basic dXNlcjpwYXNz")).toBe("Authorization: Basic ***");
    expect(redact("the secret is hunter22 here", ["hunter22"])).toBe("the secret is *** here");
  });

  it("ignores empty and very short secrets (they would shred the text)", () => {
    expect(redact("abc", ["", undefined, "a"])).toBe("abc");
  });
});
