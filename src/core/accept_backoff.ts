/**
 * The one back-off for accept loops, as Go's `net/http` `Server.Serve` does it: a failed
 * `accept` (out of descriptors, a transient kernel error) waits 5 ms, doubling on each
 * failure in a row up to 1 s; a successful accept starts over. The listener stays open.
 *
 * @module
 */

/** First delay after a failed `accept`. */
export const ACCEPT_BACKOFF_MIN_MS = 5;
/** Longest delay between `accept` attempts while they keep failing. */
export const ACCEPT_BACKOFF_MAX_MS = 1_000;

/** Delays for one accept loop; not shared between loops. */
export class AcceptBackoff {
  #delayMs = 0;

  /** The delay before the next attempt after a failure: 5, 10, 20 … 1,000 ms. */
  next(): number {
    this.#delayMs = this.#delayMs === 0
      ? ACCEPT_BACKOFF_MIN_MS
      : Math.min(ACCEPT_BACKOFF_MAX_MS, this.#delayMs * 2);
    return this.#delayMs;
  }

  /** After a successful accept: the next failure waits the first delay again. */
  reset(): void {
    this.#delayMs = 0;
  }
}
