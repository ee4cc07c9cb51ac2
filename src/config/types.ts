/**
 * The validated, defaulted, read-only configuration every other module receives.
 * Durations are milliseconds here; YAML accepts `"5s"`-style strings or plain seconds.
 *
 * @module
 */
import type { ListenerProtocol } from "../core/types.ts";
import type {
  BackendMode,
  BindingPolicy,
  NodeAddressType,
  PoolSpec,
  StaticBackendSpec,
} from "../core/pool_spec.ts";

export type { BackendMode, BindingPolicy, NodeAddressType, StaticBackendSpec };

import type { LogFormat, LogLevel } from "../log/mod.ts";
import type {
  AccessSpec,
  ListenerSpec,
  OnRemoval,
  UdpSpec,
  WhenAllUnhealthy,
} from "../core/listener_spec.ts";
import type { HealthCheckSpec } from "../health/mod.ts";
import type { TlsRouteSpec, TlsSpec } from "../core/listener_spec.ts";

export type { ListenerProtocol, LogFormat, LogLevel, OnRemoval, WhenAllUnhealthy };

export type { AccessSpec, HealthCheckSpec, TlsRouteSpec, TlsSpec, UdpSpec };

/**
 * One listener: an address to accept on and the pool it forwards to. Its settings are
 * {@linkcode ListenerSpec} (`host` and `port` from `listenerAddress`; the defaults config
 * fills in are the `DEFAULT_*` constants of `defaults.ts`, and `accessLog` falls back to
 * `settings.accessLog`); the pool's membership fields (`name`, `listenerAddress`,
 * `backendPortName`, `namespaces`, `binding`, `service`, `serviceSelector`, `backendMode`,
 * `nodeAddressTypes`, `excludeCordonedNodes`, `backends`, `proxyProtocol`, absent for off)
 * come from {@linkcode PoolSpec}; `name` is also the `listener`/`pool` label in metrics.
 */
export interface ListenerConfig extends PoolSpec, ListenerSpec {
  /** Transport: `tcp`, `tls` (passthrough) or `udp` (sessions). @default {"tcp"} */
  readonly protocol: ListenerProtocol;
  /**
   * Active and passive health checking of this pool's backends; `http` is set for
   * `healthCheck.type: http`. Defaults: enabled, interval 2s, timeout 1s, rise 2, fall 3,
   * maxEjectionPercent 50.
   */
  readonly healthCheck: HealthCheckSpec;
}

/** Data-plane workers: a count, or `auto` for the CPUs the process may use. */
export type WorkerCount = number | "auto";

/** Process-wide settings. */
export interface SettingsConfig {
  /** Binding policy of listeners that set none. @default {"portName"} */
  readonly binding: BindingPolicy;
  /**
   * Source ACL every listener starts from: a listener's `access.allow` replaces this
   * `allow`; `deny` lists add up.
   */
  readonly access: AccessSpec;
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
