/**
 * Connection counts that may be shared between isolates: the seam through which a pool and a
 * listener count connections for the whole process instead of their own isolate only.
 *
 * @module
 */

/**
 * One count of open connections. The in-process implementation is a plain number; the
 * worker implementation is a slot in a `SharedArrayBuffer` written with `Atomics`, so every
 * worker sees the sum over all workers.
 */
export interface ConnectionCounter {
  /** Open connections now, as every isolate sees it. */
  readonly value: number;
  /**
   * Counts one more connection unless `limit` is reached; `limit` 0 means unlimited.
   * @returns true when counted; the caller then owes exactly one {@linkcode ConnectionCounter.release}
   */
  tryAcquire(limit: number): boolean;
  /** Counts one connection fewer. */
  release(): void;
}

/**
 * Open connections per client address, for a per-source limit. The in-process implementation
 * is a map; the worker implementation is a count-min sketch in a `SharedArrayBuffer`, so a
 * client is limited across every worker. Either may refuse a little early (a sketch cell
 * shared with another address), never late.
 */
export interface SourceCounter {
  /**
   * Counts one more connection from `address` unless `limit` is reached (`limit` > 0).
   * @param address the client address, normalized by the caller (IPv4-mapped IPv6 as IPv4)
   * @returns true when counted; the caller then owes exactly one
   *   {@linkcode SourceCounter.release} with the same address
   */
  tryAcquire(address: string, limit: number): boolean;
  /** Counts one connection fewer from `address`. */
  release(address: string): void;
}

/** A {@linkcode SourceCounter} of one isolate: exact, one map entry per address with connections. */
export class LocalSourceCounter implements SourceCounter {
  readonly #counts = new Map<string, number>();

  /** Addresses with open connections now. */
  get size(): number {
    return this.#counts.size;
  }

  tryAcquire(address: string, limit: number): boolean {
    const n = this.#counts.get(address) ?? 0;
    if (n >= limit) return false;
    this.#counts.set(address, n + 1);
    return true;
  }

  release(address: string): void {
    const n = this.#counts.get(address) ?? 0;
    if (n <= 1) this.#counts.delete(address);
    else this.#counts.set(address, n - 1);
  }
}
