/**
 * Health hysteresis for one backend: consecutive check results in, state changes out.
 * Pure: no I/O, no timers; the caller passes the clock.
 *
 * States and moves, following HAProxy's `rise`/`fall` and its default `init-state up`:
 *
 * | from        | on                           | to          |
 * | ----------- | ---------------------------- | ----------- |
 * | `unknown`   | 1 success                    | `healthy`   |
 * | `unknown`   | 1 failure                    | `unhealthy` |
 * | `healthy`   | `fall` consecutive failures  | `unhealthy` |
 * | `unhealthy` | `rise` consecutive successes | `healthy`   |
 *
 * `unknown` is the state before any verdict: a new backend, or one whose checks are off.
 * The pool treats it as eligible so that a restart or a scale-up causes no outage while
 * the first checks run. A single failed check ends that benefit of the doubt, as in HAProxy
 * ("the server is considered immediately available and will initiate a health check that
 * can turn it to the DOWN state immediately if it fails"). This matters for NodePort pools
 * behind `externalTrafficPolicy: Local`: nodes without local endpoints answer 503 on the
 * first probe and must not receive traffic for `fall` intervals first.
 * Start with `initial: "healthy"` for HAProxy's `fully-up` (`fall` failures needed) and
 * `initial: "unhealthy"` for `fully-down` (`rise` successes needed).
 *
 * @module
 */

import type { BackendHealth } from "../core/types.ts";

/** A change of {@linkcode BackendHealth}. */
export interface Transition {
  /** State before the result. */
  readonly from: BackendHealth;
  /** State after the result. */
  readonly to: BackendHealth;
  /** Clock value passed to {@linkcode HealthTracker.record}. */
  readonly at: number;
}

/** Options of {@linkcode HealthTracker}. */
export interface HealthTrackerOptions {
  /** Consecutive successes that bring an unhealthy backend back; a positive integer. */
  readonly rise: number;
  /** Consecutive failures that take a healthy backend out; a positive integer. */
  readonly fall: number;
  /**
   * State before the first check.
   * @default {"unknown"}
   */
  readonly initial?: BackendHealth;
}

/** Default {@linkcode HealthTrackerOptions.initial}. */
export const DEFAULT_INITIAL_STATE: BackendHealth = "unknown";

/**
 * Rise/fall state machine of one backend. The owner (one scheduler) is the only writer;
 * readers see the getters.
 *
 * @example
 * ```ts
 * const tracker = new HealthTracker({ rise: 2, fall: 3 });
 * tracker.record(true, 1000); // { from: "unknown", to: "healthy", at: 1000 }
 * tracker.record(false, 2000, "connection refused"); // undefined: 1 of 3 failures
 * ```
 */
export class HealthTracker {
  #rise: number;
  #fall: number;
  #state: BackendHealth;
  #successes = 0;
  #failures = 0;
  #checks = 0;
  #failedChecks = 0;
  #lastCheck: number | undefined;
  #lastChange: number | undefined;
  #lastError: string | undefined;

  /**
   * Creates a tracker in `options.initial` state with no results.
   * @throws {RangeError} when `rise` or `fall` is not a positive integer
   */
  constructor(options: HealthTrackerOptions) {
    this.#rise = checkThreshold("rise", options.rise);
    this.#fall = checkThreshold("fall", options.fall);
    this.#state = options.initial ?? DEFAULT_INITIAL_STATE;
  }

  /** Current state. */
  get state(): BackendHealth {
    return this.#state;
  }
  /** Consecutive successes needed to leave `unhealthy`. */
  get rise(): number {
    return this.#rise;
  }
  /** Consecutive failures needed to leave `healthy`. */
  get fall(): number {
    return this.#fall;
  }
  /** Successes since the last failure. */
  get consecutiveSuccesses(): number {
    return this.#successes;
  }
  /** Failures since the last success. */
  get consecutiveFailures(): number {
    return this.#failures;
  }
  /** Results recorded in total. */
  get checks(): number {
    return this.#checks;
  }
  /** Failed results recorded in total. */
  get failedChecks(): number {
    return this.#failedChecks;
  }
  /** Clock value of the last recorded result; `undefined` before the first. */
  get lastCheck(): number | undefined {
    return this.#lastCheck;
  }
  /** Clock value of the last state change; `undefined` while still in the initial state. */
  get lastChange(): number | undefined {
    return this.#lastChange;
  }
  /** Error text of the most recent failure, kept after later successes for diagnosis. */
  get lastError(): string | undefined {
    return this.#lastError;
  }

  /**
   * The state {@linkcode HealthTracker.record} would move to for this result, without
   * recording it. Lets a caller veto a change (e.g. an ejection limit) before it happens.
   */
  peek(ok: boolean): BackendHealth {
    return this.#next(ok, ok ? this.#successes + 1 : this.#failures + 1);
  }

  /**
   * Records one check result.
   * @param ok whether the check passed
   * @param now clock value stored as `lastCheck` and, on a change, `lastChange`
   * @param error failure text; `"check failed"` when absent
   * @returns the state change it caused, if any
   */
  record(ok: boolean, now: number, error?: string): Transition | undefined {
    this.#checks++;
    this.#lastCheck = now;
    if (ok) {
      this.#successes++;
      this.#failures = 0;
    } else {
      this.#failures++;
      this.#successes = 0;
      this.#failedChecks++;
      this.#lastError = error ?? "check failed";
    }
    const from = this.#state;
    const to = this.#next(ok, ok ? this.#successes : this.#failures);
    if (to === from) return undefined;
    this.#state = to;
    this.#lastChange = now;
    return { from, to, at: now };
  }

  /**
   * Changes `rise` and `fall`, keeping state and counters; the new thresholds apply from
   * the next result.
   * @throws {RangeError} when `rise` or `fall` is not a positive integer
   */
  reconfigure(options: { readonly rise: number; readonly fall: number }): void {
    const rise = checkThreshold("rise", options.rise);
    const fall = checkThreshold("fall", options.fall);
    this.#rise = rise;
    this.#fall = fall;
  }

  #next(ok: boolean, streak: number): BackendHealth {
    switch (this.#state) {
      case "unknown":
        return ok ? "healthy" : "unhealthy";
      case "healthy":
        return !ok && streak >= this.#fall ? "unhealthy" : "healthy";
      case "unhealthy":
        return ok && streak >= this.#rise ? "healthy" : "unhealthy";
    }
  }
}

function checkThreshold(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) {
    throw new RangeError(
      `Cannot track health as '${name}' must be a positive integer: current value is ${value}`,
    );
  }
  return value;
}
