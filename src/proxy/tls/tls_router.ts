/**
 * The `tls` listener protocol: read the ClientHello without terminating TLS, choose a route
 * by its server name, and replay every byte read to the route's pool.
 *
 * Decisions, in order:
 * - no complete ClientHello within `peekTimeoutMs` → refused, `tls_peek_timeout` (also for
 *   server-first protocols such as SSH or SMTP, whose clients wait for the server);
 * - more than `maxClientHelloBytes` before the hello ends → refused, `tls_hello_too_large`;
 * - bytes that are not a TLS ClientHello (plain text, SSLv2) → the default route, else
 *   refused, `tls_bad_hello`;
 * - a server name a route's hosts match → that route;
 * - no server name, or one no route matches → the default route, else refused,
 *   `tls_no_route`.
 *
 * @module
 */
import { deadline, isTimeout } from "../../core/deadline.ts";
import { errorMessage } from "../../core/error_message.ts";
import type { ClientInfo, Picker } from "../../core/types.ts";
import type { ConnectionRouter, RouteDecision } from "../router.ts";
import {
  type ClientHelloProgress,
  ClientHelloReader,
  DEFAULT_MAX_CLIENT_HELLO_BYTES,
} from "./client_hello.ts";
import { RouteTable } from "./route_table.ts";

/** Default of {@linkcode TlsRouterOptions.peekTimeoutMs}: 5 s, as the original's `peekTimeout`. */
export const DEFAULT_PEEK_TIMEOUT_MS = 5_000;

/** One route of a TLS listener. */
export interface TlsRoute {
  /** Route name, unique in the listener; its pool is named `listener/route`. */
  readonly name: string;
  /** Host patterns (see `route_table.ts`): exact, `*.suffix` (one label), `**.suffix`. */
  readonly hosts: readonly string[];
  /** The route's pool. */
  readonly picker: Picker;
}

/** Options of {@linkcode TlsRouter}. */
export interface TlsRouterOptions {
  /** Routes; host patterns must parse (config checks them first). */
  readonly routes: readonly TlsRoute[];
  /**
   * Name of the route for connections without a server name, with one no route matches, or
   * with bytes that are not TLS; such connections are refused when absent.
   */
  readonly defaultRoute?: string;
  /** Time from accept (or the PROXY header) to a complete ClientHello. @default {5000} */
  readonly peekTimeoutMs?: number;
  /**
   * Most bytes read before the ClientHello is complete, record headers included.
   * @default {16384}
   */
  readonly maxClientHelloBytes?: number;
}

const READ_BYTES = 4096;
/** A read may bring bytes past the hello (e.g. early data); they are replayed too. */
const RECORD_SLACK = 64;

/**
 * Routes TLS connections by server name. Immutable: a reload builds a new router for the
 * listener's next generation; connections being read keep the router they started with.
 */
export class TlsRouter implements ConnectionRouter {
  readonly #table: RouteTable<TlsRoute>;
  readonly #default: TlsRoute | undefined;
  readonly #peekTimeoutMs: number;
  readonly #maxBytes: number;

  /**
   * Compiles the routes.
   * @throws {SyntaxError} on a host pattern that does not parse
   * @throws {RangeError} when `defaultRoute` names no route
   */
  constructor(options: TlsRouterOptions) {
    this.#table = new RouteTable(options.routes);
    if (options.defaultRoute !== undefined) {
      this.#default = options.routes.find((r) => r.name === options.defaultRoute);
      if (this.#default === undefined) {
        throw new RangeError(
          `Cannot use default route ${
            JSON.stringify(options.defaultRoute)
          }: no route has that name`,
        );
      }
    }
    this.#peekTimeoutMs = options.peekTimeoutMs ?? DEFAULT_PEEK_TIMEOUT_MS;
    this.#maxBytes = options.maxClientHelloBytes ?? DEFAULT_MAX_CLIENT_HELLO_BYTES;
  }

  /**
   * Chooses a route from a server name alone (no I/O): what a connection with that name
   * gets. `undefined` is "no server name".
   */
  decide(serverName: string | undefined): TlsRoute | undefined {
    const matched = serverName === undefined ? undefined : this.#table.match(serverName);
    return matched ?? this.#default;
  }

  /** Reads the ClientHello from `conn` and routes; bytes read past it are replayed too. */
  async route(
    conn: Deno.TcpConn,
    _client: ClientInfo,
    received: Uint8Array,
    signal: AbortSignal,
  ): Promise<RouteDecision> {
    const reader = new ClientHelloReader({ maxBytes: this.#maxBytes });
    const pieces: Uint8Array[] = [];
    let progress: ClientHelloProgress = reader.progress;
    if (received.length > 0) {
      pieces.push(received);
      progress = reader.push(received);
    }
    if (progress.kind === "more") {
      const read = await this.#readHello(conn, reader, pieces, signal);
      if (typeof read === "object") return read;
      progress = read === "done" ? reader.progress : progress;
    }
    if (progress.kind === "more") {
      return {
        kind: "refuse",
        cause: "tls_bad_hello",
        message: "the client closed before its ClientHello ended",
      };
    }
    const replay = pieces.length === 1 ? pieces[0]! : concatAll(pieces);
    if (progress.kind === "error") {
      if (progress.problem === "too_large") {
        return { kind: "refuse", cause: "tls_hello_too_large", message: progress.message };
      }
      if (this.#default !== undefined) {
        return { kind: "forward", picker: this.#default.picker, replay };
      }
      return { kind: "refuse", cause: "tls_bad_hello", message: progress.message };
    }
    const serverName = progress.hello.serverName;
    const route = this.decide(serverName);
    if (route === undefined) {
      return {
        kind: "refuse",
        cause: "tls_no_route",
        message: serverName === undefined
          ? "the ClientHello has no server name and there is no default route"
          : `no route for server name ${JSON.stringify(serverName)}`,
        ...(serverName !== undefined && { serverName }),
      };
    }
    return {
      kind: "forward",
      picker: route.picker,
      replay,
      ...(serverName !== undefined && { serverName }),
    };
  }

  /**
   * Reads until the reader is final, EOF, the peek timeout or `signal`.
   * @returns `done` when the reader is final, `eof` at end of stream, or a refusal
   */
  async #readHello(
    conn: Deno.TcpConn,
    reader: ClientHelloReader,
    pieces: Uint8Array[],
    signal: AbortSignal,
  ): Promise<"done" | "eof" | RouteDecision> {
    const timeoutMs = this.#peekTimeoutMs;
    const until = performance.now() + timeoutMs;
    // One buffer per connection; what was read is copied out, so a client sending one
    // byte per segment holds bytes, not buffers.
    const buffer = new Uint8Array(Math.min(READ_BYTES, this.#maxBytes + RECORD_SLACK));
    while (true) {
      const reading = conn.read(buffer);
      let n: number | null;
      try {
        n = await deadline(reading, until - performance.now(), signal);
      } catch (error) {
        // On timeout or abort the listener closes the connection, which ends the read.
        reading.catch(() => {});
        if (isTimeout(error) || signal.aborted) {
          return {
            kind: "refuse",
            cause: "tls_peek_timeout",
            message: signal.aborted
              ? "the listener closed the connection"
              : `no complete ClientHello within ${timeoutMs}ms`,
          };
        }
        return {
          kind: "refuse",
          cause: "tls_bad_hello",
          message: `cannot read the ClientHello: ${errorMessage(error)}`,
        };
      }
      if (n === null) return "eof";
      const piece = buffer.slice(0, n);
      pieces.push(piece);
      if (reader.push(piece).kind !== "more") return "done";
    }
  }
}

function concatAll(pieces: readonly Uint8Array[]): Uint8Array {
  let length = 0;
  for (const piece of pieces) length += piece.length;
  const out = new Uint8Array(length);
  let at = 0;
  for (const piece of pieces) {
    out.set(piece, at);
    at += piece.length;
  }
  return out;
}
