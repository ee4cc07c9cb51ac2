/**
 * A fixed-bucket histogram that costs one short scan per observation and allocates nothing,
 * for per-connection timings the proxy records and admin exports at scrape time.
 *
 * @module
 */

/** Seconds from accept to close of a client connection. */
export const CONNECTION_DURATION_BUCKETS: readonly number[] = [
  0.005,
  0.01,
  0.05,
  0.1,
  0.5,
  1,
  5,
  10,
  30,
  60,
  300,
  1800,
  3600,
];

/** Seconds to establish one backend connection. */
export const CONNECT_DURATION_BUCKETS: readonly number[] = [
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
];

/**
 * A histogram's numbers as plain data: what {@linkcode Histogram.toData} returns and
 * {@linkcode Histogram.add} takes, e.g. to post a worker's histogram to the control plane
 * (a structured clone keeps fields but drops the class).
 */
export interface HistogramData {
  /** Upper bounds, ascending. */
  readonly bounds: readonly number[];
  /** Per-bucket counts, one more than `bounds`. */
  readonly counts: ArrayLike<number>;
  /** Sum of every observed value. */
  readonly sum: number;
  /** Number of observations. */
  readonly count: number;
}

/**
 * Counts observations into buckets with upper bounds `bounds` (inclusive, as Prometheus'
 * `le`), plus one overflow bucket. Counts are per bucket, not cumulative; Prometheus'
 * cumulative form is computed at export. Written by one isolate; read it, never write.
 */
export class Histogram {
  /** Upper bounds, ascending. */
  readonly bounds: readonly number[];
  /** `counts[i]` observations fell in `(bounds[i-1], bounds[i]]`; the last is `> bounds.at(-1)`. */
  readonly counts: Float64Array;
  /** Sum of every observed value. */
  sum = 0;
  /** Number of observations. */
  count = 0;

  /**
   * @param bounds ascending finite upper bounds
   * @throws {RangeError} when `bounds` is not ascending or has a non-finite value
   */
  constructor(bounds: readonly number[]) {
    for (let i = 0; i < bounds.length; i++) {
      if (!Number.isFinite(bounds[i]) || (i > 0 && !(bounds[i]! > bounds[i - 1]!))) {
        throw new RangeError(
          `Cannot create histogram as 'bounds' must be ascending finite numbers: current value is ${
            JSON.stringify(bounds)
          }`,
        );
      }
    }
    this.bounds = [...bounds];
    this.counts = new Float64Array(bounds.length + 1);
  }

  /** Records one value; a `NaN` is ignored. */
  observe(value: number): void {
    if (Number.isNaN(value)) return;
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    this.counts[i]!++;
    this.sum += value;
    this.count++;
  }

  /** A plain-data copy, safe to post between isolates and to pass to {@linkcode Histogram.add}. */
  toData(): HistogramData {
    return {
      bounds: [...this.bounds],
      counts: Array.from(this.counts),
      sum: this.sum,
      count: this.count,
    };
  }

  /**
   * Adds another histogram's observations bucket by bucket, e.g. to merge workers'
   * histograms into one for the process. Only for a histogram the caller owns.
   * @throws {RangeError} when `other` has other bounds (or a counts length that does not fit)
   */
  add(other: HistogramData): void {
    const bounds = this.bounds;
    if (
      other.bounds.length !== bounds.length || other.counts.length !== this.counts.length ||
      other.bounds.some((b, i) => b !== bounds[i])
    ) {
      throw new RangeError(
        `Cannot add histogram as its bounds differ: expected ${JSON.stringify(bounds)}, got ${
          JSON.stringify(other.bounds)
        }`,
      );
    }
    for (let i = 0; i < this.counts.length; i++) this.counts[i]! += other.counts[i]!;
    this.sum += other.sum;
    this.count += other.count;
  }
}
