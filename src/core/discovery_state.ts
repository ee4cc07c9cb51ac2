/**
 * Where discovery stands: one vocabulary for discovery, the CLI and the admin server.
 *
 * @module
 */

/**
 * Connection state of discovery: `syncing` means connected (or connecting) but not caught up
 * yet, `synced` that every watched resource has listed, `disconnected` that a list or watch is
 * failing and the last good inventory is being served.
 */
export type DiscoveryState = "syncing" | "synced" | "disconnected";

/** Every {@linkcode DiscoveryState}, in the order metrics list them. */
export const DISCOVERY_STATES: readonly DiscoveryState[] = ["synced", "syncing", "disconnected"];

/** Where backends come from. */
export type DiscoverySource = "static" | "manifests" | "kubernetes";

/** Where discovery stands now, for `/readyz`, metrics and logs. */
export interface DiscoveryStatus {
  /** Connection state. */
  readonly state: DiscoveryState;
  /** When the plans last changed, in milliseconds since the Unix epoch. */
  readonly lastChangeAt?: number;
  /** The last discovery error message, if any. */
  readonly lastError?: string;
}
