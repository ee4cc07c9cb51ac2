/**
 * Pure resolution of listener pools from a cluster inventory: `(Inventory, PoolSpec) →
 * PoolPlan`, each left-out candidate with its reason. Also diffs plans for `discover --watch`.
 *
 * ```ts
 * import { resolvePools } from "./mod.ts";
 * const plans = resolvePools(inventory, config.listeners);
 * ```
 *
 * @module
 */
export { type ResolveOptions, resolvePool, resolvePools } from "./resolve.ts";
export { type EndpointSliceIndex, indexEndpointSlices } from "./slice_index.ts";
export { type BackendChange, diffPlans, type PlanDiff } from "./diff.ts";
export {
  ANNOTATION_BACKEND_MODE,
  ANNOTATION_ENABLED,
  ANNOTATION_PREFIX,
  ANNOTATION_WEIGHT,
  BACKEND_MODE_NAMES,
  HEALTH_ANNOTATION_PREFIX,
  KNOWN_ANNOTATIONS,
  LABEL_EXCLUDE_FROM_EXTERNAL_LB,
  LABEL_SERVICE_NAME,
  MAX_WEIGHT,
  parseBackendMode,
  parseWeight,
} from "./annotations.ts";
