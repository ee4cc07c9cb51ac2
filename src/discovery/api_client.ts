/**
 * A minimal Kubernetes API client: GET a JSON document within a deadline, or open a streaming
 * GET (a watch). Requests go through Deno's own `fetch` with one `Deno.HttpClient` per set of
 * TLS material, so every request stops with the caller's `AbortSignal`.
 *
 * API failures become {@linkcode ApiError} (with the HTTP status), `410 Gone` a
 * {@linkcode GoneError}, and a `200` whose body is not what was asked for an
 * {@linkcode InvalidResponseError}; {@linkcode classifyError} names the cause for status.
 *
 * @module
 */
import { getLogger } from "../log/mod.ts";
import type { KubeCredentials, RequestAuth } from "./kubeconfig.ts";
import { redactSecrets } from "./redact.ts";

const logger = getLogger("discovery", "kubernetes");

/** Budget of one GET (a list page or a discovery document), body included. */
export const DEFAULT_API_REQUEST_TIMEOUT_MS = 30_000;

/** An error with the HTTP status of the API response that caused it. */
export class ApiError extends Error {
  /** HTTP status (or the `code` of a watch `ERROR` event). */
  readonly status: number;
  /**
   * @param message what failed, e.g. `GET /api/v1/nodes returned 403: nodes is forbidden`
   * @param status the HTTP status
   */
  constructor(message: string, status: number, options?: ErrorOptions) {
    super(message, options);
    this.name = "ApiError";
    this.status = status;
  }
}

/** The requested history is gone (`410 Gone`, as HTTP status or watch event): list again. */
export class GoneError extends ApiError {
  /** @param message the server's explanation, e.g. `too old resource version: 12 (40)` */
  constructor(message: string, options?: ErrorOptions) {
    super(message, 410, options);
    this.name = "GoneError";
  }
}

/**
 * A successful status with a body that is not what the API promises: an HTML page from a
 * proxy, JSON without `items`, a watch line that is not a JSON event. Treated as a failure:
 * the caller keeps its data and retries with backoff.
 */
export class InvalidResponseError extends Error {
  /** @param message what was expected and an excerpt (redacted) of what came */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "InvalidResponseError";
  }
}

/** Why requests to the API are failing, for status and logs. */
export type ApiFailure =
  | "unreachable"
  | "unauthorized"
  | "forbidden"
  | "invalid-response"
  | "server-error"
  | "timeout";

/** Names the cause of a failed request: the HTTP status class, a bad body, a timeout or else unreachable. */
export function classifyError(error: unknown): ApiFailure {
  if (error instanceof InvalidResponseError) return "invalid-response";
  if (error instanceof ApiError) {
    if (error.status === 401) return "unauthorized";
    if (error.status === 403) return "forbidden";
    return "server-error";
  }
  if (error instanceof DOMException && error.name === "TimeoutError") return "timeout";
  return "unreachable";
}

/** The JSON `Status.message` of an API error body, if there is one. */
export function statusMessage(body: unknown): string | undefined {
  if (body && typeof body === "object" && "message" in body && typeof body.message === "string") {
    return body.message;
  }
  return undefined;
}

/**
 * The error for a non-`200` answer: {@linkcode GoneError} for `410`, else {@linkcode ApiError}
 * whose message names the request, status and the server's reason (redacted).
 */
export function apiError(status: number, body: unknown, what: string): ApiError {
  const detail = redactSecrets(statusMessage(body) ?? `HTTP ${status}`);
  if (status === 410) return new GoneError(detail);
  const name = status === 401 ? "Unauthorized" : status === 403 ? "Forbidden" : undefined;
  const message = name !== undefined && detail !== name ? `${name}: ${detail}` : detail;
  return new ApiError(`${what} returned ${status}: ${message}`, status);
}

/** A short, single-line, redacted excerpt of a body, for error messages. */
export function excerpt(text: string, maxChars = 80): string {
  const flat = text.replace(/\s+/g, " ").trim();
  const cut = flat.length > maxChars ? `${flat.slice(0, maxChars)}…` : flat;
  return JSON.stringify(redactSecrets(cut));
}

/** Options of {@linkcode ApiClient}. */
export interface ApiClientOptions {
  /** Who to talk to and as whom; re-read on every request so rotated tokens are used. */
  readonly credentials: KubeCredentials;
  /** Aborts every request; the owner calls {@linkcode ApiClient.close} afterwards. */
  readonly signal: AbortSignal;
  /** Budget of one {@linkcode ApiClient.get}, body included. @default {30000} */
  readonly requestTimeoutMs?: number;
}

/** What {@linkcode ApiClient.get} read: the status and the parsed body. */
export interface ApiResponse {
  readonly status: number;
  /** Parsed JSON, or `{ message }` with an excerpt when the body was not JSON. */
  readonly body: unknown;
  /** Whether the body parsed as JSON. */
  readonly isJson: boolean;
  /** The raw body when it was not JSON (for error excerpts). */
  readonly text?: string;
}

/**
 * GETs against one API server. Owns one `Deno.HttpClient` (rebuilt when the TLS material
 * changes) until {@linkcode ApiClient.close}.
 */
export class ApiClient {
  readonly #credentials: KubeCredentials;
  readonly #signal: AbortSignal;
  readonly #requestTimeoutMs: number;
  #client?: Deno.HttpClient;
  #clientKey = "";

  /** @param options see {@linkcode ApiClientOptions} */
  constructor(options: ApiClientOptions) {
    this.#credentials = options.credentials;
    this.#signal = options.signal;
    this.#requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_API_REQUEST_TIMEOUT_MS;
  }

  /**
   * A GET whose whole body is read within the request timeout, so a half-open connection
   * cannot stall a list forever.
   * @throws the signal's reason, a `TimeoutError` DOMException, or the fetch error
   */
  async get(path: string): Promise<ApiResponse> {
    const controller = new AbortController();
    const onAbort = () => controller.abort(this.#signal.reason);
    this.#signal.addEventListener("abort", onAbort, { once: true });
    if (this.#signal.aborted) onAbort();
    const timer = setTimeout(
      () =>
        controller.abort(
          new DOMException(`No answer within ${this.#requestTimeoutMs} ms`, "TimeoutError"),
        ),
      this.#requestTimeoutMs,
    );
    try {
      const res = await this.stream(path, controller.signal);
      // An abort racing with the response leaves the body unaborted: cancel it ourselves.
      const cancelBody = () => void res.body?.cancel(controller.signal.reason).catch(() => {});
      if (controller.signal.aborted) {
        cancelBody();
        throw controller.signal.reason;
      }
      controller.signal.addEventListener("abort", cancelBody, { once: true });
      return await readBody(res);
    } finally {
      clearTimeout(timer);
      this.#signal.removeEventListener("abort", onAbort);
    }
  }

  /**
   * A GET whose body the caller must consume or cancel (a watch).
   * @param signal aborts this request (defaults to the client's signal)
   */
  async stream(path: string, signal: AbortSignal = this.#signal): Promise<Response> {
    const { client, auth } = await this.#httpClient();
    return await fetch(auth.server + path, {
      client,
      signal,
      headers: { ...auth.headers, Accept: "application/json" },
    });
  }

  /** Closes the HTTP client; later requests open a new one. */
  close(): void {
    this.#client?.close();
    this.#client = undefined;
    this.#clientKey = "";
  }

  async #httpClient(): Promise<{ client: Deno.HttpClient; auth: RequestAuth }> {
    const auth = await this.#credentials.requestAuth();
    const key = JSON.stringify([auth.caPem, auth.certPem, auth.keyPem, auth.proxyUrl]);
    if (!this.#client || key !== this.#clientKey) {
      this.#client?.close();
      if (auth.skipTlsVerify && auth.server.startsWith("https:")) {
        // Deno's HTTP client has no per-client switch for this; the process flag is the way.
        logger.warn(
          "insecure-skip-tls-verify is not supported per client: add the cluster CA to the " +
            "kubeconfig, or run with --unsafely-ignore-certificate-errors={host}",
          { host: new URL(auth.server).hostname },
        );
      }
      const options: Deno.CreateHttpClientOptions = {
        ...(auth.caPem ? { caCerts: [auth.caPem] } : {}),
        ...(auth.proxyUrl ? { proxy: { url: auth.proxyUrl } } : {}),
      };
      this.#client = auth.certPem && auth.keyPem
        ? Deno.createHttpClient({ ...options, cert: auth.certPem, key: auth.keyPem })
        : Deno.createHttpClient(options);
      this.#clientKey = key;
    }
    return { client: this.#client, auth };
  }
}

/** Reads a whole body as JSON; a body that is not JSON is kept as an excerpt. */
export async function readBody(res: Response): Promise<ApiResponse> {
  const text = await res.text();
  try {
    return { status: res.status, body: JSON.parse(text), isJson: true };
  } catch {
    return {
      status: res.status,
      body: { message: redactSecrets(text.slice(0, 200)) },
      isJson: false,
      text,
    };
  }
}
