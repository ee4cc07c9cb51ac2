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
