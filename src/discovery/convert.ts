/**
 * Pure converters from Kubernetes API objects (plain JSON as the API or a manifest gives
 * them) to the inventory types resolution reads.
 *
 * Inputs are read defensively: a missing or mistyped optional field takes the API's
 * default, so a half-written manifest or an object from an older API version never throws.
 * Only a missing `metadata.name` does, since the object could not be keyed.
 *
 * @module
 */
import type {
  EndpointInfo,
  EndpointSliceInfo,
  NodeAddressInfo,
  NodeInfo,
  ServiceInfo,
  ServicePortInfo,
} from "../core/inventory.ts";

/** Options of the converters. */
export interface ConvertOptions {
  /**
   * Namespace of namespaced objects whose `metadata.namespace` is empty, as kubectl does
   * for manifests.
   * @default {"default"}
   */
  readonly defaultNamespace?: string;
}

/** Namespace of objects that do not name one. */
export const DEFAULT_NAMESPACE = "default";

/** Label of an EndpointSlice naming its Service. */
const LABEL_SERVICE_NAME = "kubernetes.io/service-name";
/** v1beta1 EndpointSlice topology key naming an endpoint's node. */
const TOPOLOGY_HOSTNAME = "kubernetes.io/hostname";

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function text(value: unknown): string | undefined {
  return typeof value === "string" ? value : undefined;
}

function integer(value: unknown): number | undefined {
  return typeof value === "number" && Number.isInteger(value) ? value : undefined;
}

function bool(value: unknown): boolean | undefined {
  return typeof value === "boolean" ? value : undefined;
}

function list(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

/**
 * A string map. Numbers and booleans are kept as text, because an unquoted `true` in a
 * hand-written manifest is what its author meant as `"true"`.
 */
function stringMap(value: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (!isObject(value)) return out;
  for (const [key, v] of Object.entries(value)) {
    if (typeof v === "string") out[key] = v;
    else if (typeof v === "number" || typeof v === "boolean") out[key] = String(v);
  }
  return out;
}

interface Meta {
  /** The object itself, known to be one. */
  readonly fields: Record<string, unknown>;
  readonly name: string;
  readonly namespace: string;
  readonly labels: Record<string, string>;
  readonly annotations: Record<string, string>;
}

function readMeta(kind: string, object: unknown, options: ConvertOptions): Meta {
  if (!isObject(object)) {
    throw new TypeError(`Cannot convert ${kind}: expected an object, got ${describe(object)}`);
  }
  const meta = isObject(object.metadata) ? object.metadata : {};
  const name = text(meta.name);
  if (name === undefined || name === "") {
    throw new TypeError(`Cannot convert ${kind}: metadata.name is missing`);
  }
  return {
    fields: object,
    name,
    namespace: text(meta.namespace) || (options.defaultNamespace ?? DEFAULT_NAMESPACE),
    labels: stringMap(meta.labels),
    annotations: stringMap(meta.annotations),
  };
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return typeof value;
}

/**
 * Converts a core/v1 Service.
 * @throws {TypeError} when `object` is not an object or has no `metadata.name`
 */
export function serviceFromObject(object: unknown, options: ConvertOptions = {}): ServiceInfo {
  const meta = readMeta("Service", object, options);
  const { fields } = meta;
  const spec: Record<string, unknown> = isObject(fields.spec) ? fields.spec : {};
  const clusterIPs = list(spec.clusterIPs).filter((ip): ip is string =>
    typeof ip === "string" && ip !== ""
  );
  const clusterIP = text(spec.clusterIP);
  if (clusterIPs.length === 0 && clusterIP) clusterIPs.push(clusterIP);
  const ports: ServicePortInfo[] = [];
  for (const p of list(spec.ports)) {
    if (!isObject(p)) continue;
    const port = integer(p.port);
    if (port === undefined) continue;
    const nodePort = integer(p.nodePort);
    const targetPort = integer(p.targetPort) ?? text(p.targetPort);
    ports.push({
      name: text(p.name) ?? "",
      protocol: text(p.protocol) || "TCP",
      port,
      ...(nodePort === undefined || nodePort === 0 ? {} : { nodePort }),
      ...(targetPort === undefined ? {} : { targetPort }),
    });
  }
  const externalTrafficPolicy = text(spec.externalTrafficPolicy);
  const healthCheckNodePort = integer(spec.healthCheckNodePort);
  return {
    namespace: meta.namespace,
    name: meta.name,
    type: text(spec.type) || "ClusterIP",
    labels: meta.labels,
    annotations: meta.annotations,
    clusterIPs,
    ...(externalTrafficPolicy ? { externalTrafficPolicy } : {}),
    ...(healthCheckNodePort ? { healthCheckNodePort } : {}),
    ports,
  };
}

/**
 * Converts a core/v1 Node. A node without a `Ready` condition (or without `status`) has no
 * `ready`; a Ready condition without a status counts as `Unknown`.
 * @throws {TypeError} when `object` is not an object or has no `metadata.name`
 */
export function nodeFromObject(object: unknown): NodeInfo {
  const meta = readMeta("Node", object, {});
  const { fields } = meta;
  const spec: Record<string, unknown> = isObject(fields.spec) ? fields.spec : {};
  const status: Record<string, unknown> = isObject(fields.status) ? fields.status : {};
  let ready: NodeInfo["ready"];
  for (const c of list(status.conditions)) {
    if (isObject(c) && c.type === "Ready") {
      ready = c.status === "True" ? "True" : c.status === "False" ? "False" : "Unknown";
      break;
    }
  }
  const addresses: NodeAddressInfo[] = [];
  for (const a of list(status.addresses)) {
    if (!isObject(a)) continue;
    const type = text(a.type);
    const address = text(a.address);
    if (type && address) addresses.push({ type, address });
  }
  return {
    name: meta.name,
    labels: meta.labels,
    ...(ready === undefined ? {} : { ready }),
    unschedulable: spec.unschedulable === true,
    addresses,
  };
}

function podName(ref: unknown): string | undefined {
  if (!isObject(ref)) return undefined;
  const kind = text(ref.kind);
  if (kind !== undefined && kind !== "Pod") return undefined;
  return text(ref.name) || undefined;
}

function readPorts(value: unknown): EndpointSliceInfo["ports"] {
  const ports: { name: string; port: number; protocol: string }[] = [];
  for (const p of list(value)) {
    if (!isObject(p)) continue;
    const port = integer(p.port);
    // A slice port without a number means "all ports": nothing a TCP backend can use.
    if (port === undefined) continue;
    ports.push({ name: text(p.name) ?? "", port, protocol: text(p.protocol) || "TCP" });
  }
  return ports;
}

function addressTypeOf(ip: string): string {
  return ip.includes(":") ? "IPv6" : "IPv4";
}

/**
 * Converts a discovery.k8s.io EndpointSlice, v1 or v1beta1. The node of an endpoint is
 * `nodeName`, or for v1beta1 slices without it, `topology["kubernetes.io/hostname"]`.
 * Conditions keep the API's meaning: an absent `ready` means ready.
 * @throws {TypeError} when `object` is not an object or has no `metadata.name`
 */
export function endpointSliceFromObject(
  object: unknown,
  options: ConvertOptions = {},
): EndpointSliceInfo {
  const meta = readMeta("EndpointSlice", object, options);
  const { fields } = meta;
  const endpoints: EndpointInfo[] = [];
  for (const e of list(fields.endpoints)) {
    if (!isObject(e)) continue;
    const addresses = list(e.addresses).filter((a): a is string =>
      typeof a === "string" && a !== ""
    );
    const conditions = isObject(e.conditions) ? e.conditions : {};
    const ready = bool(conditions.ready);
    const serving = bool(conditions.serving);
    const terminating = bool(conditions.terminating);
    const topology = stringMap(e.topology);
    const nodeName = text(e.nodeName) || topology[TOPOLOGY_HOSTNAME];
    const pod = podName(e.targetRef);
    endpoints.push({
      addresses,
      ...(ready === undefined ? {} : { ready }),
      ...(serving === undefined ? {} : { serving }),
      ...(terminating === undefined ? {} : { terminating }),
      ...(nodeName ? { nodeName } : {}),
      ...(pod === undefined ? {} : { podName: pod }),
    });
  }
  const firstAddress = endpoints.find((e) => e.addresses[0] !== undefined)?.addresses[0];
  return {
    namespace: meta.namespace,
    name: meta.name,
    serviceName: meta.labels[LABEL_SERVICE_NAME] ?? "",
    addressType: text(fields.addressType) ||
      (firstAddress === undefined ? "IPv4" : addressTypeOf(firstAddress)),
    ports: readPorts(fields.ports),
    endpoints,
  };
}

/**
 * Converts a core/v1 Endpoints object to synthetic EndpointSlices, for clusters that serve
 * no EndpointSlice API. `notReadyAddresses` become endpoints with `ready: false`; core/v1
 * has no terminating state.
 *
 * Usually one slice per object, named like it. A subset is a set of addresses sharing one
 * port list, and a slice has a single port list and address family, so an object with
 * several subsets, or with IPv4 and IPv6 addresses, gives one slice per subset and family,
 * named `NAME-INDEX`. The slices' `serviceName` is the object's name, as Kubernetes names
 * Endpoints after their Service.
 *
 * An inventory filled from these slices can set `hasEndpointSlices: true`: resolution then
 * treats them like real slices.
 * @throws {TypeError} when `object` is not an object or has no `metadata.name`
 */
export function endpointSlicesFromEndpoints(
  object: unknown,
  options: ConvertOptions = {},
): EndpointSliceInfo[] {
  const meta = readMeta("Endpoints", object, options);
  const { fields } = meta;
  const groups: {
    addressType: string;
    ports: EndpointSliceInfo["ports"];
    endpoints: EndpointInfo[];
  }[] = [];
  for (const subset of list(fields.subsets)) {
    if (!isObject(subset)) continue;
    const ports = readPorts(subset.ports);
    const byFamily = new Map<string, EndpointInfo[]>();
    const add = (value: unknown, ready: boolean) => {
      for (const a of list(value)) {
        if (!isObject(a)) continue;
        const ip = text(a.ip);
        if (!ip) continue;
        const nodeName = text(a.nodeName);
        const pod = podName(a.targetRef);
        const family = addressTypeOf(ip);
        let endpoints = byFamily.get(family);
        if (endpoints === undefined) byFamily.set(family, endpoints = []);
        endpoints.push({
          addresses: [ip],
          ready,
          ...(nodeName ? { nodeName } : {}),
          ...(pod === undefined ? {} : { podName: pod }),
        });
      }
    };
    add(subset.addresses, true);
    add(subset.notReadyAddresses, false);
    for (const family of [...byFamily.keys()].sort()) {
      groups.push({ addressType: family, ports, endpoints: byFamily.get(family) ?? [] });
    }
  }
  return groups.map((g, i) => ({
    namespace: meta.namespace,
    name: groups.length === 1 ? meta.name : `${meta.name}-${i}`,
    serviceName: meta.name,
    addressType: g.addressType,
    ports: g.ports,
    endpoints: g.endpoints,
  }));
}

/** A Kubernetes object the inventory uses, converted, with its inventory key. */
export type ConvertedObject =
  | { readonly kind: "Service"; readonly key: string; readonly service: ServiceInfo }
  | { readonly kind: "Node"; readonly key: string; readonly node: NodeInfo }
  | { readonly kind: "EndpointSlice"; readonly key: string; readonly slice: EndpointSliceInfo }
  | {
    readonly kind: "Endpoints";
    /** `namespace/name` of the Endpoints object (and of its Service). */
    readonly key: string;
    readonly slices: readonly EndpointSliceInfo[];
  };

const CORE_KINDS = new Set(["Service", "Node", "Endpoints"]);
const SLICE_API_VERSIONS = new Set(["discovery.k8s.io/v1", "discovery.k8s.io/v1beta1"]);

/**
 * Converts any object by its `kind` and `apiVersion`: core/v1 Service, Node and Endpoints,
 * discovery.k8s.io/v1 and v1beta1 EndpointSlice. An object of another kind or API group
 * (e.g. a Knative `serving.knative.dev/v1` Service) gives `undefined`. A missing
 * `apiVersion` is taken as the kind's own, which hand-written fixtures often omit.
 * @throws {TypeError} when the object is of a known kind but cannot be keyed
 */
export function convertObject(
  object: unknown,
  options: ConvertOptions = {},
): ConvertedObject | undefined {
  if (!isObject(object)) return undefined;
  const kind = text(object.kind);
  const apiVersion = text(object.apiVersion);
  if (kind === undefined) return undefined;
  if (CORE_KINDS.has(kind) && apiVersion !== undefined && apiVersion !== "v1") return undefined;
  if (kind === "EndpointSlice" && apiVersion !== undefined && !SLICE_API_VERSIONS.has(apiVersion)) {
    return undefined;
  }
  switch (kind) {
    case "Service": {
      const service = serviceFromObject(object, options);
      return { kind, key: `${service.namespace}/${service.name}`, service };
    }
    case "Node": {
      const node = nodeFromObject(object);
      return { kind, key: node.name, node };
    }
    case "EndpointSlice": {
      const slice = endpointSliceFromObject(object, options);
      return { kind, key: `${slice.namespace}/${slice.name}`, slice };
    }
    case "Endpoints": {
      const slices = endpointSlicesFromEndpoints(object, options);
      const meta = readMeta(kind, object, options);
      return { kind, key: `${meta.namespace}/${meta.name}`, slices };
    }
    default:
      return undefined;
  }
}
