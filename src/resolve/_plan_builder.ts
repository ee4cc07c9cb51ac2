/**
 * Accumulates one {@linkcode PoolPlan}: backends deduped by address (with a warning when two
 * sources clash), exclusions, warnings, each backend's connection limit and PROXY protocol
 * version, and its health check settled from the listener's check, the Service's annotations
 * and kube-proxy's `healthCheckNodePort`.
 *
 * @module
 */
import type { ServiceInfo } from "../core/inventory.ts";
import type { ExcludedBackend, HealthTarget, PlannedBackend, PoolPlan } from "../core/plan.ts";
import type { HealthCheckSpec, PoolSpec } from "../core/pool_spec.ts";
import type { ProxyProtocolVersion } from "../core/types.ts";
import {
  ANNOTATION_PROXY_PROTOCOL,
  applyHealthAnnotations,
  parseProxyProtocol,
  PROXY_PROTOCOL_NAMES,
} from "./annotations.ts";
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
  /**
   * For a UDP backend: the port of the Service's TCP port of the same number (`dns-tcp`
   * beside `dns`) as this backend reaches it, which its active check connects to unless the
   * check names a `port` or a `dnsQuery`.
   */
  readonly tcpHealthPort?: number;
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
  /** Service key → its PROXY protocol version (`undefined`: none), once settled. */
  readonly #proxyProtocols = new Map<string, ProxyProtocolVersion | undefined>();
  /** Service key → its backends' connection limit, from its annotation. */
  readonly #serviceLimits = new Map<string, number>();

  constructor(spec: PoolSpec) {
    this.#spec = spec;
  }

  /**
   * Adds a backend unless its address is already in. `via` says where its health check comes
   * from: the Service (annotations applied), plus kube-proxy's `healthCheckNodePort` when the
   * backend is a node port of an `externalTrafficPolicy: Local` Service. Static backends have
   * no `via` and get the listener's check and PROXY protocol version. A Service's backend
   * gets the Service's connection limit (see {@linkcode PlanBuilder.limitService}) and its
   * PROXY protocol version, which its TCP health check sends too (an HTTP check does not).
   */
  include(backend: PlannedBackend, via?: HealthSource): void {
    const owner = backend.service ?? "";
    const first = this.#owners.get(backend.address);
    if (first === undefined) {
      const limit = this.#serviceLimits.get(owner);
      if (limit !== undefined) backend = { ...backend, maxConnections: limit };
      this.#owners.set(backend.address, owner);
      const version = via === undefined ? this.#spec.proxyProtocol : this.#proxyProtocolOf(via);
      this.backends.push(version === undefined ? backend : { ...backend, proxyProtocol: version });
      const check = this.#checkOf(via);
      this.#checks.push(
        check === undefined || version === undefined || check.http !== undefined
          ? check
          : { ...check, proxyProtocol: version },
      );
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

  /** Gives every later backend of Service `key` this connection limit. */
  limitService(key: string, maxConnections: number): void {
    this.#serviceLimits.set(key, maxConnections);
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

  /** The Service's proxy-protocol annotation over the listener's; a bad one is a warning. */
  #proxyProtocolOf(via: HealthSource): ProxyProtocolVersion | undefined {
    const { key, service } = via;
    if (this.#proxyProtocols.has(key)) return this.#proxyProtocols.get(key);
    const listener = this.#spec.proxyProtocol;
    let version = listener;
    const text = service.annotations[ANNOTATION_PROXY_PROTOCOL];
    if (text !== undefined) {
      const parsed = parseProxyProtocol(text);
      if (parsed === undefined) {
        this.warnings.push(
          `Ignoring annotation ${ANNOTATION_PROXY_PROTOCOL} of Service ${key}: "${text}" is not ` +
            `one of ${PROXY_PROTOCOL_NAMES.join(", ")}; using ${listener ?? "off"}`,
        );
      } else {
        version = parsed === "off" ? undefined : parsed;
      }
    }
    this.#proxyProtocols.set(key, version);
    return version;
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
    if (
      via.tcpHealthPort !== undefined && check.port === undefined && check.dnsQuery === undefined
    ) {
      check = { ...check, port: via.tcpHealthPort };
    }
    // kube-proxy answers 200 on nodes with a ready local endpoint and 503 elsewhere.
    const port = service.healthCheckNodePort;
    if (
      via.isNodePort && service.externalTrafficPolicy === "Local" && port !== undefined &&
      port > 0
    ) {
      // kube-proxy speaks plain HTTP whatever the pool's own check is.
      const { tls: _tls, ...plain } = check;
      return { ...plain, http: { port, path: KUBE_PROXY_HEALTH_PATH } };
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
      ...(spec.protocol !== undefined && spec.protocol !== "tcp" && { protocol: spec.protocol }),
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
