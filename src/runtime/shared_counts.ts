/**
 * Connection counts shared by every worker of the process: a `SharedArrayBuffer` of `Int32`
 * slots written with `Atomics`, so `least_connections`, `random_two` and a listener's
 * `maxConnections` see the whole process, not one worker.
 *
 * Layout: `1 + workers` rows of `slots` counters. Row 0 holds the totals that balancers and
 * limits read; row `1 + w` holds what worker `w` added, so the control plane can take back
 * the connections of a worker that died ({@linkcode SharedCounts.reclaim}).
 *
 * @module
 */
import type { ConnectionCounter } from "../core/connection_counter.ts";

/** What a worker needs to attach to the same counters; structured-clone safe. */
export interface SharedCountsInit {
  /** The shared memory; `(1 + workers) * slots` Int32 values. */
  readonly buffer: SharedArrayBuffer;
  /** Counters per row. */
  readonly slots: number;
  /** Worker rows after the totals row. */
  readonly workers: number;
}

/**
 * A table of shared connection counters. One instance per isolate over the same buffer;
 * each worker writes through its own {@linkcode SharedCounts.counter}s only.
 */
export class SharedCounts {
  /** Counters per row. */
  readonly slots: number;
  /** Worker rows. */
  readonly workers: number;
  readonly #buffer: SharedArrayBuffer;
  readonly #cells: Int32Array;

  private constructor(init: SharedCountsInit) {
    this.slots = init.slots;
    this.workers = init.workers;
    this.#buffer = init.buffer;
    this.#cells = new Int32Array(init.buffer);
  }

  /**
   * Allocates zeroed counters.
   * @throws {RangeError} when `slots` or `workers` is not a positive integer
   */
  static create(slots: number, workers: number): SharedCounts {
    for (const [name, value] of [["slots", slots], ["workers", workers]] as const) {
      if (!Number.isInteger(value) || value < 1) {
        throw new RangeError(
          `Cannot create shared counts as '${name}' must be a positive integer: current value is ${value}`,
        );
      }
    }
    const buffer = new SharedArrayBuffer((1 + workers) * slots * Int32Array.BYTES_PER_ELEMENT);
    return new SharedCounts({ buffer, slots, workers });
  }

  /**
   * Attaches to counters created elsewhere (in another isolate).
   * @throws {RangeError} when the buffer is smaller than the layout
   */
  static attach(init: SharedCountsInit): SharedCounts {
    const needed = (1 + init.workers) * init.slots * Int32Array.BYTES_PER_ELEMENT;
    if (init.buffer.byteLength < needed) {
      throw new RangeError(
        `Cannot attach shared counts: buffer has ${init.buffer.byteLength} bytes, layout needs ${needed}`,
      );
    }
    return new SharedCounts(init);
  }

  /** What to post to a worker so it can {@linkcode SharedCounts.attach}. */
  get init(): SharedCountsInit {
    return { buffer: this.#buffer, slots: this.slots, workers: this.workers };
  }

  /** Connections counted in `slot` by every worker together. */
  total(slot: number): number {
    this.#check(slot, 0);
    return Atomics.load(this.#cells, slot);
  }

  /** Connections counted in `slot` by worker `worker`. */
  ofWorker(slot: number, worker: number): number {
    this.#check(slot, worker);
    return Atomics.load(this.#cells, (1 + worker) * this.slots + slot);
  }

  /**
   * The counter of `slot` as worker `worker` writes it: reads see the total, writes go to the
   * total and to the worker's row.
   * @throws {RangeError} when `slot` or `worker` is out of range
   */
  counter(slot: number, worker: number): ConnectionCounter {
    this.#check(slot, worker);
    const cells = this.#cells;
    const own = (1 + worker) * this.slots + slot;
    return {
      get value() {
        return Atomics.load(cells, slot);
      },
      tryAcquire(limit: number): boolean {
        if (limit <= 0) {
          Atomics.add(cells, slot, 1);
          Atomics.add(cells, own, 1);
          return true;
        }
        // Increment-if-below: a compare-and-swap loop, so two workers racing for the last
        // free connection cannot both win.
        let current = Atomics.load(cells, slot);
        while (current < limit) {
          const seen = Atomics.compareExchange(cells, slot, current, current + 1);
          if (seen === current) {
            Atomics.add(cells, own, 1);
            return true;
          }
          current = seen;
        }
        return false;
      },
      release(): void {
        Atomics.sub(cells, slot, 1);
        Atomics.sub(cells, own, 1);
      },
    };
  }

  /**
   * A rotation counter in `slot` of the totals row: each call returns the next non-negative
   * integer (wrapping at 2^31), whichever worker calls.
   * @throws {RangeError} when `slot` is out of range
   */
  ticket(slot: number): () => number {
    this.#check(slot, 0);
    const cells = this.#cells;
    return () => Atomics.add(cells, slot, 1) & 0x7fffffff;
  }

  /**
   * Takes back every connection worker `worker` counted, after it died without releasing
   * them; its row reads 0 afterwards, so a replacement can use it.
   * @returns connections taken back, over all slots
   */
  reclaim(worker: number): number {
    this.#check(0, worker);
    const base = (1 + worker) * this.slots;
    let total = 0;
    for (let slot = 0; slot < this.slots; slot++) {
      const n = Atomics.exchange(this.#cells, base + slot, 0);
      if (n !== 0) {
        Atomics.sub(this.#cells, slot, n);
        total += n;
      }
    }
    return total;
  }

  #check(slot: number, worker: number): void {
    if (!Number.isInteger(slot) || slot < 0 || slot >= this.slots) {
      throw new RangeError(`Slot ${slot} is out of range 0-${this.slots - 1}`);
    }
    if (!Number.isInteger(worker) || worker < 0 || worker >= this.workers) {
      throw new RangeError(`Worker ${worker} is out of range 0-${this.workers - 1}`);
    }
  }
}
