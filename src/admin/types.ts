/**
 * What the admin server shows: a plain-data snapshot the caller assembles on demand.
 *
 * These types are declared here, not imported, so admin/ stays below pool/ and proxy/ in
 * the layering. They are structurally compatible with `ListenerStats` (proxy/) and
 * `PoolSnapshot` (pool/): a caller can pass those objects, adding `isFailOpen` and
 * `fingerprint` per pool.
 *
 * @module
 */

/** Health of a backend. `unknown` (not checked yet) is eligible for traffic, like `healthy`. */
export type AdminBackendHealth = "unknown" | "healthy" | "unhealthy";

/** Where backends come from. */
export type AdminDiscoverySource = "static" | "manifests" | "kubernetes";

/** Discovery connection state: `syncing` means connected but not caught up yet. */
export type AdminDiscoveryState = "synced" | "syncing" | "disconnected";

/** Discovery status, as reported by the caller. */
export interface AdminDiscoveryStatus {
  readonly source: AdminDiscoverySource;
  readonly state: AdminDiscoveryState;
  /** When `state` last changed, in milliseconds since the Unix epoch. */
  readonly lastChangeAt?: number;
  /** The last discovery error message, if any. */
  readonly lastError?: string;
}

/**
 * Counters and gauges of one listener. All fields but `activeConnections` only grow while
 * the listener lives; a new listener (e.g. after a reload) starts again from 0, which
 * Prometheus treats as a counter reset.
 */
export interface AdminListenerStats {
  readonly accepted: number;
  readonly refused: number;
  readonly activeConnections: number;
  readonly bytesFromClients: number;
  readonly bytesToClients: number;
  readonly connectFailures: number;
  readonly noBackend: number;
  readonly idleTimeouts: number;
}

/** One listener. */
export interface AdminListener {
  /** Listener (and pool) name; the `listener` label. */
  readonly name: string;
  /** Bound or configured address, e.g. `0.0.0.0:443`. */
  readonly address: string;
  readonly stats: AdminListenerStats;
}

/** One backend row of a pool. */
export interface AdminBackend {
  /** `host:port`, IPv6 in brackets; the `backend` label. */
  readonly key: string;
  readonly weight: number;
  readonly health: AdminBackendHealth;
  readonly activeConnections: number;
  /** Removed from the pool, open connections still draining. */
  readonly isDraining: boolean;
}

/** One pool. */
export interface AdminPool {
  /** Pool name; the `pool` label. */
  readonly name: string;
  /** True while no backend is healthy and the pool hands out any backend anyway. */
  readonly isFailOpen: boolean;
  /** Identifies the current membership (e.g. a hash of the plan); shown when present. */
  readonly fingerprint?: string;
  readonly backends: readonly AdminBackend[];
}

/** Everything the admin endpoints show, taken once per request. */
export interface AdminSnapshot {
  /** Readiness as the caller decides it; `/readyz` answers 200 exactly when true. */
  readonly ready: boolean;
  /** Why the process is not ready (or warnings when it is), e.g. `shutting down`. */
  readonly readyReasons: readonly string[];
  readonly discovery: AdminDiscoveryStatus;
  readonly listeners: readonly AdminListener[];
  readonly pools: readonly AdminPool[];
  /** Health state changes since start, when health checking reports them. */
  readonly healthTransitions?: number;
}

/** A function returning the current snapshot. Called once per request that needs it. */
export type AdminSnapshotSource = () => AdminSnapshot;
