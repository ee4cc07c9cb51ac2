/**
 * Round robin: smooth weighted round robin, the algorithm nginx uses for `upstream` weights
 * (nginx `ngx_http_upstream_round_robin.c`, "smooth weighted round-robin balancing",
 * nginx 1.3.1 changelog). With weights 5, 1, 1 it yields `a a b a c a a`: the heavy backend
 * is interleaved instead of hit in a burst. When every weight is equal it is plain rotation.
 *
 * @module
 */

import type { Balancer, BalancerKind, Candidate, ClientInfo } from "../core/types.ts";
import { isFull, weightOf } from "./_weight.ts";

interface RoundRobinState {
  readonly candidates: readonly Candidate[];
  /** Sum of positive weights; 0 when nothing can be picked. */
  readonly totalWeight: number;
  /** Every candidate has the same positive weight: rotation suffices. */
  readonly isUniform: boolean;
  /** Smooth weighted round robin's per-candidate `current_weight`. */
  readonly currentWeights: Float64Array;
  /** Next index for plain rotation. */
  next: number;
}

/**
 * Smooth weighted round robin over the candidates' weights; weight 0 is never picked, and a
 * full candidate (at its `maxConnections`) is passed over for that pick.
 *
 * State lives per `candidates` array (the pool passes the same array until it changes). When
 * a new array arrives, each backend's running counter is carried over by backend key, so a
 * pool change (a health flap, say) does not restart the sequence and favour the first or
 * heaviest backend. Picks allocate nothing; a pool change allocates one small state.
 */
export class RoundRobinBalancer implements Balancer {
  /** Always `"round_robin"`. */
  readonly kind: BalancerKind = "round_robin";
  #states = new WeakMap<readonly Candidate[], RoundRobinState>();
  #last: RoundRobinState | undefined;
  readonly #ticket: (() => number) | undefined;

  /**
   * @param options.ticket a counter shared with the same pool's balancers in other workers
   *   (one call per pick, each call a new non-negative integer): with equal weights the
   *   rotation is then one rotation over the whole process. Without it, or with unequal
   *   weights, each balancer rotates on its own.
   */
  constructor(options: { readonly ticket?: () => number } = {}) {
    this.#ticket = options.ticket;
  }

  /** Picks the next backend in the weighted rotation; see {@linkcode Balancer.pick}. */
  pick(candidates: readonly Candidate[], _client: ClientInfo): number {
    const count = candidates.length;
    if (count === 0) return -1;
    let state = this.#last;
    if (state === undefined || state.candidates !== candidates) {
      state = this.#states.get(candidates) ?? this.#createState(candidates);
      this.#last = state;
    }
    if (state.totalWeight === 0) return -1;
    if (state.isUniform) {
      // A full backend loses its turn; the rotation moves on to the next one. With a shared
      // ticket the turn comes from the process-wide counter, so each worker starts its search
      // where the whole process is.
      let index = this.#ticket === undefined ? state.next : this.#ticket() % count;
      for (let step = 0; step < count; step++) {
        const next = index + 1 === count ? 0 : index + 1;
        if (!isFull(candidates[index]!)) {
          state.next = next;
          return index;
        }
        index = next;
      }
      return -1;
    }
    const currentWeights = state.currentWeights;
    let best = -1;
    let bestWeight = -Infinity;
    // nginx skips a peer at max_conns the same way: it neither gains nor is charged.
    let total = 0;
    for (let i = 0; i < count; i++) {
      const candidate = candidates[i]!;
      const weight = weightOf(candidate);
      if (weight === 0 || isFull(candidate)) continue;
      total += weight;
      const current = currentWeights[i]! + weight;
      currentWeights[i] = current;
      if (current > bestWeight) {
        bestWeight = current;
        best = i;
      }
    }
    if (best !== -1) currentWeights[best]! -= total;
    return best;
  }

  #createState(candidates: readonly Candidate[]): RoundRobinState {
    const count = candidates.length;
    const currentWeights = new Float64Array(count);
    let totalWeight = 0;
    let isUniform = true;
    const firstWeight = weightOf(candidates[0]!);
    for (let i = 0; i < count; i++) {
      const weight = weightOf(candidates[i]!);
      totalWeight += weight;
      if (weight !== firstWeight || weight === 0) isUniform = false;
    }
    const previous = this.#last;
    if (previous !== undefined && previous.totalWeight > 0) {
      if (!previous.isUniform) {
        const carried = new Map<string, number>();
        previous.candidates.forEach((candidate, i) => {
          carried.set(candidate.backend.key, previous.currentWeights[i]!);
        });
        for (let i = 0; i < count; i++) {
          currentWeights[i] = carried.get(candidates[i]!.backend.key) ?? 0;
        }
      }
    }
    const state: RoundRobinState = {
      candidates,
      totalWeight,
      isUniform,
      currentWeights,
      next: previous === undefined ? 0 : previous.next % count,
    };
    this.#states.set(candidates, state);
    return state;
  }
}
