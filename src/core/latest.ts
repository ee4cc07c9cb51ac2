/**
 * A "latest value" cell: writers overwrite, readers iterate and see only the newest value.
 *
 * @module
 */

/**
 * Holds the most recent value of something that changes (e.g. pool plans after each
 * discovery change) and lets readers follow it without a queue: a slow reader skips values
 * that were overwritten before it asked for the next one, so it never falls behind.
 *
 * Single-threaded; any number of readers, each with its own cursor.
 *
 * @example
 * ```ts
 * const plans = new Latest<string>();
 * const controller = new AbortController();
 * plans.set("a");
 * plans.set("b"); // "a" is never seen by a reader that starts now
 * const reader = (async () => {
 *   for await (const value of plans.values(controller.signal, 0)) console.log(value); // "b"
 * })();
 * controller.abort();
 * await reader;
 * ```
 */
export class Latest<T> {
  #value: T | undefined;
  #version = 0;
  readonly #wakers = new Set<() => void>();

  /** How many values were set so far; a cursor for {@linkcode Latest.values}. */
  get version(): number {
    return this.#version;
  }

  /** The newest value, or `undefined` before the first {@linkcode Latest.set}. */
  get value(): T | undefined {
    return this.#value;
  }

  /** Replaces the value and wakes every waiting reader. */
  set(value: T): void {
    this.#value = value;
    this.#version++;
    for (const wake of this.#wakers) wake();
  }

  /**
   * Yields the newest value each time it changed since the last one yielded (intermediate
   * values are skipped), starting after version `since`. Ends, without throwing, as soon as
   * `signal` aborts, also while waiting; a value set after the abort is not yielded.
   *
   * @param signal ends the iteration
   * @param since the version already seen; values set after it are yielded
   * @default since {@linkcode Latest.version} at the call: only values set from now on
   */
  async *values(signal: AbortSignal, since: number = this.#version): AsyncGenerator<T, void> {
    let seen = since;
    let wake: (() => void) | undefined;
    const onWake = () => {
      const resolve = wake;
      wake = undefined;
      resolve?.();
    };
    // One listener for the whole stream: racing a long-lived promise per value would pile
    // reactions onto it for the life of the process.
    signal.addEventListener("abort", onWake, { once: true });
    this.#wakers.add(onWake);
    try {
      while (!signal.aborted) {
        if (this.#version === seen) {
          await new Promise<void>((resolve) => wake = resolve);
          continue;
        }
        seen = this.#version;
        yield this.#value as T;
      }
    } finally {
      signal.removeEventListener("abort", onWake);
      this.#wakers.delete(onWake);
    }
  }
}
