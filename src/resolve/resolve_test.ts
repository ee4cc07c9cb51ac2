import assert from "node:assert/strict";
import { indexEndpointSlices, resolvePool, resolvePools } from "./mod.ts";
import {
  type Case,
  ENABLED,
  inventory,
  nb,
  node,
  port,
  service,
  slice,
  spec,
  testCases,
  TWO_NODES,
} from "./_resolve_test_fixtures.ts";

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
];

testCases(CASES);

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
