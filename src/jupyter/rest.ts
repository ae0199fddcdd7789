/**
 * The REST client: one axios instance per Jupyter Server, every response validated by a zod
 * schema, every failure a {@link RestError} with a stable code and a token-free URL.
 * Protocol: https://jupyter-server.readthedocs.io/en/latest/developers/rest-api.html
 */
import axios, { AxiosError, AxiosInstance, Method } from "axios";
import { z } from "zod";
import { RestError, redact } from "../errors";
import { sleep } from "../util/timing";
import {
  KernelList,
  KernelModel,
  KernelSpecs,
  ServerStatus,
  ServerVersion,
  SessionList,
  SessionModel,
} from "./schemas";

/** Where a Jupyter Server is and how to authenticate against it. */
export interface ServerEndpoint {
  /** Base URL including any base_url prefix, e.g. `http://127.0.0.1:8888/` or `http://h/user/alice/`. */
  baseUrl: string;
  /** The server (or JupyterHub API) token; may be empty for an open server. */
  token: string;
}

/** Options for {@link RestClient}. */
export interface RestClientOptions {
  /** Per-request timeout in milliseconds (default 30 000); a request may set its own ({@link RequestOptions}). */
  timeoutMs?: number;
  /** An axios instance to use instead of a new one (tests inject their own). */
  axiosInstance?: AxiosInstance;
  /** Waits before retrying a GET that got HTTP 500 (default `[50, 200]`: two retries). */
  getRetryDelaysMs?: readonly number[];
}

/** Options of one request. */
export interface RequestOptions {
  /**
   * This request's timeout in milliseconds instead of the client's. A request the server answers
   * only when something slow is done sets it from that thing's own deadline: `POST /api/sessions`
   * answers when the kernel runs, which behind a gateway means its container or pod started.
   */
  timeoutMs?: number;
}

/** The body of `POST /api/sessions`. */
export interface CreateSessionBody {
  path: string;
  type: string;
  name: string;
  kernel: { name?: string; id?: string };
}

/** Normalises a base URL so it ends with exactly one `/`. */
export function normalizeBaseUrl(url: string): string {
  return url.replace(/\/+$/, "") + "/";
}

/**
 * A typed client for the parts of the Jupyter Server REST API Sense uses.
 * Every method throws {@link RestError}: `unreachable` (no answer), `unauthorized` (401/403),
 * `not_found` (404), `bad_response` (an answer that fails its schema) or `http_error` (any other status).
 */
export class RestClient {
  readonly endpoint: ServerEndpoint;
  readonly http: AxiosInstance;
  private readonly getRetryDelaysMs: readonly number[];
  private readonly timeoutMs: number;

  constructor(endpoint: ServerEndpoint, options: RestClientOptions = {}) {
    this.endpoint = { baseUrl: normalizeBaseUrl(endpoint.baseUrl), token: endpoint.token };
    this.getRetryDelaysMs = options.getRetryDelaysMs ?? [50, 200];
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.http =
      options.axiosInstance ??
      axios.create({
        baseURL: this.endpoint.baseUrl,
        timeout: this.timeoutMs,
        headers: endpoint.token ? { Authorization: `token ${endpoint.token}` } : {},
        // Jupyter answers JSON; we validate status ourselves so every failure gets a code.
        validateStatus: () => true,
        // Never follow redirects to somewhere else (a login page is an auth failure here).
        maxRedirects: 0,
        proxy: false,
      });
  }

  /** Sends one request and validates the JSON answer with `schema`. */
  async request<S extends z.ZodType>(method: Method, path: string, schema: S, body?: unknown, options: RequestOptions = {}): Promise<z.infer<S>> {
    const data = await this.raw(method, path, body, options);
    const parsed = schema.safeParse(data);
    if (!parsed.success) {
      throw new RestError("bad_response", `${method.toUpperCase()} ${this.displayUrl(path)} answered something that is not a valid Jupyter response: ${z.prettifyError(parsed.error)}`, {
        method: method.toUpperCase(),
        url: this.displayUrl(path),
      });
    }
    return parsed.data;
  }

  /**
   * Sends one request; returns the decoded body of a 2xx answer, throws {@link RestError} otherwise.
   * A GET answered with HTTP 500 is retried (see `getRetryDelaysMs`): jupyter_server 2.x answers
   * `GET /api/kernels` and `/api/sessions` with 500 while a kernel is still starting (its model has no
   * `last_activity` yet), which happens whenever workers are launched concurrently.
   */
  async raw(method: Method, path: string, body?: unknown, options: RequestOptions = {}): Promise<unknown> {
    const m = method.toUpperCase();
    const url = this.displayUrl(path);
    const config = { method, url: path.replace(/^\//, ""), data: body, ...(options.timeoutMs !== undefined ? { timeout: options.timeoutMs } : {}) };
    let res;
    try {
      res = await this.http.request(config);
      if (m === "GET") {
        for (const delay of this.getRetryDelaysMs) {
          if (res.status !== 500) break;
          await sleep(delay);
          res = await this.http.request(config);
        }
      }
    } catch (err) {
      const e = err as AxiosError;
      // axios reports its own timeout as ECONNABORTED (ETIMEDOUT with transitional.clarifyTimeoutError)
      if (e.code === "ECONNABORTED" || e.code === "ETIMEDOUT") {
        const s = Number(((options.timeoutMs ?? this.timeoutMs) / 1000).toFixed(1));
        throw new RestError("unreachable", `The Jupyter Server at ${this.displayUrl("")} gave no answer to ${m} ${url} within ${s} s (${e.code}).`, {
          method: m,
          url,
          cause: new Error(redact(e.message, [this.endpoint.token])),
        });
      }
      throw new RestError("unreachable", `The Jupyter Server at ${this.displayUrl("")} did not answer ${m} ${url}: ${e.code ?? e.message}. Is it running?`, {
        method: m,
        url,
        cause: new Error(redact(e.message, [this.endpoint.token])),
      });
    }
    const status = res.status;
    if (status === 401 || status === 403) {
      throw new RestError("unauthorized", `The Jupyter Server refused ${m} ${url} (HTTP ${status}): the token is missing or wrong. Set SENSE_API_TOKEN to the server's token.`, { method: m, url, status });
    }
    if (status === 404) {
      throw new RestError("not_found", `${m} ${url}: not found (HTTP 404).`, { method: m, url, status });
    }
    if (status >= 300 && status < 400) {
      throw new RestError("unauthorized", `The Jupyter Server redirected ${m} ${url} (HTTP ${status}), which usually means it wants a login: check the token.`, { method: m, url, status });
    }
    if (status < 200 || status >= 300) {
      const msg = typeof res.data === "object" && res.data && "message" in res.data ? String((res.data as { message: unknown }).message) : "";
      throw new RestError("http_error", `${m} ${url} failed with HTTP ${status}${msg ? `: ${redact(msg, [this.endpoint.token])}` : ""}.`, { method: m, url, status });
    }
    if (status === 204 || res.data === "" || res.data === undefined) return null;
    return res.data;
  }

  /** The URL of `path` as it may be shown: no token, ever. */
  displayUrl(path: string): string {
    return redact(this.endpoint.baseUrl + path.replace(/^\//, ""), [this.endpoint.token]);
  }

  /** `GET /api`: the server version. */
  version(): Promise<ServerVersion> {
    return this.request("get", "api", ServerVersion);
  }
  /** `GET /api/status`. */
  status(): Promise<ServerStatus> {
    return this.request("get", "api/status", ServerStatus);
  }
  /** `GET /api/kernelspecs`. */
  kernelspecs(): Promise<KernelSpecs> {
    return this.request("get", "api/kernelspecs", KernelSpecs);
  }
  /** `GET /api/kernels`. */
  listKernels(): Promise<KernelList> {
    return this.request("get", "api/kernels", KernelList);
  }
  /** `GET /api/kernels/{id}`; `not_found` when it is gone. */
  getKernel(id: string): Promise<KernelModel> {
    return this.request("get", `api/kernels/${encodeURIComponent(id)}`, KernelModel);
  }
  /** `DELETE /api/kernels/{id}`. */
  async deleteKernel(id: string): Promise<void> {
    await this.raw("delete", `api/kernels/${encodeURIComponent(id)}`);
  }
  /** `POST /api/kernels/{id}/interrupt`. */
  async interruptKernel(id: string): Promise<void> {
    await this.raw("post", `api/kernels/${encodeURIComponent(id)}/interrupt`);
  }
  /** `POST /api/kernels/{id}/restart`. */
  restartKernel(id: string): Promise<KernelModel> {
    return this.request("post", `api/kernels/${encodeURIComponent(id)}/restart`, KernelModel);
  }
  /** `GET /api/sessions`. */
  listSessions(): Promise<SessionList> {
    return this.request("get", "api/sessions", SessionList);
  }
  /** `GET /api/sessions/{id}`. */
  getSession(id: string): Promise<SessionModel> {
    return this.request("get", `api/sessions/${encodeURIComponent(id)}`, SessionModel);
  }
  /**
   * `POST /api/sessions`. Note: an existing `path` returns the old session, so paths must be unique.
   * The server answers once the kernel runs (behind a gateway: once the gateway launched it), so a
   * caller starting a kernel passes its start deadline as `timeoutMs`.
   */
  createSession(body: CreateSessionBody, options: RequestOptions = {}): Promise<SessionModel> {
    return this.request("post", "api/sessions", SessionModel, body, options);
  }
  /** `PATCH /api/sessions/{id}` (rename, retag). */
  patchSession(id: string, body: Partial<Pick<CreateSessionBody, "name" | "type" | "path">>): Promise<SessionModel> {
    return this.request("patch", `api/sessions/${encodeURIComponent(id)}`, SessionModel, body);
  }
  /** `DELETE /api/sessions/{id}` (also shuts its kernel down). */
  async deleteSession(id: string): Promise<void> {
    await this.raw("delete", `api/sessions/${encodeURIComponent(id)}`);
  }
}

/** A `RestError` type guard that works across copies of the package. */
export function isRestError(e: unknown): e is RestError {
  return e instanceof RestError || (e instanceof Error && e.name === "RestError");
}
