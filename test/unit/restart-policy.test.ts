/** The crash-loop rule of `restart: "on-failure"` (#23): crashes in a row, not since the launch. Pure. */
import { crashesInARow, HEALTHY_RUN_MS } from "../../src/workers/restart-policy";

describe("crashesInARow", () => {
  it("counts a crash soon after the start, before any finished request, on top of the ones before it", () => {
    expect(crashesInARow(0, { upMs: 10, finishedWork: false })).toBe(1);
    expect(crashesInARow(2, { upMs: HEALTHY_RUN_MS - 1, finishedWork: false })).toBe(3);
  });

  it("starts again at 1 when the kernel ran healthy for HEALTHY_RUN_MS or finished a request", () => {
    expect(crashesInARow(5, { upMs: HEALTHY_RUN_MS, finishedWork: false })).toBe(1);
    expect(crashesInARow(5, { upMs: 3, finishedWork: true })).toBe(1);
    expect(crashesInARow(5, { upMs: 10_000, finishedWork: false }, 5_000)).toBe(1);
  });
});
