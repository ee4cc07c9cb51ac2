/**
 * Which Services feed a listener's pool: opted in by annotation, in an allowed namespace,
 * bound to the pool (by port name, or by naming the pool in
 * `nautiluslb.cloudresty.io/configurations` under `binding: explicit`), matching `service` and
 * `serviceSelector`, with a port of the listener's port name and transport (UDP for `protocol: udp`
 * listeners, TCP for the others). Explains, as warnings and
 * exclusions of the plan, a candidate left out (`namespace-not-allowed`,
 * `not-bound-to-listener`), a pool that no Service feeds, and several Services merged into
 * one pool.
 *
 * @module
 */
import type { Inventory, ServiceInfo, ServicePortInfo } from "../core/inventory.ts";
import type { ExcludedBackend } from "../core/plan.ts";
import type { PoolSpec } from "../core/pool_spec.ts";
import {
  ANNOTATION_CONFIGURATIONS,
  ANNOTATION_ENABLED,
  parseConfigurations,
} from "./annotations.ts";
import type { PlanBuilder } from "./_plan_builder.ts";

/** Services a warning names before it says "and N more". */
const MAX_NAMES_IN_WARNING = 10;

/** One Service that passed the filters, with the port the listener wants. */
export interface MatchedService {
  /** `namespace/name`. */
  readonly key: string;
  readonly service: ServiceInfo;
  readonly port: ServicePortInfo;
}

/**
 * The Services that feed the pool, sorted by key. Warns on `plan` when none does (unless
 * `spec.service` names one, which gets its own explanation) and when several are merged.
 */
export function matchServices(
  inventory: Inventory,
  spec: PoolSpec,
  portName: string,
  plan: PlanBuilder,
): MatchedService[] {
  const matched = spec.service === undefined
    ? matchAll(inventory, spec, portName, plan)
    : matchNamed(inventory, spec, spec.service, portName, plan);
  if (matched.length === 0) {
    // A candidate left out for its protocol, namespace or binding is explained already.
    const explained = plan.excluded.some((e) => EXPLAINING.has(e.reason));
    if (spec.service === undefined && !explained) {
      const where = spec.namespaces === undefined
        ? "any namespace"
        : spec.namespaces.length === 1
        ? `namespace "${spec.namespaces[0]}"`
        : `namespaces ${spec.namespaces.map((n) => `"${n}"`).join(", ")}`;
      plan.warn(
        `No annotated Service in ${where} has a port named "${portName}"` +
          unannotatedHint(inventory, spec, portName),
      );
    }
  } else if (matched.length > 1) {
    plan.warn(
      `Services ${listNames(matched.map((m) => m.key))} all have a port named "${portName}" ` +
        `and are merged into one pool; set "service" or "serviceSelector" to narrow it`,
    );
  }
  return matched;
}

/** The Service `spec.service` names, or none with the reason it does not feed the pool. */
function matchNamed(
  inventory: Inventory,
  spec: PoolSpec,
  key: string,
  portName: string,
  plan: PlanBuilder,
): MatchedService[] {
  const service = inventory.services.get(key);
  const named = `Service ${key} named by "service"`;
  if (service === undefined) {
    plan.warn(`${named} is not in the inventory`);
  } else if (!isInNamespaces(service, spec)) {
    plan.exclude(namespaceNotAllowed(key, service, spec));
  } else if (!isEnabled(service)) {
    plan.warn(`${named} lacks annotation ${ANNOTATION_ENABLED}: "true"`);
  } else if (!isBound(service, spec)) {
    plan.exclude(notBound(key, service, spec));
  } else if (!matchesSelector(service, spec.serviceSelector)) {
    plan.warn(`${named} does not match "serviceSelector"`);
  } else {
    const port = findPort(service, portName);
    if (port === undefined) {
      plan.exclude(missingPort(key, service, portName));
    } else if (!isTransportOf(port, spec)) {
      plan.exclude(unsupportedProtocol(key, service, port, spec));
    } else {
      return [{ key, service, port }];
    }
  }
  return [];
}

/** Every Service in scope with the port, sorted by key; ports of another transport are excluded. */
function matchAll(
  inventory: Inventory,
  spec: PoolSpec,
  portName: string,
  plan: PlanBuilder,
): MatchedService[] {
  const matched: MatchedService[] = [];
  for (const [key, service] of inventory.services) {
    if (!isEnabled(service) || !matchesSelector(service, spec.serviceSelector)) continue;
    const port = findPort(service, portName);
    const isNamingPool = spec.binding === "explicit" && isBound(service, spec);
    if (port === undefined) {
      // Under explicit binding a Service that names the pool but lacks the port is a mistake.
      if (isNamingPool && isInNamespaces(service, spec)) {
        plan.exclude(missingPort(key, service, portName));
      }
      continue;
    }
    if (!isInNamespaces(service, spec)) {
      plan.exclude(namespaceNotAllowed(key, service, spec));
      continue;
    }
    if (!isBound(service, spec)) {
      plan.exclude(notBound(key, service, spec));
      continue;
    }
    if (!isTransportOf(port, spec)) {
      plan.exclude(unsupportedProtocol(key, service, port, spec));
      continue;
    }
    matched.push({ key, service, port });
  }
  return matched.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/** Exclusion reasons that explain why a pool has no Service, so no warning repeats them. */
const EXPLAINING: ReadonlySet<string> = new Set([
  "unsupported-protocol",
  "namespace-not-allowed",
  "not-bound-to-listener",
]);

function isInNamespaces(service: ServiceInfo, spec: PoolSpec): boolean {
  return spec.namespaces === undefined || spec.namespaces.includes(service.namespace);
}

/** `portName` binding: always; `explicit`: the configurations annotation names the pool. */
function isBound(service: ServiceInfo, spec: PoolSpec): boolean {
  if ((spec.binding ?? "portName") === "portName") return true;
  return parseConfigurations(service.annotations[ANNOTATION_CONFIGURATIONS]).includes(spec.name);
}

function namespaceNotAllowed(key: string, service: ServiceInfo, spec: PoolSpec): ExcludedBackend {
  return {
    service: key,
    reason: "namespace-not-allowed",
    detail: `namespace "${service.namespace}" is not in namespaces ${
      (spec.namespaces ?? []).map((n) => `"${n}"`).join(", ")
    }`,
  };
}

function notBound(key: string, service: ServiceInfo, spec: PoolSpec): ExcludedBackend {
  const text = service.annotations[ANNOTATION_CONFIGURATIONS];
  return {
    service: key,
    reason: "not-bound-to-listener",
    detail: text === undefined
      ? `binding is explicit and annotation ${ANNOTATION_CONFIGURATIONS} is missing`
      : `binding is explicit and annotation ${ANNOTATION_CONFIGURATIONS} ("${text}") does not name "${spec.name}"`,
  };
}

function missingPort(key: string, service: ServiceInfo, portName: string): ExcludedBackend {
  const names = service.ports.map((p) => p.name === "" ? "(unnamed)" : `"${p.name}"`);
  return {
    service: key,
    reason: "port-name-mismatch",
    detail: `no port named "${portName}"; ports are ${names.join(", ") || "none"}`,
  };
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

/** The Service port protocol a listener's pool takes: `UDP` for `udp`, `TCP` otherwise. */
export function transportOf(spec: PoolSpec): "TCP" | "UDP" {
  return spec.protocol === "udp" ? "UDP" : "TCP";
}

function isTransportOf(port: ServicePortInfo, spec: PoolSpec): boolean {
  return protocolOf(port) === transportOf(spec);
}

function protocolOf(port: ServicePortInfo): string {
  return port.protocol === "" ? "TCP" : port.protocol.toUpperCase();
}

/**
 * The TCP port of a Service with the same number as `port` (`dns-tcp` beside `dns`), if any:
 * what a UDP pool's active health check connects to.
 */
export function tcpTwinOf(
  service: ServiceInfo,
  port: ServicePortInfo,
): ServicePortInfo | undefined {
  return service.ports.find((p) => p !== port && p.port === port.port && protocolOf(p) === "TCP");
}

/**
 * A port of another transport than the listener's: named, with a port of the same number in
 * the listener's transport when the Service has one.
 */
function unsupportedProtocol(
  key: string,
  service: ServiceInfo,
  port: ServicePortInfo,
  spec: PoolSpec,
): ExcludedBackend {
  const want = transportOf(spec);
  const twin = service.ports.find((p) => p.port === port.port && protocolOf(p) === want);
  const hint = twin === undefined
    ? ""
    : `; port ${twin.name === "" ? "(unnamed)" : `"${twin.name}"`} is ${want} on the same number`;
  const listener = spec.protocol ?? "tcp";
  return {
    service: key,
    reason: "unsupported-protocol",
    detail: `port "${port.name}" is ${
      protocolOf(port)
    }; a ${listener} listener takes ${want} ports${hint}`,
  };
}

/**
 * When no annotated Service has the port: the Services in scope that have it but lack the
 * opt-in annotation, as a hint to append to the warning (`""` when none).
 */
function unannotatedHint(inventory: Inventory, spec: PoolSpec, portName: string): string {
  const keys: string[] = [];
  for (const [key, service] of inventory.services) {
    if (!isInNamespaces(service, spec)) continue;
    if (isEnabled(service) || !matchesSelector(service, spec.serviceSelector)) continue;
    if (findPort(service, portName) !== undefined) keys.push(key);
  }
  if (keys.length === 0) return "";
  keys.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const what = keys.length === 1 ? "Service" : "Services";
  const verb = keys.length === 1 ? "has it but lacks" : "have it but lack";
  return `; ${what} ${listNames(keys)} ${verb} annotation ${ANNOTATION_ENABLED}: "true"`;
}

/** `a, b, c`, or the first ten and `and N more`. */
function listNames(keys: readonly string[]): string {
  const shown = keys.slice(0, MAX_NAMES_IN_WARNING).join(", ");
  const more = keys.length - MAX_NAMES_IN_WARNING;
  return more > 0 ? `${shown} and ${more} more` : shown;
}
