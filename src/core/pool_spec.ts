/**
 * The part of a listener's configuration that decides its pool's membership. Config's
 * `ListenerConfig` extends it; resolve/ reads only this, health-check settings included.
 *
 * @module
 */

import type { ListenerProtocol, ProxyProtocolVersion } from "./types.ts";

/** Largest backend weight, in config and in the weight annotation. */
export const MAX_BACKEND_WEIGHT = 1_000;

/** Largest `rise` or `fall` count, in config and in the health annotations. */
export const MAX_HEALTH_COUNT = 100;

/**
 * How to check one backend. The listener's `healthCheck` settings; resolution overrides them
 * per Service (annotations) and adds `http` for kube-proxy's `healthCheckNodePort`.
 */
export interface HealthCheckSpec {
  /**
   * Active checks. Off: no probes; passive reports then count only where the scheduler has a
   * `passiveCooldownMs`, else the state stays `unknown`.
   */
  readonly enabled: boolean;
  /** Time between the end of one check and the start of the next, before jitter (±10%). */
  readonly intervalMs: number;
  /** Budget of one probe. */
  readonly timeoutMs: number;
  /** Consecutive successes to become healthy, 1 to {@linkcode MAX_HEALTH_COUNT}. */
  readonly rise: number;
  /** Consecutive failures to become unhealthy, 1 to {@linkcode MAX_HEALTH_COUNT}. */
  readonly fall: number;
  /** Probe this port instead of the backend's own (TCP and HTTP checks). */
  readonly port?: number;
  /** Text to send after connecting (TCP checks). */
  readonly send?: string;
  /** Substring the reply must contain (TCP checks). */
  readonly expect?: string;
  /**
   * Check with HTTP `GET` instead of TCP: config's `healthCheck.type: http`, or a Service's
   * `healthCheckNodePort` with path `/healthz`. `send` and `expect` are then not used; with
   * `tls` the request goes over TLS (HTTPS, certificate not verified).
   */
  readonly http?: HttpCheckSpec;
  /**
   * Check with a DNS query for this name (type A, over UDP to the backend's port, or `port`)
   * instead of TCP: healthy when an answer with the query's ID comes back with RCODE
   * NOERROR or NXDOMAIN. `send` and `expect` are then not used.
   */
  readonly dnsQuery?: string;
  /** Share of a pool (0-100) that passive reports may mark unhealthy. */
  readonly maxEjectionPercent: number;
  /**
   * The backend expects a PROXY protocol header of this version: TCP checks of its own port
   * send a `LOCAL` (v2) or `UNKNOWN` (v1) header first. Set by resolution from the backend's
   * `proxyProtocol`, never in config.
   */
  readonly proxyProtocol?: ProxyProtocolVersion;
  /**
   * TCP checks: a TLS handshake after connecting (the certificate is not verified; the check
   * asks "does it speak TLS", not "is it trusted"), `send`/`expect` inside TLS, then a
   * close_notify. Absent or false: plain TCP.
   */
  readonly tls?: boolean;
  /**
   * TLS checks: the server name sent as SNI, so a backend that picks its certificate by
   * name answers as it does for clients. A `tls` route's pool sets its first exact host;
   * absent: the backend's host when it is a name, else none.
   */
  readonly serverName?: string;
}

/** An HTTP health check: `GET path`, passing when the status is in `expectStatus`. */
export interface HttpCheckSpec {
  /** Port to probe; the backend's own (or `HealthCheckSpec.port`) when absent. */
  readonly port?: number;
  /** Request path, starting with `/`. */
  readonly path: string;
  /** `Host` header; the backend's `host:port` when absent. */
  readonly host?: string;
  /**
   * Inclusive status ranges that pass, e.g. `[[200, 399]]`; 2xx when absent. Redirects are
   * never followed: a 3xx passes or fails by this list like any other status.
   */
  readonly expectStatus?: readonly (readonly [number, number])[];
}

/**
 * How a Service becomes a backend of a pool once it is annotated `enabled: "true"`, in an
 * allowed namespace and has the port: `portName` takes it on the port name alone (the first
 * NautilusLB's rule); `explicit` also needs the pool's name in its
 * `nautiluslb.cloudresty.io/configurations` annotation.
 */
export type BindingPolicy = "portName" | "explicit";

/** Where backends of a Kubernetes pool come from. `auto` follows the Service type. */
export type BackendMode = "auto" | "nodeport" | "clusterip" | "endpoints";
/** Node address types, as the Kubernetes API names them. */
export type NodeAddressType = "InternalIP" | "ExternalIP" | "Hostname";

/** A static backend as written under `backends:`. */
export interface StaticBackendSpec {
  /** IP address (IPv6 without brackets) or DNS name. */
  readonly host: string;
  /** TCP port, 1-65535. */
  readonly port: number;
  /** Relative share of new connections, 0 to `MAX_BACKEND_WEIGHT`; 0 takes none. @default {1} */
  readonly weight: number;
}

/** What decides one pool's membership. */
export interface PoolSpec {
  /** Listener (and pool) name, unique in the config; names the pool in logs and metrics. */
  readonly name: string;
  /** As written, e.g. `":80"`. */
  readonly listenerAddress: string;
  /**
   * Transport of the listener: `udp` pools take Service ports with `protocol: UDP`, the
   * others TCP ports. Absent means `tcp`.
   */
  readonly protocol?: ListenerProtocol;
  /** Kubernetes Service port name; absent for static-only pools. */
  readonly backendPortName?: string;
  /** Namespaces whose Services may join, sorted; all namespaces when absent. */
  readonly namespaces?: readonly string[];
  /** How a Service binds to this pool. @default {"portName"} */
  readonly binding?: BindingPolicy;
  /** Only this Service, `NAMESPACE/NAME`. */
  readonly service?: string;
  /** Only Services carrying all these labels. */
  readonly serviceSelector?: Readonly<Record<string, string>>;
  /** Where Kubernetes backends come from. @default {"auto"} */
  readonly backendMode: BackendMode;
  /**
   * Node address types to try, in order, for NodePort backends.
   * @default {["InternalIP", "ExternalIP"]}
   */
  readonly nodeAddressTypes: readonly NodeAddressType[];
  /** Leave cordoned (unschedulable) nodes out of NodePort pools. @default {false} */
  readonly excludeCordonedNodes: boolean;
  /** NodePort pools: only nodes carrying all these labels. Every node when absent. */
  readonly nodeSelector?: Readonly<Record<string, string>>;
  /**
   * NodePort pools: leave out nodes labelled `node-role.kubernetes.io/control-plane` (or the
   * older `.../master`). @default {false}
   */
  readonly skipControlPlane?: boolean;
  /** Static backends, added beside any discovered ones; `[]` when none. */
  readonly backends: readonly StaticBackendSpec[];
  /**
   * Send a PROXY protocol header of this version to every backend of the pool; a Service's
   * `nautiluslb.cloudresty.io/proxy-protocol` annotation overrides it for its backends.
   * Absent sends none.
   */
  readonly proxyProtocol?: ProxyProtocolVersion;
  /**
   * The listener's health check. When present, the plan lists a health target for every
   * backend (`PoolPlan.healthTargets`); when absent, none.
   */
  readonly healthCheck?: HealthCheckSpec;
}
