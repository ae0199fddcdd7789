/** Session name tags (src/workers/session-tags.ts): worker and warm-pool tags round-trip, anything else is refused. */
import { decodePoolTag, decodeWorkerTag, encodePoolTag, encodeWorkerTag, taggedFor } from "../../../src/workers/session-tags";

describe("worker name tags", () => {
  it("round-trips and rejects what is not a tag", () => {
    const tag = { masterId: "process-12-ab", index: 3, size: "medium" as const, startedAtMs: 1700000000000, status: "running" as const };
    const name = encodeWorkerTag(tag);
    expect(name).toBe("sense:process-12-ab:3:medium:1700000000000:running");
    expect(decodeWorkerTag(name)).toEqual(tag);
    for (const bad of ["", "notebook.ipynb", "sense:a:1:huge:1:idle", "sense:a:1:small:1:sleeping", "sense:a:x:small:1:idle", "sense:a:b:1:small:1:idle"]) {
      expect(decodeWorkerTag(bad)).toBeNull();
    }
    expect(() => encodeWorkerTag({ ...tag, masterId: "a:b" })).toThrow(expect.objectContaining({ code: "bad_option" }));
  });
});

describe("warm pool name tags", () => {
  it("round-trip, never decode as worker tags, and reject what is not a pool tag", () => {
    const tag = { masterId: "k-1", engine: "sense-fast", size: "large" as const, startedAtMs: 1700000000000 };
    const name = encodePoolTag(tag);
    expect(name).toBe("sense-pool:k-1:sense-fast:large:1700000000000");
    expect(decodePoolTag(name)).toEqual(tag);
    expect(decodeWorkerTag(name)).toBeNull();
    for (const bad of ["", "sense:k-1:1:small:1:idle", "sense-pool:k-1:sense-fast:huge:1", "sense-pool:k-1:e:small:x", "sense-pool:a:b:c:small:1"]) expect(decodePoolTag(bad)).toBeNull();
    expect(() => encodePoolTag({ ...tag, engine: "a:b" })).toThrow(expect.objectContaining({ code: "bad_option" }));
  });
});

describe("taggedFor (what the keeper deletes)", () => {
  it("matches worker and pool tags of one master only", () => {
    expect(taggedFor("sense:m-1:3:small:1:running", "m-1")).toBe(true);
    expect(taggedFor("sense-pool:m-1:sense-fast:small:1", "m-1")).toBe(true);
    expect(taggedFor("sense:m-2:3:small:1:running", "m-1")).toBe(false);
    expect(taggedFor("notebook.ipynb", "m-1")).toBe(false);
    expect(taggedFor(undefined, "m-1")).toBe(false);
  });
});
