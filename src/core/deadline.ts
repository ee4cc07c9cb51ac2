/**
 * The one timer race: wait for a promise, but no longer than a deadline. Every "wait for X,
 * at most N ms" in the program goes through here, so the timer is always cleared and an
 * abort always ends the wait.
 *
 * @module
 */

/**
 * Resolves like `promise` if it settles within `ms`; otherwise rejects with a
 * `DOMException` named `TimeoutError` (see {@linkcode isTimeout}). When `signal` aborts
 * first, rejects with its reason. The timer is cleared as soon as the race is decided;
 * `promise` itself is neither cancelled nor awaited afterwards.
 *
 * @param ms the deadline, in milliseconds from now (0 or less: the next timer turn)
 * @param signal ends the wait early (already aborted: rejects at once)
 */
export function deadline<T>(promise: Promise<T>, ms: number, signal?: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const settle = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    };
    const onAbort = () => {
      settle();
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      settle();
      reject(new DOMException(`Timed out after ${Math.max(0, ms)}ms`, "TimeoutError"));
    }, Math.max(0, ms));
    signal?.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        settle();
        resolve(value);
      },
      (error) => {
        settle();
        reject(error);
      },
    );
  });
}

/** True for the rejection of a {@linkcode deadline} that passed. */
export function isTimeout(error: unknown): boolean {
  return error instanceof DOMException && error.name === "TimeoutError";
}

/**
 * Waits for `promise` at most `ms`, for waits that go on either way (a drain, a first
 * health round): resolves `true` when it settled in time, `false` at the deadline or abort.
 * A rejection of `promise` counts as settled.
 */
export function settledWithin(
  promise: Promise<unknown>,
  ms: number,
  signal?: AbortSignal,
): Promise<boolean> {
  return deadline(promise, ms, signal).then(
    () => true,
    (error) => !isTimeout(error) && !(signal?.aborted && error === signal.reason),
  );
}
