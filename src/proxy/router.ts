/**
 * The seam between accepting a connection and forwarding it: a listener's protocol decides
 * where each accepted connection goes (which picker, which bytes to replay) or refuses it.
 * The listener calls its router once per connection, after admission and after any PROXY
 * header; `forward` then dials and pipes without knowing the protocol.
 *
 * `tcp` is the identity route ({@linkcode TcpRouter}); `tls` reads the ClientHello and picks
 * a route's pool by server name (`tls/tls_router.ts`).
 *
 * @module
 */
import type { ClientInfo, Picker, RoutingRefusalCause } from "../core/types.ts";

/** Where a router sends a connection. */
export interface RouteForward {
  readonly kind: "forward";
  /** Chooses the backend for this connection. */
  readonly picker: Picker;
  /**
   * Client bytes read so far (after any PROXY header), written to the backend first, in
   * one write with an outgoing PROXY header.
   */
  readonly replay: Uint8Array;
  /** The TLS server name, for the access log; absent for other protocols or without SNI. */
  readonly serverName?: string;
}

/** What `forward` needs of a router's choice: the picker, and the server name to log. */
export type Routed = Pick<RouteForward, "picker" | "serverName">;

/** Why a router refuses a connection; the listener counts `cause` and closes it. */
export interface RouteRefusal {
  readonly kind: "refuse";
  /** Counted in `refusedByCause` and logged as the access log outcome. */
  readonly cause: RoutingRefusalCause;
  /** Human detail for the rate-limited warning, e.g. `no route for server name "a.test"`. */
  readonly message: string;
  /** The TLS server name, when one was read. */
  readonly serverName?: string;
}

/** A router's answer for one connection. */
export type RouteDecision = RouteForward | RouteRefusal;

/**
 * Chooses where one accepted connection goes.
 *
 * Socket ownership: the listener owns `conn` throughout; a router may read from it but
 * never closes or writes it. A router that reads must stop when `signal` aborts (the
 * listener is closing the connection) and must never throw: failures are refusals.
 */
export interface ConnectionRouter {
  /**
   * Routes one connection. Synchronous when no byte needs to be read (the TCP path
   * allocates no promise for it).
   * @param conn the accepted client connection; read only
   * @param client the client address (from a PROXY header when one was accepted)
   * @param received client bytes already read (after a PROXY header); not mutated
   * @param signal aborted when the listener closes the connection (shutdown)
   */
  route(
    conn: Deno.TcpConn,
    client: ClientInfo,
    received: Uint8Array,
    signal: AbortSignal,
  ): RouteDecision | Promise<RouteDecision>;
}

/** The `tcp` protocol: every connection goes to one picker with its bytes as they are. */
export class TcpRouter implements ConnectionRouter {
  readonly #picker: Picker;

  /** Routes every connection to `picker`. */
  constructor(picker: Picker) {
    this.#picker = picker;
  }

  /** Always forwards to the picker, replaying `received`. */
  route(_conn: Deno.TcpConn, _client: ClientInfo, received: Uint8Array): RouteForward {
    return { kind: "forward", picker: this.#picker, replay: received };
  }
}
