/**
 * Waits that one event can cut short: the retries of several reflectors backing off from one
 * API outage all retry once the API answers again.
 *
 * @module
 */

/**
 * Wakes retries that wait out an unreachable API: when the API answers again, the loops
 * backing off from the same outage retry now instead of finishing a multi-second wait. Waits
 * after other failures (5xx, 401/403, bad bodies) are not cut short, so they keep their backoff.
 */
export class RetryWaker {
  readonly #sleepers = new Set<() => void>();

  /** Ends every current wakeable wait. */
  wake(): void {
    for (const wake of [...this.#sleepers]) wake();
  }

  /**
   * Waits `ms`, or until `signal` aborts, or (when `isWakeable`) until
   * {@linkcode RetryWaker.wake}, whichever is first.
   */
  sleep(ms: number, signal: AbortSignal, isWakeable = false): Promise<void> {
    return new Promise((resolve) => {
      if (signal.aborted) return resolve();
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        this.#sleepers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener("abort", done, { once: true });
      if (isWakeable) this.#sleepers.add(done);
    });
  }
}
