/**
 * Pool plans: which backends a listener's pool has and why the others were left out.
 * resolve/ produces them; `discover` prints them; the pool applies them.
 *
 * @module
 */
import type {
  BackendMode,
  HealthCheckSpec,
  NodeAddressType,
  StaticBackendSpec,
} from "./pool_spec.ts";
import type { Backend, ListenerProtocol, ProxyProtocolVersion } from "./types.ts";

export type { BackendMode, HealthCheckSpec, NodeAddressType, StaticBackendSpec };

/** Why a candidate backend is not in a pool. Spelled the same in JSON output. */
export type ExclusionReason =
  | "node-not-ready"
  | "node-excluded"
  | "node-cordoned"
  | "no-node-address"
  | "no-local-endpoint"
  | "not-ready"
  | "terminating"
  | "port-name-mismatch"
  | "unsupported-protocol"
  | "no-cluster-ip"
  | "no-node-port"
  | "unsupported-address-type"
  | "endpoints-unavailable"
  | "namespace-not-allowed"
  | "not-bound-to-listener"
  | "node-not-selected"
  | "node-control-plane";

/** A backend a pool plan includes. */
export interface PlannedBackend {
  /** `host:port`, IPv6 in brackets; the backend key. */
  readonly address: string;
  /** Host part of `address`, without brackets. */
  readonly host: string;
  /** TCP port: the node port, Service port or endpoint port, per backend mode. */
  readonly port: number;
  /**
   * Share of new connections, from the Service's weight annotation or the static spec.
   * @default {1}
   */
  readonly weight: number;
  /**
   * Connections it takes at most, from its Service's `max-connections-per-backend`
   * annotation; absent when the listener's `maxConnectionsPerBackend` applies.
   */
  readonly maxConnections?: number;
  /** `namespace/name` of the Service that contributed it; absent for static backends. */
  readonly service?: string;
  /**
   * PROXY protocol version sent to it before client bytes: the Service's
   * `nautiluslb.cloudresty.io/proxy-protocol` annotation, else the listener's
   * `proxyProtocol`. Absent: none.
   */
  readonly proxyProtocol?: ProxyProtocolVersion;
  /** Node it was derived from (NodePort) or runs on (endpoints), when known. */
  readonly node?: string;
  /** Pod behind the endpoint, when its `targetRef` is a Pod. */
  readonly pod?: string;
  /** True for terminating endpoints that still serve: no new connections, existing ones drain. */
  readonly draining?: boolean;
  /**
   * True when it takes new connections only because its Service has no ready endpoint, as
   * kube-proxy falls back (KEP-1669): an endpoint that is `serving` and `terminating`, or, for
   * `externalTrafficPolicy: Local`, a node whose only local endpoints are such. Absent otherwise.
   * @see https://github.com/kubernetes/enhancements/tree/master/keps/sig-network/1669-proxy-terminating-endpoints
   */
  readonly terminating?: boolean;
}

/** A backend of a pool with its check. Identity is (`pool`, `key`). */
export interface HealthTarget {
  /** Backend key, `host:port` (IPv6 in brackets). */
  readonly key: string;
  /** Pool (listener) name. */
  readonly pool: string;
  /** Host name or IP address without brackets. */
  readonly host: string;
  /** Backend port; TCP checks probe it unless `check.port` or `check.http` is set. */
  readonly port: number;
  /** How to check it. */
  readonly check: HealthCheckSpec;
}

/** A candidate backend left out of a pool, with the reason. */
export interface ExcludedBackend {
  /** Absent when no address could be formed (e.g. a node without addresses). */
  readonly address?: string;
  /** `namespace/name` of the Service the candidate came from. */
  readonly service?: string;
  /** Node involved, e.g. the one that is not ready. */
  readonly node?: string;
  /** Pod behind the endpoint, when known. */
  readonly pod?: string;
  /** Machine-readable cause; `detail` says more for humans. */
  readonly reason: ExclusionReason;
  /** Extra human detail, e.g. `Ready condition is Unknown`; absent when the reason says it all. */
  readonly detail?: string;
}

/** The resolved pool of one listener. The JSON shape is a documented contract. */
export interface PoolPlan {
  /** Listener (and pool) name. */
  readonly name: string;
  /** As written in config, e.g. `":80"`. */
  readonly listenerAddress: string;
  /** The listener's transport when it is not `tcp`, e.g. `udp`; absent for `tcp`. */
  readonly protocol?: ListenerProtocol;
  /** Members, sorted by address; may be empty. */
  readonly backends: readonly PlannedBackend[];
  /** Candidates left out, sorted by address, each with its reason. */
  readonly excluded: readonly ExcludedBackend[];
  /** Pool-level problems, e.g. no Service has the port name; `[]` when none. */
  readonly warnings: readonly string[];
  /**
   * Problems with the input this pool ran into (e.g. duplicate manifests, a Service without
   * endpoint data). Several plans may carry the same text: report them once per run. `[]`
   * when none.
   */
  readonly inputWarnings: readonly string[];
  /**
   * One health target per backend, in `backends` order: the listener's check, overridden by
   * the Service's health-check annotations, HTTP to kube-proxy's `healthCheckNodePort` for
   * NodePort backends of `externalTrafficPolicy: Local` Services. `[]` when the spec has no
   * health check.
   */
  readonly healthTargets: readonly HealthTarget[];
  /**
   * Maglev pools only: a digest of the lookup table the backends and seed give. Replicas
   * that print the same fingerprint send the same client to the same backend.
   */
  readonly fingerprint?: string;
}

/** The pool backends of a plan: what the data plane balances over, keyed by address. */
export function backendsOf(plan: PoolPlan): Backend[] {
  return plan.backends.map((b) => ({
    key: b.address,
    host: b.host,
    port: b.port,
    weight: b.weight,
    ...(b.proxyProtocol === undefined ? {} : { proxyProtocol: b.proxyProtocol }),
    ...(b.maxConnections !== undefined && { maxConnections: b.maxConnections }),
  }));
}
