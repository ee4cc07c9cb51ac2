/**
 * One connection of the admin HTTP/1.1 server: reads request heads under the header and
 * idle budgets, drops small bodies, runs the handler and writes each response under the
 * write budget. The accept loop, the connection cap and shedding are `_http1.ts`'s.
 *
 * @module
 */
import { closeQuietly, writeAll } from "../core/io.ts";
import { Http1Error, indexOfHeadEnd, type ParsedHead, parseHead } from "./_http1_head.ts";

/** Request body bytes read and dropped at most; larger bodies get 413 and a close. */
export const MAX_DISCARDED_BODY_BYTES = 64 * 1024;

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

/** What every connection of one server shares; every field is required. */
export interface Http1ConnectionOptions {
  readonly handler: (request: Request) => Response | Promise<Response>;
  /** Answers a request whose handler threw. */
  readonly onError: (error: unknown) => Response;
  /** From the first byte of a request (from the accept, for the first) to its whole head. */
  readonly headerTimeoutMs: number;
  /** From a response to the first byte of the next request. */
  readonly idleTimeoutMs: number;
  /** Budget for writing one response; a client that does not read is closed after it. */
  readonly writeTimeoutMs: number;
  readonly maxHeaderBytes: number;
  readonly maxHeaders: number;
}

/** Counters the connections of one server write. */
export interface Http1ConnectionStats {
  /** Connections open now. */
  openConnections: number;
  /** Connections closed by a header, idle or write timeout. */
  timedOut: number;
}

/**
 * One accepted connection. It owns the socket from construction: {@linkcode close} is the
 * only way it is closed, by the connection itself, its timers or the server (shedding,
 * shutdown). `state` is `head` while waiting for or reading a request head, `busy` while a
 * request runs; the server sheds only connections in `head`.
 */
export class Http1Connection {
  readonly #conn: Deno.TcpConn;
  readonly #options: Http1ConnectionOptions;
  readonly #stats: Http1ConnectionStats;
  /** `http://host:port` of the server, to build request URLs. */
  readonly #base: string;
  readonly #signal: AbortSignal;
  #state: "head" | "busy" = "head";
  #isClosed = false;

  /** Counts the connection open in `stats` at once. */
  constructor(
    conn: Deno.TcpConn,
    options: Http1ConnectionOptions,
    stats: Http1ConnectionStats,
    base: string,
    signal: AbortSignal,
  ) {
    this.#conn = conn;
    this.#options = options;
    this.#stats = stats;
    this.#base = base;
    this.#signal = signal;
    stats.openConnections++;
  }

  /** `busy` while a request runs; such a connection is never shed. */
  get isBusy(): boolean {
    return this.#state === "busy";
  }

  /** True once closed, by anyone. */
  get isClosed(): boolean {
    return this.#isClosed;
  }

  /** Closes the socket; idempotent. */
  close(): void {
    if (this.#isClosed) return;
    this.#isClosed = true;
    this.#stats.openConnections--;
    closeQuietly(this.#conn);
  }

  /**
   * Serves requests until the client or a side ends the connection, a budget passes, or
   * `signal` aborts between requests. Does not close the connection: the caller does.
   * @throws what reading or writing throws while the connection is open
   */
  async serve(): Promise<void> {
    const options = this.#options;
    let buffered = new Uint8Array(0);
    let isFirst = true;
    const chunk = new Uint8Array(READ_CHUNK_BYTES);
    const readMore = async (): Promise<boolean> => {
      const n = await this.#conn.read(chunk);
      if (n === null) return false;
      const next = new Uint8Array(buffered.length + n);
      next.set(buffered);
      next.set(chunk.subarray(0, n), buffered.length);
      buffered = next;
      return true;
    };

    while (!this.#isClosed && !this.#signal.aborted) {
      this.#state = "head";
      // Before the first byte of a request: the idle budget (the header budget for the
      // first request, which a connection opens for). From the first byte: the header budget.
      let timer = this.#closeAfter(isFirst ? options.headerTimeoutMs : options.idleTimeoutMs);
      let head: ParsedHead | undefined;
      try {
        if (buffered.length === 0) {
          if (!(await readMore())) return;
          if (!isFirst) {
            timer.cancel();
            timer = this.#closeAfter(options.headerTimeoutMs);
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
        if (this.#isClosed) return;
        if (error instanceof Http1Error) {
          this.#state = "busy";
          await this.#writeResponse(plain(error.status, `${error.message}\n`), false, true);
          return;
        }
        throw error;
      } finally {
        timer.cancel();
      }
      if (this.#isClosed) return;
      isFirst = false;
      this.#state = "busy";

      let request: Request | undefined;
      try {
        request = new Request(this.#base + head.target, {
          method: head.method,
          headers: head.headers,
        });
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
      const keepAlive = head.keepAlive && request !== undefined && !this.#signal.aborted;
      await this.#writeResponse(response, head.method === "HEAD", !keepAlive);
      if (!keepAlive) return;
    }
  }

  /** Closes the connection after `ms` (counted as a timeout) unless cancelled. */
  #closeAfter(ms: number): { cancel(): void } {
    const timer = setTimeout(() => {
      if (this.#isClosed) return;
      this.#stats.timedOut++;
      this.close();
    }, ms);
    return { cancel: () => clearTimeout(timer) };
  }

  async #writeResponse(response: Response, isHead: boolean, isLast: boolean): Promise<void> {
    const timer = this.#closeAfter(this.#options.writeTimeoutMs);
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
      await writeAll(this.#conn, encoder.encode(text));
      if (!isHead && body.length > 0) await writeAll(this.#conn, body);
    } catch (error) {
      if (!this.#isClosed) throw error;
    } finally {
      timer.cancel();
    }
    if (isLast) {
      // Half-close first so the answer is not lost to a reset from unread client bytes.
      try {
        await this.#conn.closeWrite();
      } catch {
        // The peer is gone already.
      }
    }
  }
}

function plain(status: number, body: string): Response {
  return new Response(body, {
    status,
    headers: { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store" },
  });
}
