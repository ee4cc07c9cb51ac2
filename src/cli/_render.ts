/**
 * Rendering pool plans for `discover`, `check` and `serve --dry-run`: the table and the
 * stable JSON contract documented in the README.
 *
 * @module
 */
import { stringify as toYaml } from "yaml";
import type { ExcludedBackend, PlannedBackend, PoolPlan } from "../core/plan.ts";
import { formatTable } from "./_table.ts";

/** Health of one backend as `check` and `discover --check` report it. */
export interface BackendHealthReport {
  readonly state: "healthy" | "unhealthy";
  readonly latencyMs: number;
  readonly error?: string;
}

/** One backend in the JSON contract. */
export interface BackendJson {
  address: string;
  service?: string;
  node?: string;
  pod?: string;
  weight?: number;
  health?: BackendHealthReport;
}

/** One pool in the JSON contract. */
export interface PoolJson {
  name: string;
  listenerAddress: string;
  backends: BackendJson[];
  excluded: ExcludedBackend[];
  warnings: string[];
  healthy?: number;
  total?: number;
  fingerprint?: string;
}

/** Turns plans into the documented JSON shape (`{"pools": [...]}`). */
export function plansToJson(
  plans: readonly PoolPlan[],
  health?: ReadonlyMap<string, BackendHealthReport>,
): { pools: PoolJson[] } {
  return {
    pools: plans.map((plan) => {
      const backends = plan.backends.map((b) => backendJson(b, health));
      const pool: PoolJson = {
        name: plan.name,
        listenerAddress: plan.listenerAddress,
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
      rows.push([plan.name, plan.listenerAddress, "(none)", "", ""]);
    }
    for (const b of plan.backends) {
      const row = [plan.name, plan.listenerAddress, b.address, b.service ?? "-", b.node ?? "-"];
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
  }
  const prints = plans.filter((p) => p.fingerprint !== undefined)
    .map((p) => `maglev table of ${p.name}: fingerprint ${p.fingerprint}`);
  if (prints.length > 0) text += `\n${prints.join("\n")}\n`;
  const warnings = plans.flatMap((p) => p.warnings.map((w) => `warning: ${p.name}: ${w}`));
  if (warnings.length > 0) text += `\n${warnings.join("\n")}\n`;
  return text;
}
