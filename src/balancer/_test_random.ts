/**
 * Test helpers for `balancer/`: a seeded PRNG and candidate builders. Test-only.
 *
 * @module
 */

import type { Candidate } from "../core/types.ts";

/**
 * Mulberry32 (Tommy Ettinger): a tiny seeded generator, uniform in `[0, 1)`. Good enough for
 * reproducible test traffic; not for anything else.
 */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A candidate whose connection count a test may change, as the pool does. */
export interface MutableCandidate extends Candidate {
  activeConnections: number;
}

/** Candidates `10.0.0.<i+1>:80` with the given weights and connection counts. */
export function candidatesOf(
  weights: readonly number[],
  activeConnections: readonly number[] = [],
): MutableCandidate[] {
  return weights.map((weight, i) => ({
    backend: { key: `10.0.0.${i + 1}:80`, host: `10.0.0.${i + 1}`, port: 80, weight },
    activeConnections: activeConnections[i] ?? 0,
  }));
}

/** A distinct IPv4 client address for each `n` below 2^24. */
export function clientAddress(n: number): string {
  return `198.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}
