/**
 * A small HTTP/1.1 server over `Deno.listen`, private to admin/.
 *
 * `Deno.serve` offers no header-read or keep-alive timeout and no connection cap, and its
 * accept loop ends for good (with an unhandled rejection) the first time `accept` fails with
 * `EMFILE`. The admin endpoints must stay reachable exactly when the process is in trouble,
 * so this server owns its accept loop and every connection:
 *
 * - `accept` failing for lack of descriptors (`EMFILE`, `ENFILE`, …) is logged and retried
 *   with a short exponential back-off; the pending connection waits in the kernel backlog.
 * - A connection must deliver its request head within `headerTimeoutMs` of its first byte
 *   (of the accept for the first request), and the next request within `idleTimeoutMs` of a
 *   response; otherwise it is closed without an answer. That sheds silent and slowloris
 *   clients.
 * - At most `maxConnections` are open. At the cap, a new connection replaces the oldest
 *   one that is not running a request (idle or still sending its head), so abusers cannot
 *   lock out a prober that sends its request at once; when every connection is busy, the
 *   new one is closed.
 * - Request heads above `maxHeaderBytes` or `maxHeaders` get 431, malformed ones 400, and
 *   the connection is closed. Request bodies are read and dropped up to
 *   {@linkcode MAX_DISCARDED_BODY_BYTES}; chunked bodies get 501.
 *
 * Only origin-form targets (`/path?query`) are served. HTTP/1.0 connections close after
 * one response; HTTP/1.1 ones stay open unless a side sends `Connection: close`.
 *
 * @module
 */
import type { Logger } from "../log/mod.ts";
import { errorMessage } from "../core/error_message.ts";
import { AcceptBackoff } from "../core/accept_backoff.ts";
import { closeQuietly } from "../core/io.ts";
import { sleep } from "../core/sleep.ts";
import { Http1Connection, type Http1ConnectionOptions } from "./_http1_connection.ts";

export { MAX_DISCARDED_BODY_BYTES } from "./_http1_connection.ts";

/**
 * Options of {@linkcode serveHttp1}: where to listen and the per-connection options; every
 * field is required, defaults live with the caller.
 */
export interface Http1ServerOptions extends Http1ConnectionOptions {
  readonly hostname: string;
  readonly port: number;
  /** Aborting it closes the listener and idle connections; requests in flight finish. */
  readonly signal: AbortSignal;
  readonly logger: Logger;
  readonly maxConnections: number;
}

/** Counters of a running {@linkcode Http1Server}, for tests and diagnostics. */
export interface Http1ServerStats {
  /** Connections open now. */
  readonly openConnections: number;
  /** Connections accepted since start. */
  readonly accepted: number;
  /** Connections closed by a header, idle or write timeout. */
  readonly timedOut: number;
  /** Connections closed to make room for a new one at the cap, or refused at it. */
  readonly shed: number;
  /** `accept` calls that failed (e.g. `EMFILE`) and were retried. */
  readonly acceptErrors: number;
}

/** A running server. */
export interface Http1Server {
  readonly addr: Deno.NetAddr;
  /** Settles once the listener and every connection are closed after the signal aborted. */
  readonly finished: Promise<void>;
  /** Live counters; read-only for callers. */
  readonly stats: Http1ServerStats;
}

/** At most one warning per this period for accept errors and shedding, so abuse cannot flood logs. */
const WARN_INTERVAL_MS = 10_000;

/**
 * Binds `hostname:port` and serves until `signal` aborts: an accept loop with the shared
 * back-off, the connection cap with shedding, and one {@linkcode Http1Connection} per
 * accepted socket.
 *
 * @throws the error of `Deno.listen` when the address cannot be bound
 */
export function serveHttp1(options: Http1ServerOptions): Http1Server {
  const listener = Deno.listen({
    hostname: options.hostname,
    port: options.port,
    transport: "tcp",
  });
  const addr = listener.addr;
  const base = `http://${
    addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname
  }:${addr.port}`;
  const { logger, signal } = options;
  const conns = new Set<Http1Connection>();
  const tasks = new Set<Promise<void>>();
  const stats = { openConnections: 0, accepted: 0, timedOut: 0, shed: 0, acceptErrors: 0 };
  let lastAcceptWarnAt = -Infinity;
  let lastShedWarnAt = -Infinity;

  const onAbort = () => {
    closeQuietly(listener);
    for (const c of conns) if (!c.isBusy) c.close();
  };
  signal.addEventListener("abort", onAbort, { once: true });
  if (signal.aborted) onAbort();

  /** Makes room for one more connection: true when there is room (now). */
  const shedFor = (): boolean => {
    if (conns.size < options.maxConnections) return true;
    let victim: Http1Connection | undefined;
    for (const c of conns) {
      if (!c.isBusy) {
        victim = c;
        break;
      }
    }
    stats.shed++;
    const now = performance.now();
    if (now - lastShedWarnAt >= WARN_INTERVAL_MS) {
      lastShedWarnAt = now;
      logger.warn(
        "Admin server at {maxConnections} connections: closing the oldest idle one for each new one",
        { maxConnections: options.maxConnections },
      );
    }
    if (victim === undefined) return false;
    victim.close();
    conns.delete(victim);
    return true;
  };

  const acceptLoop = async () => {
    const backoff = new AcceptBackoff();
    while (!signal.aborted) {
      let conn: Deno.TcpConn;
      try {
        conn = await listener.accept();
        backoff.reset();
      } catch (error) {
        if (signal.aborted || error instanceof Deno.errors.BadResource) break;
        stats.acceptErrors++;
        const now = performance.now();
        if (now - lastAcceptWarnAt >= WARN_INTERVAL_MS) {
          lastAcceptWarnAt = now;
          // The message only: formatting a stack trace can itself need a descriptor.
          logger.warn("Admin server cannot accept a connection, retrying: {error}", {
            error: errorMessage(error),
          });
        }
        await sleep(backoff.next(), signal);
        continue;
      }
      stats.accepted++;
      if (signal.aborted || !shedFor()) {
        closeQuietly(conn);
        continue;
      }
      const c = new Http1Connection(conn, options, stats, base, signal);
      conns.add(c);
      const task = c.serve().catch((error) => {
        logger.debug("Admin connection failed: {error}", { error: errorMessage(error) });
      }).finally(() => {
        c.close();
        conns.delete(c);
        tasks.delete(task);
      });
      tasks.add(task);
    }
  };

  const loop = acceptLoop();
  const finished = (async () => {
    await loop;
    while (tasks.size > 0) await Promise.allSettled([...tasks]);
    signal.removeEventListener("abort", onAbort);
  })();

  return { addr, finished, stats };
}
