/**
 * Byte rates for the status page: the difference of running totals between two page
 * renders, over the time between them.
 *
 * @module
 */

/** Rates per second by key, and the window they were measured over. */
export interface Rates {
  /** Per-second rate of each key seen in both samples; a key that went down (reset) is absent. */
  readonly perSecond: ReadonlyMap<string, number>;
  /** Milliseconds between the two samples; 0 before a second sample. */
  readonly windowMs: number;
}

/**
 * Default {@linkcode RateMeter} minimum window: renders closer together than this reuse the
 * last rates, so two viewers refreshing at once do not turn rates into noise.
 */
export const DEFAULT_RATE_MIN_WINDOW_MS = 1000;

/**
 * Turns running totals into rates. Not shared across processes; one instance per admin
 * handler. The clock is the caller's, so tests control it.
 */
export class RateMeter {
  readonly #minWindowMs: number;
  #base: { readonly atMs: number; readonly values: ReadonlyMap<string, number> } | undefined;
  #last: Rates = { perSecond: new Map(), windowMs: 0 };

  /** @param minWindowMs @default {DEFAULT_RATE_MIN_WINDOW_MS} */
  constructor(minWindowMs: number = DEFAULT_RATE_MIN_WINDOW_MS) {
    this.#minWindowMs = minWindowMs;
  }

  /**
   * Records `totals` taken at `nowMs` and returns the rates since the previous sample that is
   * at least the minimum window old (the previous rates when the last sample is younger).
   */
  update(totals: ReadonlyMap<string, number>, nowMs: number): Rates {
    const base = this.#base;
    if (base === undefined || nowMs < base.atMs) {
      this.#base = { atMs: nowMs, values: new Map(totals) };
      this.#last = { perSecond: new Map(), windowMs: 0 };
      return this.#last;
    }
    const windowMs = nowMs - base.atMs;
    if (windowMs < this.#minWindowMs) return this.#last;
    const perSecond = new Map<string, number>();
    for (const [key, value] of totals) {
      const before = base.values.get(key);
      if (before !== undefined && value >= before) {
        perSecond.set(key, ((value - before) * 1000) / windowMs);
      }
    }
    this.#base = { atMs: nowMs, values: new Map(totals) };
    this.#last = { perSecond, windowMs };
    return this.#last;
  }
}
