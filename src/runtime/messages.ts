/**
 * The messages between the control plane and its workers: plain structured-clone objects.
 * Every message that changes what a worker runs carries a `version` from one counter of the
 * control plane; a worker applies it only if it is newer than the last it applied
 * ({@linkcode VersionGate}), so it never applies an older plan after a newer one.
 *
 * @module
 */
import type { Backend, BackendHealth } from "../core/types.ts";
import type { LogFormat, LogLevel } from "../log/mod.ts";
import type { HealthDetail, PoolSnapshot } from "../pool/mod.ts";
import type { DataPlaneListener } from "./data_plane.ts";
import type { SharedCountsInit } from "./shared_counts.ts";
import type { SharedSourceCountsInit } from "./shared_source_counts.ts";
import type { ListenerStatsData } from "./worker_stats.ts";

/** A listener as a worker runs it: bound with `reusePort`, counted in a shared slot. */
export interface WorkerListener extends DataPlaneListener {
  /** Slot of the listener's process-wide connection count, or -1 for a per-worker count. */
  readonly counterSlot: number;
  /** Slot of the pool's shared `round_robin` rotation, or -1 for a per-worker rotation. */
  readonly rotationSlot: number;
}

/** A backend with the slot of its process-wide connection count (-1: none). */
export interface SlottedBackend extends Backend {
  /** Slot in the backend counts; -1 counts in the worker only. */
  readonly slot: number;
}

/** Control plane → worker. */
export type ToWorker =
  | {
    /** First message: who the worker is and the shared memory it counts in. */
    readonly type: "init";
    /** Index of the worker, 0-based; its row in the shared counts. */
    readonly worker: number;
    /** Per-backend active connection counts. */
    readonly backendCounts: SharedCountsInit;
    /** Per-listener active connection counts (`maxConnections` across workers). */
    readonly listenerCounts: SharedCountsInit;
    /** Per-listener `round_robin` rotation counters (totals row only). */
    readonly rotationCounts: SharedCountsInit;
    /** Per-source connection counts (`maxConnectionsPerSource` across workers). */
    readonly sourceCounts?: SharedSourceCountsInit;
    /** How often the worker posts its counters. */
    readonly statsIntervalMs: number;
    /** Log setup, the same as the control plane's. */
    readonly logLevel: LogLevel;
    /** Log setup, the same as the control plane's. */
    readonly logFormat: LogFormat;
  }
  | {
    /**
     * Set the listeners config: listeners not named here are removed (drained), new names
     * are bound, changed ones are replaced. Answered with `bound`.
     */
    readonly type: "listeners";
    readonly version: number;
    readonly listeners: readonly WorkerListener[];
  }
  | {
    /**
     * New settings of a running listener (a config reload), applied with `DataPlane.update`:
     * same name and address, socket and connections stay.
     */
    readonly type: "update";
    readonly version: number;
    readonly listener: WorkerListener;
  }
  | {
    /** New log setup (a reload changed `logLevel` or `logFormat`). */
    readonly type: "logging";
    readonly version: number;
    readonly logLevel: LogLevel;
    readonly logFormat: LogFormat;
  }
  | {
    /** A pool's membership, with the slot layout it was assigned under. */
    readonly type: "backends";
    readonly version: number;
    /** Version of the slot layout the slots belong to. */
    readonly layoutVersion: number;
    readonly pool: string;
    readonly backends: readonly SlottedBackend[];
  }
  | {
    /** A health transition decided by the control plane. */
    readonly type: "health";
    readonly version: number;
    readonly pool: string;
    readonly key: string;
    readonly health: BackendHealth;
    /** Why and since when, for the pool snapshot. */
    readonly detail?: HealthDetail;
  }
  | { readonly type: "start"; readonly version: number }
  | {
    /**
     * Stop one listener as `DataPlane.remove` does: no new clients, open connections get up
     * to `drainMs` (the listener's `drainTimeoutMs` when absent), then are closed. Answered
     * with `removed` once drained; later messages do not wait for the drain.
     */
    readonly type: "remove";
    readonly version: number;
    readonly name: string;
    readonly drainMs?: number;
  }
  | {
    /** Stop every listener, draining up to `drainMs`; answered with `stopped`. */
    readonly type: "stop";
    readonly version: number;
    readonly drainMs?: number;
  };

/** Per-listener outcome of a `listeners` message. */
export interface BindResult {
  readonly name: string;
  /** Bound `host:port`, when bound. */
  readonly address?: string;
  /** Why it could not bind. */
  readonly error?: string;
}

/** A worker's listener counters and pool views, posted every `statsIntervalMs`. */
export interface WorkerStats {
  /** The last message version the worker applied when it took these numbers. */
  readonly version: number;
  readonly listeners: readonly {
    readonly name: string;
    readonly address: string;
    readonly stats: ListenerStatsData;
  }[];
  readonly pools: readonly {
    readonly pool: PoolSnapshot;
    readonly isFailOpen: boolean;
    readonly fingerprint?: string;
  }[];
}

/** Worker → control plane. */
export type FromWorker =
  | { readonly type: "ready" }
  | { readonly type: "bound"; readonly version: number; readonly results: readonly BindResult[] }
  | {
    /** A backend connect outcome, for passive health checking (the control plane decides). */
    readonly type: "connect";
    readonly pool: string;
    readonly key: string;
    readonly ok: boolean;
    readonly error?: string;
  }
  | { readonly type: "stats"; readonly stats: WorkerStats }
  | {
    /** A `remove` drained: `forced` connections were still open at its deadline. */
    readonly type: "removed";
    readonly version: number;
    readonly forced: number;
  }
  | { readonly type: "stopped"; readonly version: number; readonly forced: number };

/**
 * Accepts versions that grow: a message whose version is not newer than the last accepted
 * one is dropped.
 */
export class VersionGate {
  #last = -Infinity;

  /** The last accepted version; `-Infinity` before the first. */
  get last(): number {
    return this.#last;
  }

  /** True (and remembered) when `version` is newer than every version accepted so far. */
  accept(version: number): boolean {
    if (!(version > this.#last)) return false;
    this.#last = version;
    return true;
  }
}
