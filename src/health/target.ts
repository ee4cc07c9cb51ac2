/**
 * What the health checker checks: a backend of a pool and how to probe it.
 *
 * @module
 */
import { errorMessage } from "../core/error_message.ts";
import { httpRequest, probeHttp, type ProbeResult, probeTcp, statusLineVerdict } from "./probe.ts";
import { probeTls } from "./tls_probe.ts";
import { probeDns } from "./dns_probe.ts";

import type { HealthCheckSpec, HealthTarget } from "../core/plan.ts";

export type { HealthCheckSpec, HealthTarget };

/**
 * Runs one check of `target`. Must settle within about `target.check.timeoutMs`, settle soon
 * after `signal` aborts, and release everything it opened. Tests inject fakes.
 */
export type ProbeFunction = (target: HealthTarget, signal: AbortSignal) => Promise<ProbeResult>;

/**
 * The default {@linkcode ProbeFunction}: HTTP when `check.http` is set, a DNS query over UDP
 * when `check.dnsQuery` is, TCP otherwise.
 * @returns the verdict; never rejects
 */
export function probeTarget(target: HealthTarget, signal?: AbortSignal): Promise<ProbeResult> {
  const { check } = target;
  const http = check.http;
  if (http !== undefined) {
    const at = { host: target.host, port: http.port ?? check.port ?? target.port };
    const options = {
      path: http.path,
      timeoutMs: check.timeoutMs,
      signal,
      ...(http.host !== undefined && { host: http.host }),
      ...(http.expectStatus !== undefined && { expectStatus: http.expectStatus }),
    };
    if (check.tls !== true) return probeHttp(at, options);
    const request = httpRequest(at, options);
    if (typeof request !== "string") return Promise.resolve(request);
    return probeTls(at, {
      timeoutMs: check.timeoutMs,
      send: request,
      signal,
      ...(http.host !== undefined && { serverName: http.host.replace(/:\d+$/, "") }),
      firstLine: (line) => statusLineVerdict(line, http.expectStatus),
    });
  }
  const port = check.port ?? target.port;
  if (check.dnsQuery !== undefined) {
    return probeDns({ host: target.host, port }, {
      name: check.dnsQuery,
      timeoutMs: check.timeoutMs,
      signal,
    });
  }
  if (check.tls === true) {
    return probeTls({ host: target.host, port }, {
      ...(check.serverName !== undefined && { serverName: check.serverName }),
      timeoutMs: check.timeoutMs,
      send: check.send,
      expect: check.expect,
      signal,
    });
  }
  return probeTcp({ host: target.host, port }, {
    timeoutMs: check.timeoutMs,
    send: check.send,
    expect: check.expect,
    // A separate health port is another listener: only the backend's own port gets a header.
    proxyProtocol: port === target.port ? check.proxyProtocol : undefined,
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
