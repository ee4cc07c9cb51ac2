/**
 * Pure resolution of listener pools from a cluster inventory: `(Inventory, PoolSpec) →
 * PoolPlan`, each left-out candidate with its reason and each backend with its health target
 * (the listener's check, per-Service annotations, kube-proxy's `healthCheckNodePort`), so one
 * inventory change settles membership and health checks at once. Also diffs plans for
 * `discover --watch`.
 *
 * ```ts
 * import type { Config } from "../config/mod.ts";
 * import { type Inventory, type PoolPlan, resolvePools } from "./mod.ts";
 *
 * function planAll(inventory: Inventory, config: Config): PoolPlan[] {
 *   // One plan per listener, in config order; `inventory` is never mutated.
 *   return resolvePools(inventory, config.configurations);
 * }
 * ```
 *
 * @module
 */
export { healthTargetsOf, type ResolveOptions, resolvePool, resolvePools } from "./resolve.ts";
export type {
  EndpointInfo,
  EndpointSliceInfo,
  Inventory,
  NodeAddressInfo,
  NodeInfo,
  ServiceInfo,
  ServicePortInfo,
} from "../core/inventory.ts";
export type {
  BackendMode,
  ExcludedBackend,
  ExclusionReason,
  HealthTarget,
  NodeAddressType,
  PlannedBackend,
  PoolPlan,
  StaticBackendSpec,
} from "../core/plan.ts";
export type { HealthCheckSpec, PoolSpec } from "../core/pool_spec.ts";
export { type EndpointSliceIndex, indexEndpointSlices } from "./slice_index.ts";
export { type BackendChange, diffPlans, type PlanDiff } from "./diff.ts";
export {
  ANNOTATION_BACKEND_MODE,
  ANNOTATION_ENABLED,
  ANNOTATION_PREFIX,
  ANNOTATION_WEIGHT,
  applyHealthAnnotations,
  BACKEND_MODE_NAMES,
  HEALTH_ANNOTATION_KEYS,
  HEALTH_ANNOTATION_PREFIX,
  type HealthAnnotationKey,
  KNOWN_ANNOTATIONS,
  LABEL_EXCLUDE_FROM_EXTERNAL_LB,
  LABEL_SERVICE_NAME,
  MAX_BACKEND_WEIGHT,
  MAX_HEALTH_COUNT,
  parseBackendMode,
  parseWeight,
} from "./annotations.ts";
