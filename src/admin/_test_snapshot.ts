/**
 * Snapshot fixtures shared by the admin tests.
 *
 * @module
 */
import type { AdminListenerStats, AdminSnapshot } from "./types.ts";

/** Listener stats with every field 0, overridable. */
export function stats(overrides: Partial<AdminListenerStats> = {}): AdminListenerStats {
  return {
    accepted: 0,
    refused: 0,
    activeConnections: 0,
    bytesFromClients: 0,
    bytesToClients: 0,
    connectFailures: 0,
    noBackend: 0,
    idleTimeouts: 0,
    ...overrides,
  };
}

/** A ready snapshot with one listener `a` and one pool `a` of three backends. */
export function sampleSnapshot(overrides: Partial<AdminSnapshot> = {}): AdminSnapshot {
  return {
    ready: true,
    readyReasons: [],
    discovery: { source: "kubernetes", state: "synced", lastChangeAt: 1_700_000_000_000 },
    listeners: [
      {
        name: "a",
        address: "0.0.0.0:8080",
        stats: stats({
          accepted: 3,
          refused: 1,
          activeConnections: 2,
          bytesFromClients: 1024,
          bytesToClients: 4096,
          connectFailures: 5,
          noBackend: 6,
          idleTimeouts: 7,
        }),
      },
    ],
    pools: [
      {
        name: "a",
        isFailOpen: false,
        fingerprint: "abc123",
        backends: [
          {
            key: "10.0.0.1:80",
            weight: 1,
            health: "healthy",
            activeConnections: 2,
            isDraining: false,
          },
          {
            key: "10.0.0.2:80",
            weight: 2,
            health: "unhealthy",
            activeConnections: 0,
            isDraining: false,
          },
          {
            key: "[fd00::3]:80",
            weight: 1,
            health: "unknown",
            activeConnections: 1,
            isDraining: true,
          },
        ],
      },
    ],
    healthTransitions: 4,
    ...overrides,
  };
}
