/**
 * Health checking of backends: active probes over raw TCP (plain, send/expect, or HTTP
 * status), rise/fall hysteresis per backend, and a scheduler that runs checks for every
 * backend of every pool and takes passive reports from client connect attempts.
 *
 * This module knows nothing of Kubernetes or of the pool: it is handed
 * {@linkcode HealthTarget}s and reports {@linkcode HealthTransition}s; the pool layer applies
 * them. `unknown` (no verdict yet) counts as eligible; see {@linkcode HealthTracker} for the
 * exact state table.
 *
 * @example
 * ```ts
 * import { HealthScheduler } from "./mod.ts";
 *
 * const scheduler = new HealthScheduler({
 *   onTransition: (t) => console.log(`${t.pool} ${t.key}: ${t.from} -> ${t.to}`, t.error ?? ""),
 * });
 * scheduler.update([{
 *   key: "10.0.0.7:30080",
 *   pool: "web",
 *   host: "10.0.0.7",
 *   port: 30080,
 *   check: {
 *     enabled: true,
 *     intervalMs: 2000,
 *     timeoutMs: 1000,
 *     rise: 2,
 *     fall: 3,
 *     maxEjectionPercent: 50,
 *     http: { port: 30256, path: "/healthz" },
 *   },
 * }]);
 * await scheduler.runOnce();
 * await scheduler.close();
 * ```
 *
 * @module
 */
export {
  DEFAULT_HTTP_PATH,
  type HttpProbeOptions,
  MAX_PROBE_RESPONSE_BYTES,
  probeHttp,
  type ProbeResult,
  type ProbeTarget,
  probeTcp,
  type TcpProbeOptions,
} from "./probe.ts";
export { probeTls, type TlsProbeOptions } from "./tls_probe.ts";
export { type DnsProbeOptions, dnsResponseCode, encodeDnsQuery, probeDns } from "./dns_probe.ts";
export {
  DEFAULT_INITIAL_STATE,
  HealthTracker,
  type HealthTrackerOptions,
  type Transition,
} from "./tracker.ts";
export {
  type HealthCheckSpec,
  type HealthTarget,
  type ProbeFunction,
  probeTarget,
} from "./target.ts";
export {
  checkAll,
  type CheckAllOptions,
  type CheckProgress,
  DEFAULT_PROBE_CONCURRENCY,
} from "./check_all.ts";
export {
  DEFAULT_PASSIVE_COOLDOWN_MS,
  HealthScheduler,
  type HealthSchedulerOptions,
  type HealthStatus,
  type HealthTransition,
  INTERVAL_JITTER,
  type TransitionCause,
} from "./scheduler.ts";
