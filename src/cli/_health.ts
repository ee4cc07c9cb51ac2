/**
 * From pool plans to health-check targets: the listener's `healthCheck` settings, overridden
 * per Service by annotations, and kube-proxy's `healthCheckNodePort` for
 * `externalTrafficPolicy: Local` NodePort backends. Pure.
 *
 * @module
 */
import type { ListenerConfig } from "../config/mod.ts";
import type { Inventory, ServiceInfo } from "../core/inventory.ts";
import type { PlannedBackend, PoolPlan } from "../core/plan.ts";
import { parseDurationMs } from "../core/duration.ts";
import type { HealthCheckSpec, HealthTarget } from "../health/mod.ts";
import { HEALTH_ANNOTATION_PREFIX } from "../resolve/mod.ts";

/** The overridable keys, as annotation suffixes. */
const KEYS = ["interval", "timeout", "rise", "fall", "port"] as const;

/** Targets and the warnings their annotations produced, per pool name. */
export interface HealthPlan {
  readonly targets: HealthTarget[];
  readonly warnings: ReadonlyMap<string, readonly string[]>;
}

/** The listener's own check, as the scheduler takes it. */
export function baseCheck(listener: ListenerConfig): HealthCheckSpec {
  return listener.healthCheck;
}

/**
 * Builds the health targets of every pool. A bad annotation value is reported as a warning of
 * that pool and the listener's value is used instead.
 */
export function healthPlan(
  plans: readonly PoolPlan[],
  listeners: readonly ListenerConfig[],
  inventory: Inventory | undefined,
): HealthPlan {
  const byName = new Map(listeners.map((l) => [l.name, l]));
  const targets: HealthTarget[] = [];
  const warnings = new Map<string, string[]>();
  for (const plan of plans) {
    const listener = byName.get(plan.name);
    if (listener === undefined) continue;
    const base = baseCheck(listener);
    const perService = new Map<string, HealthCheckSpec>();
    const poolWarnings: string[] = [];
    for (const backend of plan.backends) {
      const check = checkFor(backend, base, inventory, perService, poolWarnings);
      targets.push({
        key: backend.address,
        pool: plan.name,
        host: backend.host,
        port: backend.port,
        check,
      });
    }
    if (poolWarnings.length > 0) warnings.set(plan.name, poolWarnings);
  }
  return { targets, warnings };
}

function checkFor(
  backend: PlannedBackend,
  base: HealthCheckSpec,
  inventory: Inventory | undefined,
  cache: Map<string, HealthCheckSpec>,
  warnings: string[],
): HealthCheckSpec {
  if (backend.service === undefined) return base;
  const service = inventory?.services.get(backend.service);
  if (service === undefined) return base;
  let check = cache.get(backend.service);
  if (check === undefined) {
    check = overrideCheck(base, service, warnings);
    cache.set(backend.service, check);
  }
  // kube-proxy answers 200 on nodes with a local endpoint and 503 elsewhere.
  if (
    service.externalTrafficPolicy === "Local" &&
    service.healthCheckNodePort !== undefined && service.healthCheckNodePort > 0 &&
    isNodePortBackend(backend, service, inventory)
  ) {
    return { ...check, http: { port: service.healthCheckNodePort, path: "/healthz" } };
  }
  return check;
}

/**
 * Whether a backend is a node's own address on one of the Service's nodePorts, where
 * kube-proxy also serves `healthCheckNodePort`. Endpoint backends (`backendMode: endpoints`)
 * carry their pod's `node` too, but their host is a pod IP: kube-proxy does not listen there.
 */
function isNodePortBackend(
  backend: PlannedBackend,
  service: ServiceInfo,
  inventory: Inventory | undefined,
): boolean {
  if (backend.node === undefined) return false;
  const node = inventory?.nodes.get(backend.node);
  return node !== undefined && node.addresses.some((a) => a.address === backend.host) &&
    service.ports.some((p) => p.nodePort === backend.port);
}

/**
 * Applies `nautiluslb.cloudresty.io/health-check-{interval,timeout,rise,fall,port}` of a
 * Service to a base check.
 */
export function overrideCheck(
  base: HealthCheckSpec,
  service: ServiceInfo,
  warnings: string[],
): HealthCheckSpec {
  const out: { -readonly [K in keyof HealthCheckSpec]: HealthCheckSpec[K] } = { ...base };
  const where = `${service.namespace}/${service.name}`;
  for (const key of KEYS) {
    const name = HEALTH_ANNOTATION_PREFIX + key;
    const raw = service.annotations[name];
    if (raw === undefined) continue;
    const bad = (why: string) =>
      warnings.push(`Service ${where}: annotation ${name} "${raw}" ignored: ${why}`);
    if (key === "interval" || key === "timeout") {
      let ms: number;
      try {
        ms = parseDurationMs(raw);
      } catch (error) {
        bad(error instanceof Error ? error.message : String(error));
        continue;
      }
      if (ms < 1) {
        bad("must be at least 1ms");
        continue;
      }
      if (key === "interval") out.intervalMs = ms;
      else out.timeoutMs = ms;
      continue;
    }
    const n = /^\d+$/.test(raw.trim()) ? Number(raw.trim()) : NaN;
    if (key === "port") {
      if (!(n >= 1 && n <= 65535)) {
        bad("port must be an integer in range 1-65535");
        continue;
      }
      out.port = n;
      continue;
    }
    if (!(n >= 1 && n <= 100)) {
      bad(`${key} must be an integer in range 1-100`);
      continue;
    }
    if (key === "rise") out.rise = n;
    else out.fall = n;
  }
  return out;
}

/** Adds health-annotation warnings to the plans they belong to. */
export function withHealthWarnings(
  plans: readonly PoolPlan[],
  warnings: ReadonlyMap<string, readonly string[]>,
): PoolPlan[] {
  return plans.map((p) => {
    const w = warnings.get(p.name);
    return w === undefined ? p : { ...p, warnings: [...p.warnings, ...w] };
  });
}
