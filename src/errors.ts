/**
 * Every error this package throws is a {@link SenseError} with a stable, documented `code`.
 * Users (and tests) match on `code`, never on message text. Type guards match on `name` as well
 * as `instanceof`, because two copies of this package can be loaded in one kernel process.
 */

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
  | "interrupted";

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

const SENSE_NAMES = new Set(["SenseError", "UsageError", "ConfigError", "RestError", "InstallError", "WorkerError"]);

/** True for any error thrown by any loaded copy of sense-tslab. */
export function isSenseError(value: unknown): value is SenseError {
  if (value instanceof SenseError) return true;
  return (
    value instanceof Error &&
    SENSE_NAMES.has(value.name) &&
    typeof (value as { code?: unknown }).code === "string"
  );
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
