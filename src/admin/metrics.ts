/**
 * Prometheus metrics computed from an {@linkcode AdminSnapshot} at scrape time.
 *
 * Why stock prom-client `Counter`s with a `collect()` callback: the values already live in
 * the listeners and pools, so the registry holds nothing between scrapes. Each `collect()`
 * resets the metric and re-adds the snapshot's values. Monotonic values keep the `counter`
 * type (and the `_total` suffix) so `rate()` and reset detection work; a prom-client
 * `Gauge` would advertise them as `gauge`. Series of listeners, pools and backends that
 * are gone disappear on the next scrape because of the reset.
 *
 * @module
 */
import { collectDefaultMetrics, Counter, Gauge, Registry } from "prom-client";
import { DISCOVERY_STATES } from "../core/discovery_state.ts";
import { BACKEND_HEALTHS } from "../core/types.ts";
import type { AdminBackend, AdminSnapshot } from "./types.ts";

/** Options of {@linkcode AdminMetrics}. */
export interface AdminMetricsOptions {
  /**
   * Also export prom-client's default process metrics (`process_*`, `nodejs_*`).
   * @default {true}
   */
  readonly processMetrics?: boolean;
}

/**
 * Event-loop delay histogram metrics. Deno's `perf_hooks.monitorEventLoopDelay` records
 * nothing, so these would always read the histogram's empty values (min 2^63 ns, NaN mean).
 * `nodejs_eventloop_lag_seconds` is measured with `setImmediate` and is kept.
 */
const BROKEN_DEFAULT_METRICS: readonly string[] = [
  "nodejs_eventloop_lag_min_seconds",
  "nodejs_eventloop_lag_max_seconds",
  "nodejs_eventloop_lag_mean_seconds",
  "nodejs_eventloop_lag_stddev_seconds",
  "nodejs_eventloop_lag_p50_seconds",
  "nodejs_eventloop_lag_p90_seconds",
  "nodejs_eventloop_lag_p99_seconds",
];

const HEALTH_STATES = BACKEND_HEALTHS;

type Labels<L extends string> = Partial<Record<L, string>>;
type Add<L extends string> = (labels: Labels<L>, value: number) => void;
type Fill<L extends string> = (snapshot: AdminSnapshot, add: Add<L>) => void;

/**
 * A Prometheus registry of NautilusLB metrics. Each instance has its own prom-client
 * `Registry` (never the global default), so several may exist in one process.
 */
export class AdminMetrics {
  readonly #registry = new Registry();
  #current: AdminSnapshot | undefined;
  #queue: Promise<unknown> = Promise.resolve();

  /** Registers every NautilusLB metric (and process metrics unless disabled) in a new registry. */
  constructor(options: AdminMetricsOptions = {}) {
    if (options.processMetrics ?? true) {
      collectDefaultMetrics({ register: this.#registry });
      for (const name of BROKEN_DEFAULT_METRICS) this.#registry.removeSingleMetric(name);
    }
    this.#define();
  }

  /** `Content-Type` of {@linkcode AdminMetrics.render}'s output. */
  get contentType(): string {
    return this.#registry.contentType;
  }

  /**
   * Renders the text exposition format for one snapshot. Concurrent calls are serialized,
   * so each output reflects exactly the snapshot it was given.
   */
  render(snapshot: AdminSnapshot): Promise<string> {
    const run = async () => {
      this.#current = snapshot;
      try {
        return await this.#registry.metrics();
      } finally {
        this.#current = undefined;
      }
    };
    const result = this.#queue.then(run, run);
    this.#queue = result.catch(() => {});
    return result;
  }

  #define(): void {
    const listenerCounter = (
      suffix: string,
      help: string,
      value: (s: AdminSnapshot["listeners"][number]["stats"]) => number,
    ) =>
      this.#counter(`nautiluslb_listener_${suffix}`, help, ["listener"], (s, add) => {
        for (const l of s.listeners) add({ listener: l.name }, value(l.stats));
      });
    listenerCounter(
      "connections_accepted_total",
      "Client connections accepted by the listener.",
      (st) => st.accepted,
    );
    listenerCounter(
      "connections_refused_total",
      "Client connections refused because the listener was at its connection limit or stopping.",
      (st) => st.refused,
    );
    this.#gauge(
      "nautiluslb_listener_connections_active",
      "Client connections currently open on the listener.",
      ["listener"],
      (s, add) => {
        for (const l of s.listeners) add({ listener: l.name }, l.stats.activeConnections);
      },
    );
    this.#counter(
      "nautiluslb_listener_bytes_total",
      "Bytes proxied by the listener: from_client is received from clients, to_client is sent to them.",
      ["listener", "direction"],
      (s, add) => {
        for (const l of s.listeners) {
          add({ listener: l.name, direction: "from_client" }, l.stats.bytesFromClients);
          add({ listener: l.name, direction: "to_client" }, l.stats.bytesToClients);
        }
      },
    );
    listenerCounter(
      "connect_failures_total",
      "Failed connect attempts to backends.",
      (st) => st.connectFailures,
    );
    listenerCounter(
      "no_backend_total",
      "Client connections closed because no backend was available.",
      (st) => st.noBackend,
    );
    listenerCounter(
      "idle_timeouts_total",
      "Connections closed after the idle timeout.",
      (st) => st.idleTimeouts,
    );

    const perBackend =
      (value: (b: AdminBackend) => number): Fill<"pool" | "backend"> => (s, add) => {
        for (const p of s.pools) {
          for (const b of p.backends) add({ pool: p.name, backend: b.key }, value(b));
        }
      };
    this.#gauge(
      "nautiluslb_backend_up",
      "1 when the backend is healthy or not checked yet (eligible), 0 when unhealthy.",
      ["pool", "backend"],
      perBackend((b) => (b.health === "unhealthy" ? 0 : 1)),
    );
    this.#gauge(
      "nautiluslb_backend_health_state",
      "Health state of the backend: 1 for the current state, 0 for the others.",
      ["pool", "backend", "state"],
      (s, add) => {
        for (const p of s.pools) {
          for (const b of p.backends) {
            for (const state of HEALTH_STATES) {
              add({ pool: p.name, backend: b.key, state }, b.health === state ? 1 : 0);
            }
          }
        }
      },
    );
    this.#gauge(
      "nautiluslb_backend_connections_active",
      "Connections currently forwarded to the backend.",
      ["pool", "backend"],
      perBackend((b) => b.activeConnections),
    );
    this.#gauge(
      "nautiluslb_backend_draining",
      "1 while the backend is removed from its pool and its connections drain.",
      ["pool", "backend"],
      perBackend((b) => (b.isDraining ? 1 : 0)),
    );

    this.#gauge(
      "nautiluslb_pool_backends",
      "Backends that are members of the pool (draining backends excluded).",
      ["pool"],
      (s, add) => {
        for (const p of s.pools) {
          add({ pool: p.name }, p.backends.filter((b) => !b.isDraining).length);
        }
      },
    );
    this.#gauge(
      "nautiluslb_pool_healthy_backends",
      "Pool members eligible for new connections: healthy or not checked yet.",
      ["pool"],
      (s, add) => {
        for (const p of s.pools) {
          const eligible = p.backends.filter((b) => !b.isDraining && b.health !== "unhealthy");
          add({ pool: p.name }, eligible.length);
        }
      },
    );
    this.#gauge(
      "nautiluslb_pool_fail_open",
      "1 while no backend is healthy and the pool hands out any backend anyway.",
      ["pool"],
      (s, add) => {
        for (const p of s.pools) add({ pool: p.name }, p.isFailOpen ? 1 : 0);
      },
    );
    this.#gauge(
      "nautiluslb_pool_info",
      "Always 1; the fingerprint label identifies the pool's current membership.",
      ["pool", "fingerprint"],
      (s, add) => {
        for (const p of s.pools) {
          if (p.fingerprint !== undefined) add({ pool: p.name, fingerprint: p.fingerprint }, 1);
        }
      },
    );

    this.#gauge(
      "nautiluslb_discovery_connected",
      "1 while discovery is connected to its source (synced or syncing), 0 when disconnected.",
      [],
      (s, add) => add({}, s.discovery.state === "disconnected" ? 0 : 1),
    );
    this.#gauge(
      "nautiluslb_discovery_state",
      "Discovery state: 1 for the current state, 0 for the others.",
      ["source", "state"],
      (s, add) => {
        for (const state of DISCOVERY_STATES) {
          add({ source: s.discovery.source, state }, s.discovery.state === state ? 1 : 0);
        }
      },
    );
    this.#gauge(
      "nautiluslb_discovery_last_change_timestamp_seconds",
      "When the discovery state last changed, in seconds since the Unix epoch.",
      ["source"],
      (s, add) => {
        const at = s.discovery.lastChangeAt;
        if (at !== undefined) add({ source: s.discovery.source }, at / 1000);
      },
    );
    this.#gauge(
      "nautiluslb_ready",
      "1 when the process reports ready (as /readyz), 0 otherwise.",
      [],
      (s, add) => add({}, s.ready ? 1 : 0),
    );
    this.#counter(
      "nautiluslb_health_transitions_total",
      "Backend health state changes since start; 0 when health checking reports none.",
      [],
      (s, add) => {
        if (s.healthTransitions !== undefined) add({}, s.healthTransitions);
      },
    );
    this.#counter(
      "nautiluslb_worker_connections_accepted_total",
      "Client connections accepted by each data-plane worker; absent with workers: 1.",
      ["worker"],
      (s, add) => {
        for (const w of s.workers ?? []) add({ worker: String(w.worker) }, w.accepted);
      },
    );
    this.#gauge(
      "nautiluslb_worker_connections_active",
      "Client connections open in each data-plane worker.",
      ["worker"],
      (s, add) => {
        for (const w of s.workers ?? []) add({ worker: String(w.worker) }, w.activeConnections);
      },
    );
    this.#counter(
      "nautiluslb_worker_restarts_total",
      "Times each data-plane worker died and was replaced.",
      ["worker"],
      (s, add) => {
        for (const w of s.workers ?? []) add({ worker: String(w.worker) }, w.restarts);
      },
    );
    this.#gauge(
      "nautiluslb_worker_pool_info",
      "Always 1; the fingerprint label is the pool's fingerprint in that worker (all equal when they agree).",
      ["worker", "pool", "fingerprint"],
      (s, add) => {
        for (const w of s.workers ?? []) {
          for (const p of w.pools) {
            if (p.fingerprint !== undefined) {
              add({ worker: String(w.worker), pool: p.name, fingerprint: p.fingerprint }, 1);
            }
          }
        }
      },
    );
  }

  #counter<L extends string>(name: string, help: string, labelNames: L[], fill: Fill<L>): void {
    const current = () => this.#current;
    new Counter<L>({
      name,
      help,
      labelNames,
      registers: [this.#registry],
      collect() {
        this.reset();
        const snapshot = current();
        if (snapshot === undefined) return;
        // Counters reject negative values; a bad value drops that series, not the scrape.
        fill(snapshot, (labels, value) => {
          if (Number.isFinite(value) && value >= 0) this.inc(labels, value);
        });
      },
    });
  }

  #gauge<L extends string>(name: string, help: string, labelNames: L[], fill: Fill<L>): void {
    const current = () => this.#current;
    new Gauge<L>({
      name,
      help,
      labelNames,
      registers: [this.#registry],
      collect() {
        this.reset();
        const snapshot = current();
        if (snapshot === undefined) return;
        fill(snapshot, (labels, value) => {
          if (Number.isFinite(value)) this.set(labels, value);
        });
      },
    });
  }
}
