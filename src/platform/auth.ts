/**
 * `getAuth()`: credentials for the Jupyter Server REST API, in the shape the original Sense
 * helpers returned (`user`/`password`), plus ready `headers` and `baseUrl` so a plain axios or
 * fetch call works. Printing the object (or JSON-encoding it) shows `***` for every secret.
 */
import { displayableInDeno } from "../display/deno-display";
import { inspect } from "node:util";
import { ConfigError } from "../errors";
import { DiscoverOptions, SenseContext, discover, getContext, getRunContext } from "../jupyter/context";
import { checkOptionKeys } from "../util/check-options";

/** Where the credentials came from. */
export type AuthSource = "credentials" | "token";

/** Options of {@link getAuth}. */
export interface AuthOptions {
  /** Environment to read instead of `process.env` (tests); discovery then uses it too. */
  env?: NodeJS.ProcessEnv;
  /** A context to use instead of discovering one. */
  context?: SenseContext;
  /** Options for discovery, when no `context` is given. */
  discover?: DiscoverOptions;
}

/**
 * Credentials for the server's REST API. The properties hold the real values (so they can be
 * used); `util.inspect`, `console.log` and `JSON.stringify` show `***` instead.
 */
export class SenseAuth {
  /** `SENSE_USERNAME`, or the token (the original contract: token as user, empty password). */
  readonly user: string;
  /** `SENSE_PASSWORD`, or `""` for a token. */
  readonly password: string;
  readonly source: AuthSource;
  /** `Authorization: token <t>` (or `Basic ...` for credentials). */
  readonly headers: Readonly<Record<string, string>>;
  /** The server's base URL, ending in `/`: `axios.get(auth.baseUrl + "api/sessions", { headers: auth.headers })`. */
  readonly baseUrl: string;

  constructor(fields: { user: string; password: string; source: AuthSource; baseUrl: string }) {
    this.user = fields.user;
    this.password = fields.password;
    this.source = fields.source;
    this.baseUrl = fields.baseUrl;
    this.headers =
      fields.source === "credentials"
        ? { Authorization: `Basic ${Buffer.from(`${fields.user}:${fields.password}`).toString("base64")}` }
        : { Authorization: `token ${fields.user}` };
  }

  /** The masked form: what printing and JSON show. */
  toJSON(): { user: string; password: string; source: AuthSource; headers: Record<string, string>; baseUrl: string } {
    return {
      user: this.source === "token" ? "***" : this.user,
      password: this.password ? "***" : "",
      source: this.source,
      headers: { Authorization: this.source === "token" ? "token ***" : "Basic ***" },
      baseUrl: this.baseUrl,
    };
  }

  [inspect.custom](_depth: number, opts: object): string {
    return `SenseAuth ${inspect(this.toJSON(), opts)}`;
  }
}

/** This process's server context; a kernel started with no server has no REST API to authenticate to. */
function serverContext(): SenseContext {
  const run = getRunContext();
  if (run.backend === "server") return getContext();
  throw new ConfigError(
    "not_configured",
    `No Jupyter Server serves this process, so there are no REST API credentials (${run.why}). ` +
      "Workers and installs work without one; to use a server's API, set SENSE_API_URL and SENSE_API_TOKEN.",
  );
}

/**
 * Returns credentials for the Jupyter Server REST API: `SENSE_USERNAME` + `SENSE_PASSWORD` when
 * both are set (`source: "credentials"`, Basic auth), else the project token (`SENSE_API_TOKEN`,
 * else the discovered server's token) as `user` with an empty password (`source: "token"`).
 *
 * @throws {ConfigError} `not_configured` when there is neither a username/password pair nor a
 *   token, or no server can be discovered (also when this kernel runs with no server, headless:
 *   the message says so); `bad_config` from discovery for a malformed URL.
 */
export function getAuth(options: AuthOptions = {}): SenseAuth {
  checkOptionKeys(options, ["env", "context", "discover"], "getAuth");
  const env = options.env ?? process.env;
  const ctx = options.context ?? (options.env || options.discover ? discover({ ...options.discover, env }) : serverContext());
  const baseUrl = ctx.endpoint.baseUrl;
  if (env.SENSE_USERNAME && env.SENSE_PASSWORD) {
    return displayableInDeno(new SenseAuth({ user: env.SENSE_USERNAME, password: env.SENSE_PASSWORD, source: "credentials", baseUrl }));
  }
  const token = env.SENSE_API_TOKEN || ctx.endpoint.token;
  if (!token) {
    throw new ConfigError(
      "not_configured",
      `No credentials for the Jupyter Server at ${baseUrl}: set SENSE_API_TOKEN to its token ` +
        "(or SENSE_USERNAME and SENSE_PASSWORD). A server without a token (password login only) needs SENSE_API_TOKEN.",
      { baseUrl },
    );
  }
  return displayableInDeno(new SenseAuth({ user: token, password: "", source: "token", baseUrl }));
}
