/**
 * `%%sense_px`: the cell body runs on workers, through the same core as `execute()`. Each worker's
 * value is shown as `Out[w1]: ...`; failures as a RemoteError (the cell fails); `--noblock` returns
 * at once and each result lands in the cell as it comes.
 */
import { execute, type ExecuteOptions, type ExecuteResult } from "../remote/execute";
import { escapeHtml } from "../display/bundle";
import type { MimeBundle, OutputSink } from "../display/sink";
import { isRemoteError, RemoteError } from "../errors";
import { type Magic, type MagicRegistry, defaultRegistry, defineMagic } from "./registry";
import { formatFailure } from "./run";

/** The part of the client core `%%sense_px` calls. */
export interface RemoteCore {
  execute(code: string, options: ExecuteOptions): Promise<ExecuteResult[]>;
}

/** The real core. */
export const realRemoteCore: RemoteCore = { execute: (code, options) => execute(code, options) };

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
      positionals: [{ name: "target", description: "worker names or ids (w1 w2); none means every running or idle worker", variadic: true }],
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
  ];
}

/** Registers `%%sense_px` in `registry` (replacing an earlier one). */
export function registerRemoteMagics(registry: MagicRegistry, core: RemoteCore = realRemoteCore): void {
  for (const m of remoteMagics(core)) registry.register(m, { replace: true });
}

registerRemoteMagics(defaultRegistry);
