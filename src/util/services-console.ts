/**
 * `@jupyterlab/services` talks on the console (websocket starts, reconnects, kernel status): in
 * a notebook that chatter would land in the user's cell. One filter, for the master's worker
 * connections and for the Sense kernel alike: a console call is dropped when it comes from
 * `@jupyterlab/services` (by its stack), every other call, the user's included, goes through.
 */

const FROM_SERVICES = /[\\/]@jupyterlab[\\/]services[\\/]/;
// What @jupyterlab/services 7.6 logs with console.log/warn (checked against 7.6.6). Only a call
// that looks like one pays for a stack trace: a print loop of the user's must stay cheap.
const CHATTER = [/^Starting WebSocket: /, /^Kernel: \w+ \(/, /^Connection lost, reconnecting in /, /^Server selected unknown kernel wire protocol/];
const QUIET = Symbol.for("sense-tslab.quietServicesConsole");

function fromServices(): boolean {
  return FROM_SERVICES.test(new Error().stack ?? "");
}

/** Installs the filter on `target` (default: the global console); idempotent. */
export function silenceServicesConsole(target: Console = console): void {
  const marked = target as Console & { [QUIET]?: true };
  if (marked[QUIET]) return;
  Object.defineProperty(marked, QUIET, { value: true });
  for (const level of ["debug", "warn", "log"] as const) {
    const original = target[level];
    target[level] = function (this: unknown, ...args: unknown[]): void {
      const first = args[0];
      // debug: any call may be the library's; log/warn: only a known message is checked.
      const suspect = level === "debug" || (typeof first === "string" && CHATTER.some((re) => re.test(first)));
      if (suspect && fromServices()) return;
      original.apply(target, args);
    };
  }
}
