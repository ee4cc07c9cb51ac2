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
import type { PoolSpec } from "../core/pool_spec.ts";
import { indexEndpointSlices, resolvePool, resolvePools } from "./mod.ts";

const ENABLED = { "nautiluslb.cloudresty.io/enabled": "true" };
const EXCLUDE_LABEL = "node.kubernetes.io/exclude-from-external-load-balancers";

function service(
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

function port(name: string, overrides: Partial<ServicePortInfo> = {}): ServicePortInfo {
  return { name, protocol: "TCP", port: 80, ...overrides };
}

function node(name: string, ip: string, overrides: Partial<NodeInfo> = {}): NodeInfo {
  return {
    name,
    labels: {},
    ready: "True",
    unschedulable: false,
    addresses: [{ type: "InternalIP", address: ip }],
    ...overrides,
  };
}

function slice(
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

function inventory(parts: {
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

function spec(overrides: Partial<PoolSpec> = {}): PoolSpec {
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
function nb(
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
function eb(host: string, pod: string, nodeName = "n1", svc = "web/app", p = 8080): PlannedBackend {
  const address = host.includes(":") ? `[${host}]:${p}` : `${host}:${p}`;
  return { address, host, port: p, weight: 1, service: svc, node: nodeName, pod };
}

const TWO_NODES = [node("n1", "10.0.0.1"), node("n2", "10.0.0.2")];

interface Case {
  readonly name: string;
  readonly inventory: Inventory;
  readonly spec?: Partial<PoolSpec>;
  readonly backends: PlannedBackend[];
  readonly excluded?: ExcludedBackend[];
  readonly warnings?: string[];
  readonly inputWarnings?: string[];
}

const CASES: Case[] = [
  {
    name: "an unknown annotation under our prefix is named, with a suggestion",
    inventory: inventory({
      services: [
        service("web/app", {
          annotations: {
            ...ENABLED,
            "nautiluslb.cloudresty.io/health-check-intervall": "5s",
            "nautiluslb.cloudresty.io/colour": "blue",
            "example.com/other": "ignored",
          },
        }),
      ],
      nodes: [node("n1", "10.0.0.1")],
    }),
    backends: [nb("10.0.0.1", "n1")],
    warnings: [
      "Ignoring unknown annotation nautiluslb.cloudresty.io/health-check-intervall of Service " +
      "web/app: did you mean nautiluslb.cloudresty.io/health-check-interval?",
      "Ignoring unknown annotation nautiluslb.cloudresty.io/colour of Service web/app",
    ],
  },
  // --- selection -----------------------------------------------------------------------
  {
    name: "nodeport: every ready node at the nodePort",
    inventory: inventory({ services: [service("web/app")], nodes: TWO_NODES }),
    backends: [nb("10.0.0.1", "n1"), nb("10.0.0.2", "n2")],
  },
  {
    name: "Services without the enabled annotation are ignored",
    inventory: inventory({
      services: [
        service("web/app"),
        service("web/off", { annotations: { "nautiluslb.cloudresty.io/enabled": "false" } }),
        service("web/none", { annotations: {} }),
      ],
      nodes: [node("n1", "10.0.0.1")],
    }),
    backends: [nb("10.0.0.1", "n1")],
  },
  {
    name: "namespace narrows the Services",
    inventory: inventory({
      services: [
        service("web/app"),
        service("other/app", { ports: [port("http", { nodePort: 31000 })] }),
      ],
      nodes: [node("n1", "10.0.0.1")],
    }),
    spec: { namespaces: ["other"] },
    backends: [nb("10.0.0.1", "n1", "other/app", 31000)],
    excluded: [{
      service: "web/app",
      reason: "namespace-not-allowed",
      detail: 'namespace "web" is not in namespaces "other"',
    }],
  },
  {
    name: "namespaces admit several; a tenant elsewhere is explained, never a backend",
    inventory: inventory({
      services: [
        service("a/app"),
        service("b/app", { ports: [port("http", { nodePort: 31000 })] }),
        service("tenant/app", { ports: [port("http", { nodePort: 31001 })] }),
      ],
      nodes: [node("n1", "10.0.0.1")],
    }),
    spec: { namespaces: ["a", "b"] },
    backends: [nb("10.0.0.1", "n1", "a/app"), nb("10.0.0.1", "n1", "b/app", 31000)].sort((x, y) =>
      x.port - y.port
    ),
    excluded: [{
      service: "tenant/app",
      reason: "namespace-not-allowed",
      detail: 'namespace "tenant" is not in namespaces "a", "b"',
    }],
    warnings: [
      'Services a/app, b/app all have a port named "http" and are merged into one pool; set "service" or "serviceSelector" to narrow it',
    ],
  },
  {
    name: "explicit binding: only Services naming the pool join; others are explained",
    inventory: inventory({
      services: [
        service("web/app", {
          annotations: { ...ENABLED, "nautiluslb.cloudresty.io/configurations": "other, web" },
        }),
        service("web/tenant", { ports: [port("http", { nodePort: 31000 })] }),
        service("web/wrong", {
          annotations: { ...ENABLED, "nautiluslb.cloudresty.io/configurations": "web/route" },
          ports: [port("http", { nodePort: 31001 })],
        }),
        service("web/noport", {
          annotations: { ...ENABLED, "nautiluslb.cloudresty.io/configurations": "web" },
          ports: [port("https", { nodePort: 31002 })],
        }),
      ],
      nodes: [node("n1", "10.0.0.1")],
    }),
    spec: { binding: "explicit" },
    backends: [nb("10.0.0.1", "n1")],
    excluded: [
      {
        service: "web/noport",
        reason: "port-name-mismatch",
        detail: 'no port named "http"; ports are "https"',
      },
      {
        service: "web/tenant",
        reason: "not-bound-to-listener",
        detail:
          "binding is explicit and annotation nautiluslb.cloudresty.io/configurations is missing",
      },
      {
        service: "web/wrong",
        reason: "not-bound-to-listener",
        detail:
          'binding is explicit and annotation nautiluslb.cloudresty.io/configurations ("web/route") does not name "web"',
      },
    ],
  },
  {
    name: "explicit binding: the annotation names pools, not listeners by prefix",
    inventory: inventory({
      services: [
        service("web/app", {
          annotations: { ...ENABLED, "nautiluslb.cloudresty.io/configurations": "web/route,web" },
        }),
      ],
      nodes: [node("n1", "10.0.0.1")],
    }),
    spec: { binding: "explicit" },
    backends: [nb("10.0.0.1", "n1")],
  },
  {
    name: "node filters: control plane skipped on request, nodeSelector explained",
    inventory: inventory({
      services: [service("web/app")],
      nodes: [
        node("cp", "10.0.0.1", { labels: { "node-role.kubernetes.io/control-plane": "" } }),
        node("old", "10.0.0.2", { labels: { "node-role.kubernetes.io/master": "" } }),
        node("w1", "10.0.0.3", { labels: { pool: "edge" } }),
        node("w2", "10.0.0.4", { labels: { pool: "batch" } }),
        node("w3", "10.0.0.5"),
      ],
    }),
    spec: { skipControlPlane: true, nodeSelector: { pool: "edge" } },
    backends: [nb("10.0.0.3", "w1")],
    excluded: [
      {
        address: "10.0.0.1:30080",
        service: "web/app",
        node: "cp",
        reason: "node-control-plane",
        detail: "label node-role.kubernetes.io/control-plane; skipControlPlane is on",
      },
      {
        address: "10.0.0.2:30080",
        service: "web/app",
        node: "old",
        reason: "node-control-plane",
        detail: "label node-role.kubernetes.io/master; skipControlPlane is on",
      },
      {
        address: "10.0.0.4:30080",
        service: "web/app",
        node: "w2",
        reason: "node-not-selected",
        detail: "nodeSelector wants pool=edge, node has pool=batch",
      },
      {
        address: "10.0.0.5:30080",
        service: "web/app",
        node: "w3",
        reason: "node-not-selected",
        detail: "nodeSelector wants pool=edge, node has no such label",
      },
    ],
  },
  {
    name: "control-plane nodes stay by default",
    inventory: inventory({
      services: [service("web/app")],
      nodes: [node("cp", "10.0.0.1", { labels: { "node-role.kubernetes.io/control-plane": "" } })],
    }),
    backends: [nb("10.0.0.1", "cp")],
  },
  {
    name: "annotated Services without the port name are ignored silently",
    inventory: inventory({
      services: [
        service("web/app"),
        service("web/db", { ports: [port("mongodb", { nodePort: 30017 })] }),
      ],
      nodes: [node("n1", "10.0.0.1")],
    }),
    backends: [nb("10.0.0.1", "n1")],
  },
  {
    name: "no matching Service warns",
    inventory: inventory({ services: [service("web/app")], nodes: TWO_NODES }),
    spec: { backendPortName: "amqp", namespaces: ["web"] },
    backends: [],
    warnings: ['No annotated Service in namespace "web" has a port named "amqp"'],
  },
  {
    name: "service narrows to one Service",
    inventory: inventory({
      services: [
        service("web/app"),
        service("web/other", { ports: [port("http", { nodePort: 31000 })] }),
      ],
      nodes: [node("n1", "10.0.0.1")],
    }),
    spec: { service: "web/other" },
    backends: [nb("10.0.0.1", "n1", "web/other", 31000)],
  },
  {
    name: "service naming a Service without the port: port-name-mismatch",
    inventory: inventory({
      services: [service("web/app", { ports: [port("web"), port("", { port: 81 })] })],
      nodes: [node("n1", "10.0.0.1")],
    }),
    spec: { service: "web/app" },
    backends: [],
    excluded: [{
      service: "web/app",
      reason: "port-name-mismatch",
      detail: 'no port named "http"; ports are "web", (unnamed)',
    }],
  },
  {
    name: "a UDP port of that name: unsupported-protocol",
    inventory: inventory({
      services: [service("web/dns", { ports: [port("http", { protocol: "UDP" })] })],
      nodes: [node("n1", "10.0.0.1")],
    }),
    backends: [],
    excluded: [{
      service: "web/dns",
      reason: "unsupported-protocol",
      detail: 'port "http" is UDP; a tcp listener takes TCP ports',
    }],
  },
  {
    name: "kube-dns style UDP and TCP ports of one number: the TCP twin is named",
    inventory: inventory({
      services: [
        service("kube-system/kube-dns", {
          type: "ClusterIP",
          ports: [
            port("dns", { protocol: "UDP", port: 53 }),
            port("dns-tcp", { protocol: "TCP", port: 53 }),
            port("metrics", { protocol: "TCP", port: 9153 }),
          ],
        }),
      ],
    }),
    spec: { backendPortName: "dns", service: "kube-system/kube-dns" },
    backends: [],
    excluded: [{
      service: "kube-system/kube-dns",
      reason: "unsupported-protocol",
      detail:
        'port "dns" is UDP; a tcp listener takes TCP ports; port "dns-tcp" is TCP on the same number',
    }],
  },
  {
    name: "an SCTP port named by a selector: unsupported-protocol",
    inventory: inventory({
      services: [service("tel/sig", { ports: [port("http", { protocol: "SCTP" })] })],
    }),
    backends: [],
    excluded: [{
      service: "tel/sig",
      reason: "unsupported-protocol",
      detail: 'port "http" is SCTP; a tcp listener takes TCP ports',
    }],
  },
  {
    name: "no annotated Service: the Services with the port but no annotation are named",
    inventory: inventory({
      services: [
        service("web/b", { annotations: {} }),
        service("web/a", { annotations: { "nautiluslb.cloudresty.io/enabled": "false" } }),
        service("other/c", { annotations: {} }),
        service("web/d", { annotations: {}, ports: [port("https")] }),
      ],
    }),
    spec: { namespaces: ["web"] },
    backends: [],
    warnings: [
      'No annotated Service in namespace "web" has a port named "http"; Services web/a, web/b ' +
      'have it but lack annotation nautiluslb.cloudresty.io/enabled: "true"',
    ],
  },
  {
    name: "no annotated Service: one unannotated Service with the port",
    inventory: inventory({ services: [service("web/b", { annotations: {} })] }),
    backends: [],
    warnings: [
      'No annotated Service in any namespace has a port named "http"; Service web/b has it ' +
      'but lacks annotation nautiluslb.cloudresty.io/enabled: "true"',
    ],
  },
  {
    name: "service naming an unknown Service warns",
    inventory: inventory({ services: [service("web/app")], nodes: TWO_NODES }),
    spec: { service: "web/nope" },
    backends: [],
    warnings: ['Service web/nope named by "service" is not in the inventory'],
  },
  {
    name: "service naming an unannotated Service warns",
    inventory: inventory({ services: [service("web/app", { annotations: {} })], nodes: TWO_NODES }),
    spec: { service: "web/app" },
    backends: [],
    warnings: [
      'Service web/app named by "service" lacks annotation nautiluslb.cloudresty.io/enabled: "true"',
    ],
  },
  {
    name: "service outside the namespace warns",
    inventory: inventory({ services: [service("web/app")], nodes: TWO_NODES }),
    spec: { service: "web/app", namespaces: ["db"] },
    backends: [],
    excluded: [{
      service: "web/app",
      reason: "namespace-not-allowed",
      detail: 'namespace "web" is not in namespaces "db"',
    }],
  },
  {
    name: "service not matching serviceSelector warns",
    inventory: inventory({ services: [service("web/app")], nodes: TWO_NODES }),
    spec: { service: "web/app", serviceSelector: { tier: "edge" } },
    backends: [],
    warnings: ['Service web/app named by "service" does not match "serviceSelector"'],
  },
  {
    name: "serviceSelector needs every label equal",
    inventory: inventory({
      services: [
        service("web/a", { labels: { tier: "edge", team: "x" } }),
        service("web/b", { labels: { tier: "edge" }, ports: [port("http", { nodePort: 31000 })] }),
        service("web/c", {
          labels: { tier: "core", team: "x" },
          ports: [port("http", { nodePort: 32000 })],
        }),
      ],
      nodes: [node("n1", "10.0.0.1")],
    }),
    spec: { serviceSelector: { tier: "edge", team: "x" } },
    backends: [nb("10.0.0.1", "n1", "web/a")],
  },
  {
    name: "several Services merge, sorted by address, with a warning",
    inventory: inventory({
      services: [
        service("web/b", { ports: [port("http", { nodePort: 30090 })] }),
        service("web/a"),
      ],
      nodes: [node("n1", "10.0.0.1")],
    }),
    backends: [nb("10.0.0.1", "n1", "web/a"), nb("10.0.0.1", "n1", "web/b", 30090)],
    warnings: [
      'Services web/a, web/b all have a port named "http" and are merged into one pool; ' +
      'set "service" or "serviceSelector" to narrow it',
    ],
  },
  {
    name: "duplicate addresses across merged Services: first kept, one warning",
    inventory: inventory({
      services: [service("web/b"), service("web/a")],
      nodes: TWO_NODES,
    }),
    backends: [
      nb("10.0.0.1", "n1", "web/a"),
      nb("10.0.0.2", "n2", "web/a"),
    ],
    warnings: [
      'Services web/a, web/b all have a port named "http" and are merged into one pool; ' +
      'set "service" or "serviceSelector" to narrow it',
      "Service web/b duplicates 2 backends (e.g. 10.0.0.1:30080) of Service web/a; keeping the first",
    ],
  },
  {
    name: "static backends come first and win duplicates",
    inventory: inventory({ services: [service("web/app")], nodes: [node("n1", "10.0.0.1")] }),
    spec: {
      backends: [{ host: "10.0.0.1", port: 30080, weight: 5 }, {
        host: "fd00::9",
        port: 443,
        weight: 1,
      }],
    },
    backends: [
      { address: "10.0.0.1:30080", host: "10.0.0.1", port: 30080, weight: 5 },
      { address: "[fd00::9]:443", host: "fd00::9", port: 443, weight: 1 },
    ],
    warnings: [
      "Service web/app duplicates backend 10.0.0.1:30080 of static backends; keeping the first",
    ],
  },
  {
    name: "static-only pool ignores Services",
    inventory: inventory({ services: [service("web/app")], nodes: TWO_NODES }),
    spec: { backendPortName: undefined, backends: [{ host: "db.example", port: 5432, weight: 1 }] },
    backends: [{ address: "db.example:5432", host: "db.example", port: 5432, weight: 1 }],
  },
  // --- nodes ---------------------------------------------------------------------------
  {
    name: "node reasons: not ready, excluded label, no address; cordoned stays by default",
    inventory: inventory({
      services: [service("web/app")],
      nodes: [
        node("n1", "10.0.0.1"),
        node("n2", "10.0.0.2", { ready: "False" }),
        node("n3", "10.0.0.3", { ready: "Unknown" }),
        node("n4", "10.0.0.4", { labels: { [EXCLUDE_LABEL]: "" } }),
        node("n5", "10.0.0.5", { addresses: [{ type: "Hostname", address: "n5" }] }),
        node("n6", "10.0.0.6", { unschedulable: true }),
        node("n7", "10.0.0.7", { ready: "False", addresses: [] }),
      ],
    }),
    backends: [nb("10.0.0.1", "n1"), nb("10.0.0.6", "n6")],
    excluded: [
      {
        service: "web/app",
        node: "n5",
        reason: "no-node-address",
        detail: "no address of type InternalIP, ExternalIP",
      },
      {
        service: "web/app",
        node: "n7",
        reason: "node-not-ready",
        detail: "Ready condition is False",
      },
      {
        address: "10.0.0.2:30080",
        service: "web/app",
        node: "n2",
        reason: "node-not-ready",
        detail: "Ready condition is False",
      },
      {
        address: "10.0.0.3:30080",
        service: "web/app",
        node: "n3",
        reason: "node-not-ready",
        detail: "Ready condition is Unknown",
      },
      {
        address: "10.0.0.4:30080",
        service: "web/app",
        node: "n4",
        reason: "node-excluded",
        detail: `label ${EXCLUDE_LABEL}`,
      },
    ],
  },
  {
    name: "excludeCordonedNodes drops unschedulable nodes",
    inventory: inventory({
      services: [service("web/app")],
      nodes: [node("n1", "10.0.0.1"), node("n2", "10.0.0.2", { unschedulable: true })],
    }),
    spec: { excludeCordonedNodes: true },
    backends: [nb("10.0.0.1", "n1")],
    excluded: [{
      address: "10.0.0.2:30080",
      service: "web/app",
      node: "n2",
      reason: "node-cordoned",
      detail: "node is unschedulable",
    }],
  },
  {
    name: "nodeAddressTypes preference order, IPv6 in brackets",
    inventory: inventory({
      services: [service("web/app")],
      nodes: [
        node("n1", "10.0.0.1", {
          addresses: [
            { type: "InternalIP", address: "10.0.0.1" },
            { type: "ExternalIP", address: "2001:db8::1" },
          ],
        }),
        node("n2", "10.0.0.2"),
      ],
    }),
    spec: { nodeAddressTypes: ["ExternalIP", "InternalIP"] },
    backends: [nb("10.0.0.2", "n2"), nb("2001:db8::1", "n1")],
  },
  {
    name: "sorting compares numbers as numbers",
    inventory: inventory({
      services: [service("web/app")],
      nodes: [node("a", "10.0.0.10"), node("b", "10.0.0.9"), node("c", "9.0.0.1")],
    }),
    backends: [nb("9.0.0.1", "c"), nb("10.0.0.9", "b"), nb("10.0.0.10", "a")],
  },
  {
    name: "a port without nodePort: no-node-port",
    inventory: inventory({
      services: [service("web/app", { type: "ClusterIP", ports: [port("http")] })],
      nodes: TWO_NODES,
    }),
    spec: { backendMode: "nodeport" },
    backends: [],
    excluded: [{
      service: "web/app",
      reason: "no-node-port",
      detail: 'port "http" has no nodePort (Service type ClusterIP)',
    }],
  },
  {
    name: "no nodes warns",
    inventory: inventory({ services: [service("web/app")] }),
    backends: [],
    warnings: ["Service web/app: the inventory has no nodes"],
  },
  // --- externalTrafficPolicy: Local --------------------------------------------------
  {
    name: "eTP Local: only nodes with a ready endpoint",
    inventory: inventory({
      services: [service("web/app", { externalTrafficPolicy: "Local" })],
      nodes: [...TWO_NODES, node("n3", "10.0.0.3")],
      slices: [
        slice("web/app", "app-1", [
          { addresses: ["10.1.0.1"], nodeName: "n1" },
          { addresses: ["10.1.0.2"], nodeName: "n2", ready: false },
        ]),
        slice("web/app", "app-2", [
          { addresses: ["10.1.0.3"], nodeName: "n3", ready: false, terminating: true },
        ]),
        slice("web/other", "other-1", [{ addresses: ["10.1.0.4"], nodeName: "n2" }]),
      ],
    }),
    backends: [nb("10.0.0.1", "n1")],
    excluded: [
      {
        address: "10.0.0.2:30080",
        service: "web/app",
        node: "n2",
        reason: "no-local-endpoint",
        detail: "externalTrafficPolicy is Local and no ready endpoint runs on this node",
      },
      {
        address: "10.0.0.3:30080",
        service: "web/app",
        node: "n3",
        reason: "no-local-endpoint",
        detail: "externalTrafficPolicy is Local and the endpoints on this node are terminating " +
          "while other nodes have ready ones",
      },
    ],
  },
  {
    name: "eTP Local, no ready endpoint anywhere: nodes with serving terminating ones stay",
    inventory: inventory({
      services: [service("web/app", { externalTrafficPolicy: "Local" })],
      nodes: [...TWO_NODES, node("n3", "10.0.0.3")],
      slices: [
        slice("web/app", "app-1", [
          // Serving absent counts as serving, as kube-proxy reads it.
          { addresses: ["10.1.0.1"], nodeName: "n1", ready: false, terminating: true },
          {
            addresses: ["10.1.0.2"],
            nodeName: "n2",
            ready: false,
            serving: false,
            terminating: true,
          },
          {
            addresses: ["10.1.0.3"],
            nodeName: "n3",
            ready: false,
            serving: true,
            terminating: true,
          },
        ]),
      ],
    }),
    backends: [
      { ...nb("10.0.0.1", "n1"), terminating: true },
      { ...nb("10.0.0.3", "n3"), terminating: true },
    ],
    excluded: [{
      address: "10.0.0.2:30080",
      service: "web/app",
      node: "n2",
      reason: "no-local-endpoint",
      detail: "externalTrafficPolicy is Local and no ready endpoint runs on this node",
    }],
    warnings: [
      "Service web/app has no ready endpoint; 2 node(s) whose endpoints are terminating but " +
      "still serving take new connections, as kube-proxy falls back",
    ],
  },
  {
    name: "eTP Local without any endpoint data: endpoints-unavailable, an input warning",
    inventory: inventory({
      services: [service("web/app", { externalTrafficPolicy: "Local" })],
      nodes: TWO_NODES,
      slices: [slice("web/other", "other-1", [{ addresses: ["10.1.0.4"], nodeName: "n2" }])],
    }),
    backends: [],
    excluded: ["n1", "n2"].map((n, i) => ({
      address: `10.0.0.${i + 1}:30080`,
      service: "web/app",
      node: n,
      reason: "endpoints-unavailable" as const,
      detail: "externalTrafficPolicy is Local and the input has no endpoint data",
    })),
    inputWarnings: [
      "Service web/app has externalTrafficPolicy Local but the input has no EndpointSlice or " +
      "Endpoints for it, so the nodes running its pods are unknown",
    ],
  },
  {
    name: "eTP Local with an empty slice (no pods): no-local-endpoint, no input warning",
    inventory: inventory({
      services: [service("web/app", { externalTrafficPolicy: "Local" })],
      nodes: [node("n1", "10.0.0.1")],
      slices: [slice("web/app", "app-1", [])],
    }),
    backends: [],
    excluded: [{
      address: "10.0.0.1:30080",
      service: "web/app",
      node: "n1",
      reason: "no-local-endpoint",
      detail: "externalTrafficPolicy is Local and no ready endpoint runs on this node",
    }],
  },
  {
    name: "a node without status: no Ready condition",
    inventory: inventory({
      services: [service("web/app")],
      nodes: [{ name: "bare", labels: {}, unschedulable: false, addresses: [] }],
    }),
    backends: [],
    excluded: [{
      service: "web/app",
      node: "bare",
      reason: "node-not-ready",
      detail: "no Ready condition",
    }],
  },
  {
    name: "endpoints: no ready endpoint, so serving terminating ones take connections",
    inventory: inventory({
      services: [service("web/app", { clusterIPs: ["None"], type: "ClusterIP" })],
      slices: [
        slice("web/app", "app-1", [
          {
            addresses: ["10.1.0.1"],
            nodeName: "n1",
            podName: "a",
            ready: false,
            terminating: true,
          },
          {
            addresses: ["10.1.0.2"],
            nodeName: "n1",
            podName: "b",
            ready: false,
            serving: false,
            terminating: true,
          },
          { addresses: ["10.1.0.3"], nodeName: "n1", podName: "c", ready: false },
        ]),
      ],
    }),
    backends: [{ ...eb("10.1.0.1", "a"), terminating: true }],
    excluded: [
      {
        address: "10.1.0.2:8080",
        service: "web/app",
        node: "n1",
        pod: "b",
        reason: "terminating",
        detail: "endpoint is terminating",
      },
      {
        address: "10.1.0.3:8080",
        service: "web/app",
        node: "n1",
        pod: "c",
        reason: "not-ready",
        detail: "endpoint is not ready",
      },
    ],
    warnings: [
      'Service web/app has no ready endpoint for port "http"; 1 terminating endpoint(s) that ' +
      "still serve take new connections, as kube-proxy falls back",
    ],
  },
  {
    name: "eTP Local without EndpointSlice API: every eligible node, warning",
    inventory: inventory({
      services: [service("web/app", { externalTrafficPolicy: "Local" })],
      nodes: TWO_NODES,
      hasEndpointSlices: false,
    }),
    backends: [nb("10.0.0.1", "n1"), nb("10.0.0.2", "n2")],
    warnings: [
      "Cannot honour externalTrafficPolicy Local of Service web/app: the cluster serves no " +
      "EndpointSlice API; using every eligible node",
    ],
  },
  {
    name: "eTP Cluster ignores endpoint placement",
    inventory: inventory({
      services: [service("web/app", { externalTrafficPolicy: "Cluster" })],
      nodes: TWO_NODES,
      slices: [slice("web/app", "app-1", [{ addresses: ["10.1.0.1"], nodeName: "n1" }])],
    }),
    backends: [nb("10.0.0.1", "n1"), nb("10.0.0.2", "n2")],
  },
  // --- modes ---------------------------------------------------------------------------
  {
    name: "auto: LoadBalancer is nodeport",
    inventory: inventory({
      services: [service("web/app", { type: "LoadBalancer" })],
      nodes: [node("n1", "10.0.0.1")],
    }),
    backends: [nb("10.0.0.1", "n1")],
  },
  {
    name: "auto: ClusterIP uses every cluster IP at the Service port, not targetPort",
    inventory: inventory({
      services: [service("web/app", {
        type: "ClusterIP",
        clusterIPs: ["10.96.0.10", "fd00:96::10"],
        ports: [port("http", { port: 80, targetPort: 8080 })],
      })],
      nodes: TWO_NODES,
    }),
    backends: [
      { address: "10.96.0.10:80", host: "10.96.0.10", port: 80, weight: 1, service: "web/app" },
      { address: "[fd00:96::10]:80", host: "fd00:96::10", port: 80, weight: 1, service: "web/app" },
    ],
  },
  {
    name: "listener mode clusterip on a NodePort Service",
    inventory: inventory({ services: [service("web/app")], nodes: TWO_NODES }),
    spec: { backendMode: "clusterip" },
    backends: [{
      address: "10.96.0.10:80",
      host: "10.96.0.10",
      port: 80,
      weight: 1,
      service: "web/app",
    }],
  },
  {
    name: "clusterip without cluster IP: no-cluster-ip",
    inventory: inventory({
      services: [
        service("web/a", { type: "ClusterIP", clusterIPs: [] }),
        service("web/b", { type: "ExternalName", clusterIPs: [] }),
      ],
    }),
    backends: [],
    excluded: [
      { service: "web/a", reason: "no-cluster-ip", detail: "Service has no cluster IP" },
      {
        service: "web/b",
        reason: "no-cluster-ip",
        detail: "ExternalName Services have no cluster IP",
      },
    ],
    warnings: [
      'Services web/a, web/b all have a port named "http" and are merged into one pool; ' +
      'set "service" or "serviceSelector" to narrow it',
    ],
  },
  {
    name: "headless: endpoints with every endpoint reason",
    inventory: inventory({
      services: [service("web/app", { type: "ClusterIP", clusterIPs: ["None"] })],
      slices: [
        slice("web/app", "app-b", [
          { addresses: ["10.1.0.10"], nodeName: "n1", podName: "p10" },
          { addresses: ["10.1.0.2"], nodeName: "n2", podName: "p2", ready: false },
          {
            addresses: ["10.1.0.3"],
            nodeName: "n2",
            podName: "p3",
            ready: false,
            serving: true,
            terminating: true,
          },
          {
            addresses: ["10.1.0.4"],
            podName: "p4",
            ready: false,
            serving: false,
            terminating: true,
          },
          { addresses: [], podName: "empty" },
        ]),
        slice("web/app", "app-a", [
          { addresses: ["10.1.0.1"], nodeName: "n1", podName: "p1", ready: true },
        ]),
        slice("web/app", "app-metrics", [{ addresses: ["10.1.0.9"], nodeName: "n1" }], {
          ports: [{ name: "metrics", port: 9090, protocol: "TCP" }],
        }),
      ],
    }),
    backends: [eb("10.1.0.1", "p1"), eb("10.1.0.10", "p10")],
    excluded: [
      {
        address: "10.1.0.2:8080",
        service: "web/app",
        node: "n2",
        pod: "p2",
        reason: "not-ready",
        detail: "endpoint is not ready",
      },
      {
        address: "10.1.0.3:8080",
        service: "web/app",
        node: "n2",
        pod: "p3",
        reason: "terminating",
        detail: "endpoint is terminating, still serving",
      },
      {
        address: "10.1.0.4:8080",
        service: "web/app",
        pod: "p4",
        reason: "terminating",
        detail: "endpoint is terminating",
      },
    ],
  },
  {
    name: "listener mode clusterip on a headless Service falls back to endpoints",
    inventory: inventory({
      services: [service("web/app", { type: "ClusterIP", clusterIPs: ["None"] })],
      slices: [
        slice("web/app", "app-a", [{ addresses: ["10.1.0.1"], nodeName: "n1", podName: "p1" }]),
      ],
    }),
    spec: { backendMode: "clusterip" },
    backends: [eb("10.1.0.1", "p1")],
  },
  {
    name: "endpoints: IPv6 and FQDN slices",
    inventory: inventory({
      services: [service("web/app")],
      slices: [
        slice("web/app", "v6", [{ addresses: ["fd00::1"], nodeName: "n1", podName: "p1" }], {
          addressType: "IPv6",
        }),
        slice("web/app", "fqdn", [{ addresses: ["db.example"] }], { addressType: "FQDN" }),
      ],
    }),
    spec: { backendMode: "endpoints" },
    backends: [eb("fd00::1", "p1")],
    excluded: [{
      address: "db.example:8080",
      service: "web/app",
      reason: "unsupported-address-type",
      detail: "address type FQDN is not supported",
    }],
  },
  {
    name: "endpoints: no slices for the port warns",
    inventory: inventory({
      services: [service("web/app")],
      slices: [slice("web/app", "m", [{ addresses: ["10.1.0.9"] }], {
        ports: [{ name: "metrics", port: 9090, protocol: "TCP" }],
      })],
    }),
    spec: { backendMode: "endpoints" },
    backends: [],
    warnings: ['Service web/app has no endpoints for port "http"'],
  },
  {
    name: "endpoints without EndpointSlice API: endpoints-unavailable",
    inventory: inventory({ services: [service("web/app")], hasEndpointSlices: false }),
    spec: { backendMode: "endpoints" },
    backends: [],
    excluded: [{
      service: "web/app",
      reason: "endpoints-unavailable",
      detail: "the cluster serves no EndpointSlice API",
    }],
    warnings: [
      "Cannot resolve endpoints of Service web/app: the cluster serves no EndpointSlice API",
    ],
  },
  // --- annotations ---------------------------------------------------------------------
  {
    name: "backend-mode annotation overrides the listener, case-insensitively",
    inventory: inventory({
      services: [
        service("web/a", {
          annotations: { ...ENABLED, "nautiluslb.cloudresty.io/backend-mode": "ClusterIP" },
        }),
        service("web/b", {
          annotations: { ...ENABLED, "nautiluslb.cloudresty.io/backend-mode": "endpoints" },
        }),
      ],
      nodes: [node("n1", "10.0.0.1")],
      slices: [slice("web/b", "b-1", [{ addresses: ["10.1.0.1"], nodeName: "n1", podName: "p1" }])],
    }),
    spec: { backendMode: "nodeport" },
    backends: [
      eb("10.1.0.1", "p1", "n1", "web/b"),
      { address: "10.96.0.10:80", host: "10.96.0.10", port: 80, weight: 1, service: "web/a" },
    ],
    warnings: [
      'Services web/a, web/b all have a port named "http" and are merged into one pool; ' +
      'set "service" or "serviceSelector" to narrow it',
    ],
  },
  {
    name: "invalid backend-mode annotation: warning, listener mode",
    inventory: inventory({
      services: [service("web/app", {
        annotations: { ...ENABLED, "nautiluslb.cloudresty.io/backend-mode": "pods" },
      })],
      nodes: [node("n1", "10.0.0.1")],
    }),
    backends: [nb("10.0.0.1", "n1")],
    warnings: [
      'Ignoring annotation nautiluslb.cloudresty.io/backend-mode of Service web/app: "pods" is ' +
      "not one of auto, nodeport, clusterip, endpoints; using auto",
    ],
  },
  {
    name: "weight annotation",
    inventory: inventory({
      services: [service("web/app", {
        annotations: { ...ENABLED, "nautiluslb.cloudresty.io/weight": "250" },
      })],
      nodes: TWO_NODES,
    }),
    backends: [
      nb("10.0.0.1", "n1", "web/app", 30080, 250),
      nb("10.0.0.2", "n2", "web/app", 30080, 250),
    ],
  },
  {
    name: "weight 0 is allowed",
    inventory: inventory({
      services: [
        service("web/app", { annotations: { ...ENABLED, "nautiluslb.cloudresty.io/weight": "0" } }),
      ],
      nodes: [node("n1", "10.0.0.1")],
    }),
    backends: [nb("10.0.0.1", "n1", "web/app", 30080, 0)],
  },
  {
    name: "max-connections-per-backend annotation: carried on each backend of the Service",
    inventory: inventory({
      services: [
        service("web/app", {
          annotations: {
            ...ENABLED,
            "nautiluslb.cloudresty.io/max-connections-per-backend": " 500 ",
          },
        }),
      ],
      nodes: TWO_NODES,
    }),
    backends: [
      { ...nb("10.0.0.1", "n1"), maxConnections: 500 },
      { ...nb("10.0.0.2", "n2"), maxConnections: 500 },
    ],
  },
  {
    name: "max-connections-per-backend 0: the listener's limit applies",
    inventory: inventory({
      services: [
        service("web/app", {
          annotations: { ...ENABLED, "nautiluslb.cloudresty.io/max-connections-per-backend": "0" },
        }),
      ],
      nodes: [node("n1", "10.0.0.1")],
    }),
    backends: [nb("10.0.0.1", "n1")],
  },
  ...["-1", "many", "1.5", "", "10000001"].map((bad): Case => ({
    name: `bad max-connections-per-backend annotation "${bad}": warning, listener's limit`,
    inventory: inventory({
      services: [
        service("web/app", {
          annotations: { ...ENABLED, "nautiluslb.cloudresty.io/max-connections-per-backend": bad },
        }),
      ],
      nodes: [node("n1", "10.0.0.1")],
    }),
    backends: [nb("10.0.0.1", "n1")],
    warnings: [
      "Ignoring annotation nautiluslb.cloudresty.io/max-connections-per-backend of Service " +
      `web/app: "${bad}" is not an integer 0-10000000; using the listener's maxConnectionsPerBackend`,
    ],
  })),
  ...["1001", "-1", "2.5", "heavy", ""].map((bad): Case => ({
    name: `bad weight annotation "${bad}": warning, weight 1`,
    inventory: inventory({
      services: [
        service("web/app", { annotations: { ...ENABLED, "nautiluslb.cloudresty.io/weight": bad } }),
      ],
      nodes: [node("n1", "10.0.0.1")],
    }),
    backends: [nb("10.0.0.1", "n1")],
    warnings: [
      `Ignoring annotation nautiluslb.cloudresty.io/weight of Service web/app: "${bad}" is not ` +
      "an integer 0-1000; using 1",
    ],
  })),
];

for (const c of CASES) {
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

Deno.test("resolvePool() names at most ten merged Services", () => {
  const services = Array.from(
    { length: 12 },
    (_, i) =>
      service(`web/s${String(i).padStart(2, "0")}`, {
        type: "ClusterIP",
        clusterIPs: [`10.96.0.${i}`],
      }),
  );
  const plan = resolvePool(inventory({ services }), spec());
  assert.equal(plan.backends.length, 12);
  assert.deepEqual(plan.warnings, [
    "Services web/s00, web/s01, web/s02, web/s03, web/s04, web/s05, web/s06, web/s07, web/s08, " +
    'web/s09 and 2 more all have a port named "http" and are merged into one pool; set "service" ' +
    'or "serviceSelector" to narrow it',
  ]);
});

Deno.test("resolvePool() gives the same plan whatever the inventory order", () => {
  const services = [
    service("web/b", { ports: [port("http", { nodePort: 30090 })] }),
    service("web/a"),
  ];
  const nodes = [node("n2", "10.0.0.2"), node("n1", "10.0.0.1", { ready: "False" })];
  const slices = [
    slice("web/a", "s2", [{ addresses: ["10.1.0.2"] }]),
    slice("web/a", "s1", [{ addresses: ["10.1.0.1"] }]),
  ];
  const a = resolvePool(inventory({ services, nodes, slices }), spec());
  const b = resolvePool(
    inventory({
      services: [...services].reverse(),
      nodes: [...nodes].reverse(),
      slices: [...slices].reverse(),
    }),
    spec(),
  );
  assert.equal(JSON.stringify(a), JSON.stringify(b));
});

Deno.test("resolvePools() resolves each spec in order with one shared index", () => {
  const inv = inventory({
    services: [
      service("web/app"),
      service("db/mongo", { ports: [port("mongodb", { port: 27017, nodePort: 30017 })] }),
    ],
    nodes: [node("n1", "10.0.0.1")],
  });
  const plans = resolvePools(inv, [
    spec({ name: "mongodb", backendPortName: "mongodb" }),
    spec({ name: "http" }),
  ]);
  assert.deepEqual(plans.map((p) => [p.name, p.backends.map((b) => b.address)]), [
    ["mongodb", ["10.0.0.1:30017"]],
    ["http", ["10.0.0.1:30080"]],
  ]);
  const index = indexEndpointSlices(inv);
  assert.deepEqual(
    resolvePool(inv, spec({ name: "http" }), { endpointSliceIndex: index }),
    plans[1],
  );
});

Deno.test("resolvePool() does not mutate its inputs", () => {
  const inv = inventory({
    services: [service("web/app")],
    nodes: [node("n2", "10.0.0.2"), node("n1", "10.0.0.1")],
  });
  const before = JSON.stringify([...inv.nodes.keys(), ...inv.services.keys()]);
  const s = spec({ backends: [{ host: "10.9.9.9", port: 1, weight: 1 }] });
  resolvePool(inv, s);
  assert.equal(JSON.stringify([...inv.nodes.keys(), ...inv.services.keys()]), before);
  assert.deepEqual(s.backends, [{ host: "10.9.9.9", port: 1, weight: 1 }]);
});

Deno.test("indexEndpointSlices() groups by namespace/service and sorts by slice name", () => {
  const inv = inventory({
    slices: [
      slice("web/app", "b", []),
      slice("web/app", "a", []),
      slice("db/app", "c", []),
      slice("web/x", "orphan", [], { serviceName: "" }),
    ],
  });
  const index = indexEndpointSlices(inv);
  assert.deepEqual([...index.keys()].sort(), ["db/app", "web/app"]);
  assert.deepEqual(index.get("web/app")?.map((s) => s.name), ["a", "b"]);
});

Deno.test("resolvePool() binds a route's pool, named listener/route, by that name only", () => {
  const inv = inventory({
    services: [
      service("web/app", {
        annotations: { ...ENABLED, "nautiluslb.cloudresty.io/configurations": "tls/api" },
      }),
    ],
    nodes: [node("n1", "10.0.0.1")],
  });
  const route = resolvePool(inv, spec({ name: "tls/api", binding: "explicit" }));
  assert.deepEqual(route.backends.map((b) => b.address), ["10.0.0.1:30080"]);
  const listener = resolvePool(inv, spec({ name: "tls", binding: "explicit" }));
  assert.deepEqual(listener.backends, []);
  assert.deepEqual(listener.excluded.map((e) => e.reason), ["not-bound-to-listener"]);
});
