/**
 * Rendering pool plans for `discover`, `check` and `serve --dry-run`: the table and the
 * stable JSON contract documented in docs/commands.md.
 *
 * @module
 */
import { dump as toYaml } from "js-yaml";
import type { ExcludedBackend, PlannedBackend, PoolPlan } from "../core/plan.ts";
import { formatTable } from "./_table.ts";

/** Health of one backend as `check` and `discover --check` report it. */
export interface BackendHealthReport {
  readonly state: "healthy" | "unhealthy";
  readonly latencyMs: number;
  readonly error?: string;
}

/** One backend in the JSON contract. Optional fields are absent, never `null`. */
export interface BackendJson {
  address: string;
  service?: string;
  node?: string;
  pod?: string;
  /** Absent when 1. */
  weight?: number;
  /** From the Service's max-connections-per-backend annotation; absent otherwise. */
  maxConnections?: number;
  /** `true` when taken only because the Service has no ready endpoint (KEP-1669). */
  terminating?: boolean;
  /** PROXY protocol version sent to it; absent when none. */
  proxyProtocol?: "v1" | "v2";
  health?: BackendHealthReport;
}

/** One pool in the JSON contract. */
export interface PoolJson {
  name: string;
  listenerAddress: string;
  /** The listener's transport when not `tcp` (`udp`). */
  protocol?: string;
  backends: BackendJson[];
  excluded: ExcludedBackend[];
  warnings: string[];
  healthy?: number;
  total?: number;
  fingerprint?: string;
}

/** The whole JSON document. */
export interface PlansJson {
  pools: PoolJson[];
  /** Problems with the input (duplicates, unreadable files, missing endpoint data), once each. */
  warnings: string[];
}

/**
 * Warnings about the input, collected from every plan's `inputWarnings`, each once, in the
 * order first met.
 */
export function inputWarningsOf(plans: readonly PoolPlan[]): string[] {
  return [...new Set(plans.flatMap((p) => p.inputWarnings))];
}

/** Turns plans into the documented JSON shape (`{"pools": [...], "warnings": [...]}`). */
export function plansToJson(
  plans: readonly PoolPlan[],
  health?: ReadonlyMap<string, BackendHealthReport>,
): PlansJson {
  return {
    warnings: inputWarningsOf(plans),
    pools: plans.map((plan) => {
      const backends = plan.backends.map((b) => backendJson(b, health));
      const pool: PoolJson = {
        name: plan.name,
        listenerAddress: plan.listenerAddress,
        ...(plan.protocol !== undefined && { protocol: plan.protocol }),
        backends,
        excluded: plan.excluded.map((e) => ({ ...e })),
        warnings: [...plan.warnings],
      };
      if (plan.fingerprint !== undefined) pool.fingerprint = plan.fingerprint;
      if (health !== undefined) {
        pool.healthy = backends.filter((b) => b.health?.state === "healthy").length;
        pool.total = backends.length;
      }
      return pool;
    }),
  };
}

function backendJson(
  b: PlannedBackend,
  health: ReadonlyMap<string, BackendHealthReport> | undefined,
): BackendJson {
  const out: BackendJson = { address: b.address };
  if (b.service !== undefined) out.service = b.service;
  if (b.node !== undefined) out.node = b.node;
  if (b.pod !== undefined) out.pod = b.pod;
  if (b.weight !== 1) out.weight = b.weight;
  if (b.maxConnections !== undefined) out.maxConnections = b.maxConnections;
  if (b.terminating === true) out.terminating = true;
  if (b.proxyProtocol !== undefined) out.proxyProtocol = b.proxyProtocol;
  const h = health?.get(b.address);
  if (h !== undefined) out.health = h;
  return out;
}

/** Options of {@linkcode renderPlans}. */
export interface RenderOptions {
  readonly format: "table" | "json" | "yaml";
  /** Also list excluded candidates with reasons (table only; JSON always has them). */
  readonly explain?: boolean;
  readonly health?: ReadonlyMap<string, BackendHealthReport>;
}

/** Renders plans as text for stdout. */
export function renderPlans(plans: readonly PoolPlan[], options: RenderOptions): string {
  if (options.format === "json") {
    return JSON.stringify(plansToJson(plans, options.health), null, 2) + "\n";
  }
  if (options.format === "yaml") return toYaml(plansToJson(plans, options.health));
  const health = options.health;
  const header = ["POOL", "LISTENER", "BACKEND", "SERVICE", "NODE"];
  if (health !== undefined) header.push("HEALTH", "LATENCY", "ERROR");
  const rows: string[][] = [header];
  for (const plan of plans) {
    if (plan.backends.length === 0) {
      rows.push([plan.name, listenerOf(plan), emptyPoolNote(plan, options.explain), "", ""]);
    }
    for (const b of plan.backends) {
      const row = [plan.name, listenerOf(plan), b.address, b.service ?? "-", b.node ?? "-"];
      if (health !== undefined) {
        const h = health.get(b.address);
        row.push(h?.state ?? "-", h ? `${h.latencyMs.toFixed(1)}ms` : "-", h?.error ?? "");
      }
      rows.push(row);
    }
  }
  let text = formatTable(rows);
  if (options.explain) {
    const ex: string[][] = [["POOL", "CANDIDATE", "SERVICE", "NODE", "REASON"]];
    for (const plan of plans) {
      for (const e of plan.excluded) {
        ex.push([
          plan.name,
          e.address ?? "-",
          e.service ?? "-",
          e.node ?? e.pod ?? "-",
          e.detail ? `${e.reason} (${e.detail})` : e.reason,
        ]);
      }
    }
    text += ex.length > 1 ? `\nExcluded:\n${formatTable(ex)}` : "\nExcluded: none\n";
    const fallback: string[][] = [["POOL", "BACKEND", "SERVICE", "NODE", "REASON"]];
    for (const plan of plans) {
      for (const b of plan.backends) {
        if (b.terminating !== true) continue;
        fallback.push([
          plan.name,
          b.address,
          b.service ?? "-",
          b.node ?? b.pod ?? "-",
          b.pod === undefined
            ? "serving-terminating (the Service has no ready endpoint; this node's endpoints " +
              "are terminating but still serving, and kube-proxy forwards to them)"
            : "serving-terminating (the Service has no ready endpoint; this one is terminating " +
              "but still serving, and kube-proxy forwards to it)",
        ]);
      }
    }
    if (fallback.length > 1) {
      text += `\nIncluded while terminating:\n${formatTable(fallback)}`;
    }
    const proxied: string[][] = [["POOL", "BACKEND", "SERVICE", "PROXY PROTOCOL"]];
    for (const plan of plans) {
      for (const b of plan.backends) {
        if (b.proxyProtocol === undefined) continue;
        proxied.push([plan.name, b.address, b.service ?? "-", b.proxyProtocol]);
      }
    }
    if (proxied.length > 1) {
      text += `\nSent a PROXY protocol header:\n${formatTable(proxied)}`;
    }
  }
  const prints = plans.filter((p) => p.fingerprint !== undefined)
    .map((p) => `maglev table of ${p.name}: fingerprint ${p.fingerprint}`);
  if (prints.length > 0) text += `\n${prints.join("\n")}\n`;
  const warnings = [
    ...inputWarningsOf(plans).map((w) => `warning: ${w}`),
    ...plans.flatMap((p) => p.warnings.map((w) => `warning: ${p.name}: ${w}`)),
  ];
  if (warnings.length > 0) text += `\n${warnings.join("\n")}\n`;
  return text;
}

/** The BACKEND cell of an empty pool: how many candidates were left out, and where to look. */
function emptyPoolNote(plan: PoolPlan, explained: boolean | undefined): string {
  const n = plan.excluded.length;
  if (n === 0) return "(none)";
  const what = n === 1 ? "1 candidate" : `${n} candidates`;
  return explained
    ? `(none: ${what} left out, see Excluded below)`
    : `(none: ${what} left out; --explain shows why)`;
}

/** The LISTENER column: the address, with `/udp` (or another transport) when not TCP. */
function listenerOf(plan: PoolPlan): string {
  return plan.protocol === undefined
    ? plan.listenerAddress
    : `${plan.listenerAddress}/${plan.protocol}`;
}
