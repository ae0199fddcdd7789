import { registerDisplayHook, richBundle, authForDisplay, DisplayHooks } from "../../../src/display/hooks";
import { display } from "../../../src/display/live";
import type { MimeBundle, OutputSink } from "../../../src/display/sink";
import type { WorkerRecord } from "../../../src/jupyter/schemas";

const rec = (over: Partial<WorkerRecord> = {}): WorkerRecord => ({
  id: "k-1", name: "w1", engine: "sense-ts", size: "small", status: "idle", masterId: "m", startedAt: "2026-01-01T00:00:00Z", sessionId: "s", path: "p", index: 1, ...over,
});

describe("display hooks", () => {
  test("a list of worker records renders as the workers table", () => {
    const b = richBundle([rec(), rec({ id: "k-2", name: "w2", index: 2, status: "failed" })]);
    expect(b?.["text/html"]).toMatch(/<table/);
    expect(b?.["text/plain"]).toMatch(/2 workers/);
    expect(b?.["text/plain"]).toMatch(/w2 .*failed/);
  });

  test("one record, an await result, network info, auth and install results each have a table", () => {
    expect(richBundle(rec())?.["text/plain"]).toContain("k-1");
    expect(richBundle({ workers: [rec()], failures: [rec({ id: "k-9", name: "w9", status: "failed" })] })?.["text/plain"]).toMatch(/w9/);
    const net = richBundle({ publicDns: "h.example", publicPortMapping: { 22: 2222 }, projectIp: "10.0.0.5", sshPassword: "pw-secret" });
    expect(net?.["text/plain"]).toContain("10.0.0.5");
    expect(JSON.stringify(net)).not.toContain("pw-secret");
    const auth = richBundle({ user: "tok-secret-123", password: "", source: "token", headers: { Authorization: "token tok-secret-123" }, baseUrl: "http://127.0.0.1:1/" });
    expect(JSON.stringify(auth)).not.toContain("tok-secret-123");
    expect(richBundle({ packages: ["a"], versions: { a: "1.0.0" }, durationMs: 10, cwd: "/p", added: ["a"], output: "" })?.["text/plain"]).toContain("a");
  });

  test("plain values and empty lists get no rich form; a registered hook wins", () => {
    expect(richBundle({ a: 1 })).toBeUndefined();
    expect(richBundle([])).toBeUndefined();
    expect(richBundle([rec(), { not: "a record" }])).toBeUndefined();
    const off = registerDisplayHook({ name: "point", matches: (v) => typeof v === "object" && v !== null && "x" in v, render: () => ({ "text/plain": "a point" }) });
    expect(richBundle({ x: 1 })?.["text/plain"]).toBe("a point");
    off();
    expect(richBundle({ x: 1 })).toBeUndefined();
  });

  test("a DisplayHooks instance renders with its own hooks and the built-ins, not the process's", () => {
    const mine = new DisplayHooks();
    const point = (text: string) => ({ name: "point", matches: (v: unknown) => typeof v === "object" && v !== null && "x" in v, render: () => ({ "text/plain": text }) });
    const offMine = mine.register(point("mine"));
    const offProcess = registerDisplayHook(point("process's"));
    try {
      expect(mine.bundle({ x: 1 })?.["text/plain"]).toBe("mine");
      expect(richBundle({ x: 1 })?.["text/plain"]).toBe("process's");
      expect(new DisplayHooks().bundle({ x: 1 })).toBeUndefined();
      expect(mine.bundle(rec())?.["text/plain"]).toContain("k-1");
    } finally {
      offMine();
      offProcess();
    }
    expect(mine.bundle({ x: 1 })).toBeUndefined();
  });

  test("display() sends the hook's bundle, or the inspect text", () => {
    const shown: MimeBundle[] = [];
    const sink: OutputSink = { stdout: () => undefined, stderr: () => undefined, display: (b) => shown.push(b) };
    display([rec()], sink);
    display({ a: 1 }, sink);
    expect(shown[0]["text/html"]).toMatch(/<table/);
    expect(shown[1]).toEqual({ "text/plain": "{ a: 1 }" });
  });

  test("auth for display masks the token, which is the user with token auth", () => {
    expect(authForDisplay({ user: "t", password: "", source: "token" })).toMatchObject({ token: "t" });
    expect(authForDisplay({ user: "u", password: "p", source: "credentials" })).toMatchObject({ username: "u", password: "p" });
  });
});
