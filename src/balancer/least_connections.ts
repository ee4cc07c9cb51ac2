/**
 * Least connections: the backend with the fewest active connections per unit of weight.
 *
 * @module
 */

import type { Balancer, BalancerKind, Candidate, ClientInfo } from "../core/types.ts";
import { isFull, isLessLoaded, weightOf } from "./_weight.ts";

/**
 * Picks the candidate with the lowest `activeConnections / weight`; weight 0 and full
 * candidates (at their `maxConnections`) are never picked.
 *
 * Ties are broken by round robin: the scan starts just after the previous pick and keeps the
 * first least-loaded candidate it meets, so a burst of connections against equally loaded
 * backends (all idle at start-up, say) spreads instead of piling onto index 0. One linear
 * scan per pick, no allocation.
 */
export class LeastConnectionsBalancer implements Balancer {
  /** Always `"least_connections"`. */
  readonly kind: BalancerKind = "least_connections";
  #next = 0;

  /** Picks the least loaded backend; see {@linkcode Balancer.pick}. */
  pick(candidates: readonly Candidate[], _client: ClientInfo): number {
    const count = candidates.length;
    if (count === 0) return -1;
    const start = this.#next < count ? this.#next : this.#next % count;
    let best = -1;
    let bestConnections = 0;
    let bestWeight = 0;
    for (let step = 0, i = start; step < count; step++) {
      const candidate = candidates[i]!;
      const weight = weightOf(candidate);
      if (
        weight > 0 && !isFull(candidate) &&
        (best === -1 ||
          isLessLoaded(candidate.activeConnections, weight, bestConnections, bestWeight))
      ) {
        best = i;
        bestConnections = candidate.activeConnections;
        bestWeight = weight;
      }
      i = i + 1 === count ? 0 : i + 1;
    }
    if (best !== -1) this.#next = best + 1;
    return best;
  }
}
