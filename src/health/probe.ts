/**
 * One-shot active probes over raw TCP: a plain connect (optionally send and expect bytes) and
 * an HTTP/1.0 `GET` for endpoints like kube-proxy's `healthCheckNodePort`, which answers 200 on
 * nodes with local endpoints and 503 elsewhere.
 *
 * Every probe owns its connection and timer from start to finish: both are released before
 * the returned promise settles, whatever the outcome. Probes never throw or reject; failures
 * come back as {@linkcode ProbeResult} with a short human `error`. A failure of this process
 * (no free descriptor or local port) is marked `isLocalError`, so it is never blamed on the
 * backend.
 *
 * @module
 */
import { formatHostPort } from "../core/address.ts";
import { proxyLocalHeader } from "../core/proxy_local_header.ts";
import type { ProxyProtocolVersion } from "../core/types.ts";
import { errorMessage } from "../core/error_message.ts";
import { writeAll } from "../core/io.ts";

/** Where a probe connects. `host` is a name or an IP address without brackets. */
export interface ProbeTarget {
  /** Host name or IP address (IPv6 without brackets). */
  readonly host: string;
  /** TCP port, 1-65535. */
  readonly port: number;
}

/** The outcome of one probe. */
export interface ProbeResult {
  /** True when the backend passed the check. */
  readonly ok: boolean;
  /** Time from the start of the probe to its verdict, in milliseconds. */
  readonly latencyMs: number;
  /**
   * Why the check failed, short and lower case: `connection refused`, `timed out after 1000ms`,
   * `expected "PONG" not found`, `HTTP 503`. Absent when `ok`.
   */
  readonly error?: string;
  /**
   * True when the probe could not run because of this process, not the backend: out of
   * file descriptors (`EMFILE`, `ENFILE`), local ports (`EADDRNOTAVAIL`) or socket buffers
   * (`ENOBUFS`, `ENOMEM`). `ok` is then false, but the result says nothing about the backend:
   * health tracking must skip it rather than count a failure. Absent otherwise.
   */
  readonly isLocalError?: boolean;
}

/**
 * Error codes meaning this host ran out of a resource; see {@linkcode isLocalNetworkError}.
 */
export const LOCAL_ERROR_CODES: ReadonlySet<string> = new Set([
  "EMFILE",
  "ENFILE",
  "EADDRNOTAVAIL",
  "ENOBUFS",
  "ENOMEM",
]);

/** Linux errno values of {@linkcode LOCAL_ERROR_CODES}, for errors that carry no `code`. */
const LOCAL_OS_ERRORS = new Set([24, 23, 99, 105, 12]);

/**
 * Whether a socket error (e.g. from `Deno.connect` or `accept`) was caused by this process
 * or host running out of descriptors, ports or buffers, rather than by the peer. Such an error
 * must not count against a backend: not in active probes, and not in passive reports from
 * the proxy's connect attempts.
 */
export function isLocalNetworkError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === "string") return LOCAL_ERROR_CODES.has(code);
  const errno = /\(os error (\d+)\)/.exec(error.message);
  return errno !== null && LOCAL_OS_ERRORS.has(Number(errno[1]));
}

/** Options of {@linkcode probeTcp}. */
export interface TcpProbeOptions {
  /** Budget for the whole probe: connect, send and reading the expected reply. */
  readonly timeoutMs: number;
  /** Text (UTF-8) written after connecting. Nothing is sent when absent or empty. */
  readonly send?: string;
  /**
   * Substring the backend's reply must contain. The probe reads until it appears, the
   * backend closes the connection, {@linkcode MAX_PROBE_RESPONSE_BYTES} were read, or the
   * time runs out. Without it a successful connect (and send) passes.
   */
  readonly expect?: string;
  /**
   * Send a PROXY protocol header first: v2 `LOCAL` or v1 `PROXY UNKNOWN`, which a backend
   * that expects PROXY protocol accepts as a connection of the load balancer's own, so it
   * logs no broken header for every check. None when absent.
   */
  readonly proxyProtocol?: ProxyProtocolVersion;
  /** Aborts the probe; it then resolves with `error: "aborted"`. */
  readonly signal?: AbortSignal;
}

/** Options of {@linkcode probeHttp}. */
export interface HttpProbeOptions {
  /**
   * Request path, starting with `/`.
   * @default {"/healthz"}
   */
  readonly path?: string;
  /** `Host` header. @default {the target's `host:port`} */
  readonly host?: string;
  /** Inclusive status ranges that pass. @default {[[200, 299]]} */
  readonly expectStatus?: readonly (readonly [number, number])[];
  /** Budget for the whole probe: connect, request and status line. */
  readonly timeoutMs: number;
  /** Aborts the probe; it then resolves with `error: "aborted"`. */
  readonly signal?: AbortSignal;
}

/** Path {@linkcode probeHttp} requests when none is given (kube-proxy's health endpoint). */
export const DEFAULT_HTTP_PATH = "/healthz";

/** Bytes a probe reads at most while looking for an expected reply or an HTTP status line. */
export const MAX_PROBE_RESPONSE_BYTES = 64 * 1024;

const encoder = new TextEncoder();

/**
 * Connects to `target`, optionally sends `options.send` and waits for `options.expect`.
 *
 * @example
 * ```ts
 * const result = await probeTcp({ host: "10.0.0.7", port: 6379 }, {
 *   timeoutMs: 1000,
 *   send: "PING\r\n",
 *   expect: "PONG",
 * });
 * if (!result.ok) console.log(result.error); // e.g. "connection refused"
 * ```
 *
 * @returns the verdict; never rejects
 */
export function probeTcp(target: ProbeTarget, options: TcpProbeOptions): Promise<ProbeResult> {
  const { send, expect, proxyProtocol } = options;
  return withConnection(target, options.timeoutMs, options.signal, async (conn) => {
    if (proxyProtocol !== undefined) await writeAll(conn, proxyLocalHeader(proxyProtocol));
    if (send) await writeAll(conn, encoder.encode(send));
    if (!expect) return undefined;
    const found = await readUntil(conn, expect);
    if (found === "found") return undefined;
    const where = found === "limit" ? ` in the first ${MAX_PROBE_RESPONSE_BYTES} bytes` : "";
    return `expected ${JSON.stringify(expect)} not found${where}`;
  });
}

/**
 * Sends `GET <path> HTTP/1.0` over a raw TCP connection and passes iff the status is 2xx.
 * Only the status line is read; the connection is closed right after it.
 *
 * Raw TCP instead of `fetch` keeps the probe free of connection pools, proxies from the
 * environment and keep-alive, so every probe is one fresh connection like a client's.
 *
 * @example
 * ```ts
 * const result = await probeHttp({ host: "10.0.0.7", port: 30256 }, { timeoutMs: 1000 });
 * // { ok: false, latencyMs: 1.2, error: "HTTP 503" } on a node without local endpoints
 * ```
 *
 * @returns the verdict; never rejects
 */
export function probeHttp(target: ProbeTarget, options: HttpProbeOptions): Promise<ProbeResult> {
  const request = httpRequest(target, options);
  if (typeof request !== "string") return Promise.resolve(request);
  return withConnection(target, options.timeoutMs, options.signal, async (conn) => {
    await writeAll(conn, encoder.encode(request));
    const line = await readStatusLine(conn);
    if (line === undefined) return "connection closed before an HTTP status line";
    return statusLineVerdict(line, options.expectStatus);
  });
}

/**
 * The `GET` request of an HTTP probe (HTTP/1.0, `Connection: close`), or a failed result when
 * `options.path` or `options.host` cannot go into a request line or header.
 */
export function httpRequest(
  target: ProbeTarget,
  options: Pick<HttpProbeOptions, "path" | "host">,
): string | ProbeResult {
  const path = options.path ?? DEFAULT_HTTP_PATH;
  if (!/^\/[\x21-\x7e]*$/.test(path)) {
    return {
      ok: false,
      latencyMs: 0,
      error: `invalid HTTP path ${JSON.stringify(path)}: expected "/" and no spaces or controls`,
    };
  }
  const host = options.host ?? formatHostPort(target.host, target.port);
  if (!/^[\x21-\x7e]+$/.test(host)) {
    return { ok: false, latencyMs: 0, error: `invalid Host header ${JSON.stringify(host)}` };
  }
  return `GET ${path} HTTP/1.0\r\n` +
    `Host: ${host}\r\n` +
    "User-Agent: nautiluslb-health-check\r\n" +
    "Accept: */*\r\n" +
    "Connection: close\r\n\r\n";
}

/**
 * Whether an HTTP status line passes: `undefined` when its status is in `expectStatus` (2xx
 * when absent), else the failure text (`HTTP 503`). A redirect is judged like any status and
 * never followed.
 */
export function statusLineVerdict(
  line: string,
  expectStatus: readonly (readonly [number, number])[] = [[200, 299]],
): string | undefined {
  const match = /^HTTP\/\d(?:\.\d)? (\d{3})(?: |$)/.exec(line);
  if (match === null) return `invalid HTTP status line ${JSON.stringify(line.slice(0, 64))}`;
  const status = Number(match[1]);
  return expectStatus.some(([low, high]) => status >= low && status <= high)
    ? undefined
    : `HTTP ${status}`;
}

/**
 * Runs `body` on a fresh connection under one deadline. `body` returns `undefined` when the
 * check passed, or the failure text. Closing the connection on timeout or abort is what
 * interrupts a pending read or write.
 */
async function withConnection(
  target: ProbeTarget,
  timeoutMs: number,
  signal: AbortSignal | undefined,
  body: (conn: Deno.TcpConn) => Promise<string | undefined>,
): Promise<ProbeResult> {
  const started = performance.now();
  const elapsed = () => Math.round((performance.now() - started) * 100) / 100;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    return {
      ok: false,
      latencyMs: 0,
      error: `invalid timeout: 'timeoutMs' must be a positive number, got ${timeoutMs}`,
    };
  }
  if (signal?.aborted) return { ok: false, latencyMs: 0, error: "aborted" };

  const deadline = new AbortController();
  let isTimedOut = false;
  const timer = setTimeout(() => {
    isTimedOut = true;
    deadline.abort();
  }, timeoutMs);
  const onAbort = () => deadline.abort();
  signal?.addEventListener("abort", onAbort, { once: true });

  let conn: Deno.TcpConn | undefined;
  let isClosed = false;
  const close = () => {
    if (conn === undefined || isClosed) return;
    isClosed = true;
    try {
      conn.close();
    } catch {
      // Already closed by the runtime (the connect signal also closes the conn on abort).
    }
  };
  deadline.signal.addEventListener("abort", close, { once: true });

  let error: string | undefined;
  let isLocalError = false;
  try {
    conn = await Deno.connect({
      hostname: target.host,
      port: target.port,
      transport: "tcp",
      signal: deadline.signal,
    });
    if (deadline.signal.aborted) throw new Error("aborted");
    error = await body(conn);
  } catch (cause) {
    error = describeError(cause);
    isLocalError = isLocalNetworkError(cause);
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener("abort", onAbort);
    deadline.signal.removeEventListener("abort", close);
    close();
  }
  if (error !== undefined && deadline.signal.aborted) {
    error = isTimedOut ? `timed out after ${timeoutMs}ms` : "aborted";
    isLocalError = false;
  }
  if (error === undefined) return { ok: true, latencyMs: elapsed() };
  return isLocalError
    ? { ok: false, latencyMs: elapsed(), error: `local error: ${error}`, isLocalError }
    : { ok: false, latencyMs: elapsed(), error };
}

/** Reads until `expected` shows up in the decoded text, EOF, or the byte limit. */
async function readUntil(conn: Deno.Conn, expected: string): Promise<"found" | "eof" | "limit"> {
  const decoder = new TextDecoder();
  const buffer = new Uint8Array(4096);
  let window = "";
  let total = 0;
  while (total < MAX_PROBE_RESPONSE_BYTES) {
    const n = await conn.read(buffer);
    if (n === null) return (window + decoder.decode()).includes(expected) ? "found" : "eof";
    total += n;
    window += decoder.decode(buffer.subarray(0, n), { stream: true });
    if (window.includes(expected)) return "found";
    // Keep just enough of the tail for a match that straddles two reads.
    window = window.slice(Math.max(0, window.length - expected.length + 1));
  }
  return "limit";
}

/** Reads the first line of an HTTP response, or `undefined` on EOF before a line ends. */
async function readStatusLine(conn: Deno.Conn): Promise<string | undefined> {
  const buffer = new Uint8Array(1024);
  let head = "";
  while (head.length < MAX_PROBE_RESPONSE_BYTES) {
    const n = await conn.read(buffer);
    if (n === null) return undefined;
    // latin1: the status line is ASCII, and no byte can break the decoding.
    head += String.fromCharCode(...buffer.subarray(0, n));
    const end = head.indexOf("\n");
    if (end >= 0) return head.slice(0, end).replace(/\r$/, "");
  }
  return head.slice(0, 64);
}

/** `ConnectionRefused: Connection refused (os error 111)` → `connection refused`. */
function describeError(cause: unknown): string {
  const message = errorMessage(cause);
  const text = message.replace(/\s*\(os error \d+\)$/, "").trim();
  if (text === "") return cause instanceof Error ? cause.name : "failed";
  return text[0]!.toLowerCase() + text.slice(1);
}
