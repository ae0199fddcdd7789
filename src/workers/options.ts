/**
 * Validation of `launchWorkers` options, done completely before anything starts: a bad option
 * throws and leaves the server untouched.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { ConfigError, shown, UsageError, WorkerError } from "../errors";
import type { OutputSink } from "../display/sink";
import { isInside } from "../paths";
import { checkOptionKeys } from "../util/check-options";
import { outputKeepBytes } from "./output";
import { WorkerSize } from "../jupyter/schemas";
import { MAX_TIMER_MS } from "../util/timing";

/** Resources of one worker size. */
export interface SizeSpec {
  /** CPUs (may be fractional). */
  cpu: number;
  /** Memory in MiB. */
  memoryMiB: number;
}

/**
 * The size table. Under a Jupyter Server backed by Enterprise Gateway these become sized
 * kernelspecs with `KERNEL_CPUS`/`KERNEL_MEMORY` (real container limits under EG's Docker and
 * Kubernetes proxies, and a V8 heap limit for JavaScript/TypeScript kernels everywhere: see
 * docs/scale-out.md); on a plain local server they are advisory: exported to the worker as
 * `SENSE_WORKER_CPUS`/`SENSE_WORKER_MEMORY_MB` and recorded, not enforced (the REST API can pass
 * no kernel argv, so `--max-old-space-size` cannot be applied cleanly). Override with {@link configureSizes}.
 */
export const SIZES: Record<WorkerSize, SizeSpec> = {
  small: { cpu: 1, memoryMiB: 2048 },
  medium: { cpu: 2, memoryMiB: 4096 },
  large: { cpu: 4, memoryMiB: 8192 },
};

const DEFAULT_SIZES: Record<WorkerSize, SizeSpec> = structuredClone(SIZES);

/**
 * Overrides entries of {@link SIZES} (`configureSizes({ small: { cpu: 0.5, memoryMiB: 512 } })`);
 * `configureSizes(null)` restores the defaults. Returns the table now in force.
 * @throws UsageError (`bad_option`) for an unknown size or a non-positive/non-finite number; the table is then unchanged.
 */
export function configureSizes(overrides: Partial<Record<string, Partial<SizeSpec>>> | null): Record<WorkerSize, SizeSpec> {
  if (overrides === null) {
    Object.assign(SIZES, structuredClone(DEFAULT_SIZES));
    return SIZES;
  }
  const next = structuredClone(SIZES);
  for (const [name, spec] of Object.entries(overrides)) {
    const size = WorkerSize.safeParse(name);
    if (!size.success) throw new UsageError(`unknown size ${JSON.stringify(name)}; sizes are ${WorkerSize.options.join(", ")}`, { code: "bad_option" });
    for (const [k, v] of Object.entries(spec ?? {})) {
      if (k !== "cpu" && k !== "memoryMiB") throw new UsageError(`unknown size field ${JSON.stringify(k)}; fields are cpu, memoryMiB`, { code: "bad_option" });
      if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) throw new UsageError(`size ${name}.${k} must be a positive number`, { code: "bad_option" });
      next[size.data][k] = v;
    }
  }
  Object.assign(SIZES, next);
  return SIZES;
}

/** Engine aliases kept from the original Sense. */
export const ENGINE_ALIASES: Readonly<Record<string, string>> = {
  "sense-ipython-engine": "python3",
  "sense-js-engine": "sense-js",
  "sense-ts-engine": "sense-ts",
};

/** Options of `launchWorkers`. The seed's `startup_script`/`startup_code` are accepted as aliases. */
export interface LaunchOptions {
  /** How many workers (a positive integer ≤ `maxWorkers`). */
  n?: number;
  /** A size from {@link SIZES}; default `small`. */
  size?: WorkerSize;
  /** A kernelspec name or a Sense engine alias; default the master's own kernelspec (`sense-ts` for a plain Node master). */
  engine?: string;
  /** A file, relative to the project home, whose content is the startup code; wins over `code`. */
  script?: string;
  /** Startup code run in every worker after its environment is set. */
  code?: string;
  /** Extra environment for the workers (names `[A-Za-z_][A-Za-z0-9_]*`, string values). */
  env?: Record<string, string>;
  /** Upper bound on `n` (default `SENSE_MAX_WORKERS` or 64). */
  maxWorkers?: number;
  /** Where worker output is republished; default the sink of the calling cell (or this process' stdout/stderr). */
  sink?: OutputSink;
  /** Label prefix of worker output lines (default `w`, giving `[w1] `). */
  label?: string;
  /** Start the keeper process (cleanup layer 2); default true unless `SENSE_KEEPER=0`. */
  keeper?: boolean;
  /** Start the watchdog in workers (cleanup layer 3); default true unless `SENSE_WATCHDOG=0`. */
  watchdog?: boolean;
  /** Seconds to wait for each worker kernel to answer (default 120). */
  startTimeoutSeconds?: number;
  /** Aborting it interrupts the launch (as a kernel interrupt does): its workers are removed before their code runs. */
  signal?: AbortSignal;
  /**
   * `on-failure`: a worker whose kernel dies is restarted in place (as `restartWorkers`) while it
   * crashed at most `maxRestarts` times in a row (a kernel that ran 60 s or finished a request
   * starts the count again; so does `restartWorkers`: src/workers/restart-policy.ts); past that it
   * stays `failed` with its reason. Default `never`.
   */
  restart?: "never" | "on-failure";
  /** Crashes in a row after which a `restart: "on-failure"` worker stays failed (an integer from 1 to 100; default 3). */
  maxRestarts?: number;
  /** Alias of `script`. */
  startup_script?: string;
  /** Alias of `code`. */
  startup_code?: string;
}

/** The keys of {@link LaunchOptions} (and `context`, which `launchWorkers` also takes). */
export const LAUNCH_OPTION_KEYS: readonly string[] = [
  "n", "size", "engine", "script", "code", "env", "maxWorkers", "sink", "label", "keeper", "watchdog", "startTimeoutSeconds",
  "startup_script", "startup_code", "signal", "context", "restart", "maxRestarts",
];
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export { MAX_TIMER_MS };

/**
 * Checks a timeout given in seconds: a finite number, positive (or zero when `allowZero`), at
 * most {@link MAX_TIMER_MS}; returns it in ms.
 * @throws UsageError `bad_option` naming `name` and the limit.
 */
export function checkTimeoutSeconds(name: string, value: unknown, options: { allowZero?: boolean } = {}): number {
  const ok = typeof value === "number" && Number.isFinite(value) && (options.allowZero ? value >= 0 : value > 0);
  if (!ok) throw bad(`${name} must be a ${options.allowZero ? "non-negative" : "positive"} number of seconds, not ${shown(value)}`);
  if (value * 1000 > MAX_TIMER_MS) throw bad(`${name} must be at most ${Math.floor(MAX_TIMER_MS / 1000)} s (about 24 days, the longest timer Node.js keeps), not ${value}`, { [name]: value });
  return value * 1000;
}

/**
 * Linux refuses to start any process whose environment holds a `NAME=value` string over 128 KiB
 * (MAX_ARG_STRLEN, E2BIG), and limits the whole environment plus argv (ARG_MAX, 2 MiB by default):
 * a worker given more could not start a single child process.
 */
export const MAX_ENV_ENTRY_BYTES = 128 * 1024 - 1;
/** The most the `env` option may add to a worker's environment, all entries together (`NAME=value`, UTF-8). */
export const MAX_ENV_TOTAL_BYTES = 512 * 1024;

/**
 * Checks the `env` option: names `[A-Za-z_][A-Za-z0-9_]*`, string values without NUL (C
 * environments end a value at NUL: a JavaScript worker would see it cut short), each entry within
 * {@link MAX_ENV_ENTRY_BYTES} and all within {@link MAX_ENV_TOTAL_BYTES}. Returns a plain copy.
 * @throws UsageError `bad_option` saying which variable and why.
 */
export function checkWorkerEnv(envOption: unknown): Record<string, string> {
  const env: Record<string, string> = {};
  if (envOption === undefined) return env;
  if (envOption === null || typeof envOption !== "object" || Array.isArray(envOption)) throw bad("env must be an object of strings");
  let total = 0;
  for (const [k, v] of Object.entries(envOption as Record<string, unknown>)) {
    if (!ENV_NAME.test(k)) throw bad(`env name ${JSON.stringify(k)} is not a valid environment variable name`);
    if (typeof v !== "string") throw bad(`env ${k} must be a string, not ${v === null ? "null" : typeof v}`);
    if (v.includes("\0")) throw bad(`env ${k} contains a NUL character, which an environment variable cannot hold`, { variable: k });
    const bytes = Buffer.byteLength(k) + 1 + Buffer.byteLength(v);
    if (bytes > MAX_ENV_ENTRY_BYTES) {
      throw bad(`env ${k} is ${bytes} bytes; one variable may be at most ${MAX_ENV_ENTRY_BYTES} bytes (NAME=value), or no process in the worker could start (E2BIG)`, { variable: k, bytes });
    }
    total += bytes + 1;
    if (total > MAX_ENV_TOTAL_BYTES) throw bad(`env is over ${MAX_ENV_TOTAL_BYTES} bytes in all; pass large data as a file or startup code instead`, { variable: k });
    env[k] = v;
  }
  return env;
}

/** Options after validation. */
export interface LaunchPlan {
  /** The startup code is JavaScript the master checked (see engine.ts prepareCode): sent marked precompiled. */
  precompiled?: boolean;
  n: number;
  size: WorkerSize;
  /** Requested engine after alias mapping; `undefined` = the master's own. */
  engine?: string;
  /** The startup code (the script's content when a script was given). */
  code: string;
  /** Where the code came from (for messages). */
  codeSource?: string;
  env: Record<string, string>;
  label: string;
  keeper: boolean;
  watchdog: boolean;
  startTimeoutMs: number;
  /** Output kept per worker, bytes (`SENSE_WORKER_OUTPUT_MIB`). */
  outputKeepBytes: number;
  /** `on-failure`: a lost worker is restarted in place while it crashed at most `maxRestarts` times in a row. */
  restart?: "never" | "on-failure";
  maxRestarts?: number;
}

/**
 * Default `maxWorkers`: `SENSE_MAX_WORKERS`, else 64.
 * @throws ConfigError `bad_config` when `SENSE_MAX_WORKERS` is set but not a positive integer
 *   (silently using 64 would hide the typo that a limit was meant to catch).
 */
export function defaultMaxWorkers(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.SENSE_MAX_WORKERS;
  if (raw === undefined || raw.trim() === "") return 64;
  const v = Number(raw);
  if (!Number.isInteger(v) || v < 1) {
    throw new ConfigError("bad_config", `SENSE_MAX_WORKERS must be a positive integer, not ${JSON.stringify(raw)}`, { variable: "SENSE_MAX_WORKERS" });
  }
  return v;
}

/**
 * A cleanup-layer switch (`SENSE_KEEPER`, `SENSE_WATCHDOG`): unset or empty = on; `0`/`false`/`off`/`no`
 * = off; `1`/`true`/`on`/`yes` = on.
 * @throws ConfigError `bad_config` for anything else (`SENSE_KEEPER=false` used to mean "on").
 */
export function envSwitch(name: "SENSE_KEEPER" | "SENSE_WATCHDOG", env: NodeJS.ProcessEnv = process.env): boolean {
  const raw = (env[name] ?? "").trim().toLowerCase();
  if (raw === "" || ["1", "true", "on", "yes"].includes(raw)) return true;
  if (["0", "false", "off", "no"].includes(raw)) return false;
  throw new ConfigError("bad_config", `${name} must be 0 or 1 (or true/false), not ${JSON.stringify(env[name])}`, { variable: name });
}

function bad(message: string, details?: Record<string, unknown>): UsageError {
  return new UsageError(message, { code: "bad_option", details });
}

/**
 * Checks every option that can be checked without the server; reads the script.
 * @throws UsageError `bad_option` for a bad `n`, size, env, label, unknown option or a script path
 * outside the project home; WorkerError `script_not_found` for a script that does not exist;
 * ConfigError `bad_config` for a malformed `SENSE_MAX_WORKERS`, `SENSE_KEEPER`, `SENSE_WATCHDOG` or `SENSE_WORKER_OUTPUT_MIB`.
 */
export function validateLaunchOptions(options: LaunchOptions, projectHome: string): LaunchPlan {
  checkOptionKeys(options, LAUNCH_OPTION_KEYS, "launchWorkers");

  const maxWorkers = options.maxWorkers ?? defaultMaxWorkers();
  if (!Number.isInteger(maxWorkers) || maxWorkers < 1) throw bad(`maxWorkers must be a positive integer, not ${String(maxWorkers)}`);
  const n = options.n;
  if (typeof n !== "number" || !Number.isInteger(n) || n < 1 || n > maxWorkers) {
    throw bad(`n must be an integer from 1 to ${maxWorkers}, not ${shown(n)}`, { n, maxWorkers });
  }

  const size = WorkerSize.safeParse(options.size ?? "small");
  if (!size.success) throw bad(`size must be one of ${WorkerSize.options.join(", ")}, not ${JSON.stringify(options.size)}`);

  if (options.engine !== undefined && (typeof options.engine !== "string" || !options.engine.trim())) throw bad("engine must be a kernelspec name");
  // Own keys only: `__proto__` or `constructor` must stay engine names, not Object.prototype members.
  const engine = options.engine === undefined ? undefined : Object.hasOwn(ENGINE_ALIASES, options.engine) ? ENGINE_ALIASES[options.engine] : options.engine;

  const env = checkWorkerEnv(options.env);

  const label = options.label ?? "w";
  if (typeof label !== "string" || !/^[A-Za-z0-9_.-]{1,32}$/.test(label)) throw bad("label must be 1-32 letters, digits, '.', '_' or '-'");

  for (const k of ["keeper", "watchdog"] as const) {
    if (options[k] !== undefined && typeof options[k] !== "boolean") throw bad(`${k} must be true or false`);
  }
  const startTimeoutMs = checkTimeoutSeconds("startTimeoutSeconds", options.startTimeoutSeconds ?? 120);

  const scriptOpt = options.script ?? options.startup_script;
  const codeOpt = options.code ?? options.startup_code;
  if (codeOpt !== undefined && typeof codeOpt !== "string") throw bad("code must be a string");
  let code = codeOpt ?? "";
  let codeSource: string | undefined;
  if (scriptOpt !== undefined) {
    if (typeof scriptOpt !== "string" || !scriptOpt) throw bad("script must be a path relative to the project home");
    code = readScript(scriptOpt, projectHome);
    codeSource = scriptOpt;
  }

  return {
    n,
    size: size.data,
    engine,
    code,
    codeSource,
    env,
    label,
    keeper: options.keeper ?? envSwitch("SENSE_KEEPER"),
    watchdog: options.watchdog ?? envSwitch("SENSE_WATCHDOG"),
    startTimeoutMs,
    // Read now: a malformed setting must fail before anything starts.
    outputKeepBytes: outputKeepBytes(),
    ...restartPolicy(options),
  };
}

/** The `restart`/`maxRestarts` options. @throws UsageError `bad_option`. */
function restartPolicy(options: LaunchOptions): Pick<LaunchPlan, "restart" | "maxRestarts"> {
  const restart = options.restart ?? "never";
  if (restart !== "never" && restart !== "on-failure") throw bad(`restart must be "never" or "on-failure", not ${JSON.stringify(options.restart)}`);
  const maxRestarts = options.maxRestarts ?? 3;
  if (!Number.isInteger(maxRestarts) || maxRestarts < 1 || maxRestarts > 100) throw bad(`maxRestarts must be an integer from 1 to 100, not ${JSON.stringify(options.maxRestarts)}`);
  if (options.maxRestarts !== undefined && restart !== "on-failure") throw bad('maxRestarts needs restart: "on-failure"');
  return { restart, maxRestarts };
}

/** Reads a startup script that must lie inside the project home (symlinks resolved). */
function readScript(script: string, projectHome: string): string {
  if (path.isAbsolute(script)) throw bad(`script must be relative to the project home, not absolute: ${script}`);
  const home = fs.existsSync(projectHome) ? fs.realpathSync(projectHome) : path.resolve(projectHome);
  const target = path.resolve(home, script);
  if (!isInside(home, target)) throw bad(`script ${JSON.stringify(script)} is outside the project home`);
  let real: string;
  try {
    real = fs.realpathSync(target);
  } catch {
    throw new WorkerError("script_not_found", `startup script ${JSON.stringify(script)} does not exist in the project home`, { script });
  }
  if (!isInside(home, real)) throw bad(`script ${JSON.stringify(script)} resolves outside the project home`);
  if (!fs.statSync(real).isFile()) throw new WorkerError("script_not_found", `startup script ${JSON.stringify(script)} is not a file`, { script });
  return fs.readFileSync(real, "utf8");
}
