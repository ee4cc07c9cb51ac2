/**
 * Vocabulary shared by every layer: backends, pools, pickers.
 *
 * Words: a *backend* is an address the load balancer forwards to; a *pool* is the
 * backends of one listener; *endpoint* is used only for Kubernetes EndpointSlice entries.
 *
 * @module
 */

/** Transport of a listener, spelled as in config under `protocol:`. */
export type ListenerProtocol = "tcp" | "tls" | "udp";

/** Every {@linkcode ListenerProtocol}, in documentation order. */
export const LISTENER_PROTOCOLS: readonly ListenerProtocol[] = ["tcp", "tls", "udp"];

/** Names accepted in config under `balancer:`. */
export type BalancerKind = "round_robin" | "least_connections" | "random_two" | "maglev";

/** Every {@linkcode BalancerKind}, in documentation order. */
export const BALANCER_KINDS: readonly BalancerKind[] = [
  "round_robin",
  "least_connections",
  "random_two",
  "maglev",
];

/**
 * Health of a backend, one vocabulary for the health checker, the pool and admin; spelled
 * the same in JSON output and metrics labels. `unknown` (no verdict yet, or checks off) is
 * eligible for traffic like `healthy`.
 */
export type BackendHealth = "healthy" | "unhealthy" | "unknown";

/** Every {@linkcode BackendHealth}, in the order metrics list them. */
export const BACKEND_HEALTHS: readonly BackendHealth[] = ["unknown", "healthy", "unhealthy"];

/**
 * PROXY protocol versions, spelled as in config and in the
 * `nautiluslb.cloudresty.io/proxy-protocol` annotation.
 * @see https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt
 */
export type ProxyProtocolVersion = "v1" | "v2";

/** An address the load balancer forwards to. Immutable; identity is {@linkcode Backend.key}. */
export interface Backend {
  /** `host:port`, IPv6 hosts in brackets (`[::1]:80`). Unique within a pool. */
  readonly key: string;
  /** Host name or IP address, without brackets. */
  readonly host: string;
  /** TCP port, 1-65535. */
  readonly port: number;
  /**
   * Relative share of new connections; 0 takes none.
   * @default {1}
   */
  readonly weight: number;
  /**
   * Send a PROXY protocol header of this version to the backend before any client byte;
   * absent sends none.
   */
  readonly proxyProtocol?: ProxyProtocolVersion;
  /**
   * Connections this backend takes at most (from the per-Service annotation); absent or 0
   * means the pool's own limit applies.
   */
  readonly maxConnections?: number;
}

/** A backend as a balancer sees it: the backend plus its live connection count. */
export interface Candidate {
  /** What the balancer chooses between; weighted policies read its `weight`. */
  readonly backend: Backend;
  /** Connections currently forwarded to this backend by this process. */
  readonly activeConnections: number;
  /**
   * Connections this backend may take; at `activeConnections >= maxConnections` it is full
   * and every balancer skips it. Absent or 0: no limit.
   */
  readonly maxConnections?: number;
}

/** What a balancer may know about the client of a new connection. */
export interface ClientInfo {
  /** Client IP address without brackets or port, e.g. `203.0.113.7` or `2001:db8::1`. */
  readonly address: string;
  /** Client source port. */
  readonly port: number;
}

/** A load-balancing policy. Implementations are pure: no I/O, no timers. */
export interface Balancer {
  /** The policy's name, as written under `balancer:` in config. */
  readonly kind: BalancerKind;
  /**
   * Picks a backend for a new client connection.
   *
   * The same `candidates` array (by identity) is passed again until the pool changes, so an
   * implementation may cache derived tables keyed on it.
   *
   * @param candidates the eligible backends of one pool; never mutated
   * @returns the chosen candidate's index, or `-1` when `candidates` is empty, every weight
   *   is 0 or every candidate with a weight is full (see {@linkcode Candidate.maxConnections})
   */
  pick(candidates: readonly Candidate[], client: ClientInfo): number;
  /**
   * A short digest of the state that decides picks (Maglev: the lookup table), so replicas
   * can be checked to agree. Only for policies whose picks are a pure function of it.
   */
  fingerprint?(candidates: readonly Candidate[]): string;
}

/**
 * Running totals of one backend, kept by the pool and added to by the proxy. Monotonic while
 * the backend stays in its pool; a backend removed and added again starts from 0.
 */
export interface BackendCounters {
  /** Connections established to the backend. */
  connections: number;
  /** Connect attempts to the backend that failed, whatever the cause. */
  connectFailures: number;
  /** Bytes read from clients and written to the backend. */
  bytesToBackend: number;
  /** Bytes read from the backend and written to clients. */
  bytesFromBackend: number;
}

/**
 * A backend handed out for one client connection. The holder must call
 * {@linkcode Lease.release} exactly once when the connection to the backend ends
 * (or the connect attempt fails); further calls are ignored.
 */
export interface Lease {
  /** The backend chosen for this connection attempt; dial its `host` and `port`. */
  readonly backend: Backend;
  /**
   * Aborted when the connection must be closed by the pool's decision: the backend was
   * removed and its drain time ran out, or it was removed with `onRemoval: close`.
   */
  readonly signal: AbortSignal;
  /**
   * The backend's running totals; the holder adds its connection, failure and bytes to them.
   * Absent when the picker keeps none.
   */
  readonly counters?: BackendCounters;
  /** Reports the outcome of the connect attempt (feeds passive health checking). */
  reportConnect(ok: boolean, error?: unknown): void;
  /** Gives the backend slot back. Idempotent. */
  release(): void;
}

/**
 * Why a listener's router refused a connection: no ClientHello within `peekTimeout`, a
 * ClientHello over `maxClientHello`, no route for its server name and no default route, or
 * bytes that are not a ClientHello.
 */
export type RoutingRefusalCause =
  | "tls_peek_timeout"
  | "tls_hello_too_large"
  | "tls_no_route"
  | "tls_bad_hello";

/**
 * Why a client connection was refused before any byte was forwarded: a connection limit
 * (`maxConnections`, `maxConnectionsPerBackend`), no eligible backend, a bad PROXY protocol
 * header, a PROXY header from an untrusted peer, a peer the source ACL refuses (`acl`), a
 * client at `maxConnectionsPerSource` (`source_limit`), or a router's refusal
 * ({@linkcode RoutingRefusalCause}). Spelled the same in metrics labels.
 */
export type RefusalCause =
  | "limit"
  | "no_backend"
  | "proxy_header"
  | "untrusted"
  | "acl"
  | "source_limit"
  | RoutingRefusalCause;

/** Every {@linkcode RefusalCause}, in the order metrics list them. */
export const REFUSAL_CAUSES: readonly RefusalCause[] = [
  "limit",
  "no_backend",
  "proxy_header",
  "untrusted",
  "acl",
  "source_limit",
  "tls_peek_timeout",
  "tls_hello_too_large",
  "tls_no_route",
  "tls_bad_hello",
];

/**
 * Why a picker returned no backend: no members, none healthy, every untried one tried, or
 * every eligible one at its connection limit (`full`).
 */
export type NoBackendReason = "empty" | "all_unhealthy" | "exhausted" | "full";

/**
 * The seam between the proxy and live pool state. The proxy asks for a backend per connection
 * attempt; the implementation (the pool) owns membership, health and connection counts.
 */
export interface Picker {
  /** Pool name, for logs and metrics. */
  readonly name: string;
  /**
   * Picks a backend for a new connection attempt and counts it as active.
   * @param client the connecting client
   * @param exclude backend keys already tried for this client connection
   * @param after on a retry, the key of this client's previous attempt: the balancer is not
   *   asked again (one pick per client keeps its rotation even) and the next eligible,
   *   untried backend after `after` in key order is taken instead
   * @returns a lease, or the reason there is none
   */
  acquire(
    client: ClientInfo,
    exclude: ReadonlySet<string>,
    after?: string,
  ): Lease | NoBackendReason;
}
