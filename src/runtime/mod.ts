/**
 * What runs: the {@linkcode Runtime} (control plane: health scheduling, admin, readiness)
 * and the {@linkcode DataPlane} it drives (listeners, pools, forwarding). `serve` is the
 * command around them; `serve --dry-run` and `check` never start one.
 *
 * @example
 * ```ts
 * const runtime = await Runtime.start({
 *   listeners,
 *   healthTargets: healthTargetsOf,
 *   discovery: () => ({ source: "static", state: "synced" }),
 * }, plans);
 * // ... runtime.apply(newPlans) on every change
 * runtime.beginShutdown();
 * await runtime.stop();
 * ```
 *
 * @module
 */
export {
  DataPlane,
  type DataPlaneListener,
  type DataPlaneListenerSnapshot,
  type DataPlaneOptions,
} from "./data_plane.ts";
export { availableCpus, parseCpuList, workersUnsupported } from "./cpus.ts";
export type { DataPlaneApi } from "./data_plane_api.ts";
export {
  DEFAULT_WORKER_STATS_INTERVAL_MS,
  WorkerDataPlane,
  type WorkerDataPlaneOptions,
} from "./worker_data_plane.ts";
export type { WorkerSnapshot } from "./worker_handle.ts";
export {
  type ListenerChanges,
  Runtime,
  type RuntimeAdmin,
  type RuntimeListener,
  type RuntimeOptions,
  type StopResult,
} from "./runtime.ts";
export { reusePortSupported } from "./reuse_port.ts";
