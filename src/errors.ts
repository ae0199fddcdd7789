/**
 * Every error this package throws is a {@link SenseError} with a stable, documented `code`.
 * Users (and tests) match on `code`, never on message text. Type guards match on `name` as well
 * as `instanceof`, because two copies of this package can be loaded in one kernel process.
 */
import { inspect } from "node:util";

/** Every stable error code, grouped by where it comes from. */
export type SenseErrorCode =
  // configuration / discovery
  | "not_configured"
  | "bad_config"
  // REST
  | "unreachable"
  | "unauthorized"
  | "not_found"
  | "bad_response"
  | "http_error"
  // input
  | "usage"
  | "bad_option"
  | "unknown_engine"
  | "script_not_found"
  | "unknown_worker"
  | "compile_error"
  | "too_large"
  // magics
  | "unknown_magic"
  | "duplicate_magic"
  | "bad_magic_spec"
  // install
  | "install_failed"
  | "bad_package"
  // workers
  | "launch_failed"
  | "timeout"
  | "kernel_error"
  | "interrupted"
  // remote execution
  | "remote_error"
  | "unsupported_worker";

/** Base class of every error thrown by sense-tslab. */
export class SenseError extends Error {
  /** A stable machine-readable code; see {@link SenseErrorCode}. */
  readonly code: SenseErrorCode;
  /** Extra context (never secrets). */
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: SenseErrorCode, message: string, options: { cause?: unknown; details?: Record<string, unknown> } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "SenseError";
    this.code = code;
    this.details = options.details ?? {};
  }
}

/**
 * Bad input from a person: a wrong option, a bad number, an unknown magic. Printed as one line
 * `UsageError: <message>` (plus the usage text, when known), never with a stack.
 */
export class UsageError extends SenseError {
  /** Usage text of the command or magic concerned, shown under the message. */
  readonly usage?: string;
  constructor(message: string, options: { code?: SenseErrorCode; usage?: string; details?: Record<string, unknown> } = {}) {
    super(options.code ?? "usage", message, { details: options.details });
    this.name = "UsageError";
    this.usage = options.usage;
  }
}

/** Nothing tells where the Jupyter Server is, or a `SENSE_*` variable is malformed. */
export class ConfigError extends SenseError {
  constructor(code: "not_configured" | "bad_config", message: string, details?: Record<string, unknown>) {
    super(code, message, { details });
    this.name = "ConfigError";
  }
}

/** A REST call to the Jupyter Server failed. `url` never carries the token. */
export class RestError extends SenseError {
  readonly method: string;
  readonly url: string;
  readonly status?: number;
  constructor(
    code: "unreachable" | "unauthorized" | "not_found" | "bad_response" | "http_error",
    message: string,
    context: { method: string; url: string; status?: number; cause?: unknown },
  ) {
    super(code, message, { cause: context.cause, details: { method: context.method, url: context.url, status: context.status } });
    this.name = "RestError";
    this.method = context.method;
    this.url = context.url;
    this.status = context.status;
  }
}

/** `install()` failed; the project's `package.json` and `node_modules` were left as they were. */
export class InstallError extends SenseError {
  constructor(code: "install_failed" | "bad_package", message: string, details?: Record<string, unknown>) {
    super(code, message, { details });
    this.name = "InstallError";
  }
}

/** A worker operation failed (launch, await, a kernel that died). */
export class WorkerError extends SenseError {
  constructor(
    code: "launch_failed" | "timeout" | "kernel_error" | "unknown_worker" | "unknown_engine" | "script_not_found" | "interrupted",
    message: string,
    details?: Record<string, unknown>,
  ) {
    super(code, message, { details });
    this.name = "WorkerError";
  }
}

/** One worker's failure inside a {@link RemoteError}. */
export interface RemoteFailure {
  /** The worker's name (`w2`). */
  worker: string;
  /** The worker's kernel id. */
  id: string;
  ename: string;
  evalue: string;
  traceback: string[];
  /** For `map`: the index of the input item that failed. */
  index?: number;
}

// ANSI colour codes in ipykernel tracebacks read as garbage outside a notebook's renderer.
const ANSI = new RegExp(String.fromCharCode(27) + "\\[[0-9;]*[A-Za-z]", "g");

function failureLabel(f: RemoteFailure, method: string): string {
  return `[${f.worker}:${method}${f.index === undefined ? "" : ` item ${f.index}`}]`;
}

/**
 * Code failed on one or more workers (`execute`, `map`, `push`, `pull`): ipyparallel's
 * CompositeError. `results` holds every worker's result (for `map`: the results so far, in input
 * order), `failures` one entry per failure. Printed as ipyparallel prints a CompositeError: the
 * first traceback in full, then one line for each other failure (its `stack` is that text too, so
 * a notebook that shows an uncaught error shows this).
 */
export class RemoteError extends SenseError {
  readonly results: readonly unknown[];
  readonly failures: readonly RemoteFailure[];
  /** `execute`, `map`, `push` or `pull`. */
  readonly method: string;

  constructor(method: string, failures: RemoteFailure[], results: readonly unknown[], options: { of?: number } = {}) {
    const of = options.of === undefined ? "" : ` (${failures.length} of ${options.of})`;
    const lines = failures.map((f) => `${failureLabel(f, method)} ${f.ename}: ${f.evalue}`.replace(ANSI, ""));
    super("remote_error", `one or more exceptions raised in: ${method}${of}\n${lines.join("\n")}`, {
      details: { method, workers: [...new Set(failures.map((f) => f.worker))] },
    });
    this.name = "RemoteError";
    this.method = method;
    this.failures = failures;
    this.results = results;
    this.stack = this.render();
  }

  /** The text shown for this error: the first traceback in full, one line for each other failure. */
  render(): string {
    const [first, ...rest] = this.failures;
    if (!first) return `RemoteError: ${this.message}`;
    const tb = first.traceback.length ? first.traceback.join("\n") : `${first.ename}: ${first.evalue}`;
    const out = [`RemoteError: one or more exceptions raised in: ${this.method}`, `${failureLabel(first, this.method)}`, tb.replace(ANSI, "").trimEnd()];
    for (const f of rest) out.push(`${failureLabel(f, this.method)} ${f.ename}: ${f.evalue}`.replace(ANSI, ""));
    return out.join("\n");
  }
}

const SENSE_NAMES = new Set(["SenseError", "UsageError", "ConfigError", "RestError", "InstallError", "WorkerError", "RemoteError"]);

/** True for any error thrown by any loaded copy of sense-tslab. */
export function isSenseError(value: unknown): value is SenseError {
  if (value instanceof SenseError) return true;
  return (
    value instanceof Error &&
    SENSE_NAMES.has(value.name) &&
    typeof (value as { code?: unknown }).code === "string"
  );
}

/** True for a {@link RemoteError} of any loaded copy of sense-tslab. */
export function isRemoteError(value: unknown): value is RemoteError {
  return value instanceof RemoteError || (isSenseError(value) && value.name === "RemoteError" && Array.isArray((value as { failures?: unknown }).failures));
}

/** True for a usage error (printed short, without a stack). */
export function isUsageError(value: unknown): value is UsageError {
  return value instanceof UsageError || (isSenseError(value) && value.name === "UsageError");
}

/**
 * Removes secrets from text that is about to be shown: `token=...` query values,
 * `Authorization` header values and any literal secret passed in.
 */
export function redact(text: string, secrets: readonly (string | undefined)[] = []): string {
  let out = text
    .replace(/([?&](?:token|password|_xsrf)=)[^&\s#"']*/gi, "$1***")
    .replace(/(authorization["']?\s*[:=]\s*["']?(?:token|bearer|basic)\s+)[^\s"',}]+/gi, "$1***");
  for (const s of secrets) {
    if (s && s.length >= 4) out = out.split(s).join("***");
  }
  return out;
}

/**
 * A value as an error message shows it: strings JSON-quoted, everything else as `util.inspect`
 * prints it (so `NaN`, `Infinity`, `undefined`, `10n` and functions say what they are, where
 * `JSON.stringify` would print `null` or nothing), cut to `max` characters. Never throws.
 */
export function shown(value: unknown, max = 80): string {
  let text: string;
  try {
    text = typeof value === "string" ? JSON.stringify(value) : inspect(value, { depth: 1, breakLength: Infinity, maxArrayLength: 5, maxStringLength: max });
  } catch {
    text = Object.prototype.toString.call(value);
  }
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
