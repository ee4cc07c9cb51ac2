/**
 * The one declaration of a listener's settings, as {@linkcode PoolSpec} is for its pool's
 * membership: config's `ListenerConfig` extends it (with the defaults it fills in), the data
 * plane takes it as it is (a few fields optional), the proxy listener picks what it can
 * change on a running listener and forwarding picks {@linkcode ForwardSpec}.
 *
 * @module
 */
import type { StaticBackendSpec } from "./pool_spec.ts";
import type { BalancerKind, ListenerProtocol } from "./types.ts";

/** What a removed backend's open connections get: `drain` until the drain deadline, or `close`. */
export type OnRemoval = "drain" | "close";

/** What new connections get when no backend is healthy: `reject`, or fail open to `any` member. */
export type WhenAllUnhealthy = "reject" | "any";

/** How one client connection is forwarded: budgets and attempts. */
export interface ForwardSpec {
  /**
   * Budget from accepting a client to an established backend connection, across all
   * connect attempts (the original NautilusLB's `requestTimeout`).
   */
  readonly requestTimeoutMs: number;
  /** Per connect attempt; capped by the time left of `requestTimeoutMs`. */
  readonly connectTimeoutMs: number;
  /** Close a proxied connection after this long without bytes either way; 0 disables. */
  readonly idleTimeoutMs: number;
  /** Distinct backends tried per client connection. */
  readonly maxConnectAttempts: number;
}

/**
 * A source ACL (CIDR blocks as written), checked on the transport peer before a byte is read:
 * a peer in `deny` is refused; otherwise, with `allow` non-empty, a peer outside it is.
 * Deny wins.
 */
export interface AccessSpec {
  /** Peers that may connect; `[]` admits every peer not denied. */
  readonly allow: readonly string[];
  /** Peers refused whatever `allow` says. */
  readonly deny: readonly string[];
}

/**
 * Session settings of a `protocol: udp` listener (`udp:` in YAML, named as in the original
 * NautilusLB); defaults are the `DEFAULT_UDP_*` constants of `proxy/udp`.
 */
export interface UdpSpec {
  /** A session without a datagram either way for this long ends. */
  readonly sessionIdleTimeoutMs: number;
  /** Sessions open at once, across workers; datagrams that would open more are dropped. 0 = unlimited. */
  readonly maxSessions: number;
  /** Sessions open at once per client address. 0 = unlimited. */
  readonly maxSessionsPerSource: number;
  /** Largest datagram forwarded, in bytes (1-65507); longer ones are dropped, never truncated. */
  readonly bufferSize: number;
  /**
   * A client datagram unanswered this long ends its session and counts against the backend
   * (passive health); 0 turns it off, for one-way protocols such as syslog.
   */
  readonly replyTimeoutMs: number;
}

/** One listener: where it accepts, whom it admits, how its pool picks and drains. */
export interface ListenerSpec extends ForwardSpec {
  /** Listener (and pool) name; the key of all per-listener state and the metrics label. */
  readonly name: string;
  /** Host to bind; `""` binds every IPv4 interface (see `bindHostname`). */
  readonly host: string;
  /** Port to bind; 0 picks a free one (tests only: config requires 1-65535). */
  readonly port: number;
  /** Pick policy for new connections. */
  readonly balancer: BalancerKind;
  /** Maglev lookup table size, a prime. */
  readonly maglevTableSize: number;
  /** Maglev hash seed; replicas that must agree use the same seed. */
  readonly maglevSeed: number;
  /** Concurrent client connections; excess is refused at once. 0 = unlimited. */
  readonly maxConnections: number;
  /**
   * Concurrent connections per backend (a Service annotation may set its own); a full
   * backend is skipped by every balancer. 0 = unlimited.
   */
  readonly maxConnectionsPerBackend: number;
  /** How long connections may finish on shutdown or backend removal. */
  readonly drainTimeoutMs: number;
  /** What open connections of a removed backend get. */
  readonly onRemoval: OnRemoval;
  /** With no healthy backend: reject new connections, or fail open. */
  readonly whenAllUnhealthy: WhenAllUnhealthy;
  /** One access log line per closed client connection. */
  readonly accessLog: boolean;
  /**
   * Expect a PROXY protocol header (v1 or v2) from an outer load balancer on every client
   * connection; only peers in `trustedProxies` may connect.
   */
  readonly acceptProxyProtocol: boolean;
  /** CIDR blocks allowed to connect while `acceptProxyProtocol` is on; `[]` when off. */
  readonly trustedProxies: readonly string[];
  /** Time from accept to a complete PROXY header. */
  readonly proxyHeaderTimeoutMs: number;
  /**
   * Source ACL; config merges the listener's with `settings.access` (its `allow` replaces
   * the settings' one, `deny` lists add up, so a settings-wide blocklist always holds).
   */
  readonly access: AccessSpec;
  /**
   * Concurrent connections from one client address, across workers; excess is refused with
   * cause `source_limit`. With `acceptProxyProtocol` the address from the header counts.
   * 0 = unlimited.
   */
  readonly maxConnectionsPerSource: number;
  /**
   * A backend that joins the pool or turns healthy ramps its share of new connections from
   * near 0 to its full weight over this long (not with `maglev`). 0 = off.
   */
  readonly slowStartMs: number;
  /** Session settings; present exactly when the listener's `protocol` is `udp`. */
  readonly udp?: UdpSpec;
  /** Transport: `tcp`, `tls` (passthrough) or `udp` (sessions). */
  readonly protocol: ListenerProtocol;
  /** With `protocol: tls`: routes by server name, each its own pool `listener/route`. */
  readonly tls?: TlsSpec;
}

/** One route of a `tls` listener, as written under `tls.routes[]`. */
export interface TlsRouteSpec {
  /** Route name, unique in its listener; its pool is `listener/route`. */
  readonly name: string;
  /** Host patterns: `a.example.com`, `*.example.com` (one label), `**.example.com` (any depth). */
  readonly hosts: readonly string[];
  /** Kubernetes Service port name of the route's backends; the listener's when absent. */
  readonly backendPortName?: string;
  /** Static backends of the route; `[]` when none. */
  readonly backends: readonly StaticBackendSpec[];
}

/** The `tls:` block of a listener with `protocol: tls`. */
export interface TlsSpec {
  /** Routes, in file order; at least one. */
  readonly routes: readonly TlsRouteSpec[];
  /** Route for no server name, an unmatched one, or non-TLS bytes; refused when absent. */
  readonly defaultRoute?: string;
  /** Time from accept (or the PROXY header) to a complete ClientHello. @default {5000} */
  readonly peekTimeoutMs: number;
  /**
   * Most bytes read before the ClientHello is complete, record headers included.
   * @default {16384}
   */
  readonly maxClientHelloBytes: number;
}
