/**
 * One log line per interval for a kind of event, the others counted: a flood of refused or
 * failed connections costs a line a second, not a line each.
 *
 * @module
 */

/** Lets one event through per `intervalMs` and counts those held back. */
export class LogLimiter {
  readonly #intervalMs: number;
  #lastAt = -Infinity;
  #held = 0;

  /** @param intervalMs least time between two lines @default {1000} */
  constructor(intervalMs = 1000) {
    this.#intervalMs = intervalMs;
  }

  /**
   * Counts one event.
   * @returns `undefined` when no line may go out now; else how many events were held back
   *   since the last line (then counting starts again)
   */
  take(now: number = performance.now()): number | undefined {
    if (now - this.#lastAt < this.#intervalMs) {
      this.#held++;
      return undefined;
    }
    const held = this.#held;
    this.#held = 0;
    this.#lastAt = now;
    return held;
  }
}
