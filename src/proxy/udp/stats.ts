/**
 * Counters of a UDP listener: the TCP listener's, read the session way, plus datagrams and
 * drops by cause.
 *
 * @module
 */
import { createListenerStats, type ListenerStats } from "../listener.ts";

/**
 * Why a datagram was dropped, spelled the same in metrics labels:
 * - `acl`: a new session from an address the listener's source ACL (`access`) refuses;
 * - `limit`: a new session over `maxSessions`;
 * - `source_limit`: a new session over `maxSessionsPerSource` for its client address;
 * - `no_backend`: a new session and no eligible backend;
 * - `socket`: no backend socket could be opened for a new session (a local error such as
 *   EMFILE; never counted against a backend);
 * - `too_large`: longer than `bufferSize` (it would have been truncated);
 * - `foreign`: arrived on a session's backend socket from another address than its backend
 *   (what a connected socket would filter);
 * - `overload`: too many sends in flight, the kernel is not keeping up;
 * - `send_failed`: the kernel refused a send;
 * - `stopping`: a new session while the listener drains.
 */
export type UdpDropCause =
  | "acl"
  | "limit"
  | "source_limit"
  | "no_backend"
  | "socket"
  | "too_large"
  | "foreign"
  | "overload"
  | "send_failed"
  | "stopping";

/** Every {@linkcode UdpDropCause}, in the order metrics list them. */
export const UDP_DROP_CAUSES: readonly UdpDropCause[] = [
  "acl",
  "limit",
  "source_limit",
  "no_backend",
  "socket",
  "too_large",
  "foreign",
  "overload",
  "send_failed",
  "stopping",
];

/**
 * How a session ended: idle for `sessionIdleTimeout` (`idle`), a datagram unanswered for
 * `replyTimeout` (`no_reply`, counted against the backend), its backend left the pool
 * (`removed`), the listener stopped (`stopped`), or a send failed (`error`).
 */
export type UdpSessionOutcome = "idle" | "no_reply" | "removed" | "stopped" | "error";

/**
 * A UDP listener's counters. The {@linkcode ListenerStats} fields read per session:
 * `accepted` sessions opened, `activeConnections` sessions open now, `refused` datagrams that
 * could not open a session (`refusedByCause`: `acl`, `limit` for `maxSessions`, `source_limit`
 * for `maxSessionsPerSource`, `no_backend`),
 * `connectFailures` sessions ended `no_reply`, `idleTimeouts` sessions ended `idle`,
 * `connectionDuration` session lifetimes, `connectDuration` time from a session's first
 * datagram to the backend's first reply. Monotonic except `activeConnections`.
 */
export interface UdpListenerStats extends ListenerStats {
  /** Datagrams received from clients (including dropped ones). */
  datagramsFromClients: number;
  /** Datagrams sent to clients. */
  datagramsToClients: number;
  /** Datagrams dropped, by cause; the keys are fixed. */
  readonly drops: Record<UdpDropCause, number>;
}

/** Creates the counters of a new UDP listener, every one at 0. */
export function createUdpListenerStats(): UdpListenerStats {
  const drops = {} as Record<UdpDropCause, number>;
  for (const cause of UDP_DROP_CAUSES) drops[cause] = 0;
  return { ...createListenerStats(), datagramsFromClients: 0, datagramsToClients: 0, drops };
}

/** True for the stats of a UDP listener. */
export function isUdpListenerStats(stats: ListenerStats): stats is UdpListenerStats {
  return "drops" in stats;
}
