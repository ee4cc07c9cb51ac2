/**
 * One round of probes over a list of targets, without state: what `check` prints.
 *
 * @module
 */
import type { ProbeResult } from "./probe.ts";
import { type HealthTarget, type ProbeFunction, probeTarget, safeProbe } from "./target.ts";

/** Probes in flight at once by default, in {@linkcode checkAll} and the scheduler. */
export const DEFAULT_PROBE_CONCURRENCY = 64;

/** Progress of {@linkcode checkAll}, reported after each probe. */
export interface CheckProgress {
  /** Probes finished so far, this one included. */
  readonly done: number;
  /** Probes in the round. */
  readonly total: number;
  /** The target just probed. */
  readonly target: HealthTarget;
  /** Its result. */
  readonly result: ProbeResult;
}

/** Options of {@linkcode checkAll}. */
export interface CheckAllOptions {
  /**
   * Probes in flight at once.
   * @default {64}
   */
  readonly concurrency?: number;
  /** Aborts probes in flight and starts no more; `checkAll` then rejects with its reason. */
  readonly signal?: AbortSignal;
  /** Called after each probe, in completion order. */
  readonly onProgress?: (progress: CheckProgress) => void;
  /**
   * Probe to run.
   * @default {probeTarget}
   */
  readonly probe?: ProbeFunction;
}

/**
 * Probes each target once, `concurrency` at a time, whether or not its check is enabled
 * (the caller picks the targets). Targets sharing a `key` are probed once, with the first
 * one's check.
 *
 * @example
 * ```ts
 * const results = await checkAll(targets, { concurrency: 16 });
 * for (const [key, result] of results) console.log(key, result.ok ? "ok" : result.error);
 * ```
 *
 * @returns results by backend key, in the order of `targets`
 * @throws {RangeError} when `concurrency` is not a positive integer
 * @throws the signal's reason when `signal` aborts
 */
export async function checkAll(
  targets: readonly HealthTarget[],
  options: CheckAllOptions = {},
): Promise<Map<string, ProbeResult>> {
  const concurrency = options.concurrency ?? DEFAULT_PROBE_CONCURRENCY;
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new RangeError(
      `Cannot check backends as 'concurrency' must be a positive integer: current value is ${concurrency}`,
    );
  }
  const { signal, onProgress } = options;
  const probe = options.probe ?? probeTarget;
  signal?.throwIfAborted();

  const unique = new Map<string, HealthTarget>();
  for (const target of targets) if (!unique.has(target.key)) unique.set(target.key, target);
  const list = [...unique.values()];
  const results = new Map<string, ProbeResult | undefined>(list.map((t) => [t.key, undefined]));

  const controller = new AbortController();
  const onAbort = () => controller.abort(signal?.reason);
  signal?.addEventListener("abort", onAbort, { once: true });
  let next = 0;
  let done = 0;
  let failure: { error: unknown } | undefined;
  const worker = async () => {
    while (next < list.length && !controller.signal.aborted) {
      const target = list[next++]!;
      const result = await safeProbe(probe, target, controller.signal);
      results.set(target.key, result);
      done++;
      try {
        onProgress?.({ done, total: list.length, target, result });
      } catch (error) {
        // Stop the round, but let the probes in flight finish before rejecting.
        failure ??= { error };
        controller.abort(error);
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(concurrency, list.length) }, worker));
  } finally {
    signal?.removeEventListener("abort", onAbort);
  }
  if (failure !== undefined) throw failure.error;
  signal?.throwIfAborted();
  return results as Map<string, ProbeResult>;
}
