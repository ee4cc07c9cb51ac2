/**
 * What the admin server shows: a plain-data snapshot the caller assembles on demand.
 *
 * These types are declared here (on core's vocabulary), not imported from pool/ or proxy/,
 * so admin/ stays below them in the layering. They are structurally compatible with `ListenerStats` (proxy/) and
 * `PoolSnapshot` (pool/): a caller can pass those objects, adding `isFailOpen` and
 * `fingerprint` per pool.
 *
 * @module
 */

import type { DiscoverySource, DiscoveryState, DiscoveryStatus } from "../core/discovery_state.ts";
import type { Histogram } from "../core/histogram.ts";
import type { AccessSpec } from "../core/listener_spec.ts";
import type { ExcludedBackend, HealthCheckSpec } from "../core/plan.ts";
import type { BackendCounters, BackendHealth, RefusalCause } from "../core/types.ts";

export type { BackendHealth, DiscoverySource, DiscoveryState };

/**
 * Discovery status, as reported by the caller: the shared {@linkcode DiscoveryStatus}
 * (shown by `/readyz` and the `nautiluslb_discovery_*` metrics) and its source.
 */
export interface AdminDiscoveryStatus extends DiscoveryStatus {
  /** Where backends come from; the `source` label. */
  readonly source: DiscoverySource;
}

/**
 * Counters and gauges of one listener. All fields but `activeConnections` only grow while
 * the listener lives; a new listener (e.g. after a reload) starts again from 0, which
 * Prometheus treats as a counter reset.
 */
export interface AdminListenerStats {
  /** Connections accepted, including those then refused. */
  readonly accepted: number;
  /** Connections closed at once: at `maxConnections` or stopping (cause `limit`). */
  readonly refused: number;
  /** Client connections open now (a gauge). */
  readonly activeConnections: number;
  /** Bytes received from clients and sent on to backends. */
  readonly bytesFromClients: number;
  /** Bytes received from backends and sent on to clients. */
  readonly bytesToClients: number;
  /** Failed backend connect attempts; one client connection may add several. */
  readonly connectFailures: number;
  /** Client connections closed because the pool had no eligible backend. */
  readonly noBackend: number;
  /** Connections closed after the idle timeout. */
  readonly idleTimeouts: number;
  /** Client connections refused before forwarding, by cause; absent when not kept. */
  readonly refusedByCause?: Readonly<Record<RefusalCause, number>>;
  /** Accept-to-close seconds of client connections; absent when not kept. */
  readonly connectionDuration?: Histogram;
  /** Seconds to establish backend connections; absent when not kept. */
  readonly connectDuration?: Histogram;
  /** UDP listeners: datagrams received from clients; absent for TCP listeners. */
  readonly datagramsFromClients?: number;
  /** UDP listeners: datagrams sent to clients. */
  readonly datagramsToClients?: number;
  /** UDP listeners: datagrams dropped, by cause (`limit`, `no_backend`, …). */
  readonly drops?: Readonly<Record<string, number>>;
}

/** One listener. */
export interface AdminListener {
  /** Listener (and pool) name; the `listener` label. */
  readonly name: string;
  /** Bound or configured address, e.g. `0.0.0.0:443`. */
  readonly address: string;
  /** The listener's counters; its live `ListenerStats` may be passed, it is only read. */
  readonly stats: AdminListenerStats;
  /**
   * The source ACL in effect (the listener's merged with `settings.access`); absent when not
   * known. `/pools` shows the counts and at most {@linkcode MAX_SHOWN_ACCESS_ENTRIES} entries
   * of each list.
   */
  readonly access?: AccessSpec;
  /** Concurrent connections from one client address; 0 = unlimited; absent when not known. */
  readonly maxConnectionsPerSource?: number;
}

/** Entries of each `access` list shown by `/pools` and the status page; the counts are whole. */
export const MAX_SHOWN_ACCESS_ENTRIES = 20;

/** One backend row of a pool. */
export interface AdminBackend {
  /** `host:port`, IPv6 in brackets; the `backend` label. */
  readonly key: string;
  /** Relative share of new connections; 0 takes none. */
  readonly weight: number;
  /** Latest verdict; `unknown` counts as up in `nautiluslb_backend_up`. */
  readonly health: BackendHealth;
  /** Connections forwarded to this backend now, by this process. */
  readonly activeConnections: number;
  /** Removed from the pool, open connections still draining. */
  readonly isDraining: boolean;
  /** Connection limit of the backend; 0 or absent = none. */
  readonly maxConnections?: number;
  /** Running totals of connections, connect failures and bytes; absent when not kept. */
  readonly counters?: Readonly<BackendCounters>;
  /**
   * Why and since when the backend has its health: what decided it (`active`, `passive`,
   * `config`, `cooldown`), the failure behind `unhealthy`, and the wall-clock time.
   */
  readonly healthDetail?: {
    readonly cause: string;
    readonly error?: string;
    readonly sinceMs: number;
  };
  /** The Service it comes from, `namespace/name`; absent for static backends. */
  readonly service?: string;
  /** The node it is on (NodePort, or the node an endpoint runs on), when known. */
  readonly node?: string;
  /** The endpoint's Pod, when known. */
  readonly pod?: string;
  /** The active check that decides its health (`enabled: false` when only passive); absent when not known. */
  readonly check?: HealthCheckSpec;
}

/** One pool. */
export interface AdminPool {
  /** Pool name; the `pool` label. */
  readonly name: string;
  /** True while no backend is healthy and the pool hands out any backend anyway. */
  readonly isFailOpen: boolean;
  /** Identifies the current membership (e.g. a hash of the plan); shown when present. */
  readonly fingerprint?: string;
  /** Members and draining backends alike; `isDraining` tells them apart. */
  readonly backends: readonly AdminBackend[];
  /**
   * Candidates discovery found but left out of the pool, each with its reason
   * (`node-not-ready`, `node-excluded`, `not-ready`, ...), from the latest plan; absent when
   * not known.
   */
  readonly excluded?: readonly ExcludedBackend[];
  /**
   * Warnings of the latest plan (Services merged, an annotation ignored, ...); absent when not
   * known.
   */
  readonly warnings?: readonly string[];
}

/** Config reloads since start and the config running now. */
export interface AdminConfigStatus {
  /** Reloads applied, since start. */
  readonly reloadsSucceeded: number;
  /** Reloads refused (invalid file, bind failure, discovery failure), since start. */
  readonly reloadsFailed: number;
  /** When the running config was last loaded or reloaded, in ms since the Unix epoch. */
  readonly lastSuccessAt: number;
  /** Hex SHA-256 of the running config file's bytes. */
  readonly sha256: string;
  /** The latest reloads, oldest first, at most {@linkcode MAX_RECENT_RELOADS}; absent when not kept. */
  readonly recentReloads?: readonly AdminReload[];
}

/** What one config reload did: applied a change, found none, or kept the running config. */
export type AdminReloadOutcome = "applied" | "unchanged" | "refused";

/** One config reload, for the status page. */
export interface AdminReload {
  /** When it finished, in ms since the Unix epoch. */
  readonly atMs: number;
  /** What it did. */
  readonly outcome: AdminReloadOutcome;
  /** What changed or why it was refused, in one line, e.g. `1 listener added (b)`. */
  readonly summary: string;
}

/** Reloads kept in {@linkcode AdminConfigStatus.recentReloads}. */
export const MAX_RECENT_RELOADS = 10;

/** Everything the admin endpoints show, taken once per request. */
export interface AdminSnapshot {
  /** Readiness as the caller decides it; `/readyz` answers 200 exactly when true. */
  readonly ready: boolean;
  /** Why the process is not ready (or warnings when it is), e.g. `shutting down`. */
  readonly readyReasons: readonly string[];
  /** Where the pools' membership comes from and whether it is current. */
  readonly discovery: AdminDiscoveryStatus;
  /** Every running listener. */
  readonly listeners: readonly AdminListener[];
  /** Every pool, each named like its listener. */
  readonly pools: readonly AdminPool[];
  /** Health state changes since start, when health checking reports them. */
  readonly healthTransitions?: number;
  /** Config reloads and the running config, when the process reloads config. */
  readonly config?: AdminConfigStatus;
  /** Data-plane workers, when listeners run in workers (`settings.workers` above 1). */
  readonly workers?: readonly AdminWorker[];
}

/** One data-plane worker. */
export interface AdminWorker {
  /** Index, 0-based; the `worker` label. */
  readonly worker: number;
  /** Times it died and was replaced. */
  readonly restarts: number;
  /** Client connections it accepted, over all listeners and its restarts. */
  readonly accepted: number;
  /** Client connections open in it now. */
  readonly activeConnections: number;
  /** Each pool's fingerprint in this worker; every worker shows the same when they agree. */
  readonly pools: readonly { readonly name: string; readonly fingerprint?: string }[];
}

/** A function returning the current snapshot. Called once per request that needs it. */
export type AdminSnapshotSource = () => AdminSnapshot;
