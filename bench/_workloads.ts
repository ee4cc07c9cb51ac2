/**
 * The workloads: each drives one proxy through its listener ports with a load generator
 * pinned to the load core, and returns numbers. They throw on failure; the caller records
 * the error and goes on.
 *
 * @module
 */
import { CHILD_NOFILE, cpuSeconds, delay, fdCount, rssKiB, run, spawn } from "./_proc.ts";

/** Where workloads run and for how long. */
export interface WorkloadOptions {
  /** Core list of load generators. */
  readonly cpus: string;
  /** Path of `bench/_helper.ts`. */
  readonly helper: string;
}

/** Result of a wrk run. */
export interface WrkResult {
  readonly requestsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Slowest request of the run; NaN when wrk printed no latency line. */
  readonly maxMs: number;
  readonly errors: number;
  /** Proxy CPU microseconds (user + system) per completed request; NaN without a pid. */
  readonly cpuMicrosPerRequest: number;
}

const LATENCY_UNITS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000 };

/** Parses a wrk latency like `123.45us` to milliseconds. */
export function parseLatencyMs(text: string): number {
  const match = /^([\d.]+)(us|ms|s|m)$/.exec(text.trim());
  if (match === null) throw new SyntaxError(`Cannot parse wrk latency: got '${text}'`);
  return Number(match[1]) * LATENCY_UNITS[match[2]!]!;
}

/** Parses wrk's text output (run with `--latency`). */
export function parseWrk(output: string): WrkResult {
  const rps = /^Requests\/sec:\s+([\d.]+)/m.exec(output);
  if (rps === null) throw new SyntaxError(`Cannot parse wrk output: no Requests/sec line`);
  const p50 = /^\s+50%\s+(\S+)/m.exec(output);
  const p99 = /^\s+99%\s+(\S+)/m.exec(output);
  // Thread stats: `Latency  avg  stdev  max  +/-stdev`.
  const latency = /^[ \t]+Latency[ \t]+\S+[ \t]+\S+[ \t]+(\S+)/m.exec(output);
  let errors = 0;
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(
    output,
  );
  if (socket !== null) errors += socket.slice(1).reduce((a, n) => a + Number(n), 0);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(output);
  if (non2xx !== null) errors += Number(non2xx[1]);
  return {
    requestsPerSecond: Number(rps[1]),
    p50Ms: p50 === null ? NaN : parseLatencyMs(p50[1]!),
    p99Ms: p99 === null ? NaN : parseLatencyMs(p99[1]!),
    maxMs: latency === null ? NaN : parseLatencyMs(latency[1]!),
    errors,
    cpuMicrosPerRequest: NaN,
  };
}

/** Runs wrk against `port` with keep-alive, or a new connection per request (`close`). */
export async function wrk(
  port: number,
  connections: number,
  seconds: number,
  opts: WorkloadOptions,
  close = false,
  pid?: number,
): Promise<WrkResult> {
  const args = [
    "-t1",
    `-c${connections}`,
    `-d${seconds}s`,
    "--timeout",
    "5s",
    "--latency",
    ...(close ? ["-H", "Connection: close"] : []),
    `http://127.0.0.1:${port}/`,
  ];
  const cpuBefore = pid === undefined ? NaN : cpuSeconds(pid);
  const out = await run("wrk", "wrk", args, {
    cpus: opts.cpus,
    nofile: CHILD_NOFILE,
    timeoutMs: (seconds + 15) * 1000,
  });
  const cpu = pid === undefined ? NaN : cpuSeconds(pid) - cpuBefore;
  const result = parseWrk(out);
  const requests = /(\d+) requests in/.exec(out)?.[1];
  return { ...result, cpuMicrosPerRequest: cpu * 1e6 / Number(requests ?? NaN) };
}

/** Result of a bulk run. */
export interface BulkResult {
  readonly megabytesPerSecond: number;
  readonly bytes: number;
  /** Proxy CPU seconds (user + system) per 10^9 bytes; NaN without a proxy process. */
  readonly cpuSecondsPerGB: number;
}

interface IperfJson {
  readonly error?: string;
  readonly end?: { readonly sum_received?: { readonly bytes: number; readonly seconds: number } };
}

async function iperf(port: number, streams: number, seconds: number, opts: WorkloadOptions) {
  const out = await run("iperf3", "iperf3", [
    "-c",
    "127.0.0.1",
    "-p",
    String(port),
    "-t",
    String(seconds),
    "-O",
    "1",
    "-P",
    String(streams),
    "-J",
    "--connect-timeout",
    "3000",
  ], { cpus: opts.cpus, timeoutMs: (seconds + 20) * 1000, acceptFailure: true });
  // iperf3 -J prints its error inside the JSON on stdout and exits 1.
  let json: IperfJson;
  try {
    json = JSON.parse(out) as IperfJson;
  } catch (error) {
    throw new Error(`Cannot parse iperf3 output: ${out.slice(0, 200)}`, { cause: error });
  }
  if (json.error !== undefined) throw new Error(`Cannot finish iperf3: ${json.error}`);
  const sum = json.end?.sum_received;
  if (sum === undefined) throw new Error("Cannot finish iperf3: no sum_received in its output");
  return sum;
}

/**
 * Bulk transfer with iperf3 (client → server). One stream goes to `ports[0]`; more are
 * split between two concurrent clients, one per port (one iperf3 server each).
 */
export async function bulk(
  ports: readonly [number, number],
  streams: number,
  seconds: number,
  opts: WorkloadOptions,
  pid: number | undefined,
): Promise<BulkResult> {
  const cpuBefore = pid === undefined ? 0 : cpuSeconds(pid);
  const sums = streams === 1 ? [await iperf(ports[0], 1, seconds, opts)] : await Promise.all([
    iperf(ports[0], Math.ceil(streams / 2), seconds, opts),
    iperf(ports[1], Math.floor(streams / 2), seconds, opts),
  ]);
  const cpu = pid === undefined ? NaN : cpuSeconds(pid) - cpuBefore;
  const bytes = sums.reduce((a, s) => a + s.bytes, 0);
  const mbs = sums.reduce((a, s) => a + s.bytes / s.seconds, 0) / 1e6;
  // The CPU window also covers the omitted first second; count its bytes at the same rate.
  const totalBytes = bytes * (seconds + 1) / seconds;
  return { megabytesPerSecond: mbs, bytes, cpuSecondsPerGB: cpu / (totalBytes / 1e9) };
}

/** Result of holding many idle connections through a proxy. */
export interface IdleResult {
  readonly opened: number;
  readonly rssKiB: number;
}

/**
 * Opens `count` idle connections to `port`, waits until the proxy (`pid`) holds its backend
 * side too (fd count stops growing), reads its RSS, then closes them all.
 */
export async function holdIdle(
  port: number,
  count: number,
  pid: number,
  opts: WorkloadOptions,
): Promise<IdleResult> {
  const fdsBefore = fdCount(pid);
  const holder = spawn("hold", Deno.execPath(), [
    "run",
    "--allow-net=127.0.0.1",
    opts.helper,
    "hold",
    String(port),
    String(count),
  ], { cpus: opts.cpus, nofile: CHILD_NOFILE, captureStdout: true, pipeStdin: true });
  try {
    const deadline = performance.now() + 60_000;
    // Each proxied connection holds two fds: wait for those, or for the count to settle.
    let last = -1;
    let stableSince = performance.now();
    while (performance.now() < deadline) {
      if (holder.isExited) throw new Error(`Cannot hold connections: ${await holder.stderrTail()}`);
      const fds = fdCount(pid) - fdsBefore;
      if (fds >= 2 * count) break;
      if (fds !== last) {
        last = fds;
        stableSince = performance.now();
      } else if (fds > 0 && performance.now() - stableSince > 3000) break;
      await delay(200);
    }
    await delay(1000);
    const rss = rssKiB(pid);
    const opened = Math.round((fdCount(pid) - fdsBefore) / 2);
    return { opened, rssKiB: rss };
  } finally {
    await holder.closeStdin();
    await Promise.race([holder.status, delay(5000)]);
    await holder.kill(500);
    // Let the proxy close its side before the next workload.
    const settle = performance.now() + 10_000;
    while (performance.now() < settle && fdCount(pid) > fdsBefore + 16) await delay(100);
  }
}

/** Result of the fd-leak check. */
export interface FdCheck {
  readonly fdsBefore: number;
  readonly fdsAfter: number;
  readonly ok: number;
  readonly failed: number;
}

/** Counts the proxy's fds around `count` short HTTP connections through it. */
export async function fdLeakCheck(
  port: number,
  count: number,
  pid: number,
  opts: WorkloadOptions,
): Promise<FdCheck> {
  const fdsBefore = fdCount(pid);
  const out = await run("churn", Deno.execPath(), [
    "run",
    "--allow-net=127.0.0.1",
    opts.helper,
    "churn",
    String(port),
    String(count),
    "32",
  ], { cpus: opts.cpus, nofile: CHILD_NOFILE, timeoutMs: 120_000 });
  const { ok, failed } = JSON.parse(out) as { ok: number; failed: number };
  // Closing is asynchronous: give the proxy a moment.
  let fdsAfter = fdCount(pid);
  const deadline = performance.now() + 3000;
  while (fdsAfter > fdsBefore && performance.now() < deadline) {
    await delay(200);
    fdsAfter = fdCount(pid);
  }
  return { fdsBefore, fdsAfter, ok, failed };
}
