/**
 * A fake {@link KernelBackend} for unit tests of a Cluster: sessions live in a map, each kernel
 * is a channel the test drives (its iopub output, its lifecycle), and the preamble is played
 * (the env file is read and deleted, as the real one does). Errors are RestErrors with the codes
 * a real backend gives.
 */
import * as fs from "node:fs";
import { createRequire } from "node:module";
import * as vm from "node:vm";
import { rewriteTopLevelAwait } from "../../kernel-extension/js-exec";
import { RestError } from "../../src/errors";
import type { KernelModel, KernelSpecs, SessionModel } from "../../src/jupyter/schemas";
import type { ChannelStatus, ExecuteReply, ExecuteRequest, IopubMessage, KernelBackend, KernelChannel, KernelLifeStatus, SessionChange, StartRequest } from "../../src/backends/backend";
import { openSealedEnvFile } from "../../src/workers/bootstrap/env-file";
import type { UsageReply } from "../../src/protocol/usage";

const load = createRequire(__filename);

/** One fake kernel: what it was asked to run, and hooks to play its side. */
export class FakeKernel implements KernelChannel {
  readonly ready = Promise.resolve({});
  /** Every execute request, in order (the preamble first). */
  readonly requests: (ExecuteRequest & { msgId: string })[] = [];
  /** The env the preamble loaded. */
  env: Record<string, string> = {};
  disposed = false;
  private readonly iopub = new Set<(m: IopubMessage) => void>();
  private readonly status = new Set<(s: KernelLifeStatus) => void>();
  private readonly connection = new Set<(s: ChannelStatus) => void>();
  private readonly replies = new Map<string, (r: ExecuteReply) => void>();
  private n = 0;
  /** Settles (rejects) when the channel is disposed: what is pending then is cancelled, as a real channel's futures are. */
  protected readonly closed: Promise<never>;
  private close: (e: Error) => void = () => undefined;

  constructor(
    readonly id: string,
    readonly name: string,
  ) {
    this.closed = new Promise<never>((_, reject) => (this.close = reject));
    this.closed.catch(() => undefined);
  }

  execute(request: ExecuteRequest): { msgId: string; done: Promise<ExecuteReply> } {
    const msgId = `${this.id}-msg-${this.n++}`;
    this.requests.push({ ...request, msgId });
    const env = readPreambleEnv(request.code);
    if (env) {
      this.env = env;
      return { msgId, done: Promise.resolve({ status: "ok" }) };
    }
    return { msgId, done: cancellable(new Promise<ExecuteReply>((resolve) => this.replies.set(msgId, resolve)), this.closed) };
  }

  /** Answers request `msgId` (the startup code) with `reply`. */
  reply(msgId: string, reply: ExecuteReply): void {
    this.replies.get(msgId)?.(reply);
  }

  /** The kernel publishes `msg` on iopub. */
  publish(msg: IopubMessage): void {
    for (const l of this.iopub) l(msg);
  }

  /** The kernel's lifecycle changes (`dead`, `restarting`...). */
  lifecycle(s: KernelLifeStatus): void {
    for (const l of this.status) l(s);
  }

  onIopub(l: (m: IopubMessage) => void): () => void {
    this.iopub.add(l);
    return () => this.iopub.delete(l);
  }
  onStatus(l: (s: KernelLifeStatus) => void): () => void {
    this.status.add(l);
    return () => this.status.delete(l);
  }
  onConnection(l: (s: ChannelStatus) => void): () => void {
    this.connection.add(l);
    return () => this.connection.delete(l);
  }
  /** What {@link usage} answers (undefined: the kernel does not answer). */
  usageAnswer: UsageReply | undefined = undefined;
  usage(): Promise<UsageReply | undefined> {
    return Promise.resolve(this.usageAnswer);
  }
  dispose(): void {
    this.disposed = true;
    this.close(new Error("Canceled future: the kernel connection was disposed"));
  }
}

/**
 * A fake kernel that really runs JavaScript, each in a context of its own (as separate worker
 * processes have separate globals): cells as scripts (top-level `await` rewritten as the
 * `sense-fast` kernel does), `user_expressions` evaluated after the cell, MIME-bundle values
 * answered as they are. Enough for the remote runtime (execute, push, pull, map) to run unchanged.
 */
export class JsFakeKernel extends FakeKernel {
  override readonly ready = Promise.resolve({ implementation: "fake-js", language_info: { name: "javascript" } });
  /**
   * `die()` inside a cell kills this kernel as a SIGKILL would: it never answers (nor sends the
   * reply of the cell before, if still on its way), and its lifecycle goes `dead` (how a test plays
   * a worker lost mid-request, or a poison item).
   */
  private readonly context: vm.Context = vm.createContext({ require: (id: string) => this.require(id), process, Buffer, console, setTimeout, clearTimeout, setImmediate, queueMicrotask, structuredClone, die: () => this.die() });
  private queue: Promise<unknown> = Promise.resolve();
  private dead = false;

  override execute(request: ExecuteRequest): { msgId: string; done: Promise<ExecuteReply> } {
    const sent = super.execute(request);
    if (preambleParts(request.code)) return sent;
    // One cell at a time, in order, as a kernel's shell channel runs them; nothing once dead.
    const run = (this.queue = this.queue.then(() => (this.dead ? new Promise<never>(() => undefined) : this.run(request)))) as Promise<ExecuteReply>;
    // The reply leaves on a later turn of the event loop, as a real kernel's socket writes it, while
    // the next cell already runs: a kernel killed first never sends it (a SIGKILLed kernel's last reply).
    const reply = run.then((r) => new Promise<ExecuteReply>((resolve) => setImmediate(() => (this.dead ? undefined : resolve(r)))));
    return { msgId: sent.msgId, done: cancellable(reply, this.closed) };
  }

  /** `require` inside the kernel: `vm`'s `runInThisContext` runs in this kernel's context (map's function sees its globals, as on a real worker). */
  private require(id: string): unknown {
    if (id !== "vm" && id !== "node:vm") return load(id);
    const context = this.context;
    class Script extends vm.Script {
      override runInThisContext(options?: vm.RunningScriptOptions): unknown {
        return this.runInContext(context, options);
      }
    }
    return { ...vm, Script };
  }

  /** The kernel is killed: it runs nothing more and its lifecycle goes `dead` (its channel tells the worker). */
  die(): Promise<never> {
    if (!this.dead) {
      this.dead = true;
      queueMicrotask(() => this.lifecycle("dead"));
    }
    return new Promise<never>(() => undefined);
  }

  private async run(request: ExecuteRequest): Promise<ExecuteReply> {
    const fail = (e: unknown): ExecuteReply => ({ status: "error", ename: e instanceof Error ? e.name : "Error", evalue: e instanceof Error ? e.message : String(e), traceback: [] });
    try {
      let script: vm.Script;
      try {
        script = new vm.Script(request.code);
      } catch {
        script = new vm.Script(rewriteTopLevelAwait(request.code));
      }
      await script.runInContext(this.context);
    } catch (e) {
      return fail(e);
    }
    const user_expressions: Record<string, unknown> = {};
    for (const [k, expr] of Object.entries(request.userExpressions ?? {})) {
      try {
        const value: unknown = vm.runInContext(expr, this.context);
        user_expressions[k] = { status: "ok", data: value !== null && typeof value === "object" ? value : { "text/plain": String(value) }, metadata: {} };
      } catch (e) {
        user_expressions[k] = fail(e);
      }
    }
    return { status: "ok", user_expressions };
  }
}

/** An in-memory backend: `python3` and `sense-fast` kernelspecs, sessions in a map. */
export class FakeBackend implements KernelBackend {
  readonly label = "fake://backend/";
  readonly sessions = new Map<string, SessionModel>();
  readonly kernels = new Map<string, FakeKernel>();
  /** Every call, as `method arg` (for asserting what a cluster did). */
  readonly calls: string[] = [];
  private n = 0;

  /** `js: true`: every kernel runs JavaScript ({@link JsFakeKernel}); else kernels are driven by the test. */
  constructor(private readonly options: { js?: boolean } = {}) {}

  async kernelSpecs(): Promise<KernelSpecs> {
    const spec = (name: string, language: string) => ({ name, spec: { display_name: name, language } });
    return { default: "python3", kernelspecs: { python3: spec("python3", "python"), "sense-fast": spec("sense-fast", "javascript") } } as KernelSpecs;
  }
  async listSessions(): Promise<SessionModel[]> {
    return [...this.sessions.values()].map((s) => ({ ...s }));
  }
  async getSession(id: string): Promise<SessionModel> {
    const s = this.sessions.get(id);
    if (!s) throw notFound(`session ${id}`);
    return { ...s };
  }
  async getKernel(id: string): Promise<KernelModel> {
    const s = [...this.sessions.values()].find((x) => x.kernel?.id === id);
    if (!s?.kernel) throw notFound(`kernel ${id}`);
    return { id, name: s.kernel.name, execution_state: "idle" } as KernelModel;
  }
  async start(r: StartRequest): Promise<SessionModel> {
    this.calls.push(`start ${r.type}`);
    const i = ++this.n;
    const s = { id: `s${i}`, path: r.path, name: r.name, type: r.type, kernel: { id: `k${i}`, name: r.kernelName, execution_state: "starting" } } as SessionModel;
    this.sessions.set(s.id, s);
    return { ...s };
  }
  async retag(sessionId: string, change: SessionChange): Promise<void> {
    this.calls.push(`retag ${sessionId}`);
    const s = this.sessions.get(sessionId);
    if (!s) throw notFound(`session ${sessionId}`);
    this.sessions.set(sessionId, { ...s, ...change });
  }
  connect(kernel: { id: string; name: string }): KernelChannel {
    const k = this.options.js ? new JsFakeKernel(kernel.id, kernel.name) : new FakeKernel(kernel.id, kernel.name);
    this.kernels.set(kernel.id, k);
    return k;
  }
  async interrupt(kernelId: string): Promise<void> {
    this.calls.push(`interrupt ${kernelId}`);
  }
  async stop(sessionId: string): Promise<void> {
    this.calls.push(`stop ${sessionId}`);
    if (!this.sessions.delete(sessionId)) throw notFound(`session ${sessionId}`);
  }
  async stopKernel(kernelId: string): Promise<void> {
    this.calls.push(`stopKernel ${kernelId}`);
    for (const [id, s] of this.sessions) if (s.kernel?.id === kernelId) this.sessions.delete(id);
  }
}

/** `done` or its cancellation; a cancellation nobody waits for is no unhandled rejection (as in @jupyterlab/services' futures). */
function cancellable<T>(done: Promise<T>, closed: Promise<never>): Promise<T> {
  const p = Promise.race([done, closed]);
  p.catch(() => undefined);
  return p;
}

function notFound(what: string): RestError {
  return new RestError("not_found", `${what}: not found (HTTP 404).`, { method: "GET", url: "fake://backend/", status: 404 });
}

/**
 * What a kernel does with a Sense preamble: opens the sealed env file it names with the key it
 * carries (checking the file is 0600) and deletes the file. `undefined` for any other code.
 */
export function readPreambleEnv(code: string): Record<string, string> | undefined {
  const parts = preambleParts(code);
  if (!parts) return undefined;
  if ((fs.statSync(parts.file).mode & 0o777) !== 0o600) throw new Error(`env file ${parts.file} is not 0600`);
  const env = openSealedEnvFile(parts.file, parts.key);
  fs.unlinkSync(parts.file);
  return env;
}

/** The env file and key a Sense preamble names, or `undefined` when `code` is not one. */
function preambleParts(code: string): { file: string; key: string } | undefined {
  // both embedded as base64 literals: base64.b64decode("…") in Python, Buffer.from("…", "base64") in JS
  const literal = (name: string) => new RegExp(`${name} = (?:base64\\.b64decode\\("([A-Za-z0-9+/=]+)"\\)|Buffer\\.from\\("([A-Za-z0-9+/=]+)", "base64"\\))`).exec(code);
  const file = literal("p");
  const key = literal("pad");
  if (!file || !key) return undefined;
  return { file: Buffer.from(file[1] ?? file[2], "base64").toString("utf8"), key: key[1] ?? key[2] };
}
