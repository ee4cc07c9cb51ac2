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

/** Where backends come from. */
export type DiscoverySource = "static" | "manifests" | "kubernetes";
