/**
 * A counting semaphore for probes in flight.
 *
 * @module
 */

/** Lets at most `max` holders in at once; others wait in FIFO order. */
export class Limiter {
  readonly #max: number;
  #active = 0;
  #waiters: (() => void)[] = [];
  #isClosed = false;

  /** @throws {RangeError} when `max` is not a positive integer */
  constructor(max: number, name = "concurrency") {
    if (!Number.isInteger(max) || max < 1) {
      throw new RangeError(
        `Cannot limit probes as '${name}' must be a positive integer: current value is ${max}`,
      );
    }
    this.#max = max;
  }

  /** Resolves when a slot is free, or at once after {@linkcode Limiter.close}. */
  acquire(): Promise<void> {
    if (this.#isClosed || this.#active < this.#max) {
      this.#active++;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** Frees the slot of one holder, handing it to the next waiter. */
  release(): void {
    const next = this.#waiters.shift();
    if (next !== undefined) next();
    else this.#active--;
  }

  /** Lets every waiter in now; holders must check their own cancellation. */
  close(): void {
    this.#isClosed = true;
    const waiters = this.#waiters;
    this.#waiters = [];
    this.#active += waiters.length;
    for (const resolve of waiters) resolve();
  }
}
