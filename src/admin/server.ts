/**
 * The admin HTTP server: the status page at `/`, `/healthz`, `/readyz`, `/pools` and `/metrics`.
 *
 * It only reads: every request that needs state calls the caller's snapshot function once,
 * and nothing here mutates pools or listeners. Bind it to loopback unless the port is
 * protected otherwise (the config default is `127.0.0.1:9090`).
 *
 * @module
 */
import { getLogger, type Logger } from "../log/mod.ts";
import { errorMessage } from "../core/error_message.ts";
import { AdminMetrics } from "./metrics.ts";
import { type Http1ServerStats, serveHttp1 } from "./_http1.ts";
import { RateMeter } from "./_rates.ts";
import { renderStatusPage, STATUS_PAGE_CSP, statusRateTotals } from "./status_page.ts";
import { type AdminSnapshot, type AdminSnapshotSource, MAX_SHOWN_ACCESS_ENTRIES } from "./types.ts";

/** Options of {@linkcode startAdminServer}. */
export interface AdminServerOptions {
  /** Interface to bind, e.g. `127.0.0.1` or `::`. */
  readonly hostname: string;
  /** TCP port; `0` picks a free one (see {@linkcode AdminServer.addr}). */
  readonly port: number;
  /** Aborting it stops the server: no new connections, in-flight requests finish. */
  readonly signal: AbortSignal;
  /** Returns the current state; called once per request that needs it. */
  readonly snapshot: AdminSnapshotSource;
  /** Receives start/stop lines and request or snapshot failures. @default {getLogger("admin")} */
  readonly logger?: Logger;
  /**
   * Export prom-client's default process metrics on `/metrics`.
   * @default {true}
   */
  readonly processMetrics?: boolean;
  /**
   * Time a client has to send a request head: from accepting the connection for the first
   * request, from its first byte for later ones. Slower clients are closed without an answer.
   * @default {DEFAULT_ADMIN_HEADER_TIMEOUT_MS}
   */
  readonly headerTimeoutMs?: number;
  /**
   * Time a keep-alive connection may sit idle between a response and the next request.
   * @default {DEFAULT_ADMIN_IDLE_TIMEOUT_MS}
   */
  readonly idleTimeoutMs?: number;
  /**
   * Time to write one response; a client that does not read it is closed.
   * @default {DEFAULT_ADMIN_WRITE_TIMEOUT_MS}
   */
  readonly writeTimeoutMs?: number;
  /**
   * Connections open at once. At the cap a new connection replaces the oldest one that is
   * not running a request, so idle or slow clients cannot lock out a probe.
   * @default {DEFAULT_ADMIN_MAX_CONNECTIONS}
   */
  readonly maxConnections?: number;
  /**
   * Bytes of a request head (request line and header fields); larger heads get 431.
   * @default {DEFAULT_ADMIN_MAX_HEADER_BYTES}
   */
  readonly maxHeaderBytes?: number;
  /**
   * Header fields in one request; more get 431.
   * @default {DEFAULT_ADMIN_MAX_HEADERS}
   */
  readonly maxHeaders?: number;
}

/** Default {@linkcode AdminServerOptions.headerTimeoutMs}: generous for any real client. */
export const DEFAULT_ADMIN_HEADER_TIMEOUT_MS = 10_000;
/** Default {@linkcode AdminServerOptions.idleTimeoutMs}: longer than a 15 s scrape interval. */
export const DEFAULT_ADMIN_IDLE_TIMEOUT_MS = 30_000;
/** Default {@linkcode AdminServerOptions.writeTimeoutMs}. */
export const DEFAULT_ADMIN_WRITE_TIMEOUT_MS = 10_000;
/**
 * Default {@linkcode AdminServerOptions.maxConnections}: probes, a scraper and a few humans
 * need far less; every connection holds a descriptor the proxy may need.
 */
export const DEFAULT_ADMIN_MAX_CONNECTIONS = 64;
/** Default {@linkcode AdminServerOptions.maxHeaderBytes}. */
export const DEFAULT_ADMIN_MAX_HEADER_BYTES = 16 * 1024;
/** Default {@linkcode AdminServerOptions.maxHeaders}. */
export const DEFAULT_ADMIN_MAX_HEADERS = 100;

/** A running admin server. */
export interface AdminServer {
  /** The bound address (the real port when `port` was 0). */
  readonly addr: Deno.NetAddr;
  /** Settles once the server has stopped after the signal was aborted. */
  readonly finished: Promise<void>;
  /** Live connection counters (open, timed out, shed, failed accepts); read-only. */
  readonly connections: Http1ServerStats;
}

/** Options of {@linkcode createAdminHandler}. */
export interface AdminHandlerOptions {
  /** Returns the current state; called once per request that needs it. */
  readonly snapshot: AdminSnapshotSource;
  /** Receives request and snapshot failures. @default {getLogger("admin")} */
  readonly logger?: Logger;
  /** A metrics registry; a new one (with process metrics) when absent. */
  readonly metrics?: AdminMetrics;
  /** Now, in ms since the Unix epoch, for the status page. @default {Date.now} */
  readonly now?: () => number;
}

const ALLOW = "GET, HEAD";
const ROUTES = new Set(["/", "/healthz", "/readyz", "/pools", "/metrics"]);
const TEXT = "text/plain; charset=utf-8";

/**
 * Starts the admin server and resolves once it is listening.
 *
 * Routes (`GET` or `HEAD`; other methods get 405, unknown paths 404):
 * - `/`: the status page, HTML for a browser, refreshing itself every 5 s
 *   (`?refresh=N` seconds, 0 for never); see {@linkcode renderStatusPage}.
 * - `/healthz`: 200 `ok` while the process runs; never calls `snapshot`.
 * - `/readyz`: 200 `ok` when `snapshot().ready`, else 503 `not ready: <reasons>`. With
 *   `?verbose`, one line per check (`[+]` passed, `[-]` failed, `[!]` reported but not
 *   deciding readiness) and a final `readyz check passed|failed`, as kube-apiserver does.
 * - `/pools`: JSON `{ "listeners": [...], "pools": [...] }`: per listener its address, source
 *   ACL (`access`: counts and at most {@linkcode MAX_SHOWN_ACCESS_ENTRIES} entries per list) and
 *   `maxConnectionsPerSource`; per pool its backends with health (and why and since when),
 *   connections, limits, running totals and draining.
 * - `/metrics`: Prometheus text exposition, computed from the snapshot at scrape time.
 *
 * The server keeps answering when the process is in trouble: `accept` failing for lack of
 * descriptors (`EMFILE`) is retried with a short back-off, and slow, idle or surplus
 * connections are closed after `headerTimeoutMs`, `idleTimeoutMs` or at `maxConnections`.
 *
 * Rejects with `signal.reason` when the signal is already aborted (nothing is bound), and
 * with an `Error` whose `cause` is Deno's error when the address cannot be bound.
 */
export function startAdminServer(options: AdminServerOptions): Promise<AdminServer> {
  // Nothing to serve for a signal aborted before the call, so do not bind at all.
  if (options.signal.aborted) return Promise.reject(options.signal.reason);
  const logger = options.logger ?? getLogger("admin");
  const handler = createAdminHandler({
    snapshot: options.snapshot,
    logger,
    metrics: new AdminMetrics({ processMetrics: options.processMetrics ?? true }),
  });
  let server: ReturnType<typeof serveHttp1>;
  try {
    server = serveHttp1({
      hostname: options.hostname,
      port: options.port,
      signal: options.signal,
      handler,
      onError: (error) => {
        logger.error("Admin request failed: {error}", { error });
        return new Response("internal error\n", { status: 500, headers: { "content-type": TEXT } });
      },
      logger,
      headerTimeoutMs: positive("headerTimeoutMs", options.headerTimeoutMs) ??
        DEFAULT_ADMIN_HEADER_TIMEOUT_MS,
      idleTimeoutMs: positive("idleTimeoutMs", options.idleTimeoutMs) ??
        DEFAULT_ADMIN_IDLE_TIMEOUT_MS,
      writeTimeoutMs: positive("writeTimeoutMs", options.writeTimeoutMs) ??
        DEFAULT_ADMIN_WRITE_TIMEOUT_MS,
      maxConnections: positive("maxConnections", options.maxConnections) ??
        DEFAULT_ADMIN_MAX_CONNECTIONS,
      maxHeaderBytes: positive("maxHeaderBytes", options.maxHeaderBytes) ??
        DEFAULT_ADMIN_MAX_HEADER_BYTES,
      maxHeaders: positive("maxHeaders", options.maxHeaders) ?? DEFAULT_ADMIN_MAX_HEADERS,
    });
  } catch (cause) {
    if (cause instanceof RangeError) return Promise.reject(cause);
    const message = errorMessage(cause);
    return Promise.reject(
      new Error(
        `Cannot start admin server on ${formatAddress(options.hostname, options.port)}: ${message}`,
        { cause },
      ),
    );
  }
  const addr = server.addr;
  logger.info("Admin server listening on {address}", {
    address: formatAddress(addr.hostname, addr.port),
  });
  const finished = server.finished.then(() => {
    logger.debug("Admin server stopped");
  });
  return Promise.resolve({ addr, finished, connections: server.stats });
}

/**
 * Builds the request handler {@linkcode startAdminServer} serves, for embedding the admin
 * routes in another server or testing them without a socket.
 */
export function createAdminHandler(
  options: AdminHandlerOptions,
): (request: Request) => Promise<Response> {
  const logger = options.logger ?? getLogger("admin");
  const metrics = options.metrics ?? new AdminMetrics();
  const now = options.now ?? Date.now;
  const rates = new RateMeter();
  const take = (): AdminSnapshot | Error => {
    try {
      return options.snapshot();
    } catch (cause) {
      logger.error("Admin snapshot failed: {error}", { error: cause });
      return new Error("Cannot take a snapshot", { cause });
    }
  };

  return async (request) => {
    const url = new URL(request.url);
    if (!ROUTES.has(url.pathname)) return text(404, "not found\n");
    if (request.method !== "GET" && request.method !== "HEAD") {
      return text(405, "method not allowed\n", { allow: ALLOW });
    }
    switch (url.pathname) {
      case "/": {
        const snapshot = take();
        if (snapshot instanceof Error) return text(500, "internal error\n");
        const refresh = url.searchParams.get("refresh");
        const refreshSeconds = refresh === null ? undefined : Number(refresh);
        const nowMs = now();
        let body: string;
        try {
          body = renderStatusPage(snapshot, {
            nowMs,
            refreshSeconds,
            rates: rates.update(statusRateTotals(snapshot), nowMs),
          });
        } catch (error) {
          if (error instanceof RangeError) return text(400, `${error.message}\n`);
          throw error;
        }
        return new Response(body, {
          headers: {
            "content-type": "text/html; charset=utf-8",
            "cache-control": "no-store",
            "content-security-policy": STATUS_PAGE_CSP,
            "x-content-type-options": "nosniff",
            "referrer-policy": "no-referrer",
          },
        });
      }
      case "/healthz":
        return text(200, "ok\n");
      case "/readyz": {
        const snapshot = take();
        if (snapshot instanceof Error) return text(503, "not ready: snapshot failed\n");
        const body = url.searchParams.has("verbose")
          ? renderReadyVerbose(snapshot)
          : renderReady(snapshot);
        return text(snapshot.ready ? 200 : 503, body);
      }
      case "/pools": {
        const snapshot = take();
        if (snapshot instanceof Error) return text(500, "internal error\n");
        return new Response(
          JSON.stringify(
            {
              listeners: renderListeners(snapshot),
              pools: renderPools(snapshot),
              ...(snapshot.workers !== undefined && { workers: renderWorkers(snapshot) }),
            },
            null,
            2,
          ) + "\n",
          {
            headers: { "content-type": "application/json", "cache-control": "no-store" },
          },
        );
      }
      default: {
        const snapshot = take();
        if (snapshot instanceof Error) return text(500, "internal error\n");
        const body = await metrics.render(snapshot);
        return new Response(body, {
          headers: { "content-type": metrics.contentType, "cache-control": "no-store" },
        });
      }
    }
  };
}

function text(status: number, body: string, headers: Record<string, string> = {}): Response {
  return new Response(body, {
    status,
    headers: { "content-type": TEXT, "cache-control": "no-store", ...headers },
  });
}

/** One line, so a reason cannot forge check lines in the body. */
function oneLine(text: string): string {
  return text.replace(/[\r\n]+/g, " ").trim();
}

function renderReady(snapshot: AdminSnapshot): string {
  if (snapshot.ready) return "ok\n";
  const reasons = snapshot.readyReasons.map(oneLine).filter((r) => r !== "");
  return reasons.length === 0 ? "not ready\n" : `not ready: ${reasons.join("; ")}\n`;
}

function renderReadyVerbose(snapshot: AdminSnapshot): string {
  const lines: string[] = [];
  const reasons = snapshot.readyReasons.map(oneLine).filter((r) => r !== "");
  if (snapshot.ready) {
    lines.push("[+]ready ok");
    for (const reason of reasons) lines.push(`[!]ready warning: ${reason}`);
  } else if (reasons.length === 0) {
    lines.push("[-]ready failed");
  } else {
    for (const reason of reasons) lines.push(`[-]ready failed: ${reason}`);
  }

  const d = snapshot.discovery;
  const since = d.lastChangeAt === undefined
    ? ""
    : ` since ${new Date(d.lastChangeAt).toISOString()}`;
  const error = d.lastError === undefined ? "" : `: ${oneLine(d.lastError)}`;
  lines.push(
    d.state === "synced"
      ? `[+]discovery ok: ${d.source} synced${since}`
      : `[!]discovery ${d.source} ${d.state}${since}${error}`,
  );

  for (const pool of snapshot.pools) {
    const members = pool.backends.filter((b) => !b.isDraining);
    const eligible = members.filter((b) => b.health !== "unhealthy").length;
    const summary = `${eligible}/${members.length} backends eligible`;
    const failOpen = pool.isFailOpen ? ", fail-open" : "";
    lines.push(
      eligible > 0
        ? `[+]pool ${pool.name} ok: ${summary}${failOpen}`
        : `[!]pool ${pool.name} ${summary}${failOpen}`,
    );
  }

  lines.push(snapshot.ready ? "readyz check passed" : "readyz check failed");
  return lines.join("\n") + "\n";
}

function renderListeners(snapshot: AdminSnapshot): unknown[] {
  return snapshot.listeners.map((l) => ({
    name: l.name,
    address: l.address,
    ...(l.access === undefined ? {} : {
      access: {
        allowCount: l.access.allow.length,
        denyCount: l.access.deny.length,
        allow: l.access.allow.slice(0, MAX_SHOWN_ACCESS_ENTRIES),
        deny: l.access.deny.slice(0, MAX_SHOWN_ACCESS_ENTRIES),
      },
    }),
    ...(l.maxConnectionsPerSource === undefined
      ? {}
      : { maxConnectionsPerSource: l.maxConnectionsPerSource }),
  }));
}

function renderPools(snapshot: AdminSnapshot): unknown[] {
  // Copy the documented fields only, so extra fields of the caller's objects never leak.
  return snapshot.pools.map((p) => ({
    name: p.name,
    isFailOpen: p.isFailOpen,
    ...(p.fingerprint === undefined ? {} : { fingerprint: p.fingerprint }),
    backends: p.backends.map((b) => ({
      key: b.key,
      weight: b.weight,
      health: b.health,
      activeConnections: b.activeConnections,
      isDraining: b.isDraining,
      ...(b.maxConnections ? { maxConnections: b.maxConnections } : {}),
      ...(b.counters === undefined ? {} : {
        connections: b.counters.connections,
        connectFailures: b.counters.connectFailures,
        bytesToBackend: b.counters.bytesToBackend,
        bytesFromBackend: b.counters.bytesFromBackend,
      }),
      ...(b.healthDetail === undefined ? {} : {
        healthCause: b.healthDetail.cause,
        ...(b.healthDetail.error === undefined ? {} : { healthError: b.healthDetail.error }),
        healthSince: new Date(b.healthDetail.sinceMs).toISOString(),
      }),
    })),
  }));
}

function renderWorkers(snapshot: AdminSnapshot): unknown[] {
  return (snapshot.workers ?? []).map((w) => ({
    worker: w.worker,
    restarts: w.restarts,
    accepted: w.accepted,
    activeConnections: w.activeConnections,
    pools: w.pools.map((p) => ({
      name: p.name,
      ...(p.fingerprint === undefined ? {} : { fingerprint: p.fingerprint }),
    })),
  }));
}

/** `undefined` when absent; throws a RangeError unless a positive number. */
function positive(name: string, value: number | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!(value > 0) || !Number.isFinite(value)) {
    throw new RangeError(
      `Cannot start admin server as '${name}' must be a positive number: current value is ${value}`,
    );
  }
  return value;
}

function formatAddress(hostname: string, port: number): string {
  return hostname.includes(":") ? `[${hostname}]:${port}` : `${hostname}:${port}`;
}
