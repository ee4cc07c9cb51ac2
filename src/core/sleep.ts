/**
 * A delay that an `AbortSignal` cuts short, for retry and back-off loops that must stop at once.
 *
 * @module
 */

/**
 * Resolves after `ms`, or at once when `signal` aborts (already aborted: at once). Never
 * rejects, so a loop checks `signal.aborted` itself afterwards. Without a signal, a plain
 * delay (for loops that stop by closing what they wait on).
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}
