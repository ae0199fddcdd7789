/**
 * `%%sense_px`: the cell body runs on workers, through the same core as `execute()`. Each worker's
 * value is shown as `Out[w1]: ...`; failures as a RemoteError (the cell fails); `--noblock` returns
 * at once and each result lands in the cell as it comes. `%sense_scatter` / `%sense_gather`: a
 * notebook variable split across workers and put back together, through `scatter()`/`gather()`.
 */
import { execute, type ExecuteOptions, type ExecuteResult, type TransferOptions } from "../remote/execute";
import { gather, scatter } from "../remote/scatter";
import { escapeHtml } from "../display/bundle";
import type { MimeBundle, OutputSink } from "../display/sink";
import { isRemoteError, RemoteError, UsageError } from "../errors";
import { type Magic, type MagicRegistry, defaultRegistry, defineMagic } from "./registry";
import { formatFailure } from "./run";

/** The part of the client core the remote magics call. */
export interface RemoteCore {
  execute(code: string, options: ExecuteOptions): Promise<ExecuteResult[]>;
  /** Without it, `%sense_scatter` says it is not available. */
  scatter?(name: string, value: unknown, options: TransferOptions): Promise<void>;
  /** Without it, `%sense_gather` says it is not available. */
  gather?(name: string, options: TransferOptions): Promise<unknown>;
}

/** The real core. */
export const realRemoteCore: RemoteCore = {
  execute: (code, options) => execute(code, options),
  scatter: (name, value, options) => scatter(name, value, options),
  gather: (name, options) => gather(name, options),
};

const TARGETS = { name: "target", description: "worker names or ids (w1 w2); none means every running or idle worker", variadic: true } as const;

/** `Out[w1]: <value>` for a result with a value (text/plain, and its HTML when the worker gave one). */
export function outBundle(r: ExecuteResult): MimeBundle | undefined {
  const plain = r.data["text/plain"];
  if (typeof plain !== "string" && r.value === undefined) return undefined;
  const text = typeof plain === "string" ? plain : JSON.stringify(r.value);
  const label = `Out[${r.worker}]:`;
  const bundle: MimeBundle = { ...r.data, "text/plain": `${label} ${text}` };
  if (typeof r.data["text/html"] === "string") {
    bundle["text/html"] = `<div class="sense-px-out"><span style="color:#c33">${escapeHtml(label)}</span>${r.data["text/html"] as string}</div>`;
  }
  return bundle;
}

function show(sink: OutputSink, r: ExecuteResult): void {
  const b = outBundle(r);
  if (r.status === "ok" && b) sink.display(b);
}

/** Builds `%%sense_px` over `core`. */
export function remoteMagics(core: RemoteCore = realRemoteCore): Magic[] {
  return [
    defineMagic({
      name: "sense_px",
      kinds: ["cell"],
      summary: "Run the cell body on workers (default: all); each worker's value shows as Out[w1].",
      description:
        "Output streams into this cell labelled [w1], [w2], ...; if any worker fails the cell fails, showing the\n" +
        "first traceback in full and one line per other failure. --timeout interrupts workers still running\n" +
        "after S seconds (their state is kept). --noblock returns at once; results land here as they come.",
      options: [
        { name: "timeout", type: "number", metavar: "S", description: "interrupt workers still running after S seconds" },
        { name: "noblock", type: "boolean", description: "return at once; results are shown as they arrive" },
      ],
      positionals: [TARGETS],
      async run(args, ctx) {
        const targets = args.positionals.length ? args.positionals : undefined;
        const options: ExecuteOptions = {
          ...(targets ? { targets } : {}),
          ...(args.options.timeout !== undefined ? { timeoutSeconds: args.options.timeout } : {}),
          sink: ctx.sink,
          signal: ctx.signal,
        };
        if (args.options.noblock) {
          const running = core.execute(args.body, {
            ...options,
            raiseOnError: false,
            onResult: (r) => {
              if (r.status === "ok") show(ctx.sink, r);
              else ctx.sink.stderr(formatFailure(new RemoteError("execute", [{ worker: r.worker, id: r.id, ename: r.error?.ename ?? r.status, evalue: r.error?.evalue ?? "", traceback: r.error?.traceback ?? [] }], [r])));
            },
          });
          // Errors before anything ran (bad targets, a syntax error) still fail this cell.
          running.catch((e: unknown) => ctx.sink.stderr(formatFailure(e)));
          return undefined;
        }
        try {
          for (const r of await core.execute(args.body, options)) show(ctx.sink, r);
        } catch (e) {
          if (isRemoteError(e)) for (const r of e.results as ExecuteResult[]) show(ctx.sink, r);
          throw e;
        }
        return undefined;
      },
    }),
    defineMagic({
      name: "sense_scatter",
      kinds: ["line"],
      summary: "Split a notebook variable (array, typed array, Buffer) across workers: part i becomes NAME on worker i.",
      description:
        "Contiguous, near-equal parts in target order (ipyparallel's split: the first workers get one more item\n" +
        "when it does not divide); workers beyond the items get empty parts. Big parts travel over the data channel.",
      options: [],
      positionals: [{ name: "name", description: "the notebook variable to split (the same name on the workers)" }, TARGETS],
      async run(args, ctx) {
        if (!core.scatter) throw new UsageError("%sense_scatter is not available in this kernel", { code: "bad_option" });
        const [name, ...targets] = args.positionals;
        const found = ctx.scope.lookup(name);
        if (!found.found) throw new UsageError(`%sense_scatter: no variable named ${name} in this notebook${ctx.scope.missingHint ? ` (${ctx.scope.missingHint})` : ""}`, { code: "bad_option" });
        await core.scatter(name, found.value, { ...(targets.length ? { targets } : {}), sink: ctx.sink, signal: ctx.signal });
        return undefined;
      },
    }),
    defineMagic({
      name: "sense_gather",
      kinds: ["line"],
      summary: "Put NAME's parts on the workers back together (in target order) and show the value.",
      description: "Arrays are concatenated; typed arrays of one class (numpy arrays arrive as them) and Buffers too. The value is\nthe cell's value: await sense.magic`%sense_gather x` returns it to code.",
      options: [],
      positionals: [{ name: "name", description: "the variable on the workers" }, TARGETS],
      async run(args, ctx) {
        if (!core.gather) throw new UsageError("%sense_gather is not available in this kernel", { code: "bad_option" });
        const [name, ...targets] = args.positionals;
        return core.gather(name, { ...(targets.length ? { targets } : {}), sink: ctx.sink, signal: ctx.signal });
      },
    }),
  ];
}

/** Registers `%%sense_px` in `registry` (replacing an earlier one). */
export function registerRemoteMagics(registry: MagicRegistry, core: RemoteCore = realRemoteCore): void {
  for (const m of remoteMagics(core)) registry.register(m, { replace: true });
}

registerRemoteMagics(defaultRegistry);
