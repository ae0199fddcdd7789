/**
 * Drive a real kernel through a real Jupyter Server, cell by cell, as a notebook front end
 * does, and collect what it sends on iopub. Used by the tests, the demo and the notebook runner.
 */
import { KernelManager, KernelMessage, SessionManager, Session } from "@jupyterlab/services";
import { guardKernelInfo, serverSettings as headerAuthSettings } from "../src/backends/jupyter/connection";

/** What a kernel client needs to know about a server. */
export interface ServerAddress {
  url: string;
  token: string;
}

/** One output as a notebook would store it. */
export type Output =
  | { type: "stream"; name: string; text: string }
  | { type: "display_data" | "update_display_data" | "execute_result"; data: Record<string, unknown>; displayId?: string }
  | { type: "error"; ename: string; evalue: string; traceback: string[] };

export interface CellResult {
  status: "ok" | "error" | "abort";
  outputs: Output[];
  /** All stream text (stdout + stderr) concatenated. */
  text: string;
  stdout: string;
  stderr: string;
  /** text/plain of the cell's execute_result (its last expression), if it had one. */
  result?: string;
  /** The reply's ename/evalue when the cell failed. */
  error?: { ename: string; evalue: string; traceback: string[] };
}

export interface NotebookKernel {
  session: Session.ISessionConnection;
  kernelId: string;
  /**
   * Runs one cell and waits for its reply. The returned `outputs` keep growing when output
   * for this cell arrives later; `onOutput` sees each output as it arrives.
   */
  run(code: string, onOutput?: (o: Output) => void): Promise<CellResult>;
  /** Every iopub message seen so far, any parent. */
  iopub: KernelMessage.IIOPubMessage[];
  /** Calls `listener` for every iopub message from now on (any parent, also after a cell finished). */
  onIOPub(listener: (m: KernelMessage.IIOPubMessage) => void): void;
  /**
   * Resolves once the kernel has answered a request sent now (an empty, silent execute) and gone
   * idle for it: output a kernel sends after a cell's idle (Deno's does) has arrived by then.
   */
  settle(): Promise<void>;
  /** Resolves when an iopub message matching `pred` arrives (or already did). */
  waitFor(pred: (m: KernelMessage.IIOPubMessage) => boolean, timeoutMs?: number): Promise<KernelMessage.IIOPubMessage>;
  shutdown(): Promise<void>;
  /**
   * Closes this client's websocket first, then deletes the session (and so the kernel), then
   * stops the client's pollers. Behind a gateway this spares the server reconnecting to a kernel
   * that is going away. Never throws (an already deleted session is fine).
   */
  close(): Promise<void>;
}

// @jupyterlab/services logs websocket chatter with console.debug.
const quiet = () => {
  /* silenced */
};
console.debug = quiet;

function toOutput(msg: KernelMessage.IIOPubMessage): Output | null {
  const t = msg.header.msg_type;
  const c = msg.content as Record<string, unknown>;
  if (t === "stream") return { type: "stream", name: String(c.name), text: String(c.text) };
  if (t === "display_data" || t === "update_display_data" || t === "execute_result") {
    const transient = (c.transient ?? {}) as { display_id?: string };
    return { type: t, data: c.data as Record<string, unknown>, displayId: transient.display_id };
  }
  if (t === "error") return { type: "error", ename: String(c.ename), evalue: String(c.evalue), traceback: (c.traceback as string[]) ?? [] };
  return null;
}

/** Opens a session on `server` running `kernelName`, as JupyterLab does for a notebook at `path`. */
export async function openNotebook(server: ServerAddress, kernelName: string, path = `nb-${Date.now()}-${Math.random().toString(36).slice(2, 8)}.ipynb`): Promise<NotebookKernel> {
  // The token goes in a header, never in the websocket URL: the server logs a failed request's
  // URL (a reconnect to a restarting kernel), and a `?token=` there is a leaked secret.
  const serverSettings = headerAuthSettings({ baseUrl: server.url, token: server.token });
  const kernelManager = new KernelManager({ serverSettings });
  const sessionManager = new SessionManager({ serverSettings, kernelManager });
  // The managers poll the server until disposed: a failed open must not leave them running (the
  // test process would never exit), nor the kernel it started.
  const abandon = async (e: unknown, started?: Session.ISessionConnection): Promise<never> => {
    started?.dispose();
    if (started) await sessionManager.shutdown(started.id).catch(() => undefined);
    sessionManager.dispose();
    kernelManager.dispose();
    throw e;
  };
  const session = await sessionManager.startNew({ path, type: "notebook", name: path, kernel: { name: kernelName } }).catch((e: unknown) => abandon(e));
  const kernel = session.kernel;
  if (!kernel) return abandon(new Error("session has no kernel"), session);
  // A kernel killed while (re)connecting would otherwise leave an unhandled rejection (see guardKernelInfo).
  guardKernelInfo(kernel);
  const iopub: KernelMessage.IIOPubMessage[] = [];
  const listeners: ((m: KernelMessage.IIOPubMessage) => void)[] = [];
  // Each cell's outputs by its request's msg_id, filled from the kernel's whole iopub: a future
  // stops hearing its messages once done, and some kernels (Deno's) send output after idle.
  const cellOutputs = new Map<string, { outputs: Output[]; onOutput?: (o: Output) => void }>();
  // As JupyterLab routes them: an update goes to the cells that showed its display id (whatever
  // its parent), a display with a known id updates those cells too, anything else goes to its parent.
  const displayOwners = new Map<string, { outputs: Output[]; onOutput?: (o: Output) => void }[]>();
  const fileOutput = (msg: KernelMessage.IIOPubMessage): void => {
    const out = toOutput(msg);
    if (!out) return;
    const give = (cell: { outputs: Output[]; onOutput?: (o: Output) => void }, o: Output) => {
      cell.outputs.push(o);
      cell.onOutput?.(o);
    };
    const cell = cellOutputs.get((msg.parent_header as { msg_id?: string }).msg_id ?? "");
    if ((out.type === "display_data" || out.type === "update_display_data") && out.displayId !== undefined) {
      const displayId = out.displayId;
      const owners = displayOwners.get(displayId) ?? [];
      for (const owner of owners) give(owner, { ...out, type: "update_display_data" });
      if (out.type === "update_display_data") return;
      if (cell && !owners.includes(cell)) displayOwners.set(displayId, [...owners, cell]);
      if (cell && owners.includes(cell)) return;
    }
    if (cell) give(cell, out);
  };
  const waiters: { pred: (m: KernelMessage.IIOPubMessage) => boolean; resolve: (m: KernelMessage.IIOPubMessage) => void }[] = [];
  kernel.iopubMessage.connect((_, msg) => {
    iopub.push(msg);
    fileOutput(msg);
    for (const l of listeners) l(msg);
    for (const w of [...waiters]) {
      if (w.pred(msg)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(msg);
      }
    }
  });
  await kernel.info.catch((e: unknown) => abandon(e, session));
  const opened = session;

  return {
    session: opened,
    kernelId: kernel.id,
    iopub,
    onIOPub(listener) {
      listeners.push(listener);
    },
    async run(code: string, onOutput?: (o: Output) => void): Promise<CellResult> {
      const outputs: Output[] = [];
      const future = kernel.requestExecute({ code, stop_on_error: true }, false);
      cellOutputs.set(future.msg.header.msg_id, { outputs, onOutput });
      const reply = await future.done;
      // Read when asked: `outputs` keeps growing with output that arrives after the reply.
      const streams = (name?: string) =>
        outputs
          .filter((o): o is Extract<Output, { type: "stream" }> => o.type === "stream" && (name === undefined || o.name === name))
          .map((o) => o.text)
          .join("");
      const rc = reply.content as { ename?: string; evalue?: string; traceback?: string[] };
      return {
        get result() {
          const r = outputs.find((o) => o.type === "execute_result");
          return r && r.type === "execute_result" ? String(r.data["text/plain"]) : undefined;
        },
        error: reply.content.status === "error" ? { ename: String(rc.ename), evalue: String(rc.evalue), traceback: rc.traceback ?? [] } : undefined,
        status: reply.content.status as CellResult["status"],
        outputs,
        get text() {
          return streams();
        },
        get stdout() {
          return streams("stdout");
        },
        get stderr() {
          return streams("stderr");
        },
      };
    },
    async settle() {
      // An empty, silent request: its future is done once the kernel replied and went idle.
      await kernel.requestExecute({ code: "", silent: true, store_history: false }, true).done;
    },
    waitFor(pred, timeoutMs = 60_000) {
      const seen = iopub.find(pred);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error("timed out waiting for an iopub message")), timeoutMs);
        waiters.push({ pred, resolve: (m) => (clearTimeout(timer), resolve(m)) });
      });
    },
    async shutdown() {
      try {
        await opened.shutdown();
      } catch {
        /* already gone */
      }
      opened.dispose();
      sessionManager.dispose();
      kernelManager.dispose();
    },
    async close() {
      kernel.dispose();
      opened.dispose();
      await sessionManager.shutdown(opened.id).catch(() => undefined);
      sessionManager.dispose();
      kernelManager.dispose();
    },
  };
}

/** All text of stream outputs and text/plain of displays, for assertions. */
export function allText(outputs: Output[]): string {
  return outputs
    .map((o) => (o.type === "stream" ? o.text : o.type === "error" ? `${o.ename}: ${o.evalue}` : String(o.data["text/plain"] ?? "")))
    .join("");
}

/**
 * The text a notebook front end shows for a cell with these outputs: streams as they came, each
 * display at its place with its latest content (an update replaces the display of its id in place;
 * late worker output arrives that way, kernel-extension/late-output.ts), errors as `ename: evalue`.
 */
export function shownText(outputs: Output[]): string {
  const latest = new Map<string, string>();
  for (const o of outputs) if (o.type !== "stream" && o.type !== "error" && o.displayId) latest.set(o.displayId, String(o.data["text/plain"] ?? ""));
  const parts: string[] = [];
  for (const o of outputs) {
    if (o.type === "stream") parts.push(o.text);
    else if (o.type === "error") parts.push(`${o.ename}: ${o.evalue}\n`);
    else if (o.type === "update_display_data") continue;
    else {
      const text = o.displayId ? (latest.get(o.displayId) ?? "") : String(o.data["text/plain"] ?? "");
      parts.push(text === "" || text.endsWith("\n") ? text : text + "\n");
    }
  }
  return parts.join("");
}

export { toOutput };
