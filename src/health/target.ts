/**
 * What the health checker checks: a backend of a pool and how to probe it.
 *
 * @module
 */
import type { HealthCheckSpec, HealthTarget } from "../core/plan.ts";
import { probeHttp, type ProbeResult, probeTcp } from "./probe.ts";

export type { HealthCheckSpec, HealthTarget };

/**
 * Runs one check of `target`. Must settle within about `target.check.timeoutMs`, settle soon
 * after `signal` aborts, and release everything it opened. Tests inject fakes.
 */
export type ProbeFunction = (target: HealthTarget, signal: AbortSignal) => Promise<ProbeResult>;

/**
 * The default {@linkcode ProbeFunction}: HTTP when `check.http` is set, TCP otherwise.
 * @returns the verdict; never rejects
 */
export function probeTarget(target: HealthTarget, signal?: AbortSignal): Promise<ProbeResult> {
  const { check } = target;
  if (check.http !== undefined) {
    return probeHttp({ host: target.host, port: check.http.port }, {
      path: check.http.path,
      timeoutMs: check.timeoutMs,
      signal,
    });
  }
  return probeTcp({ host: target.host, port: check.port ?? target.port }, {
    timeoutMs: check.timeoutMs,
    send: check.send,
    expect: check.expect,
    signal,
  });
}

/** Runs `probe`, turning a throw or rejection into a failed result. */
export async function safeProbe(
  probe: ProbeFunction,
  target: HealthTarget,
  signal: AbortSignal,
): Promise<ProbeResult> {
  try {
    return await probe(target, signal);
  } catch (cause) {
    const message = cause instanceof Error ? cause.message : String(cause);
    return { ok: false, latencyMs: 0, error: `probe failed: ${message}` };
  }
}
