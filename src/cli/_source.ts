/**
 * A source of pool plans: static lists, offline manifests, or a live Kubernetes watch.
 * Every command takes its plans from here.
 *
 * @module
 */
import type { Config, ListenerConfig } from "../config/mod.ts";
import type { Inventory } from "../core/inventory.ts";
import type { PoolPlan } from "../core/plan.ts";
import {
  inventoryFromManifests,
  needsKubernetes,
  plansFrom,
  selectListeners,
  type SourceOptions,
  staticPlans,
} from "./_pipeline.ts";
import { openKubernetes } from "./_kubernetes.ts";
import { globalsOf, loadConfig, logConfigWarnings, setupLoggingFrom } from "./_common.ts";
import type { ConfigIssue } from "../config/mod.ts";
import type { PlanSource, SourceStatus } from "./_plan_source.ts";
import { Latest } from "../core/latest.ts";

export type { PlanSource, SourceOptions, SourceStatus };

/** Opens the source the config and flags ask for. */
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

/** The flags that choose a plan source, as commander parses them. */
export interface SourceFlags {
  readonly namespace?: string;
  readonly fromManifests?: string;
  readonly kubeconfig?: string;
  readonly context?: string;
}

/**
 * What every command that resolves pools does first: load the config named by the global
 * options, set up logging, and open the plan source the flags ask for.
 */
export async function openFromFlags(
  command: { optsWithGlobals(): unknown },
  flags: SourceFlags,
  signal: AbortSignal,
): Promise<{ config: Config; source: PlanSource }> {
  const globals = globalsOf(command);
  const configWarnings: ConfigIssue[] = [];
  const config = await loadConfig(globals.config, signal, (w) => configWarnings.push(w));
  await setupLoggingFrom(globals, config);
  logConfigWarnings(configWarnings);
  const source = await openSource(config, {
    fromManifests: flags.fromManifests,
    namespace: flags.namespace,
    kubeconfig: flags.kubeconfig,
    context: flags.context,
  }, signal);
  return { config, source };
}
