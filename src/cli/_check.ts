/**
 * One health round over resolved plans, shared by `check`, `discover --check` and
 * `serve --dry-run`.
 *
 * @module
 */
import type { PoolPlan } from "../core/plan.ts";
import {
  checkAll,
  DEFAULT_PROBE_CONCURRENCY,
  type HealthTarget,
  type ProbeResult,
} from "../health/mod.ts";
import { isStderrTerminal, writeErr } from "../log/mod.ts";
import type { BackendHealthReport } from "./_render.ts";

/** Default number of probes in flight: the health module's own default. */
export { DEFAULT_PROBE_CONCURRENCY };

/** Probes every target once; shows progress on a terminal for more than a few backends. */
export async function probeAll(
  targets: readonly HealthTarget[],
  concurrency: number,
  signal: AbortSignal,
): Promise<Map<string, BackendHealthReport>> {
  const showProgress = targets.length > 5 && isStderrTerminal();
  const results: Map<string, ProbeResult> = await checkAll(targets, {
    concurrency,
    signal,
    onProgress: showProgress
      ? (p) => writeErr(`\rprobing ${p.done}/${p.total} backends`)
      : undefined,
  });
  if (showProgress) writeErr("\r\x1b[K");
  const health = new Map<string, BackendHealthReport>();
  for (const [key, r] of results) {
    const report: BackendHealthReport = r.error === undefined
      ? { state: r.ok ? "healthy" : "unhealthy", latencyMs: round(r.latencyMs) }
      : { state: r.ok ? "healthy" : "unhealthy", latencyMs: round(r.latencyMs), error: r.error };
    health.set(key, report);
  }
  return health;
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}

/** Names of pools with no healthy backend (an empty pool counts as down). */
export function poolsDown(
  plans: readonly PoolPlan[],
  health: ReadonlyMap<string, BackendHealthReport>,
): string[] {
  return plans.filter((p) => !p.backends.some((b) => health.get(b.address)?.state === "healthy"))
    .map((p) => p.name);
}
