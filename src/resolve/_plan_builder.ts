/**
 * Accumulates one {@linkcode PoolPlan}: backends deduped by address (with a warning when two
 * sources clash), exclusions, warnings, and each backend's health check settled from the
 * listener's check, the Service's annotations and kube-proxy's `healthCheckNodePort`.
 *
 * @module
 */
import type { ServiceInfo } from "../core/inventory.ts";
import type { ExcludedBackend, HealthTarget, PlannedBackend, PoolPlan } from "../core/plan.ts";
import type { HealthCheckSpec, PoolSpec } from "../core/pool_spec.ts";
import { applyHealthAnnotations } from "./annotations.ts";
import { sortEntries } from "./_compare.ts";

/** Path kube-proxy serves its per-Service health check on, at `healthCheckNodePort`. */
const KUBE_PROXY_HEALTH_PATH = "/healthz";

/** Where a Service backend's health check comes from. */
export interface HealthSource {
  /** The Service's `namespace/name`. */
  readonly key: string;
  readonly service: ServiceInfo;
  /** Whether the backend is a node port (kube-proxy's check applies to `Local` Services). */
  readonly isNodePort: boolean;
}

/**
 * Accumulates one plan. Mutable while resolving; {@linkcode PlanBuilder.build} hands the
 * arrays over to the plan, so the builder is not used after it.
 */
export class PlanBuilder {
  readonly backends: PlannedBackend[] = [];
  readonly excluded: ExcludedBackend[] = [];
  readonly warnings: string[] = [];
  readonly inputWarnings: string[] = [];
  readonly #spec: PoolSpec;
  /** Address → contributing Service key (`""` for static backends). */
  readonly #owners = new Map<string, string>();
  /** `first\0second` → duplicate count and one example address. */
  readonly #duplicates = new Map<string, { count: number; example: string }>();
  /** The check of `backends[i]`, until `build` sorts them together. */
  readonly #checks: (HealthCheckSpec | undefined)[] = [];
  /** Service key → the listener's check with that Service's annotations applied. */
  readonly #serviceChecks = new Map<string, HealthCheckSpec>();
  /** Bad health annotations; reported after the resolution warnings. */
  readonly #healthWarnings: string[] = [];

  constructor(spec: PoolSpec) {
    this.#spec = spec;
  }

  /**
   * Adds a backend unless its address is already in. `via` says where its health check comes
   * from: the Service (annotations applied), plus kube-proxy's `healthCheckNodePort` when the
   * backend is a node port of an `externalTrafficPolicy: Local` Service. Static backends have
   * no `via` and get the listener's check.
   */
  include(backend: PlannedBackend, via?: HealthSource): void {
    const owner = backend.service ?? "";
    const first = this.#owners.get(backend.address);
    if (first === undefined) {
      this.#owners.set(backend.address, owner);
      this.backends.push(backend);
      this.#checks.push(this.#checkOf(via));
      return;
    }
    // The same Service listing an address twice (overlapping slices during an update) is
    // normal; only a clash between two sources is worth a warning.
    if (first === owner) return;
    const pair = `${first}\0${owner}`;
    const seen = this.#duplicates.get(pair);
    if (seen) seen.count++;
    else this.#duplicates.set(pair, { count: 1, example: backend.address });
  }

  /** Records a candidate left out, with its reason. */
  exclude(entry: ExcludedBackend): void {
    this.excluded.push(entry);
  }

  /** A warning of this pool. */
  warn(message: string): void {
    this.warnings.push(message);
  }

  /** A problem of the input rather than of this pool; reported once per run. */
  warnInput(message: string): void {
    if (!this.inputWarnings.includes(message)) this.inputWarnings.push(message);
  }

  #checkOf(via: HealthSource | undefined): HealthCheckSpec | undefined {
    const base = this.#spec.healthCheck;
    if (base === undefined || via === undefined) return base;
    const { key, service } = via;
    let check = this.#serviceChecks.get(key);
    if (check === undefined) {
      check = applyHealthAnnotations(base, service.annotations, key, this.#healthWarnings);
      this.#serviceChecks.set(key, check);
    }
    // kube-proxy answers 200 on nodes with a ready local endpoint and 503 elsewhere.
    const port = service.healthCheckNodePort;
    if (
      via.isNodePort && service.externalTrafficPolicy === "Local" && port !== undefined &&
      port > 0
    ) {
      return { ...check, http: { port, path: KUBE_PROXY_HEALTH_PATH } };
    }
    return check;
  }

  /**
   * The plan: backends and exclusions sorted by address then Service, duplicate and health
   * annotation warnings after the others, one health target per backend when checked.
   */
  build(): PoolPlan {
    const spec = this.#spec;
    for (const [pair, { count, example }] of this.#duplicates) {
      const [first = "", second = ""] = pair.split("\0");
      const what = count === 1 ? `backend ${example}` : `${count} backends (e.g. ${example})`;
      this.warnings.push(
        `${describeSource(second)} duplicates ${what} of ${
          describeSource(first)
        }; keeping the first`,
      );
    }
    this.warnings.push(...this.#healthWarnings);
    const checks = this.#checks;
    const order = sortEntries(this.backends.map((_, i) => i), (i) => this.backends[i]!);
    const backends = order.map((i) => this.backends[i]!);
    sortEntries(this.excluded, (e) => e);
    const healthTargets: HealthTarget[] = [];
    for (const i of order) {
      const check = checks[i];
      if (check === undefined) continue;
      const b = this.backends[i]!;
      healthTargets.push({ key: b.address, pool: spec.name, host: b.host, port: b.port, check });
    }
    return {
      name: spec.name,
      listenerAddress: spec.listenerAddress,
      backends,
      excluded: this.excluded,
      warnings: this.warnings,
      inputWarnings: this.inputWarnings,
      healthTargets,
    };
  }
}

function describeSource(owner: string): string {
  return owner === "" ? "static backends" : `Service ${owner}`;
}
