/**
 * Listener counters and pool rows as workers post them (plain data: histograms as
 * {@linkcode HistogramData}), and their sums for the whole process.
 *
 * @module
 */
import type { HistogramData } from "../core/histogram.ts";
import {
  type Backend,
  type BackendCounters,
  type BackendHealth,
  REFUSAL_CAUSES,
} from "../core/types.ts";
import type { HealthDetail, PoolBackendSnapshot, PoolSnapshot } from "../pool/mod.ts";
import {
  createListenerStats,
  createUdpListenerStats,
  isUdpListenerStats,
  type ListenerStats,
  UDP_DROP_CAUSES,
  type UdpListenerStats,
} from "../proxy/mod.ts";

/** {@linkcode ListenerStats} as a worker posts them: the histograms as plain data. */
export type ListenerStatsData =
  & Omit<ListenerStats, "connectionDuration" | "connectDuration">
  & {
    readonly connectionDuration: HistogramData;
    readonly connectDuration: HistogramData;
  };

/** The plain-data copy of `stats` a worker posts. */
export function listenerStatsData(stats: ListenerStats): ListenerStatsData {
  return {
    ...stats,
    refusedByCause: { ...stats.refusedByCause },
    connectionDuration: stats.connectionDuration.toData(),
    connectDuration: stats.connectDuration.toData(),
  };
}

/** Counter fields summed as plain numbers (every field but the per-cause record and histograms). */
const NUMBER_FIELDS = [
  "accepted",
  "refused",
  "bytesFromClients",
  "bytesToClients",
  "connectFailures",
  "noBackend",
  "idleTimeouts",
] as const satisfies readonly (keyof ListenerStats)[];

/**
 * Adds the numbers of `from` into `into`: every counter, each refusal cause and every
 * histogram bucket; `activeConnections` only when `withActive` (a dead worker's open
 * connections are gone, its history is not).
 * @throws {RangeError} when a histogram has other bounds than `into`'s
 */
export function addListenerStats(
  into: ListenerStats,
  from: ListenerStatsData,
  withActive: boolean,
): void {
  for (const field of NUMBER_FIELDS) into[field] += from[field];
  if (withActive) into.activeConnections += from.activeConnections;
  for (const cause of REFUSAL_CAUSES) into.refusedByCause[cause] += from.refusedByCause[cause];
  into.connectionDuration.add(from.connectionDuration);
  into.connectDuration.add(from.connectDuration);
  addUdpStats(into, from);
}

/** A UDP listener's extra counters (datagrams, drops by cause), summed when `from` has them. */
function addUdpStats(into: ListenerStats, from: ListenerStatsData): void {
  if (!("drops" in from)) return;
  const udp = from as unknown as UdpListenerStats;
  if (!isUdpListenerStats(into)) {
    const { datagramsFromClients, datagramsToClients, drops } = createUdpListenerStats();
    Object.assign(into, { datagramsFromClients, datagramsToClients, drops });
  }
  const sum = into as UdpListenerStats;
  sum.datagramsFromClients += udp.datagramsFromClients;
  sum.datagramsToClients += udp.datagramsToClients;
  for (const cause of UDP_DROP_CAUSES) sum.drops[cause] += udp.drops[cause];
}

/** Fresh process-wide counters summed from `parts` (each `[stats, withActive]`). */
export function sumListenerStats(
  parts: Iterable<readonly [ListenerStatsData, boolean]>,
): ListenerStats {
  const sum = createListenerStats();
  for (const [stats, withActive] of parts) addListenerStats(sum, stats, withActive);
  return sum;
}

/** Backend totals at 0. */
export function zeroBackendCounters(): BackendCounters {
  return { connections: 0, connectFailures: 0, bytesToBackend: 0, bytesFromBackend: 0 };
}

/** Adds `from`'s backend totals into `into`. */
export function addBackendCounters(into: BackendCounters, from: BackendCounters): void {
  into.connections += from.connections;
  into.connectFailures += from.connectFailures;
  into.bytesToBackend += from.bytesToBackend;
  into.bytesFromBackend += from.bytesFromBackend;
}

/**
 * One pool's rows over workers: connections and backend totals summed, draining only when
 * draining everywhere; weight, health, limit and health detail from the first row of a key
 * (every worker has the same verdicts from the control plane), with the most recent health
 * detail when rows disagree. `retired` adds totals of workers that died, by key.
 */
export function mergeBackendRows(
  rows: Iterable<PoolBackendSnapshot>,
  retired?: ReadonlyMap<string, BackendCounters>,
): PoolBackendSnapshot[] {
  const merged = new Map<string, PoolBackendSnapshot & { counters: BackendCounters }>();
  for (const row of rows) {
    const seen = merged.get(row.key);
    if (seen === undefined) {
      const counters = zeroBackendCounters();
      addBackendCounters(counters, row.counters);
      const old = retired?.get(row.key);
      if (old !== undefined) addBackendCounters(counters, old);
      merged.set(row.key, { ...row, counters });
      continue;
    }
    addBackendCounters(seen.counters, row.counters);
    const detail = row.healthDetail !== undefined &&
        (seen.healthDetail === undefined || row.healthDetail.sinceMs > seen.healthDetail.sinceMs)
      ? row.healthDetail
      : seen.healthDetail;
    merged.set(row.key, {
      ...seen,
      activeConnections: seen.activeConnections + row.activeConnections,
      isDraining: seen.isDraining && row.isDraining,
      ...(detail !== undefined && { healthDetail: detail }),
    });
  }
  return [...merged.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/**
 * Counters of a worker's dead incarnations: when a worker dies its open connections are
 * gone, but what it counted stays in the process totals, per listener and per backend.
 */
export class RetiredCounters {
  readonly #listeners = new Map<string, ListenerStats>();
  readonly #backends = new Map<string, Map<string, BackendCounters>>();

  /** Keeps the history of a dead incarnation's last report (open connections dropped). */
  retire(stats: {
    readonly listeners: readonly { readonly name: string; readonly stats: ListenerStatsData }[];
    readonly pools: readonly {
      readonly pool: { readonly name: string; readonly backends: readonly PoolBackendSnapshot[] };
    }[];
  }): void {
    for (const l of stats.listeners) {
      const sum = this.#listeners.get(l.name) ?? createListenerStats();
      addListenerStats(sum, l.stats, false);
      this.#listeners.set(l.name, sum);
    }
    for (const { pool } of stats.pools) {
      let byKey = this.#backends.get(pool.name);
      if (byKey === undefined) this.#backends.set(pool.name, byKey = new Map());
      for (const row of pool.backends) {
        let into = byKey.get(row.key);
        if (into === undefined) byKey.set(row.key, into = zeroBackendCounters());
        addBackendCounters(into, row.counters);
      }
    }
  }

  /** Retired counters of one listener, if any incarnation counted for it. */
  listener(name: string): ListenerStats | undefined {
    return this.#listeners.get(name);
  }

  /** Retired backend totals of one pool, by backend key. */
  backends(pool: string): ReadonlyMap<string, BackendCounters> {
    return this.#backends.get(pool) ?? new Map();
  }

  /** Client connections the dead incarnations accepted, over all listeners. */
  get accepted(): number {
    let n = 0;
    for (const s of this.#listeners.values()) n += s.accepted;
    return n;
  }

  /** Drops the history of a removed listener and its pool. */
  forget(name: string): void {
    this.#listeners.delete(name);
    this.#backends.delete(name);
  }
}

/** A health verdict as sent to workers, kept to bring a replacement worker up to date. */
export interface Verdict {
  readonly health: BackendHealth;
  readonly detail?: HealthDetail;
}

/**
 * A pool's rows before any worker reported on its latest change: the backends as sent,
 * with the verdicts sent, counters of dead incarnations, and what `live` says now.
 */
export function rowsAsSent<B extends Backend>(
  backends: readonly B[],
  verdicts: ReadonlyMap<string, Verdict> | undefined,
  retired: ReadonlyMap<string, BackendCounters>,
  live: (backend: B) => { activeConnections: number; maxConnections: number },
): PoolBackendSnapshot[] {
  return backends.map((b) => {
    const verdict = verdicts?.get(b.key);
    const counters = zeroBackendCounters();
    const old = retired.get(b.key);
    if (old !== undefined) addBackendCounters(counters, old);
    const { activeConnections, maxConnections } = live(b);
    return {
      key: b.key,
      host: b.host,
      port: b.port,
      weight: b.weight,
      health: verdict?.health ?? "unknown",
      activeConnections,
      isDraining: false,
      maxConnections,
      counters,
      ...(verdict?.detail !== undefined && { healthDetail: verdict.detail }),
    };
  }).sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/** A pool as one worker reports it (`WorkerStats.pools`). */
export interface PoolReport {
  readonly pool: { readonly backends: readonly PoolBackendSnapshot[] };
  readonly isFailOpen: boolean;
  readonly fingerprint?: string;
}

/**
 * One pool of the whole process: every worker's rows merged with the retired counters,
 * fail-open and fingerprint from the first report; `asSent()` while no report has it.
 */
export function mergePoolReports(
  name: string,
  reports: readonly PoolReport[],
  retired: ReadonlyMap<string, BackendCounters>,
  asSent: () => PoolBackendSnapshot[],
): { pool: PoolSnapshot; isFailOpen: boolean; fingerprint?: string } {
  const first = reports[0];
  if (first === undefined) return { pool: { name, backends: asSent() }, isFailOpen: false };
  return {
    pool: { name, backends: mergeBackendRows(reports.flatMap((r) => r.pool.backends), retired) },
    isFailOpen: first.isFailOpen,
    ...(first.fingerprint !== undefined && { fingerprint: first.fingerprint }),
  };
}
