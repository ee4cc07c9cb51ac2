/**
 * Per-source connection counts shared by every worker: a count-min sketch (Cormode and
 * Muthukrishnan, "An Improved Data Stream Summary: The Count-Min Sketch and its
 * Applications", 2005) of `Int32` cells in a `SharedArrayBuffer`, written with `Atomics`.
 *
 * A key (listener name and client address) maps to one cell in each of {@linkcode ROWS} rows
 * by independent hashes; its count is the smallest of its cells. Cells shared with other keys
 * only add, so the estimate is never below the true count: a client is never let past its
 * limit, and is refused early only when every one of its cells is shared with busy
 * clients. No key is stored, so there is nothing to allocate, evict or lock per connection.
 *
 * Layout: `1 + workers` tables of `ROWS × cells`. Table 0 holds the totals that limits read;
 * table `1 + w` holds what worker `w` added, so the control plane can take back the counts of
 * a worker that died ({@linkcode SharedSourceCounts.reclaim}).
 *
 * @module
 */
import { fmix32, fnv1a32 } from "../core/hash.ts";
import type { SourceCounter } from "../core/connection_counter.ts";

/** Hash rows of the sketch. */
export const ROWS = 2;
/** Cells per row: 32768 × 2 rows × 4 bytes = 256 KiB per table. */
export const DEFAULT_SOURCE_CELLS = 32_768;

/** What to post to a worker so it can {@linkcode SharedSourceCounts.attach}. */
export interface SharedSourceCountsInit {
  readonly buffer: SharedArrayBuffer;
  /** Cells per row, a power of two. */
  readonly cells: number;
  readonly workers: number;
}

/** The shared per-source sketch; one instance per isolate over the same buffer. */
export class SharedSourceCounts {
  readonly #init: SharedSourceCountsInit;
  readonly #cells: Int32Array;

  private constructor(init: SharedSourceCountsInit) {
    this.#init = init;
    this.#cells = new Int32Array(init.buffer);
  }

  /**
   * Allocates a zeroed sketch.
   * @throws {RangeError} when `workers` is not a positive integer or `cells` not a power of two
   */
  static create(workers: number, cells = DEFAULT_SOURCE_CELLS): SharedSourceCounts {
    if (!Number.isInteger(workers) || workers < 1) {
      throw new RangeError(
        `Cannot create shared source counts as 'workers' must be a positive integer: current value is ${workers}`,
      );
    }
    if (!Number.isInteger(cells) || cells < 1 || (cells & (cells - 1)) !== 0) {
      throw new RangeError(
        `Cannot create shared source counts as 'cells' must be a power of two: current value is ${cells}`,
      );
    }
    const bytes = (1 + workers) * ROWS * cells * Int32Array.BYTES_PER_ELEMENT;
    return new SharedSourceCounts({ buffer: new SharedArrayBuffer(bytes), cells, workers });
  }

  /**
   * Attaches to a sketch created in another isolate.
   * @throws {RangeError} when the buffer is smaller than the layout
   */
  static attach(init: SharedSourceCountsInit): SharedSourceCounts {
    const needed = (1 + init.workers) * ROWS * init.cells * Int32Array.BYTES_PER_ELEMENT;
    if (init.buffer.byteLength < needed) {
      throw new RangeError(
        `Cannot attach shared source counts: buffer has ${init.buffer.byteLength} bytes, layout needs ${needed}`,
      );
    }
    return new SharedSourceCounts(init);
  }

  /** What to post to a worker. */
  get init(): SharedSourceCountsInit {
    return this.#init;
  }

  /**
   * The counter of listener `name` as worker `worker` writes it.
   * @throws {RangeError} when `worker` is out of range
   */
  counter(name: string, worker: number): SourceCounter {
    const { cells: width, workers } = this.#init;
    if (!Number.isInteger(worker) || worker < 0 || worker >= workers) {
      throw new RangeError(
        `Cannot use shared source counts of worker ${worker}: expected 0-${workers - 1}`,
      );
    }
    const cells = this.#cells;
    const table = ROWS * width;
    const own = (1 + worker) * table;
    const mask = width - 1;
    // The listener's name seeds both hashes once; each lookup hashes only the address.
    const seedA = fnv1a32(name, 0x811c9dc5);
    const seedB = fnv1a32(name, 0x01000193 ^ 0x5bd1e995);
    const at = (address: string): [number, number] => [
      fmix32(fnv1a32(address, seedA)) & mask,
      width + (fmix32(fnv1a32(address, seedB) ^ 0x9e3779b9) & mask),
    ];
    return {
      tryAcquire(address: string, limit: number): boolean {
        const [a, b] = at(address);
        // Add first, then judge by the counts before the add: of racers for the last free
        // connection, exactly one sees `limit - 1` (Atomics.add is one atomic step per cell).
        const beforeA = Atomics.add(cells, a, 1);
        const beforeB = Atomics.add(cells, b, 1);
        if (Math.min(beforeA, beforeB) >= limit) {
          Atomics.sub(cells, a, 1);
          Atomics.sub(cells, b, 1);
          return false;
        }
        Atomics.add(cells, own + a, 1);
        Atomics.add(cells, own + b, 1);
        return true;
      },
      release(address: string): void {
        const [a, b] = at(address);
        Atomics.sub(cells, a, 1);
        Atomics.sub(cells, b, 1);
        Atomics.sub(cells, own + a, 1);
        Atomics.sub(cells, own + b, 1);
      },
    };
  }

  /** The sketch's estimate for `address` on listener `name`: what limits compare with. */
  estimate(name: string, address: string): number {
    const width = this.#init.cells;
    const mask = width - 1;
    const a = fmix32(fnv1a32(address, fnv1a32(name, 0x811c9dc5))) & mask;
    const b = width +
      (fmix32(fnv1a32(address, fnv1a32(name, 0x01000193 ^ 0x5bd1e995)) ^ 0x9e3779b9) & mask);
    return Math.min(Atomics.load(this.#cells, a), Atomics.load(this.#cells, b));
  }

  /**
   * Takes back what worker `worker` counted (it died with its connections): subtracts its
   * table from the totals and zeroes it.
   * @returns connections taken back (summed over one row)
   */
  reclaim(worker: number): number {
    const table = ROWS * this.#init.cells;
    const own = (1 + worker) * table;
    let lost = 0;
    for (let i = 0; i < table; i++) {
      const n = Atomics.exchange(this.#cells, own + i, 0);
      if (n !== 0) {
        Atomics.sub(this.#cells, i, n);
        if (i < this.#init.cells) lost += n;
      }
    }
    return lost;
  }
}
