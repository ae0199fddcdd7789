/**
 * The `%sense_*` magics: thin layers over the client core (install, workers, network, auth).
 * Importing this module registers them in {@link defaultRegistry}; {@link registerBuiltins}
 * registers them elsewhere, over any implementation of {@link SenseCore} (tests use fakes).
 */
import { getAuth } from "../platform/auth";
import { getRunContext } from "../jupyter/context";
import { install } from "../platform/npm-install";
import { getNetwork } from "../platform/network";
import { awaitWorkers, launchWorkers, listWorkers, onWorkerStatus, restartWorkers, setWorkerPool, stopWorkers, workerPools, workerUsage } from "../workers";
import { renderUsage, runTop, type WorkerUsageLike } from "./top";
import { WorkerSize, type WorkerRecord } from "../jupyter/schemas";
import { escapeHtml, makeDisplayable, type Displayable } from "../display/bundle";
import { UsageError } from "../errors";
import { authForDisplay } from "../display/hooks";
import { liveDisplay, type LiveDisplay } from "../display/live";
import type { MimeBundle, OutputSink } from "../display/sink";
import {
  type InstallResultLike,
  type NetworkInfoLike,
  type PoolInfoLike,
  renderAuth,
  renderKeyValues,
  renderPools,
  renderInstall,
  renderNetwork,
  renderWorkers,
} from "../display/tables";
import { type Magic, type MagicRegistry, defaultRegistry, defineMagic } from "./registry";

/** The client-core functions the magics call (the signatures of `src/index.ts`, narrowed to what is used). */
export interface SenseCore {
  install(
    pkgs: string[],
    options: { flags?: string[]; arguments?: Record<string, string>; cwd?: string; sink?: OutputSink; signal?: AbortSignal },
  ): Promise<InstallResultLike>;
  launchWorkers(options: {
    n: number;
    size?: WorkerSize;
    engine?: string;
    script?: string;
    code?: string;
    env?: Record<string, string>;
    sink?: OutputSink;
    signal?: AbortSignal;
  }): Promise<WorkerRecord[]>;
  listWorkers(): Promise<WorkerRecord[]>;
  stopWorkers(...ids: string[]): Promise<WorkerRecord[]>;
  /** Fresh kernels in place of the workers named (none: every failed one); without it, `%sense_restart` says it is not available. */
  restartWorkers?(ids: string[], options: { sink?: OutputSink }): Promise<WorkerRecord[]>;
  awaitWorkers(
    ids: string[] | null,
    options: { waitForCompletion?: boolean; timeoutSeconds?: number },
  ): Promise<{ workers: WorkerRecord[]; failures: WorkerRecord[] }>;
  /** Sets the warm pool of an engine and size to `n` kernels; resolves when it is full. */
  setWorkerPool(options: { n: number; engine?: string; size?: WorkerSize }): Promise<PoolInfoLike>;
  workerPools(): PoolInfoLike[];
  getNetwork(): NetworkInfoLike;
  getAuth(): { user: string; password: string; source: string; baseUrl?: string };
  /** Which backend serves this process (`direct`: no Jupyter Server) and why; without it, a server is assumed. */
  runBackend?(): { backend: "server" | "direct"; why?: string };
  /** Status changes of workers launched by this process; without it, live tables poll `listWorkers`. */
  onWorkerStatus?(listener: (record: WorkerRecord) => void): () => void;
  /** CPU and memory of each worker (`—` where absent); without it, usage tables cannot be shown. */
  workerUsage?(): Promise<WorkerUsageLike[]>;
}

/** The real client core. */
export const realCore: SenseCore = {
  install: (pkgs, options) => install(pkgs, options),
  launchWorkers: (options) => launchWorkers(options),
  listWorkers: () => listWorkers(),
  stopWorkers: (...ids) => stopWorkers(...ids),
  restartWorkers: (ids, options) => restartWorkers(...ids, options),
  awaitWorkers: (ids, options) => awaitWorkers(ids, options),
  setWorkerPool: (options) => setWorkerPool(options),
  workerPools: () => workerPools(),
  getNetwork: () => getNetwork(),
  getAuth: () => getAuth(),
  runBackend: () => {
    const run = getRunContext();
    return run.backend === "direct" ? { backend: "direct", why: run.why } : { backend: "server" };
  },
  onWorkerStatus: (listener) => onWorkerStatus(listener),
  workerUsage: () => workerUsage(),
};

function shown(bundle: MimeBundle): Displayable {
  return makeDisplayable({}, () => bundle);
}

/** How often, and for how long at most, a launched workers table refreshes its statuses. */
export interface FollowOptions {
  intervalMs?: number;
  maxMs?: number;
}

const SETTLED = new Set(["idle", "failed", "stopped"]);

/** A worker's row in a followed table: its master and name, which a restart in place keeps (its kernel id changes). */
const rowKey = (r: WorkerRecord) => `${r.masterId}\u0000${r.name}`;

/**
 * Keeps `live` showing `records` as their statuses change, from the core's status events, until
 * every worker is stopped or failed. A row follows its worker through a restart in place (same
 * master and name, a new kernel id). Changes of different workers at once are coalesced into one
 * update; each status a worker goes through is shown (a row's pending status is drawn before it
 * is overwritten). Timers are unref'd: following a table never keeps a process alive. Returns a
 * function that stops following.
 */
export function followWorkerEvents(
  records: readonly WorkerRecord[],
  live: LiveDisplay,
  subscribe: (listener: (record: WorkerRecord) => void) => () => void,
  options: FollowOptions = {},
): () => void {
  const current = new Map(records.map((r) => [rowKey(r), r]));
  const ids = new Set(records.map((r) => r.id));
  const drawn = new Map(records.map((r) => [rowKey(r), r.status]));
  const delay = Math.min(options.intervalMs ?? 50, 50);
  let timer: NodeJS.Timeout | undefined;
  let unsubscribe: () => void = () => undefined;
  const render = () => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    for (const [k, r] of current) drawn.set(k, r.status);
    live.update(renderWorkers([...current.values()]));
    // Stopped or failed is final: nothing more will change.
    if ([...current.values()].every((r) => r.status === "stopped" || r.status === "failed")) unsubscribe();
  };
  unsubscribe = subscribe((r) => {
    const key = rowKey(r);
    const row = current.get(key);
    // Its own row, or a fresh kernel in its place (a restart); not an older kernel of the row.
    if (!row || (row.id !== r.id && ids.has(r.id))) return;
    // A status not drawn yet would be lost under this one (starting, then running, within the delay).
    if (timer && row.status !== drawn.get(key) && row.status !== r.status) render();
    ids.add(r.id);
    current.set(key, r);
    // The final state goes out at once, while the cell that stopped the workers still runs (a
    // recorder such as nbclient keeps only what arrives under a running cell).
    if ([...current.values()].every((x) => x.status === "stopped" || x.status === "failed")) {
      if (timer) clearTimeout(timer);
      render();
      return;
    }
    // Coalesce bursts (three workers going idle at once) into one update.
    if (!timer) {
      timer = setTimeout(render, delay);
      timer.unref();
    }
  });
  return () => {
    unsubscribe();
    if (timer) clearTimeout(timer);
  };
}

/**
 * Polling fallback for {@link followWorkerEvents}, used when the core offers no status events:
 * refreshes `live` with the current records of `ids` until every one is settled (idle, failed,
 * stopped), listing fails, or `maxMs` passes. Returns a function that stops following.
 */
export function followWorkers(
  ids: readonly string[],
  live: LiveDisplay,
  list: () => Promise<WorkerRecord[]>,
  options: FollowOptions = {},
): () => void {
  const interval = options.intervalMs ?? 1_000;
  const deadline = Date.now() + (options.maxMs ?? 10 * 60_000);
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const tick = async () => {
    try {
      const all = await list();
      if (stopped) return;
      const mine = all.filter((r) => ids.includes(r.id));
      if (mine.length) live.update(renderWorkers(mine));
      if (mine.length < ids.length || mine.every((r) => SETTLED.has(r.status)) || Date.now() >= deadline) return;
    } catch {
      return; // a table that stops refreshing is better than an error from a background timer
    }
    schedule();
  };
  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(() => void tick(), interval);
    timer.unref();
  };
  schedule();
  return () => {
    stopped = true;
    if (timer) clearTimeout(timer);
  };
}

/** The workers with their usage, or without figures when the core cannot ask. */
async function usageOf(core: SenseCore): Promise<WorkerUsageLike[]> {
  if (core.workerUsage) return core.workerUsage();
  return (await core.listWorkers()).map((record) => ({ record }));
}

/** Builds the `%sense_*` magics over `core`. */
export function builtinMagics(core: SenseCore, follow: FollowOptions = {}): Magic[] {
  return [
    defineMagic({
      name: "sense_install",
      kinds: ["line"],
      summary: "Install npm packages into the project, for this kernel and every worker launched later.",
      description:
        "Runs `npm install` in the project home (never through a shell); npm's output streams into the cell.\n" +
        "A failed install leaves package.json and node_modules as they were.",
      options: [
        { name: "save-dev", short: "D", type: "boolean", description: "save as a devDependency (npm -D)" },
        { name: "save-exact", short: "E", type: "boolean", description: "save the exact version (npm -E)" },
        { name: "registry", type: "string", metavar: "URL", description: "npm registry to install from" },
        { name: "flag", type: "string", repeat: true, metavar: "FLAG", description: "another npm flag, without dashes (e.g. --flag no-audit)" },
        { name: "arg", type: "keyvalue", description: "another npm argument as KEY=VALUE (e.g. --arg omit=dev)" },
        { name: "cwd", type: "string", metavar: "DIR", description: "install into DIR instead of the project home" },
      ],
      positionals: [{ name: "pkg", description: "package specs, e.g. lodash or zod@4", variadic: true, required: true }],
      async run(args, ctx) {
        const o = args.options;
        const flags = [...(o["save-dev"] ? ["D"] : []), ...(o["save-exact"] ? ["E"] : []), ...o.flag];
        const npmArgs: Record<string, string> = { ...o.arg, ...(o.registry !== undefined ? { registry: o.registry } : {}) };
        const result = await core.install(args.positionals, {
          flags,
          arguments: npmArgs,
          ...(o.cwd !== undefined ? { cwd: o.cwd } : {}),
          sink: ctx.sink,
          signal: ctx.signal,
        });
        return shown(renderInstall(result));
      },
    }),
    defineMagic({
      name: "sense_worker",
      kinds: ["line", "cell"],
      summary: "Launch workers; the cell body (or --script) is their startup code.",
      description:
        "Shows a workers table in the cell, refreshed as their statuses change; worker output appears\n" +
        "in this cell labelled [w1], [w2], ... `--env` values reach the workers before any code runs.",
      options: [
        { name: "n", short: "n", type: "integer", default: 1, description: "how many workers" },
        { name: "size", type: "choice", choices: WorkerSize.options, description: "worker size (default: small)" },
        { name: "engine", type: "string", metavar: "KERNEL", description: "kernelspec to run (default: this kernel's)" },
        { name: "env", type: "keyvalue", repeat: true, description: "environment variable for the workers" },
        { name: "script", type: "string", metavar: "FILE", description: "startup script file (wins over the cell body)" },
      ],
      async run(args, ctx) {
        const o = args.options;
        const live = liveDisplay(ctx.sink, {
          "text/plain": `launching ${o.n} worker${o.n === 1 ? "" : "s"}...`,
          "text/html": `<p>launching ${o.n} worker${o.n === 1 ? "" : "s"}&hellip;</p>`,
        });
        let records: WorkerRecord[];
        // Status events from the start: a worker whose startup code ends within milliseconds goes
        // idle before launchWorkers returns, and a table following only later would miss it.
        const early = new Map<string, WorkerRecord>();
        const stopEarly = core.onWorkerStatus?.((r) => void early.set(r.id, r)) ?? (() => undefined);
        try {
          records = await core.launchWorkers({
            n: o.n,
            ...(o.size !== undefined ? { size: o.size } : {}),
            ...(o.engine !== undefined ? { engine: o.engine } : {}),
            ...(o.script !== undefined ? { script: o.script } : {}),
            ...(args.body.trim() !== "" ? { code: args.body } : {}),
            env: o.env,
            sink: ctx.sink,
            signal: ctx.signal,
          });
        } catch (e) {
          live.update({ "text/plain": "launch failed (see the error below)", "text/html": "<p>launch failed (see the error below)</p>" });
          throw e;
        } finally {
          stopEarly();
        }
        // Every status change is an event, so the latest one seen is the worker's state now.
        records = records.map((r) => early.get(r.id) ?? r);
        live.update(renderWorkers(records));
        // Live until the workers stop: updates come from status events, also after this cell ended.
        const stop = core.onWorkerStatus
          ? followWorkerEvents(records, live, (l) => core.onWorkerStatus?.(l) ?? (() => undefined), follow)
          : followWorkers(records.map((r) => r.id), live, () => core.listWorkers(), follow);
        ctx.signal?.addEventListener("abort", stop, { once: true });
        // Shown already, live; returning the records would print them a second time.
        return undefined;
      },
    }),
    defineMagic({
      name: "sense_workers",
      kinds: ["line"],
      summary: "List the workers of this cluster.",
      options: [{ name: "usage", type: "boolean", description: "add each worker's CPU % and memory (— where its kernel does not answer)" }],
      run: async (args) => shown(args.options.usage ? renderUsage(await usageOf(core)) : renderWorkers(await core.listWorkers())),
    }),
    defineMagic({
      name: "sense_top",
      kinds: ["line"],
      summary: "The workers table with CPU % and memory, updated in place until interrupted (or --seconds N).",
      description: "Asks every worker's kernel at once every --interval seconds; a kernel that does not answer within\n1.5 s shows — (engines without usage_request, a worker whose event loop is blocked).",
      options: [
        { name: "seconds", type: "number", metavar: "N", description: "stop after N seconds (default: until interrupted)" },
        { name: "interval", type: "number", metavar: "S", default: 2, description: "seconds between updates" },
      ],
      async run(args, ctx) {
        const { seconds, interval } = args.options;
        if (seconds !== undefined && !(seconds > 0)) throw new UsageError(`--seconds takes a positive number, not ${seconds}`, { code: "bad_option" });
        if (!(interval >= 0.5 && interval <= 3600)) throw new UsageError(`--interval takes a number of seconds from 0.5 to 3600, not ${interval}`, { code: "bad_option" });
        await runTop(ctx.sink, () => usageOf(core), { ...(seconds !== undefined ? { seconds } : {}), intervalMs: interval * 1000, signal: ctx.signal });
        // Shown already, live.
        return undefined;
      },
    }),
    defineMagic({
      name: "sense_stop",
      kinds: ["line"],
      summary: "Stop workers by id or name (w1), or every worker of this cluster.",
      options: [],
      positionals: [{ name: "id", description: "worker ids or names; none stops them all", variadic: true }],
      run: async (args) => shown(renderWorkers(await core.stopWorkers(...args.positionals))),
    }),
    defineMagic({
      name: "sense_restart",
      kinds: ["line"],
      summary: "Start a fresh kernel in place of workers (w2 ...), or of every failed worker; their state is lost.",
      description:
        "Same name, engine, size and env; the startup code runs again (its output appears in this cell).\n" +
        "Shows a workers table refreshed as the restarted workers go starting, running, idle.",
      options: [],
      positionals: [{ name: "id", description: "worker ids or names; none restarts every failed worker", variadic: true }],
      async run(args, ctx) {
        if (!core.restartWorkers) throw new UsageError("%sense_restart is not available in this kernel", { code: "bad_option" });
        const refs = args.positionals;
        // The rows being restarted are shown `starting` from the start, and follow their fresh kernels
        // (same name, new id) through running to idle while the restart runs; restartWorkers itself
        // says which workers it restarts, and refuses unknown ones.
        const chosen = (await core.listWorkers()).filter((r) => (refs.length ? refs.includes(r.id) || refs.includes(r.name) : r.status === "failed"));
        const rows = chosen.map(({ reason: _gone, executionState: _old, ...r }) => ({ ...r, status: "starting" as const }));
        const what = refs.length ? refs.join(", ") : "the failed workers";
        const live = liveDisplay(ctx.sink, rows.length ? renderWorkers(rows) : { "text/plain": `restarting ${what}...`, "text/html": `<p>restarting ${escapeHtml(what)}&hellip;</p>` });
        const subscribe = (l: (r: WorkerRecord) => void) => core.onWorkerStatus?.(l) ?? (() => undefined);
        let stop = core.onWorkerStatus ? followWorkerEvents(rows, live, subscribe, follow) : () => undefined;
        const latest = new Map<string, WorkerRecord>();
        const stopLatest = core.onWorkerStatus?.((r) => void latest.set(r.id, r)) ?? (() => undefined);
        let records: WorkerRecord[];
        try {
          records = (await core.restartWorkers(refs, { sink: ctx.sink })).map((r) => latest.get(r.id) ?? r);
        } catch (e) {
          stop();
          live.update({ "text/plain": "restart failed (see the error below)", "text/html": "<p>restart failed (see the error below)</p>" });
          throw e;
        } finally {
          stopLatest();
        }
        // A worker the listing did not show (listed meanwhile) gets its row now, from its latest record.
        if (!core.onWorkerStatus || records.some((r) => !rows.some((x) => x.masterId === r.masterId && x.name === r.name))) {
          stop();
          live.update(renderWorkers(records));
          stop = core.onWorkerStatus ? followWorkerEvents(records, live, subscribe, follow) : followWorkers(records.map((r) => r.id), live, () => core.listWorkers(), follow);
        }
        ctx.signal?.addEventListener("abort", stop, { once: true });
        return undefined;
      },
    }),
    defineMagic({
      name: "sense_await",
      kinds: ["line"],
      summary: "Wait for workers to run (or, with --completion, to finish their startup code).",
      options: [
        { name: "completion", type: "boolean", description: "wait until the startup code finished" },
        { name: "timeout", type: "number", metavar: "S", default: 600, description: "give up after S seconds" },
      ],
      positionals: [{ name: "id", description: "worker ids or names; none means all", variadic: true }],
      async run(args) {
        const r = await core.awaitWorkers(args.positionals.length ? args.positionals : null, {
          waitForCompletion: args.options.completion,
          timeoutSeconds: args.options.timeout,
        });
        return shown(renderWorkers([...r.workers, ...r.failures]));
      },
    }),
    defineMagic({
      name: "sense_pool",
      kinds: ["line"],
      summary: "Keep N worker kernels warm so launches only ship code (no N: show the pools; 0 stops one).",
      options: [
        { name: "size", type: "choice", choices: WorkerSize.options, description: "worker size the kernels are for (default: small)" },
        { name: "engine", type: "string", metavar: "KERNEL", description: "kernelspec of the pooled kernels (default: this kernel's)" },
      ],
      positionals: [{ name: "n", description: "how many kernels to keep warm" }],
      async run(args) {
        const [nText, ...extra] = args.positionals;
        if (nText === undefined) return shown(renderPools(core.workerPools()));
        if (extra.length || !/^\d+$/.test(nText)) throw new UsageError(`%sense_pool takes one whole number, not ${JSON.stringify(args.positionals.join(" "))}`, { code: "bad_option" });
        await core.setWorkerPool({ n: Number(nText), engine: args.options.engine, size: args.options.size as WorkerSize | undefined });
        return shown(renderPools(core.workerPools()));
      },
    }),
    defineMagic({
      name: "sense_network",
      kinds: ["line"],
      summary: "Show this kernel's network info (address, project IP, port mapping).",
      options: [],
      run: () => shown(renderNetwork(core.getNetwork())),
    }),
    defineMagic({
      name: "sense_auth",
      kinds: ["line"],
      summary: "Show where the REST API credentials come from (secrets masked).",
      options: [],
      run: () => {
        const run = core.runBackend?.();
        // Headless (nbconvert, papermill, VS Code): no server, so no credentials; that is an answer, not an error.
        if (run?.backend === "direct") return shown(renderKeyValues([["backend", "direct (no Jupyter Server)"], ["why", run.why ?? ""], ["credentials", "none: there is no REST API here"]], "credentials"));
        return shown(renderAuth(authForDisplay(core.getAuth())));
      },
    }),
  ];
}

/**
 * Registers the `%sense_*` magics in `registry` (replacing earlier ones of the same names, so
 * loading this module twice is harmless).
 */
export function registerBuiltins(registry: MagicRegistry, core: SenseCore = realCore, follow?: FollowOptions): void {
  for (const m of builtinMagics(core, follow)) registry.register(m, { replace: true });
}

registerBuiltins(defaultRegistry);
