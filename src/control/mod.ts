/**
 * The control layer: what the running program follows. Plan sources (static lists, offline
 * manifests, a live Kubernetes watch), config → plans, and the reloader that validates a new
 * config, diffs it into listener changes and applies them to the {@linkcode Runtime}. Errors
 * are domain errors ({@linkcode PlanSourceError}, reload outcomes); exit codes belong to the
 * command layer above.
 *
 * A watch event reads: discovery → {@linkcode openSource}'s source → resolve → the
 * reloader's {@linkcode ConfigReloader.follow} → runtime.
 *
 * @module
 */
export { PlanSourceError, type PlanSourceFailure } from "./errors.ts";
export type { PlanSource } from "./plan_source.ts";
export * from "./plans.ts";
export { type OpenSource, openSource } from "./open_source.ts";
export {
  INITIAL_SYNC_TIMEOUT_MS,
  namespacesOf,
  openKubernetes,
  RECONNECT_BACKOFF,
} from "./kubernetes_source.ts";
export { adminOf, ConfigReloader, type ConfigReloaderOptions } from "./reloader.ts";
