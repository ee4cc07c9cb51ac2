/**
 * Differences between two plans of one pool, for `discover --watch` output.
 *
 * @module
 */
import type { PlannedBackend, PoolPlan } from "../core/plan.ts";
import { sortEntries } from "./_compare.ts";

/** A backend present in both plans whose attributes differ. */
export interface BackendChange {
  /** The backend as the old plan had it. */
  readonly before: PlannedBackend;
  /** The backend as the new plan has it; same `address`. */
  readonly after: PlannedBackend;
  /** Names of the attributes that differ, sorted, e.g. `["weight"]`. */
  readonly fields: readonly (keyof PlannedBackend)[];
}

/** How a pool's membership moved. All three empty means no change. */
export interface PlanDiff {
  /** Backends only in `after`, sorted by address. */
  readonly added: readonly PlannedBackend[];
  /** Backends only in `before`, sorted by address; the pool drains them. */
  readonly removed: readonly PlannedBackend[];
  /** Backends in both whose weight, Service, node, pod, draining or terminating flag changed. */
  readonly changed: readonly BackendChange[];
}

const FIELDS: readonly (keyof PlannedBackend)[] = [
  "draining",
  "host",
  "node",
  "pod",
  "port",
  "service",
  "terminating",
  "weight",
];

/**
 * Compares two plans by backend address. Exclusions and warnings are not compared: they
 * explain membership, they are not membership.
 */
export function diffPlans(before: PoolPlan, after: PoolPlan): PlanDiff {
  const old = new Map(before.backends.map((b) => [b.address, b]));
  const added: PlannedBackend[] = [];
  const changed: BackendChange[] = [];
  for (const b of after.backends) {
    const prev = old.get(b.address);
    if (prev === undefined) {
      added.push(b);
      continue;
    }
    old.delete(b.address);
    const fields = FIELDS.filter((f) => prev[f] !== b[f]);
    if (fields.length > 0) changed.push({ before: prev, after: b, fields });
  }
  const removed = [...old.values()];
  sortEntries(added, (b) => b);
  sortEntries(removed, (b) => b);
  sortEntries(changed, (c) => c.after);
  return { added, removed, changed };
}
