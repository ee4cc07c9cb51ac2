/**
 * Default values of optional config keys. The schema (and so `config.schema.json`) and the
 * annotated `config.yaml` state the same values; a test keeps them in step.
 *
 * @module
 */
import type { BalancerKind, ListenerProtocol } from "../core/types.ts";
import type { BackendMode, BindingPolicy, NodeAddressType } from "../core/pool_spec.ts";
import type { LogFormat, LogLevel, WorkerCount } from "./types.ts";

// Owned by the module that applies them; re-exported here so config has one list.
// `requestTimeout`, `connectTimeout`, `idleTimeout` (as Envoy's tcp_proxy, one hour),
// `maxConnections` (per listener; 0 means unlimited), `maxConnectAttempts`:
export {
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_MAX_CONNECT_ATTEMPTS,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_REQUEST_TIMEOUT_MS,
} from "../proxy/mod.ts";
// `proxyHeaderTimeout`:
export { DEFAULT_PROXY_HEADER_TIMEOUT_MS } from "../proxy/mod.ts";
// `tls.peekTimeout` (5s) and `tls.maxClientHello` (16384), as the original NautilusLB:
export { DEFAULT_MAX_CLIENT_HELLO_BYTES, DEFAULT_PEEK_TIMEOUT_MS } from "../proxy/mod.ts";
/** Bounds of `tls.maxClientHello`: a record header plus a minimal hello, and 64 KiB. */
export const MIN_MAX_CLIENT_HELLO = 512;
/** Upper bound of `tls.maxClientHello`. */
export const MAX_MAX_CLIENT_HELLO = 65_536;
// `drainTimeout`, `onRemoval`, `whenAllUnhealthy`, `maxConnectionsPerBackend` (0 = unlimited):
export {
  DEFAULT_DRAIN_TIMEOUT_MS,
  DEFAULT_MAX_CONNECTIONS_PER_BACKEND,
  DEFAULT_ON_REMOVAL,
  DEFAULT_WHEN_ALL_UNHEALTHY,
} from "../pool/mod.ts";
// `maglev.tableSize` (the prime of the Maglev paper and Envoy), its upper bound (Envoy's
// limit), `maglev.seed`:
export {
  DEFAULT_MAGLEV_SEED,
  DEFAULT_MAGLEV_TABLE_SIZE,
  MAGLEV_MAX_TABLE_SIZE,
} from "../balancer/mod.ts";
/**
 * Cooldown after which a backend ejected by a failed client connect is re-admitted while
 * `healthCheck.enabled` is false (30s); not configurable yet.
 */
export { DEFAULT_PASSIVE_COOLDOWN_MS } from "../health/mod.ts";
// `udp.sessionIdleTimeout` (60s), `udp.maxSessions` (4096), `udp.maxSessionsPerSource` (0 =
// unlimited), `udp.bufferSize` and its upper bound, `udp.replyTimeout`:
export {
  DEFAULT_UDP_BUFFER_SIZE,
  DEFAULT_UDP_MAX_SESSIONS,
  DEFAULT_UDP_MAX_SESSIONS_PER_SOURCE,
  DEFAULT_UDP_REPLY_TIMEOUT_MS,
  DEFAULT_UDP_SESSION_IDLE_TIMEOUT_MS,
  MAX_UDP_BUFFER_SIZE,
} from "../proxy/mod.ts";
/** `protocol`. */
export const DEFAULT_PROTOCOL: ListenerProtocol = "tcp";
/**
 * `balancer` of a `protocol: udp` listener: Maglev on the client address, since DNS clients
 * change source ports between queries.
 */
export const DEFAULT_UDP_BALANCER: BalancerKind = "maglev";
/** Upper bound of `maxConnectAttempts`. */
export const MAX_CONNECT_ATTEMPTS_LIMIT = 10;
/** `balancer`. */
export const DEFAULT_BALANCER: BalancerKind = "round_robin";
/** Weight of a static backend written without one. */
export const DEFAULT_BACKEND_WEIGHT = 1;
export { MAX_BACKEND_WEIGHT, MAX_HEALTH_COUNT } from "../core/pool_spec.ts";
/** `backendMode`. */
export const DEFAULT_BACKEND_MODE: BackendMode = "auto";
/** `nodeAddressTypes`: the first type a node has wins. */
export const DEFAULT_NODE_ADDRESS_TYPES: readonly NodeAddressType[] = ["InternalIP", "ExternalIP"];
/** `proxyProtocol`: no header to backends unless asked for. */
export const DEFAULT_PROXY_PROTOCOL = "off";
/** `acceptProxyProtocol`: a header is expected only when asked for. */
export const DEFAULT_ACCEPT_PROXY_PROTOCOL = false;
/** `excludeCordonedNodes`. */
export const DEFAULT_EXCLUDE_CORDONED_NODES = false;
/** `healthCheck.enabled`. */
export const DEFAULT_HEALTH_CHECK_ENABLED = true;
/** `healthCheck.interval`: HAProxy's `inter` default. */
export const DEFAULT_HEALTH_CHECK_INTERVAL_MS = 2_000;
/** `healthCheck.timeout`. */
export const DEFAULT_HEALTH_CHECK_TIMEOUT_MS = 1_000;
/** `healthCheck.rise`: HAProxy's default. */
export const DEFAULT_HEALTH_CHECK_RISE = 2;
/** `healthCheck.fall`: HAProxy's default. */
export const DEFAULT_HEALTH_CHECK_FALL = 3;
/** `healthCheck.maxEjectionPercent`: Envoy's outlier detection uses 10; half keeps a pool usable. */
export const DEFAULT_MAX_EJECTION_PERCENT = 50;
/** `healthCheck.tls`: a plain TCP connect unless the pool passes TLS through. */
export const DEFAULT_HEALTH_CHECK_TLS = false;
/** `settings.accessLog`: off, as an access log line per connection costs at high rates. */
export const DEFAULT_ACCESS_LOG = false;
/** `settings.kubeconfigPath`: empty means in-cluster or `$KUBECONFIG` (see docs/configuration.md, Credentials). */
export const DEFAULT_KUBECONFIG_PATH = "";
/** `settings.logLevel`. */
export const DEFAULT_LOG_LEVEL: LogLevel = "info";
/** `settings.logFormat`. */
export const DEFAULT_LOG_FORMAT: LogFormat = "text";
/**
 * `settings.shutdownDelay`: 0 so Ctrl-C stops at once; set a few seconds where probes decide
 * who gets traffic (see deploy/kubernetes/base/config.yaml).
 */
export const DEFAULT_SHUTDOWN_DELAY_MS = 0;
/**
 * `settings.workers`: 1 keeps the data path in the main isolate with no Worker at all; see
 * docs/workers.md for the measurements behind it.
 */
export const DEFAULT_WORKERS: WorkerCount = 1;
/** Upper bound of a numeric `settings.workers`. */
export const MAX_WORKERS = 256;
/** `settings.adminAddress`: loopback only, so metrics are not exposed by accident. */
export const DEFAULT_ADMIN_ADDRESS = "127.0.0.1:9090";
/**
 * `settings.binding`: `portName`, so configs written for the first NautilusLB keep their pools;
 * `validate`, `serve` and `discover` warn where that admits any namespace (docs/access_control.md).
 */
export const DEFAULT_BINDING: BindingPolicy = "portName";
/** `maxConnectionsPerSource`: 0, no per-source limit. */
export const DEFAULT_MAX_CONNECTIONS_PER_SOURCE = 0;
/** `slowStart`: 0, a backend takes its full share at once. */
export const DEFAULT_SLOW_START_MS = 0;
/** `skipControlPlane`: control-plane nodes stay in NodePort pools unless asked. */
export const DEFAULT_SKIP_CONTROL_PLANE = false;
/** `healthCheck.type`. */
export const DEFAULT_HEALTH_CHECK_TYPE = "tcp";
/** `healthCheck.http.path`. */
export const DEFAULT_HEALTH_CHECK_HTTP_PATH = "/";
/** `healthCheck.http.expectStatus`: 2xx and 3xx, as HAProxy's `httpchk`. */
export const DEFAULT_HEALTH_CHECK_EXPECT_STATUS = "200-399";
