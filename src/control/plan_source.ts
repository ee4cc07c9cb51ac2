/**
 * The plan-source seam: what every command takes its pools from. Implementations live in
 * `open_source.ts` (static lists, offline manifests) and `kubernetes_source.ts` (a live
 * watch).
 *
 * @module
 */
import type { ListenerConfig } from "../config/mod.ts";
import type { DiscoverySource, DiscoveryStatus } from "../core/discovery_state.ts";
import type { Inventory } from "../core/inventory.ts";
import type { PoolPlan } from "../core/plan.ts";

/** Plans now, and later ones as the cluster changes. */
export interface PlanSource {
  /** Where the plans come from. */
  readonly kind: DiscoverySource;
  /** The listeners the plans are for. */
  readonly listeners: readonly ListenerConfig[];
  /** The plans at open time. */
  readonly plans: readonly PoolPlan[];
  /**
   * Yields the newest plans after each change (a slow reader skips intermediate ones) until
   * the signal given at open aborts or the source closes.
   */
  updates(): AsyncIterable<readonly PoolPlan[]>;
  /** The discovery state now. */
  status(): DiscoveryStatus;
  /** The inventory behind the latest plans (`undefined` for static sources). */
  inventory(): Inventory | undefined;
  /** Stops watching; `updates()` iterations end. Idempotent. */
  close(): Promise<void>;
}
