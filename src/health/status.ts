/**
 * What the health scheduler reports: state changes as they happen and every target's
 * status on demand.
 *
 * @module
 */
import type { BackendHealth } from "../core/types.ts";

/**
 * What caused a state change: an active probe, a client connect attempt, `update()`
 * turning the target's check off (the state then returns to `unknown`), or the end of a
 * passive ejection's cooldown while active checks are off (back to `unknown`).
 */
export type TransitionCause = "active" | "passive" | "config" | "cooldown";

/** A state change of one backend in one pool. */
export interface HealthTransition {
  /** Pool name, as in `HealthTarget.pool`. */
  readonly pool: string;
  /** Backend key, as in `HealthTarget.key`. */
  readonly key: string;
  /** State before the change. */
  readonly from: BackendHealth;
  /** State after the change. */
  readonly to: BackendHealth;
  /** What caused it. */
  readonly cause: TransitionCause;
  /** The failure that caused a change to `unhealthy`. */
  readonly error?: string;
  /** Clock value (the scheduler's `now` option) of the change. */
  readonly at: number;
}

/** Health of one target, for admin pages and metrics. A copy; changing it changes nothing. */
export interface HealthStatus {
  /** Pool name. */
  readonly pool: string;
  /** Backend key, `host:port`. */
  readonly key: string;
  /** Backend host. */
  readonly host: string;
  /** Backend port. */
  readonly port: number;
  /** Whether active checks run for it. */
  readonly isEnabled: boolean;
  /** Current state. */
  readonly state: BackendHealth;
  /** Successes since the last failure. */
  readonly consecutiveSuccesses: number;
  /** Failures since the last success. */
  readonly consecutiveFailures: number;
  /** Active and passive results recorded. */
  readonly checks: number;
  /** Failed results among `checks`. */
  readonly failedChecks: number;
  /** Clock value of the last result; absent before the first. */
  readonly lastCheck?: number;
  /** Clock value of the last state change; absent while in the initial state. */
  readonly lastChange?: number;
  /** Error of the most recent failure, kept after later successes. */
  readonly lastError?: string;
  /** Latency of the last active probe. */
  readonly lastLatencyMs?: number;
}
