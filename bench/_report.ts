/**
 * Turns collected samples into the Markdown report: medians per proxy, ratios of
 * NautilusLB to HAProxy and to the bare proxy, and the targets of the performance issue.
 *
 * @module
 */
import { PROXY_NAMES, type ProxyName } from "./_proxies.ts";

/** Row keys of the report, in order. */
export type MetricKey =
  | "bulk1"
  | "bulk8"
  | "cpuPerGB1"
  | "cpuPerGB8"
  | "newConn"
  | "cpuPerConn"
  | "ka1Rps"
  | "ka1P50"
  | "ka1P99"
  | "ka64Rps"
  | "ka64P50"
  | "ka64P99"
  | "cpuPerReq64"
  | "rr500Rps"
  | "rr500P50"
  | "rr500P99"
  | "rr500Max"
  | "rssIdle"
  | "rss10k";

/** How one row is labelled and read. */
export interface Metric {
  readonly key: MetricKey;
  readonly label: string;
  readonly isHigherBetter: boolean;
  readonly digits: number;
}

/** The rows of the report. */
export const METRICS: readonly Metric[] = [
  { key: "bulk1", label: "Bulk, 1 stream (MB/s)", isHigherBetter: true, digits: 0 },
  { key: "bulk8", label: "Bulk, 8 streams (MB/s)", isHigherBetter: true, digits: 0 },
  { key: "cpuPerGB1", label: "CPU s per GB, 1 stream", isHigherBetter: false, digits: 3 },
  { key: "cpuPerGB8", label: "CPU s per GB, 8 streams", isHigherBetter: false, digits: 3 },
  { key: "newConn", label: "New connections/s", isHigherBetter: true, digits: 0 },
  { key: "cpuPerConn", label: "CPU µs per new connection", isHigherBetter: false, digits: 1 },
  { key: "ka1Rps", label: "Keep-alive req/s, 1 conn", isHigherBetter: true, digits: 0 },
  { key: "ka1P50", label: "Keep-alive p50 ms, 1 conn", isHigherBetter: false, digits: 3 },
  { key: "ka1P99", label: "Keep-alive p99 ms, 1 conn", isHigherBetter: false, digits: 3 },
  { key: "ka64Rps", label: "Keep-alive req/s, 64 conns", isHigherBetter: true, digits: 0 },
  { key: "ka64P50", label: "Keep-alive p50 ms, 64 conns", isHigherBetter: false, digits: 3 },
  { key: "ka64P99", label: "Keep-alive p99 ms, 64 conns", isHigherBetter: false, digits: 3 },
  { key: "cpuPerReq64", label: "CPU µs per request, 64 conns", isHigherBetter: false, digits: 1 },
  { key: "rr500Rps", label: "Request/response req/s, 500 conns", isHigherBetter: true, digits: 0 },
  {
    key: "rr500P50",
    label: "Request/response p50 ms, 500 conns",
    isHigherBetter: false,
    digits: 1,
  },
  {
    key: "rr500P99",
    label: "Request/response p99 ms, 500 conns",
    isHigherBetter: false,
    digits: 1,
  },
  {
    key: "rr500Max",
    label: "Request/response max ms, 500 conns",
    isHigherBetter: false,
    digits: 1,
  },
  { key: "rssIdle", label: "RSS idle (MiB)", isHigherBetter: false, digits: 1 },
  { key: "rss10k", label: "RSS, 10k idle conns (MiB)", isHigherBetter: false, digits: 1 },
];

/** Samples: metric → proxy → one value per round. */
export type Samples = Record<MetricKey, Record<ProxyName, number[]>>;

/** Empty {@linkcode Samples}. */
export function emptySamples(): Samples {
  const samples = {} as Samples;
  for (const m of METRICS) {
    samples[m.key] = Object.fromEntries(PROXY_NAMES.map((p) => [p, [] as number[]])) as Record<
      ProxyName,
      number[]
    >;
  }
  return samples;
}

/** Median of the finite values; NaN when there are none. */
export function median(values: readonly number[]): number {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** One target of the issue, checked on the medians. */
export interface Target {
  readonly label: string;
  readonly value: number;
  readonly isMet: boolean;
  /** Set when a side of the ratio is missing. */
  readonly isUnknown: boolean;
}

function ratio(samples: Samples, key: MetricKey, other: ProxyName): number {
  return median(samples[key].nautiluslb) / median(samples[key][other]);
}

/** The targets of the issue, evaluated. */
export function targets(samples: Samples): Target[] {
  const out: Target[] = [];
  const add = (label: string, value: number, isMet: (v: number) => boolean) =>
    out.push({
      label,
      value,
      isMet: Number.isFinite(value) && isMet(value),
      isUnknown: !Number.isFinite(value),
    });
  add("Bulk 1 stream ≥ 0.65× HAProxy", ratio(samples, "bulk1", "haproxy"), (v) => v >= 0.65);
  add("Bulk 8 streams ≥ 0.9× HAProxy", ratio(samples, "bulk8", "haproxy"), (v) => v >= 0.9);
  add("New connections/s ≥ 0.45× HAProxy", ratio(samples, "newConn", "haproxy"), (v) => v >= 0.45);
  add(
    "Keep-alive req/s @64 ≥ 0.75× HAProxy",
    ratio(samples, "ka64Rps", "haproxy"),
    (v) => v >= 0.75,
  );
  add("p99 @64 ≤ 2× HAProxy's", ratio(samples, "ka64P99", "haproxy"), (v) => v <= 2);
  add("p99 @500 ≤ 2× HAProxy's", ratio(samples, "rr500P99", "haproxy"), (v) => v <= 2);
  add("RSS with 10k idle ≤ 3× HAProxy's", ratio(samples, "rss10k", "haproxy"), (v) => v <= 3);
  for (const m of METRICS) {
    add(
      `Within 10% of bare: ${m.label}`,
      ratio(samples, m.key, "bare"),
      (v) => m.isHigherBetter ? v >= 0.9 : v <= 1.1,
    );
  }
  return out;
}

function fmt(value: number, digits: number): string {
  if (!Number.isFinite(value)) return "—";
  return value.toLocaleString("en-US", {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

/** The results table as Markdown. */
export function resultsTable(samples: Samples): string {
  // Only the proxies this run measured.
  const shown = PROXY_NAMES.filter((p) => METRICS.some((m) => samples[m.key][p].length > 0));
  const head = ["Metric", ...shown, "NautilusLB / HAProxy", "NautilusLB / bare"];
  const rows = [
    `| ${head.join(" | ")} |`,
    `|${head.map((_, i) => i === 0 ? "---" : "---:").join("|")}|`,
  ];
  for (const m of METRICS) {
    const cells = shown.map((p) => fmt(median(samples[m.key][p]), m.digits));
    const vsHaproxy = fmt(ratio(samples, m.key, "haproxy"), 2);
    const vsBare = fmt(ratio(samples, m.key, "bare"), 2);
    rows.push(`| ${m.label} | ${cells.join(" | ")} | ${vsHaproxy} | ${vsBare} |`);
  }
  return rows.join("\n");
}

/** Rows whose spread over rounds the report lists: the tail rows, the noisiest. */
const SPREAD_KEYS: readonly MetricKey[] = ["rr500P99", "rr500Max", "ka64P99"];

/**
 * Every round's value of the tail rows as Markdown, `min–max (n)` per proxy, so a median
 * can be read against its spread.
 */
export function spreadTable(samples: Samples): string {
  const rows = [
    `| Metric | ${PROXY_NAMES.join(" | ")} |`,
    `|---|${PROXY_NAMES.map(() => "---:").join("|")}|`,
  ];
  for (const m of METRICS.filter((m) => SPREAD_KEYS.includes(m.key))) {
    const cells = PROXY_NAMES.map((p) => {
      const values = samples[m.key][p].filter(Number.isFinite);
      if (values.length === 0) return "—";
      const low = fmt(Math.min(...values), m.digits);
      const high = fmt(Math.max(...values), m.digits);
      return `${low}–${high} (${values.length})`;
    });
    rows.push(`| ${m.label} | ${cells.join(" | ")} |`);
  }
  return rows.join("\n");
}

/** The targets as a Markdown list with ✅/❌. */
export function targetList(samples: Samples): string {
  return targets(samples).map((t) => {
    const mark = t.isUnknown ? "❔" : t.isMet ? "✅" : "❌";
    return `- ${mark} ${t.label}: ${fmt(t.value, 2)}`;
  }).join("\n");
}

/** Outcome of the fd-leak check for one proxy. */
export interface FdReport {
  readonly proxy: ProxyName;
  readonly connections: number;
  readonly ok: number;
  readonly failed: number;
  readonly fdsBefore: number;
  readonly fdsAfter: number;
}

/** Everything the report shows besides the samples. */
export interface ReportMeta {
  readonly date: string;
  readonly machine: string;
  readonly versions: readonly string[];
  readonly command: string;
  readonly rounds: number;
  readonly seconds: number;
  readonly idleConnections: number;
  readonly fdChecks: readonly FdReport[];
  readonly errors: readonly string[];
  readonly samplesPerCell: string;
  /** Replaces the sentence on core pinning (`--workers` runs use every core for everything). */
  readonly pinning?: string;
}

/** The whole `bench/RESULTS.md`. */
export function renderReport(samples: Samples, meta: ReportMeta): string {
  const fdLines = meta.fdChecks.length === 0 ? ["Not run."] : [
    "| proxy | connections | ok | failed | fds before | fds after | leaked |",
    "|---|---:|---:|---:|---:|---:|---:|",
    ...meta.fdChecks.map((f) =>
      `| ${f.proxy} | ${f.connections} | ${f.ok} | ${f.failed} | ${f.fdsBefore} | ${f.fdsAfter} | ${
        f.fdsAfter - f.fdsBefore
      } |`
    ),
  ];
  return [
    "# NautilusLB benchmark",
    "",
    `- Date: ${meta.date}`,
    `- Machine: ${meta.machine}`,
    ...meta.versions.map((v) => `- ${v}`),
    `- Command: \`${meta.command}\``,
    `- ${meta.rounds} round(s), ${meta.seconds} s per timed workload; ${meta.samplesPerCell}`,
    "",
    "Each round runs every proxy (in rotated order) through every workload; cells are medians",
    "over rounds.",
    meta.pinning ??
      "The proxy is pinned to core 0; load generators (wrk, iperf3, the helper) and backends (two nginx, two iperf3 servers, an idle server) to core 1.",
    "Loopback only.",
    "`direct` is the client talking to one backend with no proxy: the limit of this setup.",
    "`bare` is `bench/bare_proxy.ts`: the same read/write loop style with no features.",
    "",
    "**Noise:** differences under about 15% are noise on this machine, and other work",
    "(test suites of other engineers) ran on it at the same time, so single rows can be off",
    "by more. Compare ratios within one run, not absolute numbers across runs.",
    "",
    "## Results (medians)",
    "",
    resultsTable(samples),
    "",
    "Bulk: iperf3 client → proxy → iperf3 server, first second omitted; 8 streams are two",
    "clients of 4 streams, one per iperf3 server. CPU s per GB: proxy utime + stime from",
    "`/proc/PID/stat` across the bulk run, per 10^9 bytes. CPU µs per connection or request:",
    "the same around the wrk run, divided by what wrk completed (steadier than rates when the",
    "machine is shared). New connections/s: wrk with",
    "`Connection: close` (64 connections). Keep-alive: wrk `--latency`, 1 thread. RSS idle:",
    `VmRSS right after start; with ${meta.idleConnections.toLocaleString("en-US")} idle`,
    "connections: VmRSS once the proxy holds both sides of each (to an idle backend).",
    ...(meta.idleConnections < 10_000
      ? [
        `The idle row uses ${meta.idleConnections.toLocaleString("en-US")} connections, not`,
        "10,000: the fd hard limit here (no `CAP_SYS_RESOURCE` to raise it) leaves room for",
        "two fds per proxied connection up to that many, for HAProxy and the others alike.",
      ]
      : []),
    "",
    "## Spread of the tail rows (min–max over rounds, rounds with a value)",
    "",
    spreadTable(samples),
    "",
    "Request/response: wrk keep-alive, 1 thread, 500 connections, through the `http`",
    "listener. With that many connections a proxy that serves some connections late while",
    "others go at once shows it in p99 and max long before the average moves.",
    "",
    "## Targets (from the performance issue, NautilusLB vs the same run)",
    "",
    targetList(samples),
    "",
    "## File-descriptor leak check",
    "",
    "Open fds of the proxy (`/proc/PID/fd`) before and after short HTTP connections",
    "(`Connection: close`, 32 at a time) through it, once the proxy had a moment to close.",
    "",
    ...fdLines,
    "",
    ...(meta.errors.length === 0
      ? []
      : ["## Errors during the run", "", ...meta.errors.map((e) => `- ${e}`), ""]),
  ].join("\n");
}
