/** Iopub messages are checked once where they enter (src/backends/backend.ts iopubMessage), whatever the backend. */
import { iopubMessage } from "../../../src/backends/backend";

describe("iopubMessage", () => {
  it("gives each kind the content Sense reads", () => {
    expect(iopubMessage("stream", { name: "stderr", text: "x\n" }, "p1")).toEqual({ type: "stream", parentId: "p1", content: { name: "stderr", text: "x\n" } });
    expect(iopubMessage("error", { ename: "E", evalue: "v", traceback: ["a", 2] })).toEqual({ type: "error", content: { ename: "E", evalue: "v", traceback: ["a", "2"] } });
    expect(iopubMessage("update_display_data", { data: { "text/plain": "t" }, metadata: {}, transient: { display_id: "d1" } })).toEqual({
      type: "update_display_data",
      content: { data: { "text/plain": "t" }, displayId: "d1" },
    });
    expect(iopubMessage("status", { execution_state: "idle" })).toEqual({ type: "status", content: { execution_state: "idle" } });
    expect(iopubMessage("comm_msg", { comm_id: "c" })).toEqual({ type: "other", msgType: "comm_msg", content: { comm_id: "c" } });
  });

  it("a kernel's malformed message becomes empty fields, never a crash", () => {
    expect(iopubMessage("stream", null)).toEqual({ type: "stream", content: { name: "stdout", text: "" } });
    expect(iopubMessage("error", { traceback: "not a list" })).toEqual({ type: "error", content: { ename: "", evalue: "", traceback: [] } });
    expect(iopubMessage("display_data", { data: [1], transient: { display_id: 7 } })).toEqual({ type: "display_data", content: { data: {} } });
    expect(iopubMessage("execute_result", "text")).toEqual({ type: "execute_result", content: { data: {} } });
  });
});
