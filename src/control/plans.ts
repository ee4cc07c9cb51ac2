/**
 * Config → pool plans: the one code path shared by `discover`, `check` and `serve`, so what
 * `discover` prints is what `serve` does.
 *
 * @module
 */
import type { Config, ListenerConfig } from "../config/mod.ts";
import { EMPTY_INVENTORY, type Inventory } from "../core/inventory.ts";
import { errorMessage } from "../core/error_message.ts";
import type { PoolPlan } from "../core/plan.ts";
import { loadManifests } from "../discovery/mod.ts";
import { resolvePools } from "../resolve/mod.ts";
import { listenerOfPool, poolSpecsOf } from "../core/tls_spec.ts";
import { maglevFingerprint } from "../balancer/mod.ts";
import { PlanSourceError } from "./errors.ts";

/** Where pools come from: the command line's choice, the same for every command. */
export interface SourceOptions {
  /** Resolve offline from a file or directory of manifests. */
  readonly fromManifests?: string;
  /** Only listeners that admit this namespace, narrowed to it (static ones stay). */
  readonly namespace?: string;
  /** The kubeconfig file; wins over `settings.kubeconfigPath`. */
  readonly kubeconfig?: string;
  /** The kubeconfig context; its current context when absent. */
  readonly context?: string;
  /**
   * A command that prints once and exits (`discover`, `check`, `serve --dry-run`): fail at
   * once when the API server refuses connections or its name does not resolve, instead of
   * retrying as a running `serve` does.
   */
  readonly isOneShot?: boolean;
}

/** True when some listener needs Kubernetes to find its backends. */
export function needsKubernetes(listeners: readonly ListenerConfig[]): boolean {
  return listeners.flatMap(poolSpecsOf).some((l) => l.backendPortName !== undefined);
}

/** The listeners a command works on: all, or those matching `--namespace`. */
export function selectListeners(
  config: Config,
  options: SourceOptions,
): readonly ListenerConfig[] {
  const ns = options.namespace;
  if (ns === undefined) return config.configurations;
  return config.configurations.flatMap((l) => {
    if (l.namespaces !== undefined && !l.namespaces.includes(ns)) return [];
    return l.backendPortName === undefined ? [l] : [{ ...l, namespaces: [ns] }];
  });
}

/**
 * Loads an offline inventory from manifests.
 * @throws {PlanSourceError} `unreadable`, with the reader's message (it names the path)
 */
export async function inventoryFromManifests(
  path: string,
): Promise<{ inventory: Inventory; warnings: readonly string[] }> {
  try {
    return await loadManifests(path);
  } catch (error) {
    throw new PlanSourceError(errorMessage(error), "unreadable", { cause: error });
  }
}

/**
 * Resolves plans, with their health targets, from an inventory. Warnings about the source
 * itself (unreadable manifests, duplicates, a missing API) join every Kubernetes pool's
 * `inputWarnings`, ahead of its own; renderers print them once per run.
 */
export function plansFrom(
  inventory: Inventory,
  listeners: readonly ListenerConfig[],
  sourceWarnings: readonly string[] = [],
): PoolPlan[] {
  // A tls listener's routes are its pools (`listener/route`); other listeners have one.
  const specs = listeners.flatMap(poolSpecsOf);
  const plans = resolvePools(inventory, specs);
  if (sourceWarnings.length === 0) return plans;
  return plans.map((plan, i) =>
    specs[i]?.backendPortName === undefined ? plan : {
      ...plan,
      inputWarnings: [
        ...sourceWarnings,
        ...plan.inputWarnings.filter((w) => !sourceWarnings.includes(w)),
      ],
    }
  );
}

/** Static-only plans (no cluster needed). */
export function staticPlans(listeners: readonly ListenerConfig[]): PoolPlan[] {
  return plansFrom(EMPTY_INVENTORY, listeners);
}

/**
 * Adds the Maglev table fingerprint to the plans of `maglev` listeners, computed from the
 * planned backends (all healthy), as a running pool with those backends would build it.
 */
export function withFingerprints(
  plans: readonly PoolPlan[],
  listeners: readonly ListenerConfig[],
): PoolPlan[] {
  const byName = new Map(listeners.map((l) => [l.name, l]));
  return plans.map((plan) => {
    const l = byName.get(listenerOfPool(plan.name));
    if (l === undefined || l.balancer !== "maglev") return plan;
    const fingerprint = maglevFingerprint(
      plan.backends.map((b) => ({ key: b.address, weight: b.weight })),
      { tableSize: l.maglevTableSize, seed: l.maglevSeed },
    );
    return { ...plan, fingerprint };
  });
}
