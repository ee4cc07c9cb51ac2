/**
 * What the health checker checks: a backend of a pool and how to probe it.
 *
 * @module
 */
import { errorMessage } from "../core/error_message.ts";
import { probeHttp, type ProbeResult, probeTcp } from "./probe.ts";

/** How to check one backend. `cli/serve.ts` fills it from a listener's `healthCheck` config. */
export interface HealthCheckSpec {
  /**
   * Active checks. Off: no probes; passive reports then count only where the scheduler has a
   * `passiveCooldownMs`, else the state stays `unknown`.
   */
  readonly enabled: boolean;
  /** Time between the end of one check and the start of the next, before jitter (±10%). */
  readonly intervalMs: number;
  /** Budget of one probe. */
  readonly timeoutMs: number;
  /** Consecutive successes to become healthy. */
  readonly rise: number;
  /** Consecutive failures to become unhealthy. */
  readonly fall: number;
  /** Probe this port instead of the backend's own (TCP checks). */
  readonly port?: number;
  /** Text to send after connecting (TCP checks). */
  readonly send?: string;
  /** Substring the reply must contain (TCP checks). */
  readonly expect?: string;
  /**
   * Check with HTTP `GET` instead of TCP, e.g. a Service's `healthCheckNodePort` with
   * path `/healthz`. `port`, `send` and `expect` are then not used.
   */
  readonly http?: { readonly port: number; readonly path: string };
  /** Share of a pool (0-100) that passive reports may mark unhealthy. */
  readonly maxEjectionPercent: number;
}

/** A backend of a pool with its check. Identity is (`pool`, `key`). */
export interface HealthTarget {
  /** Backend key, `host:port` (IPv6 in brackets). */
  readonly key: string;
  /** Pool (listener) name. */
  readonly pool: string;
  /** Host name or IP address without brackets. */
  readonly host: string;
  /** Backend port; TCP checks probe it unless `check.port` or `check.http` is set. */
  readonly port: number;
  /** How to check it. */
  readonly check: HealthCheckSpec;
}

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
    return { ok: false, latencyMs: 0, error: `probe failed: ${errorMessage(cause)}` };
  }
}

/**
 * Checks the settings of a target.
 * @throws {RangeError} naming the first setting out of range
 */
export function validateTarget(target: HealthTarget): void {
  const { check } = target;
  const fail = (field: string, expected: string, value: unknown) => {
    throw new RangeError(
      `Cannot check backend ${target.pool}/${target.key} as 'check.${field}' must be ${expected}: current value is ${value}`,
    );
  };
  if (!(Number.isFinite(check.intervalMs) && check.intervalMs > 0)) {
    fail("intervalMs", "a positive number", check.intervalMs);
  }
  if (!(Number.isFinite(check.timeoutMs) && check.timeoutMs > 0)) {
    fail("timeoutMs", "a positive number", check.timeoutMs);
  }
  if (!(Number.isInteger(check.rise) && check.rise > 0)) {
    fail("rise", "a positive integer", check.rise);
  }
  if (!(Number.isInteger(check.fall) && check.fall > 0)) {
    fail("fall", "a positive integer", check.fall);
  }
  const pct = check.maxEjectionPercent;
  if (!(Number.isFinite(pct) && pct >= 0 && pct <= 100)) {
    fail("maxEjectionPercent", "a number from 0 to 100", pct);
  }
}
