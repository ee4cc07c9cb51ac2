/**
 * Power of two random choices: sample two distinct backends, keep the less loaded.
 *
 * Mitzenmacher, "The Power of Two Choices in Randomized Load Balancing", IEEE TPDS 12(10),
 * 2001: two random probes cut the maximum load from `log n / log log n` to
 * `log log n / log 2`, without the herd behaviour of every replica picking the same
 * globally least-loaded backend from a stale view.
 *
 * @module
 */

import type { Balancer, BalancerKind, Candidate, ClientInfo } from "../core/types.ts";
import { isFull, isLessLoaded, isOpen, weightOf } from "./_weight.ts";

/** Options for {@linkcode RandomTwoBalancer}. */
export interface RandomTwoOptions {
  /**
   * Uniform random source in `[0, 1)`. Inject a seeded generator for reproducible tests.
   * @default {Math.random}
   */
  random?: () => number;
}

interface WeightTable {
  /** `cumulative[i]` = sum of weights of candidates `0..i`. */
  readonly cumulative: Float64Array;
  readonly totalWeight: number;
  /** Number of candidates with a positive weight. */
  readonly positiveCount: number;
  /** Some candidate with a positive weight, or -1. */
  readonly anyPositive: number;
}

/**
 * Samples two distinct candidates with probability proportional to weight (the second
 * without replacement), then picks the one with the lower `activeConnections / weight`; on a
 * tie the first sample wins. Weight 0 is never picked. A full sample (at its
 * `maxConnections`) loses to the other; when both are full, the least loaded candidate that
 * is not full is taken (one linear scan, only then).
 *
 * Prefix sums of the weights are cached per `candidates` array (the pool passes the same
 * array until it changes); a pick costs two `random()` calls and two binary searches, and
 * allocates nothing.
 */
export class RandomTwoBalancer implements Balancer {
  /** Always `"random_two"`. */
  readonly kind: BalancerKind = "random_two";
  #random: () => number;
  #tables = new WeakMap<readonly Candidate[], WeightTable>();

  /** Creates the balancer; see {@linkcode RandomTwoOptions}. */
  constructor(options: RandomTwoOptions = {}) {
    const random = options.random ?? Math.random;
    if (typeof random !== "function") {
      throw new TypeError(
        `Cannot create balancer as 'random' must be a function: current value is ${String(random)}`,
      );
    }
    this.#random = random;
  }

  /** Picks the less loaded of two weighted random samples; see {@linkcode Balancer.pick}. */
  pick(candidates: readonly Candidate[], _client: ClientInfo): number {
    if (candidates.length === 0) return -1;
    let table = this.#tables.get(candidates);
    if (table === undefined) {
      table = buildWeightTable(candidates);
      this.#tables.set(candidates, table);
    }
    if (table.positiveCount <= 1) {
      const only = table.anyPositive;
      return only === -1 || isFull(candidates[only]!) ? -1 : only;
    }
    const { cumulative, totalWeight } = table;
    const first = search(cumulative, this.#random() * totalWeight, table.anyPositive);
    const firstWeight = weightOf(candidates[first]!);
    const firstStart = cumulative[first]! - firstWeight;
    // Draw over the weight line with the first sample's segment cut out, then map back.
    let point = this.#random() * (totalWeight - firstWeight);
    if (point >= firstStart) point += firstWeight;
    let second = search(cumulative, point, table.anyPositive);
    if (second === first) second = nextPositive(candidates, first);
    const a = candidates[first]!;
    const b = candidates[second]!;
    const isAFull = isFull(a);
    const isBFull = isFull(b);
    if (isAFull || isBFull) {
      if (!isBFull) return second;
      if (!isAFull) return first;
      return leastLoadedOpen(candidates, first);
    }
    return isLessLoaded(b.activeConnections, weightOf(b), a.activeConnections, firstWeight)
      ? second
      : first;
  }
}

/**
 * Both samples were full: the least loaded candidate that is not, scanning from `start` so
 * ties do not always go to the same index; -1 when every candidate is full.
 */
function leastLoadedOpen(candidates: readonly Candidate[], start: number): number {
  let best = -1;
  for (let step = 0; step < candidates.length; step++) {
    const i = (start + step) % candidates.length;
    const c = candidates[i]!;
    if (!isOpen(c)) continue;
    if (best === -1) {
      best = i;
      continue;
    }
    const b = candidates[best]!;
    if (isLessLoaded(c.activeConnections, weightOf(c), b.activeConnections, weightOf(b))) best = i;
  }
  return best;
}

function buildWeightTable(candidates: readonly Candidate[]): WeightTable {
  const cumulative = new Float64Array(candidates.length);
  let totalWeight = 0;
  let positiveCount = 0;
  let anyPositive = -1;
  for (let i = 0; i < candidates.length; i++) {
    const weight = weightOf(candidates[i]!);
    if (weight > 0) {
      positiveCount++;
      anyPositive = i;
    }
    totalWeight += weight;
    cumulative[i] = totalWeight;
  }
  return { cumulative, totalWeight, positiveCount, anyPositive };
}

/**
 * The first index whose cumulative weight exceeds `point`. Zero-weight candidates never
 * qualify, because their predecessor already does. `fallback` covers `point >= total`, which
 * a random source returning 1 or float rounding could produce.
 */
function search(cumulative: Float64Array, point: number, fallback: number): number {
  let low = 0;
  let high = cumulative.length - 1;
  if (!(point < cumulative[high]!)) return fallback;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (cumulative[mid]! > point) high = mid;
    else low = mid + 1;
  }
  return low;
}

function nextPositive(candidates: readonly Candidate[], from: number): number {
  for (let step = 1; step < candidates.length; step++) {
    const i = (from + step) % candidates.length;
    if (weightOf(candidates[i]!) > 0) return i;
  }
  return from;
}
