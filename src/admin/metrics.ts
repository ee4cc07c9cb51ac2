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
import { collectDefaultMetrics, Counter, Gauge, type Metric, Registry } from "prom-client";
import { DISCOVERY_STATES } from "../core/discovery_state.ts";
import type { Histogram } from "../core/histogram.ts";
import { BACKEND_HEALTHS, REFUSAL_CAUSES } from "../core/types.ts";
import { VERSION } from "../core/version.ts";
import type { AdminBackend, AdminListenerStats, AdminSnapshot, AdminWorker } from "./types.ts";

/** Options of {@linkcode AdminMetrics}. */
export interface AdminMetricsOptions {
  /**
   * Also export prom-client's default process metrics (`process_*`, `nodejs_*`).
   * @default {true}
   */
  readonly processMetrics?: boolean;
}

/**
 * Default metrics that are constant or meaningless under Deno, so not exported. Event-loop
 * delay histogram metrics: Deno's `perf_hooks.monitorEventLoopDelay` records
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
  // Deno runs no GC observer for prom-client: the histogram never gets an observation.
  "nodejs_gc_duration_seconds",
  // Deno's `process._getActiveHandles()`/`_getActiveRequests()` are always empty, and
  // `getActiveResourcesInfo()` lists timers only, never sockets: 0 or a count of timers.
  "nodejs_active_handles",
  "nodejs_active_handles_total",
  "nodejs_active_requests",
  "nodejs_active_requests_total",
  "nodejs_active_resources",
  "nodejs_active_resources_total",
  // Read from /proc/self, which Deno opens only under --allow-all (never granted to serve):
  // without it these read 0. The resident set size comes from Deno instead (below); the
  // descriptor counts are not exported.
  "process_resident_memory_bytes",
  "process_virtual_memory_bytes",
  "process_heap_bytes",
  "process_open_fds",
  "process_max_fds",
];

const HEALTH_STATES = BACKEND_HEALTHS;

type Labels<L extends string> = Partial<Record<L, string>>;
type HistogramSample = {
  readonly labels: Record<string, string>;
  readonly histogram: Histogram;
};
type HistogramFill = (snapshot: AdminSnapshot, add: (sample: HistogramSample) => void) => void;
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
      this.#defineProcess();
    }
    this.#define();
    this.#defineConfig();
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
    const perListener =
      (value: (st: AdminListenerStats) => number): Fill<"listener"> => (s, add) => {
        for (const l of s.listeners) add({ listener: l.name }, value(l.stats));
      };
    const listenerCounter = (
      suffix: string,
      help: string,
      value: (st: AdminListenerStats) => number,
    ) => this.#counter(`nautiluslb_listener_${suffix}`, help, ["listener"], perListener(value));
    listenerCounter(
      "connections_accepted_total",
      "Client connections accepted by the listener.",
      (st) => st.accepted,
    );
    this.#gauge(
      "nautiluslb_listener_connections_active",
      "Client connections currently open on the listener.",
      ["listener"],
      perListener((st) => st.activeConnections),
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
      "idle_timeouts_total",
      "Connections closed after the idle timeout.",
      (st) => st.idleTimeouts,
    );
    this.#counter(
      "nautiluslb_connections_refused_total",
      "Client connections refused before forwarding, by cause: limit (maxConnections or maxConnectionsPerBackend), no_backend, proxy_header (bad PROXY protocol header), untrusted (PROXY header from an untrusted peer), acl (source address refused by access rules), source_limit (maxConnectionsPerSource reached), tls_peek_timeout, tls_hello_too_large, tls_no_route, tls_bad_hello (TLS listeners' ClientHello). The one refusal family (see docs/monitoring.md).",
      ["listener", "cause"],
      (s, add) => {
        for (const l of s.listeners) {
          const byCause = l.stats.refusedByCause;
          if (byCause === undefined) continue;
          for (const cause of REFUSAL_CAUSES) add({ listener: l.name, cause }, byCause[cause]);
        }
      },
    );
    const udpListeners = (
      s: { listeners: readonly { name: string; stats: AdminListenerStats }[] },
    ) => s.listeners.filter((l) => l.stats.drops !== undefined);
    this.#gauge(
      "nautiluslb_udp_sessions_active",
      "UDP sessions (client address and port) open now.",
      ["listener"],
      (s, add) => {
        for (const l of udpListeners(s)) add({ listener: l.name }, l.stats.activeConnections);
      },
    );
    this.#counter(
      "nautiluslb_udp_sessions_total",
      "UDP sessions opened.",
      ["listener"],
      (s, add) => {
        for (const l of udpListeners(s)) add({ listener: l.name }, l.stats.accepted);
      },
    );
    this.#counter(
      "nautiluslb_udp_datagrams_total",
      "UDP datagrams: from_client received from clients, to_client sent to them.",
      ["listener", "direction"],
      (s, add) => {
        for (const l of udpListeners(s)) {
          add({ listener: l.name, direction: "from_client" }, l.stats.datagramsFromClients ?? 0);
          add({ listener: l.name, direction: "to_client" }, l.stats.datagramsToClients ?? 0);
        }
      },
    );
    this.#counter(
      "nautiluslb_udp_drops_total",
      "UDP datagrams dropped, by cause: acl (source ACL), limit (maxSessions), source_limit (maxSessionsPerSource), no_backend, socket (no backend socket), too_large (over bufferSize), foreign (not from the session's backend), overload, send_failed, stopping.",
      ["listener", "cause"],
      (s, add) => {
        for (const l of udpListeners(s)) {
          for (const [cause, n] of Object.entries(l.stats.drops ?? {})) {
            add({ listener: l.name, cause }, n);
          }
        }
      },
    );
    const perListenerHistogram =
      (value: (st: AdminListenerStats) => Histogram | undefined): HistogramFill => (s, add) => {
        for (const l of s.listeners) {
          const h = value(l.stats);
          if (h !== undefined) add({ labels: { listener: l.name }, histogram: h });
        }
      };
    this.#histogram(
      "nautiluslb_connection_duration_seconds",
      "Time from accept to close of client connections, refused ones included.",
      perListenerHistogram((st) => st.connectionDuration),
    );
    this.#histogram(
      "nautiluslb_backend_connect_duration_seconds",
      "Time to establish a backend connection, per listener; failed attempts are not observed.",
      perListenerHistogram((st) => st.connectDuration),
    );

    /** One series per backend; a backend whose value is `undefined` has none. */
    const perBackend =
      (value: (b: AdminBackend) => number | undefined): Fill<"pool" | "backend"> => (s, add) => {
        for (const p of s.pools) {
          for (const b of p.backends) {
            const v = value(b);
            if (v !== undefined) add({ pool: p.name, backend: b.key }, v);
          }
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
    this.#counter(
      "nautiluslb_backend_connections_total",
      "Connections established to the backend while it is in the pool.",
      ["pool", "backend"],
      perBackend((b) => b.counters?.connections),
    );
    this.#counter(
      "nautiluslb_backend_connect_failures_total",
      "Failed connect attempts to the backend, whatever the cause.",
      ["pool", "backend"],
      perBackend((b) => b.counters?.connectFailures),
    );
    this.#counter(
      "nautiluslb_backend_bytes_total",
      "Bytes proxied to and from the backend: to_backend is written to it, from_backend is read from it.",
      ["pool", "backend", "direction"],
      (s, add) => {
        for (const p of s.pools) {
          for (const b of p.backends) {
            const c = b.counters;
            if (c === undefined) continue;
            add({ pool: p.name, backend: b.key, direction: "to_backend" }, c.bytesToBackend);
            add({ pool: p.name, backend: b.key, direction: "from_backend" }, c.bytesFromBackend);
          }
        }
      },
    );
    this.#gauge(
      "nautiluslb_backend_weight",
      "Weight of the backend in effect now: below its configured weight while it slow-starts.",
      ["pool", "backend"],
      perBackend((b) => b.weight),
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
    const perWorker = (value: (w: AdminWorker) => number): Fill<"worker"> => (s, add) => {
      for (const w of s.workers ?? []) add({ worker: String(w.worker) }, value(w));
    };
    this.#counter(
      "nautiluslb_worker_connections_accepted_total",
      "Client connections accepted by each data-plane worker; absent with workers: 1.",
      ["worker"],
      perWorker((w) => w.accepted),
    );
    this.#gauge(
      "nautiluslb_worker_connections_active",
      "Client connections open in each data-plane worker.",
      ["worker"],
      perWorker((w) => w.activeConnections),
    );
    this.#counter(
      "nautiluslb_worker_restarts_total",
      "Times each data-plane worker died and was replaced.",
      ["worker"],
      perWorker((w) => w.restarts),
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

  /** Process metrics from what Deno reads without extra permissions. */
  #defineProcess(): void {
    new Gauge({
      name: "process_resident_memory_bytes",
      help: "Resident memory size in bytes (Deno.memoryUsage().rss).",
      registers: [this.#registry],
      collect(this: Gauge) {
        this.set(Deno.memoryUsage().rss);
      },
    });
  }

  #defineConfig(): void {
    new Gauge({
      name: "nautiluslb_build_info",
      help: "Always 1; the labels name this build: version (NautilusLB), deno, v8 and typescript.",
      labelNames: ["version", "deno", "v8", "typescript"],
      registers: [this.#registry],
    }).set({ version: VERSION, ...Deno.version }, 1);
    this.#counter(
      "nautiluslb_config_reloads_total",
      "Config reloads since start, by result: success (applied) or failure (refused, the running config stays).",
      ["result"],
      (s, add) => {
        if (s.config === undefined) return;
        add({ result: "success" }, s.config.reloadsSucceeded);
        add({ result: "failure" }, s.config.reloadsFailed);
      },
    );
    this.#gauge(
      "nautiluslb_config_last_reload_success_timestamp_seconds",
      "When the running config was loaded or last reloaded, in seconds since the Unix epoch.",
      [],
      (s, add) => {
        if (s.config !== undefined) add({}, s.config.lastSuccessAt / 1000);
      },
    );
    this.#gauge(
      "nautiluslb_config_info",
      "Always 1; the sha256 label is the hash of the running config file's bytes.",
      ["sha256"],
      (s, add) => {
        if (s.config !== undefined) add({ sha256: s.config.sha256 }, 1);
      },
    );
  }

  #counter<L extends string>(name: string, help: string, labelNames: L[], fill: Fill<L>): void {
    new Counter<L>(
      this.#collected(name, help, labelNames, fill, (counter: Counter<L>, labels, value) => {
        // Counters reject negative values; a bad value drops that series, not the scrape.
        if (Number.isFinite(value) && value >= 0) counter.inc(labels, value);
      }),
    );
  }

  /**
   * prom-client options of a counter or gauge in this registry whose `collect()` resets the
   * metric and hands each value `fill` adds for the current snapshot to `put`.
   */
  #collected<M extends { reset(): void }, L extends string>(
    name: string,
    help: string,
    labelNames: L[],
    fill: Fill<L>,
    put: (metric: M, labels: Labels<L>, value: number) => void,
  ) {
    const current = () => this.#current;
    return {
      name,
      help,
      labelNames,
      registers: [this.#registry],
      collect(this: M) {
        this.reset();
        const snapshot = current();
        if (snapshot === undefined) return;
        fill(snapshot, (labels, value) => put(this, labels, value));
      },
    };
  }

  /**
   * A histogram whose buckets already live in the listeners: prom-client's `Histogram`
   * cannot take bucket counts, so this is a minimal metric object the registry renders the
   * same way (`_bucket` with cumulative `le`, `_sum`, `_count`).
   */
  #histogram(name: string, help: string, fill: HistogramFill): void {
    const current = () => this.#current;
    const metric = {
      name,
      help,
      type: "histogram",
      aggregator: "sum",
      get() {
        const values: {
          labels: Record<string, string | number>;
          value: number;
          metricName: string;
        }[] = [];
        const snapshot = current();
        if (snapshot !== undefined) {
          fill(snapshot, ({ labels, histogram }) => {
            let cumulative = 0;
            histogram.bounds.forEach((bound, i) => {
              cumulative += histogram.counts[i]!;
              values.push({
                labels: { ...labels, le: bound },
                value: cumulative,
                metricName: `${name}_bucket`,
              });
            });
            cumulative += histogram.counts[histogram.bounds.length]!;
            values.push({
              labels: { ...labels, le: "+Inf" },
              value: cumulative,
              metricName: `${name}_bucket`,
            });
            values.push({ labels, value: histogram.sum, metricName: `${name}_sum` });
            values.push({ labels, value: histogram.count, metricName: `${name}_count` });
          });
        }
        return { name, help, type: "histogram", values, aggregator: "sum" };
      },
    };
    this.#registry.registerMetric(metric as unknown as Metric);
  }

  #gauge<L extends string>(name: string, help: string, labelNames: L[], fill: Fill<L>): void {
    new Gauge<L>(
      this.#collected(name, help, labelNames, fill, (gauge: Gauge<L>, labels, value) => {
        if (Number.isFinite(value)) gauge.set(labels, value);
      }),
    );
  }
}
