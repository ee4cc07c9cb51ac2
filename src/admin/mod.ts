/**
 * The admin HTTP server: liveness, readiness, pools as JSON and Prometheus metrics, all read
 * from a snapshot the caller assembles.
 *
 * ```ts ignore
 * const admin = await startAdminServer({
 *   hostname: "127.0.0.1",
 *   port: 9090,
 *   signal: controller.signal,
 *   snapshot: () => buildAdminSnapshot(),
 * });
 * // ... later: controller.abort(); await admin.finished;
 * ```
 *
 * @module
 */
export { createAdminHandler, startAdminServer } from "./server.ts";
export type { AdminHandlerOptions, AdminServer, AdminServerOptions } from "./server.ts";
export { AdminMetrics } from "./metrics.ts";
export type { AdminMetricsOptions } from "./metrics.ts";
export type {
  AdminBackend,
  AdminConfigStatus,
  AdminDiscoveryStatus,
  AdminListener,
  AdminListenerStats,
  AdminPool,
  AdminReload,
  AdminReloadOutcome,
  AdminSnapshot,
  AdminSnapshotSource,
  AdminWorker,
  BackendHealth,
  DiscoverySource,
  DiscoveryState,
} from "./types.ts";
export { MAX_RECENT_RELOADS, MAX_SHOWN_ACCESS_ENTRIES } from "./types.ts";
export { renderStatusPage } from "./status_page.ts";
export type { StatusPageOptions } from "./status_page.ts";
