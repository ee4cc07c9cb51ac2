/**
 * Listener counters and pool rows as workers post them (plain data: histograms as
 * {@linkcode HistogramData}), and their sums for the whole process.
 *
 * @module
 */
import type { HistogramData } from "../core/histogram.ts";
import { type BackendCounters, REFUSAL_CAUSES } from "../core/types.ts";
import type { PoolBackendSnapshot } from "../pool/mod.ts";
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
