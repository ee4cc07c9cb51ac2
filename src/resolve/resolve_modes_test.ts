import {
  type Case,
  eb,
  ENABLED,
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

testCases(CASES);
