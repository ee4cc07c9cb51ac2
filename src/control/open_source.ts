/**
 * Opening the plan source a config and the command line ask for: static lists, offline
 * manifests, or a live Kubernetes watch.
 *
 * @module
 */
import type { Config, ListenerConfig } from "../config/mod.ts";
import type { Inventory } from "../core/inventory.ts";
import type { PoolPlan } from "../core/plan.ts";
import { Latest } from "../core/latest.ts";
import { openKubernetes } from "./kubernetes_source.ts";
import {
  inventoryFromManifests,
  needsKubernetes,
  plansFrom,
  selectListeners,
  type SourceOptions,
  staticPlans,
} from "./plans.ts";
import type { PlanSource } from "./plan_source.ts";

/** Opens a plan source for a config; {@linkcode openSource} outside tests. */
export type OpenSource = (
  config: Config,
  options: SourceOptions,
  signal: AbortSignal,
) => Promise<PlanSource>;

/**
 * Opens the source the config and `options` ask for.
 * @param signal ends the source's `updates()` and stops a Kubernetes watch
 * @throws {PlanSourceError} when manifests cannot be read or the cluster cannot be synced
 */
export async function openSource(
  config: Config,
  options: SourceOptions,
  signal: AbortSignal,
): Promise<PlanSource> {
  const listeners = selectListeners(config, options);
  if (options.fromManifests !== undefined) {
    const { inventory, warnings } = await inventoryFromManifests(options.fromManifests);
    return fixedSource(
      "manifests",
      listeners,
      plansFrom(inventory, listeners, warnings),
      signal,
      inventory,
    );
  }
  if (!needsKubernetes(listeners)) {
    return fixedSource("static", listeners, staticPlans(listeners), signal, undefined);
  }
  return await openKubernetes(config, listeners, options, signal);
}

function fixedSource(
  kind: "static" | "manifests",
  listeners: readonly ListenerConfig[],
  plans: readonly PoolPlan[],
  signal: AbortSignal,
  inventory: Inventory | undefined,
): PlanSource {
  const openedAt = Date.now();
  return {
    kind,
    listeners,
    plans,
    status: () => ({ state: "synced", lastChangeAt: openedAt }),
    inventory: () => inventory,
    // Nothing changes; wait for the end so `--watch` behaves the same for every source.
    updates: () => new Latest<readonly PoolPlan[]>().values(signal),
    close: () => Promise.resolve(),
  };
}
