import {
  type Case,
  eb,
  EXCLUDE_LABEL,
  inventory,
  nb,
  node,
  port,
  service,
  slice,
  testCases,
  TWO_NODES,
} from "./_resolve_test_fixtures.ts";

const CASES: Case[] = [
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
];

testCases(CASES);
