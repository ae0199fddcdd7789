/**
 * The direct backend: kernels started from their kernelspecs by this process, with no Jupyter
 * Server (VS Code, nbconvert, papermill, nbclient, `jupyter console`, plain Node). Sessions live
 * in the session store (session-store.ts) of the Jupyter runtime folder, so a master, its workers
 * and the keeper all read the same cluster; kernels are reached over ZeroMQ (client.ts).
 *
 * Session paths are relative to `root` (the project home), as a server's API paths are relative
 * to its root_dir: a worker's kernel starts in the folder of its session path.
 */
import { randomUUID } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { RestError } from "../../errors";
import type { KernelModel, KernelSpecs, SessionModel } from "../../jupyter/schemas";
import { bestEffortSync } from "../../util/best-effort";
import { sleep } from "../../util/timing";
import { requestMetadata } from "../../protocol/marks";
import { usageReply } from "../../protocol/usage";
import { executeContent } from "../backend";
import { iopubMessage, type ChannelStatus, type ExecuteReply, type KernelBackend, KernelChannel, KernelLifeStatus, SessionChange, StartRequest } from "../backend";
import { KernelClient } from "./client";
import { jupyterRuntimeDir, PathEnv, processPathEnv } from "../../jupyter/paths";
import { findKernelSpec, findKernelSpecs } from "./kernelspecs";
import { launchKernel, LaunchedKernel } from "./spawn";
import { identityOf, sessionModelOf, SessionStore, StoredSession } from "./session-store";
import { sameProcess } from "../../util/pid";

/** Options of {@link DirectBackend}. */
export interface DirectBackendOptions {
  /** What session paths are relative to (the project home). */
  root: string;
  /** The Jupyter runtime folder (connection files, the session store); default as jupyter_core. */
  runtimeDir?: string;
  /** How the kernelspec search path is read (tests). */
  paths?: PathEnv;
  /** The kernels' stdout/stderr (default: this process's, as jupyter_client does). */
  stdio?: "inherit" | "ignore";
}

/** How long after a kernel's process exited its last messages get to arrive before it is reported dead. */
const EXIT_DRAIN_MS = 100;

// How long a stopped kernel gets to exit after shutdown_request before its group is killed.
const SHUTDOWN_GRACE_MS = 3_000;

function notFound(what: string, id: string): RestError {
  return new RestError("not_found", `${what} ${id} is not running (direct backend)`, { method: "direct", url: `${what}/${id}` });
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  bestEffortSync(`signal ${signal} to process group ${pid}`, () => process.kill(-pid, signal));
}

/**
 * Signals the process group of a kernel another process started, only while its pid is still
 * that kernel (its recorded start time matches): after the kernel ended, its pid (and so `-pid`)
 * may name an unrelated process group. A kernel that is not confirmed is gone: its session goes.
 */
function signalRecorded(store: SessionStore, s: StoredSession, signal: NodeJS.Signals): boolean {
  if (sameProcess(s.pid, s.pidStart)) {
    signalGroup(s.pid, signal);
    return true;
  }
  store.remove(s.id);
  return false;
}

/** A {@link KernelBackend} that starts kernels itself, from kernelspecs on this machine. */
export class DirectBackend implements KernelBackend {
  readonly label: string;
  /** The session store, shared by every process using the same runtime folder. */
  readonly store: SessionStore;
  private readonly root: string;
  private readonly runtimeDir: string;
  private readonly paths: PathEnv;
  private readonly stdio: "inherit" | "ignore";
  /** Kernels this process started: only their owner knows their keys. */
  private readonly mine = new Map<string, LaunchedKernel>();
  /** How this process's kernels ended, by kernel id (kept for the ones that ended; a few bytes each). */
  private readonly exits = new Map<string, number | string>();
  /** Master sessions this process entered (removed by {@link DirectBackend.close}). */
  private readonly masters = new Set<string>();

  constructor(options: DirectBackendOptions) {
    this.root = path.resolve(options.root);
    this.paths = options.paths ?? processPathEnv();
    this.runtimeDir = options.runtimeDir ?? jupyterRuntimeDir(this.paths);
    this.store = new SessionStore(this.runtimeDir);
    this.stdio = options.stdio ?? "inherit";
    this.label = `kernels started directly (runtime folder ${this.runtimeDir})`;
  }

  async kernelSpecs(): Promise<KernelSpecs> {
    const specs = findKernelSpecs(this.paths);
    const kernelspecs: KernelSpecs["kernelspecs"] = {};
    for (const [name, s] of specs) {
      kernelspecs[name] = { name, spec: { display_name: s.spec.display_name, language: s.spec.language, argv: s.spec.argv, env: s.spec.env, metadata: s.spec.metadata }, resources: {} };
    }
    return { default: specs.has("python3") ? "python3" : ([...specs.keys()][0] ?? ""), kernelspecs };
  }

  async listSessions(): Promise<SessionModel[]> {
    return this.store.list().map(sessionModelOf);
  }

  async getSession(sessionId: string): Promise<SessionModel> {
    const s = this.store.get(sessionId);
    if (!s) throw notFound("session", sessionId);
    return sessionModelOf(s);
  }

  async getKernel(kernelId: string): Promise<KernelModel> {
    const s = this.byKernel(kernelId);
    const model = s ? sessionModelOf(s).kernel : null;
    if (!model || model.execution_state === "dead") throw notFound("kernel", kernelId);
    return model;
  }

  private byKernel(kernelId: string): StoredSession | undefined {
    return this.store.list().find((s) => s.kernel.id === kernelId);
  }

  async start(r: StartRequest): Promise<SessionModel> {
    // As a server: a session path names one session; asking again answers the one there is.
    const existing = this.store.list().find((s) => s.path === r.path);
    if (existing) return sessionModelOf(existing);
    const spec = findKernelSpec(r.kernelName, this.paths);
    const cwd = path.resolve(this.root, path.dirname(r.path));
    // As jupyter_server names a session's kernel (its `get_kernel_env`): a Sense kernel knows from it
    // that it is a worker, whose code comes precompiled, and never warms its compiler up.
    const env = { JPY_SESSION_NAME: r.name ? path.join(cwd, r.name) : path.resolve(this.root, r.path) };
    const launched = await launchKernel(spec, { cwd, env, runtimeDir: this.runtimeDir, paths: this.paths, stdio: this.stdio });
    this.mine.set(launched.id, launched);
    const session: StoredSession = {
      id: randomUUID(),
      path: r.path,
      name: r.name,
      type: r.type,
      kernel: { id: launched.id, name: spec.name },
      pid: launched.pid,
      ownerPid: process.pid,
      ...identityOf(launched.pid),
      connectionFile: launched.connectionFile,
      startedAt: new Date().toISOString(),
    };
    this.store.put(session);
    // Before the channel's `dead` (registered later on the same promise): a lost worker reads it.
    void launched.exited.then((how) => {
      this.mine.delete(launched.id);
      this.exits.set(launched.id, how);
    });
    return sessionModelOf(session);
  }

  /**
   * Enters this process's own kernel (a master started by nbclient, VS Code, `jupyter console`)
   * in the store as a `sense-master` session, so its workers, and `getMaster()`, find it as they
   * find a notebook's session on a server. Removed when the master's process is gone.
   */
  registerMaster(masterId: string, connectionFile: string | undefined): void {
    if (this.store.get(masterId)) return;
    this.masters.add(masterId);
    let kernelName = "";
    if (connectionFile) {
      try {
        const info = JSON.parse(fs.readFileSync(connectionFile, "utf8")) as { kernel_name?: unknown };
        if (typeof info.kernel_name === "string") kernelName = info.kernel_name;
      } catch {
        // An unreadable connection file only costs the engine name.
      }
    }
    this.store.put({
      id: masterId,
      path: "",
      name: "",
      type: "sense-master",
      kernel: { id: masterId, name: kernelName },
      pid: process.pid,
      ownerPid: process.pid,
      ...identityOf(process.pid),
      connectionFile: connectionFile ?? "",
      startedAt: new Date(Date.now() - process.uptime() * 1000).toISOString(),
    });
  }

  /** Removes the master sessions this process entered (its shutdown). Never throws. */
  close(): void {
    for (const id of this.masters) bestEffortSync("remove master session", () => this.store.remove(id));
    this.masters.clear();
  }

  exitOf(kernelId: string): number | string | undefined {
    return this.exits.get(kernelId);
  }

  async retag(sessionId: string, change: SessionChange): Promise<void> {
    const s = this.store.get(sessionId);
    if (!s) throw notFound("session", sessionId);
    this.store.put({ ...s, ...Object.fromEntries(Object.entries(change).filter(([, v]) => v !== undefined)) });
  }

  connect(kernel: { id: string; name: string }): KernelChannel {
    const launched = this.mine.get(kernel.id);
    if (!launched) throw notFound("kernel", kernel.id);
    return directChannel(launched);
  }

  async interrupt(kernelId: string): Promise<void> {
    const launched = this.mine.get(kernelId);
    const s = launched ? undefined : this.byKernel(kernelId);
    if (!launched && !s) throw notFound("kernel", kernelId);
    if (launched?.interruptMode === "message") {
      const client = KernelClient.connect(launched.info);
      try {
        await client.request("control", "interrupt_request", {}, { timeoutMs: 10_000 });
      } finally {
        client.close();
      }
    } else if (launched) {
      signalGroup(launched.pid, "SIGINT");
    } else if (!signalRecorded(this.store, s as StoredSession, "SIGINT")) {
      throw notFound("kernel", kernelId);
    }
  }

  async stop(sessionId: string): Promise<void> {
    const s = this.store.get(sessionId);
    if (!s) throw notFound("session", sessionId);
    await this.end(s);
  }

  async stopKernel(kernelId: string): Promise<void> {
    const s = this.byKernel(kernelId);
    if (!s) throw notFound("kernel", kernelId);
    await this.end(s);
  }

  /** Stops a session's kernel: a polite shutdown_request when it is ours, then its process group is killed. */
  private async end(s: StoredSession): Promise<void> {
    const launched = this.mine.get(s.kernel.id);
    if (launched) {
      const client = KernelClient.connect(launched.info);
      let timer: NodeJS.Timeout | undefined;
      const grace = new Promise<void>((r) => (timer = setTimeout(r, SHUTDOWN_GRACE_MS)));
      try {
        await Promise.race([client.request("control", "shutdown_request", { restart: false }, { timeoutMs: SHUTDOWN_GRACE_MS }).then(() => launched.exited), grace]).catch(() => undefined);
      } finally {
        if (timer) clearTimeout(timer);
        client.close();
      }
      signalGroup(launched.pid, "SIGKILL");
      await launched.exited;
    } else {
      // Another process's kernel (a sibling's, a dead master's): only its process can be ended.
      signalRecorded(this.store, s, "SIGKILL");
    }
    this.store.remove(s.id);
  }
}

/** A {@link KernelChannel} over ZeroMQ to a kernel this process started. */
function directChannel(launched: LaunchedKernel): KernelChannel {
  const client = KernelClient.connect(launched.info);
  const statusListeners = new Set<(s: KernelLifeStatus) => void>();
  const connectionListeners = new Set<(s: ChannelStatus) => void>();
  let disposed = false;
  let dispose: () => void = () => undefined;
  const gone = new Promise<void>((resolve) => (dispose = resolve));
  client.onIopub((m) => {
    if (m.header.msg_type !== "status") return;
    const state = (m.content as { execution_state?: string }).execution_state;
    if (state === "busy" || state === "idle" || state === "starting") for (const l of statusListeners) l(state);
  });
  void launched.exited.then(async () => {
    // The exit is seen on another channel (the process) than the kernel's messages (its sockets):
    // what it sent just before it died may still be on its way. Let that land first, or a reply
    // that was sent reads as lost (and map blames the chunk that had finished, not the one that killed it).
    await sleep(EXIT_DRAIN_MS);
    if (disposed) return;
    for (const l of statusListeners) l("dead");
    for (const l of connectionListeners) l("disconnected");
  });
  // Ready once the kernel answers on shell and its iopub reaches us; a kernel that exits first fails it.
  const ready = client.ready(24 * 3600_000, launched.exited);
  ready.catch(() => undefined);
  return {
    ready,
    execute(request) {
      const msgId = randomUUID();
      // Done when the reply and the request's idle have both come, as a server's future is: iopub
      // output can arrive after the shell reply, and a caller taking "done" as "all output is in"
      // would lose it. A kernel that ends (or a channel disposed) before its idle ends the wait.
      let idle: () => void = () => undefined;
      const idled = new Promise<void>((resolve) => (idle = resolve));
      const off = client.onIopub((m) => {
        if ((m.parent as { msg_id?: string }).msg_id !== msgId || m.header.msg_type !== "status") return;
        if ((m.content as { execution_state?: string }).execution_state === "idle") idle();
      });
      const reply = client.request("shell", "execute_request", { user_expressions: {}, allow_stdin: false, ...executeContent(request) }, {
        msgId,
        timeoutMs: 2 ** 31 - 1,
        // Without it a Sense TypeScript worker compiles the master's JavaScript again (and loads its compiler).
        ...(requestMetadata(request) ? { metadata: requestMetadata(request) } : {}),
      });
      const done = reply
        .then(async (r) => {
          await Promise.race([idled, launched.exited, gone]);
          return r.content as unknown as ExecuteReply;
        })
        .finally(off);
      return { msgId, done };
    },
    onIopub(listener) {
      return client.onIopub((m) => {
        const parentId = (m.parent as { msg_id?: string }).msg_id;
        const msg = iopubMessage(m.header.msg_type, m.content, parentId || undefined);
        listener(msg);
      });
    },
    onStatus(listener) {
      statusListeners.add(listener);
      return () => statusListeners.delete(listener);
    },
    onConnection(listener) {
      connectionListeners.add(listener);
      return () => connectionListeners.delete(listener);
    },
    usage(timeoutMs) {
      return client.request("control", "usage_request", {}, { timeoutMs }).then(
        (r) => usageReply(r.content),
        () => undefined,
      );
    },
    dispose() {
      disposed = true;
      dispose();
      statusListeners.clear();
      connectionListeners.clear();
      client.close();
    },
  };
}
