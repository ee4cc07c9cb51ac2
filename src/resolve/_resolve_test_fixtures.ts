/**
 * Fixtures of the resolve table tests: inventory builders, expected backends, and the runner
 * that turns a table of cases into tests.
 *
 * @module
 */
import assert from "node:assert/strict";
import type {
  EndpointInfo,
  EndpointSliceInfo,
  Inventory,
  NodeInfo,
  ServiceInfo,
  ServicePortInfo,
} from "../core/inventory.ts";
import type { ExcludedBackend, PlannedBackend } from "../core/plan.ts";
import type { HealthCheckSpec, PoolSpec } from "../core/pool_spec.ts";
import { resolvePool } from "./mod.ts";

/** A listener's health check as config defaults it. */
export const CHECK: HealthCheckSpec = {
  enabled: true,
  intervalMs: 2000,
  timeoutMs: 1000,
  rise: 2,
  fall: 3,
  maxEjectionPercent: 50,
};

export const ENABLED = { "nautiluslb.cloudresty.io/enabled": "true" };
export const EXCLUDE_LABEL = "node.kubernetes.io/exclude-from-external-load-balancers";

export function service(
  key: string,
  overrides: Partial<Omit<ServiceInfo, "namespace" | "name">> = {},
): ServiceInfo {
  const [namespace = "", name = ""] = key.split("/");
  return {
    namespace,
    name,
    type: "NodePort",
    labels: {},
    annotations: ENABLED,
    clusterIPs: ["10.96.0.10"],
    ports: [{ name: "http", protocol: "TCP", port: 80, nodePort: 30080, targetPort: 8080 }],
    ...overrides,
  };
}

export function port(name: string, overrides: Partial<ServicePortInfo> = {}): ServicePortInfo {
  return { name, protocol: "TCP", port: 80, ...overrides };
}

export function node(name: string, ip: string, overrides: Partial<NodeInfo> = {}): NodeInfo {
  return {
    name,
    labels: {},
    ready: "True",
    unschedulable: false,
    addresses: [{ type: "InternalIP", address: ip }],
    ...overrides,
  };
}

export function slice(
  serviceKey: string,
  name: string,
  endpoints: EndpointInfo[],
  overrides: Partial<EndpointSliceInfo> = {},
): EndpointSliceInfo {
  const [namespace = "", serviceName = ""] = serviceKey.split("/");
  return {
    namespace,
    name,
    serviceName,
    addressType: "IPv4",
    ports: [{ name: "http", port: 8080, protocol: "TCP" }],
    endpoints,
    ...overrides,
  };
}

export function inventory(parts: {
  services?: ServiceInfo[];
  nodes?: NodeInfo[];
  slices?: EndpointSliceInfo[];
  hasEndpointSlices?: boolean;
}): Inventory {
  return {
    services: new Map((parts.services ?? []).map((s) => [`${s.namespace}/${s.name}`, s])),
    nodes: new Map((parts.nodes ?? []).map((n) => [n.name, n])),
    endpointSlices: new Map((parts.slices ?? []).map((s) => [`${s.namespace}/${s.name}`, s])),
    hasEndpointSlices: parts.hasEndpointSlices ?? true,
  };
}

export function spec(overrides: Partial<PoolSpec> = {}): PoolSpec {
  return {
    name: "web",
    listenerAddress: ":80",
    backendPortName: "http",
    backendMode: "auto",
    nodeAddressTypes: ["InternalIP", "ExternalIP"],
    excludeCordonedNodes: false,
    backends: [],
    ...overrides,
  };
}

/** A node-port backend of `svc` on `nodeName`. */
export function nb(
  host: string,
  nodeName: string,
  svc = "web/app",
  nodePort = 30080,
  weight = 1,
): PlannedBackend {
  const address = host.includes(":") ? `[${host}]:${nodePort}` : `${host}:${nodePort}`;
  return { address, host, port: nodePort, weight, service: svc, node: nodeName };
}

/** An endpoint backend. */
export function eb(
  host: string,
  pod: string,
  nodeName = "n1",
  svc = "web/app",
  p = 8080,
): PlannedBackend {
  const address = host.includes(":") ? `[${host}]:${p}` : `${host}:${p}`;
  return { address, host, port: p, weight: 1, service: svc, node: nodeName, pod };
}

export const TWO_NODES = [node("n1", "10.0.0.1"), node("n2", "10.0.0.2")];

export interface Case {
  readonly name: string;
  readonly inventory: Inventory;
  readonly spec?: Partial<PoolSpec>;
  readonly backends: PlannedBackend[];
  readonly excluded?: ExcludedBackend[];
  readonly warnings?: string[];
  readonly inputWarnings?: string[];
}

/** Registers one test per case: the plan of `spec(c.spec)` over `c.inventory` equals the case's. */
export function testCases(cases: readonly Case[]): void {
  for (const c of cases) {
    Deno.test(`resolvePool() ${c.name}`, () => {
      const plan = resolvePool(c.inventory, spec(c.spec));
      assert.deepEqual(plan, {
        name: "web",
        listenerAddress: ":80",
        backends: c.backends,
        excluded: c.excluded ?? [],
        warnings: c.warnings ?? [],
        inputWarnings: c.inputWarnings ?? [],
        healthTargets: [],
      });
    });
  }
}
