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
import { Http1Error, indexOfHeadEnd, type ParsedHead, parseHead } from "./_http1_head.ts";
import { AcceptBackoff } from "../core/accept_backoff.ts";
import { closeQuietly, writeAll } from "../core/io.ts";
import { sleep } from "../core/sleep.ts";

/** Options of {@linkcode serveHttp1}; every field is required, defaults live with the caller. */
export interface Http1ServerOptions {
  readonly hostname: string;
  readonly port: number;
  /** Aborting it closes the listener and idle connections; requests in flight finish. */
  readonly signal: AbortSignal;
  readonly handler: (request: Request) => Response | Promise<Response>;
  /** Answers a request whose handler threw. */
  readonly onError: (error: unknown) => Response;
  readonly logger: Logger;
  readonly headerTimeoutMs: number;
  readonly idleTimeoutMs: number;
  /** Budget for writing one response; a client that does not read is closed after it. */
  readonly writeTimeoutMs: number;
  readonly maxConnections: number;
  readonly maxHeaderBytes: number;
  readonly maxHeaders: number;
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

/** Request body bytes read and dropped at most; larger bodies get 413 and a close. */
export const MAX_DISCARDED_BODY_BYTES = 64 * 1024;

/** At most one warning per this period for accept errors and shedding, so abuse cannot flood logs. */
const WARN_INTERVAL_MS = 10_000;
const READ_CHUNK_BYTES = 16 * 1024;

const REASONS: Record<number, string> = {
  200: "OK",
  204: "No Content",
  400: "Bad Request",
  404: "Not Found",
  405: "Method Not Allowed",
  413: "Content Too Large",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  501: "Not Implemented",
  503: "Service Unavailable",
};

const encoder = new TextEncoder();

type State = "head" | "busy";

interface Connection {
  readonly conn: Deno.TcpConn;
  state: State;
  isClosed: boolean;
  close(): void;
}

/**
 * Binds `hostname:port` and serves until `signal` aborts.
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
  const conns = new Set<Connection>();
  const tasks = new Set<Promise<void>>();
  const stats = { openConnections: 0, accepted: 0, timedOut: 0, shed: 0, acceptErrors: 0 };
  let lastAcceptWarnAt = -Infinity;
  let lastShedWarnAt = -Infinity;

  const onAbort = () => {
    try {
      listener.close();
    } catch {
      // Already closed.
    }
    for (const c of conns) if (c.state !== "busy") c.close();
  };
  signal.addEventListener("abort", onAbort, { once: true });
  if (signal.aborted) onAbort();

  const shedFor = (): boolean => {
    if (conns.size < options.maxConnections) return true;
    let victim: Connection | undefined;
    for (const c of conns) {
      if (c.state !== "busy") {
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
      const c = track(conn);
      const task = serveConnection(c).catch((error) => {
        logger.debug("Admin connection failed: {error}", { error: errorMessage(error) });
      }).finally(() => {
        c.close();
        conns.delete(c);
        tasks.delete(task);
      });
      tasks.add(task);
    }
  };

  const track = (conn: Deno.TcpConn): Connection => {
    const c: Connection = {
      conn,
      state: "head",
      isClosed: false,
      close() {
        if (c.isClosed) return;
        c.isClosed = true;
        stats.openConnections--;
        closeQuietly(conn);
      },
    };
    stats.openConnections++;
    conns.add(c);
    return c;
  };

  /** Closes `c` after `ms` unless cancelled. */
  const deadline = (c: Connection, ms: number) => {
    const timer = setTimeout(() => {
      if (c.isClosed) return;
      stats.timedOut++;
      c.close();
    }, ms);
    return { cancel: () => clearTimeout(timer) };
  };

  const serveConnection = async (c: Connection) => {
    let buffered = new Uint8Array(0);
    let isFirst = true;
    const chunk = new Uint8Array(READ_CHUNK_BYTES);
    const readMore = async (): Promise<boolean> => {
      const n = await c.conn.read(chunk);
      if (n === null) return false;
      const next = new Uint8Array(buffered.length + n);
      next.set(buffered);
      next.set(chunk.subarray(0, n), buffered.length);
      buffered = next;
      return true;
    };

    while (!c.isClosed && !signal.aborted) {
      c.state = "head";
      // Before the first byte of a request: the idle budget (the header budget for the
      // first request, which a connection opens for). From the first byte: the header budget.
      let timer = deadline(c, isFirst ? options.headerTimeoutMs : options.idleTimeoutMs);
      let head: ParsedHead | undefined;
      try {
        if (buffered.length === 0) {
          if (!(await readMore())) return;
          if (!isFirst) {
            timer.cancel();
            timer = deadline(c, options.headerTimeoutMs);
          }
        }
        let end: number;
        let searchFrom = 0;
        while ((end = indexOfHeadEnd(buffered, searchFrom)) < 0) {
          if (buffered.length > options.maxHeaderBytes) {
            throw new Http1Error(431, "request head too large");
          }
          searchFrom = Math.max(0, buffered.length - 3);
          if (!(await readMore())) return;
        }
        if (end > options.maxHeaderBytes) throw new Http1Error(431, "request head too large");
        head = parseHead(buffered.subarray(0, end), options.maxHeaders);
        buffered = buffered.subarray(end + 4);
        if (head.bodyLength > 0) {
          if (head.bodyLength > MAX_DISCARDED_BODY_BYTES) {
            throw new Http1Error(413, "request body too large");
          }
          while (buffered.length < head.bodyLength) {
            if (!(await readMore())) return;
          }
          buffered = buffered.subarray(head.bodyLength);
        }
      } catch (error) {
        timer.cancel();
        if (c.isClosed) return;
        if (error instanceof Http1Error) {
          c.state = "busy";
          await writeResponse(c, plain(error.status, `${error.message}\n`), false, true);
          return;
        }
        throw error;
      } finally {
        timer.cancel();
      }
      if (c.isClosed) return;
      isFirst = false;
      c.state = "busy";

      let request: Request | undefined;
      try {
        request = new Request(base + head.target, { method: head.method, headers: head.headers });
      } catch {
        // Request() refuses forbidden methods (CONNECT, TRACE) and some header values.
      }
      let response: Response;
      if (request === undefined) {
        response = plain(400, "bad request\n");
      } else {
        try {
          response = await options.handler(request);
        } catch (error) {
          response = options.onError(error);
        }
      }
      const keepAlive = head.keepAlive && request !== undefined && !signal.aborted;
      await writeResponse(c, response, head.method === "HEAD", !keepAlive);
      if (!keepAlive) return;
    }
  };

  const writeResponse = async (
    c: Connection,
    response: Response,
    isHead: boolean,
    isLast: boolean,
  ): Promise<void> => {
    const timer = deadline(c, options.writeTimeoutMs);
    try {
      const body = new Uint8Array(await response.arrayBuffer());
      let text = `HTTP/1.1 ${response.status} ${REASONS[response.status] ?? ""}\r\n`;
      for (const [name, value] of response.headers) {
        if (name === "content-length" || name === "connection" || name === "transfer-encoding") {
          continue;
        }
        text += `${name}: ${value}\r\n`;
      }
      text += `date: ${new Date().toUTCString()}\r\n`;
      text += `content-length: ${body.length}\r\n`;
      if (isLast) text += "connection: close\r\n";
      text += "\r\n";
      const headBytes = encoder.encode(text);
      await writeAll(c.conn, headBytes);
      if (!isHead && body.length > 0) await writeAll(c.conn, body);
    } catch (error) {
      if (!c.isClosed) throw error;
    } finally {
      timer.cancel();
    }
    if (isLast) {
      // Half-close first so the answer is not lost to a reset from unread client bytes.
      try {
        await c.conn.closeWrite();
      } catch {
        // The peer is gone already.
      }
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

function plain(status: number, body: string): Response {
  return new Response(body, {
    status,
    headers: { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store" },
  });
}
