/**
 * Pure resolution of a listener's pool: which backends an {@linkcode Inventory} yields for a
 * {@linkcode PoolSpec}, and why every other candidate was left out.
 *
 * No I/O, no clock, no randomness: the same inputs give the same plan, byte for byte.
 *
 * @module
 */
import { formatHostPort } from "../core/address.ts";
import { suggest } from "../core/suggest.ts";
import type {
  EndpointInfo,
  EndpointSliceInfo,
  Inventory,
  NodeInfo,
  ServiceInfo,
  ServicePortInfo,
} from "../core/inventory.ts";
import type {
  ExcludedBackend,
  ExclusionReason,
  HealthTarget,
  PlannedBackend,
  PoolPlan,
} from "../core/plan.ts";
import type { BackendMode, HealthCheckSpec, PoolSpec } from "../core/pool_spec.ts";
import type { ProxyProtocolVersion } from "../core/types.ts";
import {
  ANNOTATION_BACKEND_MODE,
  ANNOTATION_ENABLED,
  ANNOTATION_MAX_CONNECTIONS,
  ANNOTATION_PREFIX,
  ANNOTATION_PROXY_PROTOCOL,
  ANNOTATION_WEIGHT,
  applyHealthAnnotations,
  BACKEND_MODE_NAMES,
  KNOWN_ANNOTATIONS,
  LABEL_EXCLUDE_FROM_EXTERNAL_LB,
  MAX_CONNECTIONS_ANNOTATION_LIMIT,
  MAX_WEIGHT,
  parseBackendMode,
  parseMaxConnections,
  parseProxyProtocol,
  parseWeight,
  PROXY_PROTOCOL_NAMES,
} from "./annotations.ts";
import { sortEntries } from "./_compare.ts";
import { type EndpointSliceIndex, indexEndpointSlices } from "./slice_index.ts";

/** Options of {@linkcode resolvePool}. */
export interface ResolveOptions {
  /**
   * EndpointSlices of `inventory` grouped by Service, from {@linkcode indexEndpointSlices}.
   * Built for the call when absent; pass one to resolve several pools of one snapshot.
   */
  readonly endpointSliceIndex?: EndpointSliceIndex;
}

/** Services a merge warning names before it says "and N more". */
const MAX_NAMES_IN_WARNING = 10;

/** A mode after `auto` and headless Services were settled. */
type ConcreteMode = Exclude<BackendMode, "auto">;

/** A node with its address and, when it may not take traffic, why. */
interface NodeCandidate {
  readonly name: string;
  readonly host?: string;
  readonly exclusion?: { readonly reason: ExclusionReason; readonly detail: string };
}

/** One Service that passed the filters, with the port the listener wants. */
interface MatchedService {
  readonly key: string;
  readonly service: ServiceInfo;
  readonly port: ServicePortInfo;
}

/** Path kube-proxy serves its per-Service health check on, at `healthCheckNodePort`. */
const KUBE_PROXY_HEALTH_PATH = "/healthz";

/** Accumulates one plan; dedupes backends by address and settles their health checks. */
class PlanBuilder {
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
   * backend is a node port of an `externalTrafficPolicy: Local` Service.
   */
  include(
    backend: PlannedBackend,
    via?: { readonly service: MatchedService; readonly isNodePort: boolean },
  ): void {
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

  exclude(entry: ExcludedBackend): void {
    this.excluded.push(entry);
  }

  /** The Service's proxy-protocol annotation over the listener's; a bad one is a warning. */
  #proxyProtocolOf(via: { readonly service: MatchedService }): ProxyProtocolVersion | undefined {
    const { key, service } = via.service;
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

  warn(message: string): void {
    this.warnings.push(message);
  }

  /** A problem of the input rather than of this pool; reported once per run. */
  warnInput(message: string): void {
    if (!this.inputWarnings.includes(message)) this.inputWarnings.push(message);
  }

  #checkOf(
    via: { readonly service: MatchedService; readonly isNodePort: boolean } | undefined,
  ): HealthCheckSpec | undefined {
    const base = this.#spec.healthCheck;
    if (base === undefined || via === undefined) return base;
    const { key, service } = via.service;
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

/**
 * Resolves the pool of one listener.
 *
 * A Service feeds the pool when it is annotated `nautiluslb.cloudresty.io/enabled: "true"`,
 * lies in `spec.namespace` (any when absent), matches `spec.service` and
 * `spec.serviceSelector` when given, and has a port named `spec.backendPortName`. Several
 * such Services merge into one pool, with a warning. Static `spec.backends` come first.
 *
 * Backends and exclusions are sorted by address (numbers compared as numbers), then
 * Service; an address contributed twice is kept once. With `spec.healthCheck`, every backend
 * gets a health target (see {@linkcode PoolPlan.healthTargets}); a bad health annotation is a
 * warning of the pool and keeps the listener's value.
 *
 * Endpoints follow kube-proxy (KEP-1669): ready endpoints take new connections; when a
 * Service has none for the port, endpoints that are `serving` and `terminating` do, marked
 * `terminating`. Likewise for `externalTrafficPolicy: Local` nodes.
 *
 * @param inventory the cluster snapshot; never mutated
 * @param spec what decides the pool's membership
 * @returns a new plan that shares no mutable state with the inputs
 */
export function resolvePool(
  inventory: Inventory,
  spec: PoolSpec,
  options: ResolveOptions = {},
): PoolPlan {
  const plan = new PlanBuilder(spec);
  for (const b of spec.backends) {
    plan.include({
      address: formatHostPort(b.host, b.port),
      host: b.host,
      port: b.port,
      weight: b.weight,
    });
  }
  const portName = spec.backendPortName;
  if (portName === undefined) return plan.build();

  const matched = matchServices(inventory, spec, portName, plan);
  if (matched.length === 0) {
    // A Service with the port in another protocol is already explained by its exclusion.
    const explained = plan.excluded.some((e) => e.reason === "unsupported-protocol");
    if (spec.service === undefined && !explained) {
      const where = spec.namespace === undefined
        ? "any namespace"
        : `namespace "${spec.namespace}"`;
      plan.warn(
        `No annotated Service in ${where} has a port named "${portName}"` +
          unannotatedHint(inventory, spec, portName),
      );
    }
    return plan.build();
  }
  if (matched.length > 1) {
    const shown = matched.slice(0, MAX_NAMES_IN_WARNING).map((m) => m.key).join(", ");
    const more = matched.length - MAX_NAMES_IN_WARNING;
    const names = more > 0 ? `${shown} and ${more} more` : shown;
    plan.warn(
      `Services ${names} all have a port named "${portName}" and are merged into one pool; ` +
        `set "service" or "serviceSelector" to narrow it`,
    );
  }

  const sliceIndex = options.endpointSliceIndex ?? indexEndpointSlices(inventory);
  let nodes: readonly NodeCandidate[] | undefined;
  for (const m of matched) {
    warnUnknownAnnotations(m, plan);
    const weight = serviceWeight(m, plan);
    const limit = serviceMaxConnections(m, plan);
    if (limit !== undefined) plan.limitService(m.key, limit);
    const mode = serviceMode(m, spec.backendMode, plan);
    switch (mode) {
      case "nodeport":
        nodes ??= prepareNodes(inventory, spec);
        resolveNodePort(m, weight, nodes, sliceIndex, inventory.hasEndpointSlices, plan);
        break;
      case "clusterip":
        resolveClusterIP(m, weight, plan);
        break;
      case "endpoints":
        resolveEndpoints(m, weight, sliceIndex, inventory.hasEndpointSlices, portName, plan);
        break;
    }
  }
  return plan.build();
}

/**
 * Resolves the pools of several listeners against one snapshot, indexing its
 * EndpointSlices once.
 * @returns one plan per spec, in the order of `specs`
 */
export function resolvePools(inventory: Inventory, specs: readonly PoolSpec[]): PoolPlan[] {
  const endpointSliceIndex = indexEndpointSlices(inventory);
  return specs.map((spec) => resolvePool(inventory, spec, { endpointSliceIndex }));
}

/**
 * The health targets of several plans, for one health scheduler or one `check` round.
 * @returns a new array, plans in order, each plan's targets in backend order
 */
export function healthTargetsOf(plans: readonly PoolPlan[]): HealthTarget[] {
  return plans.flatMap((p) => p.healthTargets);
}

function isEnabled(service: ServiceInfo): boolean {
  return service.annotations[ANNOTATION_ENABLED] === "true";
}

function matchesSelector(
  service: ServiceInfo,
  selector: Readonly<Record<string, string>> | undefined,
): boolean {
  if (selector === undefined) return true;
  for (const key in selector) {
    if (service.labels[key] !== selector[key]) return false;
  }
  return true;
}

function findPort(service: ServiceInfo, portName: string): ServicePortInfo | undefined {
  return service.ports.find((p) => p.name === portName);
}

function isTcp(port: ServicePortInfo): boolean {
  return port.protocol === "" || port.protocol.toUpperCase() === "TCP";
}

/** Services that feed the pool, sorted by key; explains a `spec.service` that does not. */
function matchServices(
  inventory: Inventory,
  spec: PoolSpec,
  portName: string,
  plan: PlanBuilder,
): MatchedService[] {
  if (spec.service !== undefined) {
    const key = spec.service;
    const service = inventory.services.get(key);
    const named = `Service ${key} named by "service"`;
    if (service === undefined) {
      plan.warn(`${named} is not in the inventory`);
    } else if (spec.namespace !== undefined && service.namespace !== spec.namespace) {
      plan.warn(`${named} is outside namespace "${spec.namespace}"`);
    } else if (!isEnabled(service)) {
      plan.warn(`${named} lacks annotation ${ANNOTATION_ENABLED}: "true"`);
    } else if (!matchesSelector(service, spec.serviceSelector)) {
      plan.warn(`${named} does not match "serviceSelector"`);
    } else {
      const port = findPort(service, portName);
      if (port === undefined) {
        const names = service.ports.map((p) => p.name === "" ? "(unnamed)" : `"${p.name}"`);
        plan.exclude({
          service: key,
          reason: "port-name-mismatch",
          detail: `no port named "${portName}"; ports are ${names.join(", ") || "none"}`,
        });
      } else if (!isTcp(port)) {
        plan.exclude(unsupportedProtocol(key, service, port));
      } else {
        return [{ key, service, port }];
      }
    }
    return [];
  }

  const matched: MatchedService[] = [];
  for (const [key, service] of inventory.services) {
    if (spec.namespace !== undefined && service.namespace !== spec.namespace) continue;
    if (!isEnabled(service) || !matchesSelector(service, spec.serviceSelector)) continue;
    const port = findPort(service, portName);
    if (port === undefined) continue;
    if (!isTcp(port)) {
      plan.exclude(unsupportedProtocol(key, service, port));
      continue;
    }
    matched.push({ key, service, port });
  }
  return matched.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/** A UDP or SCTP port: named, with a TCP port of the same number when the Service has one. */
function unsupportedProtocol(
  key: string,
  service: ServiceInfo,
  port: ServicePortInfo,
): ExcludedBackend {
  const twin = service.ports.find((p) => p.port === port.port && isTcp(p));
  const hint = twin === undefined
    ? ""
    : `; port ${twin.name === "" ? "(unnamed)" : `"${twin.name}"`} is TCP on the same number`;
  return {
    service: key,
    reason: "unsupported-protocol",
    detail: `port "${port.name}" is ${port.protocol}; only TCP is supported${hint}`,
  };
}

/**
 * When no annotated Service has the port: the Services in scope that have it but lack the
 * opt-in annotation, as a hint to append to the warning (`""` when none).
 */
function unannotatedHint(inventory: Inventory, spec: PoolSpec, portName: string): string {
  const keys: string[] = [];
  for (const [key, service] of inventory.services) {
    if (spec.namespace !== undefined && service.namespace !== spec.namespace) continue;
    if (isEnabled(service) || !matchesSelector(service, spec.serviceSelector)) continue;
    if (findPort(service, portName) !== undefined) keys.push(key);
  }
  if (keys.length === 0) return "";
  keys.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const shown = keys.slice(0, MAX_NAMES_IN_WARNING).join(", ");
  const more = keys.length - MAX_NAMES_IN_WARNING;
  const names = more > 0 ? `${shown} and ${more} more` : shown;
  const what = keys.length === 1 ? "Service" : "Services";
  const verb = keys.length === 1 ? "has it but lacks" : "have it but lack";
  return `; ${what} ${names} ${verb} annotation ${ANNOTATION_ENABLED}: "true"`;
}

const KNOWN_SUFFIXES = KNOWN_ANNOTATIONS.map((a) => a.slice(ANNOTATION_PREFIX.length));

/** A typo in an annotation name must not pass silently: name it and suggest the known one. */
function warnUnknownAnnotations(m: MatchedService, plan: PlanBuilder): void {
  for (const name in m.service.annotations) {
    if (!name.startsWith(ANNOTATION_PREFIX) || KNOWN_ANNOTATIONS.includes(name)) continue;
    // Compare what follows the prefix, or the shared prefix makes everything look close.
    const guess = suggest(name.slice(ANNOTATION_PREFIX.length), KNOWN_SUFFIXES);
    plan.warn(
      `Ignoring unknown annotation ${name} of Service ${m.key}` +
        (guess === undefined ? "" : `: did you mean ${ANNOTATION_PREFIX}${guess}?`),
    );
  }
}

function serviceWeight(m: MatchedService, plan: PlanBuilder): number {
  const text = m.service.annotations[ANNOTATION_WEIGHT];
  if (text === undefined) return 1;
  const weight = parseWeight(text);
  if (weight !== undefined) return weight;
  plan.warn(
    `Ignoring annotation ${ANNOTATION_WEIGHT} of Service ${m.key}: "${text}" is not an ` +
      `integer 0-${MAX_WEIGHT}; using 1`,
  );
  return 1;
}

/** The Service's per-backend limit; `undefined` (the listener's) when absent, 0 or bad. */
function serviceMaxConnections(m: MatchedService, plan: PlanBuilder): number | undefined {
  const text = m.service.annotations[ANNOTATION_MAX_CONNECTIONS];
  if (text === undefined) return undefined;
  const limit = parseMaxConnections(text);
  if (limit === undefined) {
    plan.warn(
      `Ignoring annotation ${ANNOTATION_MAX_CONNECTIONS} of Service ${m.key}: "${text}" is not ` +
        `an integer 0-${MAX_CONNECTIONS_ANNOTATION_LIMIT}; using the listener's maxConnectionsPerBackend`,
    );
    return undefined;
  }
  return limit === 0 ? undefined : limit;
}

function isHeadless(service: ServiceInfo): boolean {
  return service.clusterIPs.includes("None");
}

function serviceMode(
  m: MatchedService,
  listenerMode: BackendMode,
  plan: PlanBuilder,
): ConcreteMode {
  let mode = listenerMode;
  const text = m.service.annotations[ANNOTATION_BACKEND_MODE];
  if (text !== undefined) {
    const parsed = parseBackendMode(text);
    if (parsed === undefined) {
      plan.warn(
        `Ignoring annotation ${ANNOTATION_BACKEND_MODE} of Service ${m.key}: "${text}" is not ` +
          `one of ${BACKEND_MODE_NAMES.join(", ")}; using ${listenerMode}`,
      );
    } else {
      mode = parsed;
    }
  }
  // A headless Service has no virtual IP: its pods are the only way in.
  if ((mode === "auto" || mode === "clusterip") && isHeadless(m.service)) return "endpoints";
  if (mode !== "auto") return mode;
  return m.service.type === "NodePort" || m.service.type === "LoadBalancer"
    ? "nodeport"
    : "clusterip";
}

/** Settles every node's address and eligibility once per pool, sorted by name. */
function prepareNodes(inventory: Inventory, spec: PoolSpec): NodeCandidate[] {
  const nodes = [...inventory.nodes.values()].sort((a, b) =>
    a.name < b.name ? -1 : a.name > b.name ? 1 : 0
  );
  return nodes.map((node) => {
    const host = nodeHost(node, spec);
    const exclusion = nodeExclusion(node, host, spec);
    return {
      name: node.name,
      ...(host === undefined ? {} : { host }),
      ...(exclusion === undefined ? {} : { exclusion }),
    };
  });
}

function nodeHost(node: NodeInfo, spec: PoolSpec): string | undefined {
  for (const type of spec.nodeAddressTypes) {
    const found = node.addresses.find((a) => a.type === type && a.address !== "");
    if (found) return found.address;
  }
  return undefined;
}

function nodeExclusion(
  node: NodeInfo,
  host: string | undefined,
  spec: PoolSpec,
): NodeCandidate["exclusion"] {
  if (node.ready === undefined) {
    return { reason: "node-not-ready", detail: "no Ready condition" };
  }
  if (node.ready !== "True") {
    return { reason: "node-not-ready", detail: `Ready condition is ${node.ready}` };
  }
  if (Object.hasOwn(node.labels, LABEL_EXCLUDE_FROM_EXTERNAL_LB)) {
    return { reason: "node-excluded", detail: `label ${LABEL_EXCLUDE_FROM_EXTERNAL_LB}` };
  }
  if (node.unschedulable && spec.excludeCordonedNodes) {
    return { reason: "node-cordoned", detail: "node is unschedulable" };
  }
  if (host === undefined) {
    return {
      reason: "no-node-address",
      detail: `no address of type ${spec.nodeAddressTypes.join(", ") || "(none configured)"}`,
    };
  }
  return undefined;
}

/** Whether an endpoint takes new connections in normal times: ready and not terminating. */
function isReady(ep: EndpointInfo): boolean {
  return ep.ready !== false && ep.terminating !== true;
}

/**
 * Whether an endpoint may take new connections while its Service has no ready one: still
 * `serving` (absent counts as serving, as kube-proxy reads it) while `terminating`.
 */
function isServingTerminating(ep: EndpointInfo): boolean {
  return ep.terminating === true && ep.serving !== false;
}

/** Where a Service's endpoints run, for `externalTrafficPolicy: Local`. */
interface LocalEndpoints {
  /** Nodes with a ready endpoint. */
  readonly ready: ReadonlySet<string>;
  /** Nodes with a serving, terminating endpoint. */
  readonly servingTerminating: ReadonlySet<string>;
}

function localEndpoints(slices: readonly EndpointSliceInfo[]): LocalEndpoints {
  const ready = new Set<string>();
  const servingTerminating = new Set<string>();
  for (const slice of slices) {
    for (const ep of slice.endpoints) {
      if (ep.nodeName === undefined) continue;
      if (isReady(ep)) ready.add(ep.nodeName);
      else if (isServingTerminating(ep)) servingTerminating.add(ep.nodeName);
    }
  }
  return { ready, servingTerminating };
}

/**
 * Which nodes take traffic of an `externalTrafficPolicy: Local` Service, as kube-proxy decides
 * (KEP-1669): nodes with a ready local endpoint; when no node has one, nodes whose local
 * endpoints are serving but terminating, since kube-proxy still forwards new connections there
 * (its `healthCheckNodePort` answers 503 on them all the same).
 */
function localNodeVerdict(
  local: LocalEndpoints,
  nodeName: string,
): "ready" | "serving-terminating" | { readonly detail: string } {
  if (local.ready.has(nodeName)) return "ready";
  const hasTerminating = local.servingTerminating.has(nodeName);
  if (hasTerminating && local.ready.size === 0) return "serving-terminating";
  return {
    detail: hasTerminating
      ? "externalTrafficPolicy is Local and the endpoints on this node are terminating " +
        "while other nodes have ready ones"
      : "externalTrafficPolicy is Local and no ready endpoint runs on this node",
  };
}

function resolveNodePort(
  m: MatchedService,
  weight: number,
  nodes: readonly NodeCandidate[],
  sliceIndex: EndpointSliceIndex,
  hasEndpointSlices: boolean,
  plan: PlanBuilder,
): void {
  const nodePort = m.port.nodePort;
  if (nodePort === undefined || nodePort === 0) {
    plan.exclude({
      service: m.key,
      reason: "no-node-port",
      detail: `port "${m.port.name}" has no nodePort (Service type ${m.service.type})`,
    });
    return;
  }
  let local: LocalEndpoints | undefined;
  /** Local policy, but nothing says where the pods run: every node is left out for that. */
  let noEndpointData = false;
  if (m.service.externalTrafficPolicy === "Local") {
    const slices = sliceIndex.get(m.key);
    if (!hasEndpointSlices) {
      plan.warn(
        `Cannot honour externalTrafficPolicy Local of Service ${m.key}: the cluster serves ` +
          `no EndpointSlice API; using every eligible node`,
      );
    } else if (slices === undefined) {
      noEndpointData = true;
      plan.warnInput(
        `Service ${m.key} has externalTrafficPolicy Local but the input has no EndpointSlice ` +
          `or Endpoints for it, so the nodes running its pods are unknown`,
      );
    } else {
      local = localEndpoints(slices);
    }
  }
  if (nodes.length === 0) plan.warn(`Service ${m.key}: the inventory has no nodes`);
  const via = { service: m, isNodePort: true };
  let fallbackNodes = 0;
  for (const node of nodes) {
    if (node.exclusion !== undefined || node.host === undefined) {
      plan.exclude({
        ...(node.host === undefined ? {} : { address: formatHostPort(node.host, nodePort) }),
        service: m.key,
        node: node.name,
        reason: node.exclusion?.reason ?? "no-node-address",
        ...(node.exclusion === undefined ? {} : { detail: node.exclusion.detail }),
      });
      continue;
    }
    const address = formatHostPort(node.host, nodePort);
    if (noEndpointData) {
      plan.exclude({
        address,
        service: m.key,
        node: node.name,
        reason: "endpoints-unavailable",
        detail: "externalTrafficPolicy is Local and the input has no endpoint data",
      });
      continue;
    }
    const verdict = local === undefined ? "ready" : localNodeVerdict(local, node.name);
    if (typeof verdict === "object") {
      plan.exclude({
        address,
        service: m.key,
        node: node.name,
        reason: "no-local-endpoint",
        detail: verdict.detail,
      });
      continue;
    }
    if (verdict === "serving-terminating") fallbackNodes++;
    plan.include({
      address,
      host: node.host,
      port: nodePort,
      weight,
      service: m.key,
      node: node.name,
      ...(verdict === "serving-terminating" ? { terminating: true } : {}),
    }, via);
  }
  if (fallbackNodes > 0) {
    plan.warn(
      `Service ${m.key} has no ready endpoint; ${fallbackNodes} node(s) whose endpoints are ` +
        `terminating but still serving take new connections, as kube-proxy falls back`,
    );
  }
}

function resolveClusterIP(m: MatchedService, weight: number, plan: PlanBuilder): void {
  const ips = m.service.clusterIPs.filter((ip) => ip !== "" && ip !== "None");
  if (ips.length === 0) {
    plan.exclude({
      service: m.key,
      reason: "no-cluster-ip",
      detail: m.service.type === "ExternalName"
        ? "ExternalName Services have no cluster IP"
        : "Service has no cluster IP",
    });
    return;
  }
  // `port`, not `targetPort`: the cluster IP listens on the Service port, kube-proxy maps it.
  for (const ip of ips) {
    plan.include({
      address: formatHostPort(ip, m.port.port),
      host: ip,
      port: m.port.port,
      weight,
      service: m.key,
    }, { service: m, isNodePort: false });
  }
}

function resolveEndpoints(
  m: MatchedService,
  weight: number,
  sliceIndex: EndpointSliceIndex,
  hasEndpointSlices: boolean,
  portName: string,
  plan: PlanBuilder,
): void {
  if (!hasEndpointSlices) {
    plan.exclude({
      service: m.key,
      reason: "endpoints-unavailable",
      detail: "the cluster serves no EndpointSlice API",
    });
    plan.warn(
      `Cannot resolve endpoints of Service ${m.key}: the cluster serves no EndpointSlice API`,
    );
    return;
  }
  const slices: { slice: EndpointSliceInfo; port: number; isIp: boolean }[] = [];
  let candidates = 0;
  // kube-proxy (KEP-1669): with no ready endpoint for the port, serving terminating ones
  // still take new connections rather than dropping them.
  let hasReady = false;
  for (const slice of sliceIndex.get(m.key) ?? []) {
    const slicePort = slice.ports.find((p) => p.name === portName);
    if (slicePort === undefined) continue;
    const isIp = slice.addressType === "IPv4" || slice.addressType === "IPv6";
    slices.push({ slice, port: slicePort.port, isIp });
    for (const ep of slice.endpoints) {
      // Kubernetes: addresses are fungible and consumers may use only the first.
      const host = ep.addresses[0];
      if (host === undefined || host === "") continue;
      candidates++;
      if (isIp && isReady(ep)) hasReady = true;
    }
  }
  if (candidates === 0) {
    plan.warn(`Service ${m.key} has no endpoints for port "${portName}"`);
    return;
  }
  const via = { service: m, isNodePort: false };
  let fallback = 0;
  for (const { slice, port, isIp } of slices) {
    for (const ep of slice.endpoints) {
      const host = ep.addresses[0];
      if (host === undefined || host === "") continue;
      const address = formatHostPort(host, port);
      const who = {
        address,
        service: m.key,
        ...(ep.nodeName === undefined ? {} : { node: ep.nodeName }),
        ...(ep.podName === undefined ? {} : { pod: ep.podName }),
      };
      if (!isIp) {
        plan.exclude({
          ...who,
          reason: "unsupported-address-type",
          detail: `address type ${slice.addressType} is not supported`,
        });
      } else if (ep.terminating === true) {
        if (!hasReady && isServingTerminating(ep)) {
          fallback++;
          plan.include({ ...who, host, port, weight, terminating: true }, via);
          continue;
        }
        // New connections must not go to a pod on its way out; the pool drains the old ones.
        plan.exclude({
          ...who,
          reason: "terminating",
          detail: ep.serving === false
            ? "endpoint is terminating"
            : "endpoint is terminating, still serving",
        });
      } else if (ep.ready === false) {
        plan.exclude({ ...who, reason: "not-ready", detail: "endpoint is not ready" });
      } else {
        plan.include({ ...who, host, port, weight }, via);
      }
    }
  }
  if (fallback > 0) {
    plan.warn(
      `Service ${m.key} has no ready endpoint for port "${portName}"; ${fallback} terminating ` +
        `endpoint(s) that still serve take new connections, as kube-proxy falls back`,
    );
  }
}
