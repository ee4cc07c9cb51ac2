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
