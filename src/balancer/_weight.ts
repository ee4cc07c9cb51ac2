/**
 * Weight helpers shared by the pick policies. Private to `balancer/`.
 *
 * @module
 */

import type { Candidate } from "../core/types.ts";

/**
 * The weight a policy uses for a candidate: the backend's weight when it is a positive finite
 * number, else 0. Config validates weights; this keeps a bad value from ever being picked
 * instead of poisoning arithmetic with `NaN` or `Infinity`.
 */
export function weightOf(candidate: Candidate): number {
  const weight = candidate.backend.weight;
  return weight > 0 && weight < Infinity ? weight : 0;
}

/**
 * Whether candidate `a` is strictly less loaded than `b`, comparing
 * `activeConnections / weight` by cross-multiplication so no division or rounding is
 * involved. Both weights must be positive.
 */
export function isLessLoaded(
  aConnections: number,
  aWeight: number,
  bConnections: number,
  bWeight: number,
): boolean {
  return aConnections * bWeight < bConnections * aWeight;
}

/**
 * Whether a candidate is at its connection limit ({@linkcode Candidate.maxConnections});
 * every policy skips a full candidate as if its weight were 0 for this pick.
 */
export function isFull(candidate: Candidate): boolean {
  const max = candidate.maxConnections;
  return max !== undefined && max > 0 && candidate.activeConnections >= max;
}

/** Whether the candidate can take a connection now: a positive weight and not full. */
export function isOpen(candidate: Candidate): boolean {
  return weightOf(candidate) > 0 && !isFull(candidate);
}
