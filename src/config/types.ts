/**
 * The validated, defaulted, read-only configuration every other module receives.
 * Durations are milliseconds here; YAML accepts `"5s"`-style strings or plain seconds.
 *
 * @module
 */
import type { BalancerKind } from "../core/types.ts";
import type {
  BackendMode,
  NodeAddressType,
  PoolSpec,
  StaticBackendSpec,
} from "../core/pool_spec.ts";

export type { BackendMode, NodeAddressType, StaticBackendSpec };

import type { LogFormat, LogLevel } from "../log/mod.ts";
import type { OnRemoval, WhenAllUnhealthy } from "../pool/mod.ts";
import type { HealthCheckSpec } from "../health/mod.ts";

export type { LogFormat, LogLevel, OnRemoval, WhenAllUnhealthy };

/**
 * Active and passive health check settings of one listener: the health module's check
 * without the HTTP variant, which comes from Kubernetes (`healthCheckNodePort`), not config.
 * Defaults: enabled, interval 2s, timeout 1s, rise 2, fall 3, maxEjectionPercent 50.
 */
export type HealthCheckConfig = Omit<HealthCheckSpec, "http">;

/**
 * One listener: an address to accept on and the pool it forwards to. `proxyProtocol`
 * (absent: off; `"off"` in YAML) comes from {@linkcode PoolSpec} since resolution sets it per
 * backend. The pool's membership
 * fields (`name`, `listenerAddress`, `backendPortName`, `namespace`, `service`,
 * `serviceSelector`, `backendMode`, `nodeAddressTypes`, `excludeCordonedNodes`, `backends`)
 * come from {@linkcode PoolSpec}; `name` is also the `listener`/`pool` label in metrics.
 */
export interface ListenerConfig extends PoolSpec {
  /** Host part of `listenerAddress`; `""` binds all interfaces. */
  readonly host: string;
  /** Port part of `listenerAddress`, 1-65535. */
  readonly port: number;
  /** Pick policy for new connections. @default {"round_robin"} */
  readonly balancer: BalancerKind;
  /** Maglev lookup table size, a prime. @default {65537} */
  readonly maglevTableSize: number;
  /** Maglev hash seed; replicas that must agree use the same seed. @default {0} */
  readonly maglevSeed: number;
  /**
   * Budget from accepting a client to an established backend connection, across all
   * connect attempts. This is what the original `requestTimeout` (seconds) means here.
   * @default {5000}
   */
  readonly requestTimeoutMs: number;
  /** Per connect attempt; capped by the time left of `requestTimeoutMs`. @default {2000} */
  readonly connectTimeoutMs: number;
  /** Close a proxied connection after this long without bytes either way. @default {3600000} */
  readonly idleTimeoutMs: number;
  /** Concurrent client connections; excess is refused at once. 0 = unlimited. @default {10000} */
  readonly maxConnections: number;
  /** Distinct backends tried per client connection. @default {3} */
  readonly maxConnectAttempts: number;
  /**
   * Concurrent connections per backend; a full backend is skipped by every balancer, and with
   * all full the client is refused at once. A Service's
   * `nautiluslb.cloudresty.io/max-connections-per-backend` annotation overrides it for its
   * backends. 0 = unlimited. @default {0}
   */
  readonly maxConnectionsPerBackend: number;
  /**
   * One access log line per closed client connection: the listener's `accessLog`, else
   * `settings.accessLog`. @default {false}
   */
  readonly accessLog: boolean;
  /** How long connections may finish on shutdown or backend removal. @default {30000} */
  readonly drainTimeoutMs: number;
  /**
   * What open connections of a removed backend get: `drain` until `drainTimeoutMs`, or `close`.
   * @default {"drain"}
   */
  readonly onRemoval: OnRemoval;
  /**
   * With no healthy backend: `reject` new connections, or fail open to `any` member.
   * @default {"reject"}
   */
  readonly whenAllUnhealthy: WhenAllUnhealthy;
  /** Active and passive health checking of this pool's backends. */
  readonly healthCheck: HealthCheckConfig;
  /**
   * Expect a PROXY protocol header (v1 or v2) from an outer load balancer on every client
   * connection; only peers in `trustedProxies` may connect. @default {false}
   */
  readonly acceptProxyProtocol: boolean;
  /** CIDR blocks allowed to connect while `acceptProxyProtocol` is on; `[]` when off. */
  readonly trustedProxies: readonly string[];
  /** Time from accept to a complete PROXY header. @default {3000} */
  readonly proxyHeaderTimeoutMs: number;
}

/** Data-plane workers: a count, or `auto` for the CPUs the process may use. */
export type WorkerCount = number | "auto";

/** Process-wide settings. */
export interface SettingsConfig {
  /** Path of a kubeconfig file; `""` means: look elsewhere (see docs/configuration.md). @default {""} */
  readonly kubeconfigPath: string;
  /** Least severe level logged; `--log-level` overrides it. @default {"info"} */
  readonly logLevel: LogLevel;
  /** `text` for people, `json` (one object per line) for collectors. @default {"text"} */
  readonly logFormat: LogFormat;
  /** Access log for listeners that do not set `accessLog` themselves. @default {false} */
  readonly accessLog: boolean;
  /** Admin HTTP address (`/metrics`, `/healthz`, `/readyz`, `/pools`); `""` disables. @default {"127.0.0.1:9090"} */
  readonly adminAddress: string;
  /**
   * On SIGTERM/SIGINT, how long `/readyz` fails while listeners still accept, before the
   * drain starts. @default {0}
   */
  readonly shutdownDelayMs: number;
  /**
   * Data-plane workers (Web Workers sharing each listener port with `reusePort`, Linux only):
   * a count, or `auto` for the CPUs the process may use; 1 runs listeners in the main isolate.
   * @default {1}
   */
  readonly workers: WorkerCount;
}

/** A complete configuration. */
export interface Config {
  /** Process-wide settings; every field defaulted when `settings:` is absent. */
  readonly settings: SettingsConfig;
  /** Listeners in file order; at least one. */
  readonly configurations: readonly ListenerConfig[];
}
