import assert from "node:assert/strict";
import {
  convertObject,
  endpointSliceFromObject,
  endpointSlicesFromEndpoints,
  nodeFromObject,
  serviceFromObject,
} from "./convert.ts";

Deno.test("serviceFromObject() reads a full NodePort Service", () => {
  assert.deepEqual(
    serviceFromObject({
      apiVersion: "v1",
      kind: "Service",
      metadata: {
        name: "web",
        namespace: "edge",
        labels: { app: "web" },
        annotations: { "nautiluslb.cloudresty.io/enabled": "true" },
      },
      spec: {
        type: "NodePort",
        clusterIP: "10.96.0.1",
        clusterIPs: ["10.96.0.1", "fd00::1"],
        externalTrafficPolicy: "Local",
        healthCheckNodePort: 32000,
        ports: [
          { name: "http", protocol: "TCP", port: 80, targetPort: "http", nodePort: 30080 },
          { name: "dns", protocol: "UDP", port: 53, targetPort: 5353 },
        ],
      },
    }),
    {
      namespace: "edge",
      name: "web",
      type: "NodePort",
      labels: { app: "web" },
      annotations: { "nautiluslb.cloudresty.io/enabled": "true" },
      clusterIPs: ["10.96.0.1", "fd00::1"],
      externalTrafficPolicy: "Local",
      healthCheckNodePort: 32000,
      ports: [
        { name: "http", protocol: "TCP", port: 80, nodePort: 30080, targetPort: "http" },
        { name: "dns", protocol: "UDP", port: 53, targetPort: 5353 },
      ],
    },
  );
});

Deno.test("serviceFromObject() fills API defaults for a bare manifest", () => {
  assert.deepEqual(
    serviceFromObject({
      metadata: { name: "db", labels: null, annotations: { "x/enabled": true, n: 3, o: {} } },
      spec: { ports: [{ port: 5432 }, { name: "bad" }, "junk"], clusterIP: "" },
    }),
    {
      namespace: "default",
      name: "db",
      type: "ClusterIP",
      labels: {},
      annotations: { "x/enabled": "true", n: "3" },
      clusterIPs: [],
      ports: [{ name: "", protocol: "TCP", port: 5432 }],
    },
  );
  assert.deepEqual(
    serviceFromObject({ metadata: { name: "h" }, spec: { clusterIP: "None" } }, {
      defaultNamespace: "ns",
    }).clusterIPs,
    ["None"],
  );
});

Deno.test("converters reject objects that cannot be keyed", () => {
  assert.throws(() => serviceFromObject({ spec: {} }), {
    name: "TypeError",
    message: "Cannot convert Service: metadata.name is missing",
  });
  assert.throws(() => nodeFromObject("node-a"), {
    name: "TypeError",
    message: "Cannot convert Node: expected an object, got string",
  });
  assert.throws(() => endpointSliceFromObject(null), TypeError);
  assert.throws(() => endpointSlicesFromEndpoints([]), TypeError);
});

Deno.test("nodeFromObject() reads readiness, cordon and addresses", () => {
  const cases: [unknown, "True" | "False" | "Unknown" | undefined][] = [
    [[{ type: "MemoryPressure", status: "False" }, { type: "Ready", status: "True" }], "True"],
    [[{ type: "Ready", status: "False" }], "False"],
    [[{ type: "Ready", status: "Unknown" }], "Unknown"],
    [[{ type: "Ready" }], "Unknown"],
    // No Ready condition at all: nothing to report, not "Unknown".
    [[{ type: "MemoryPressure", status: "False" }], undefined],
    [[], undefined],
    [undefined, undefined],
  ];
  for (const [conditions, ready] of cases) {
    assert.equal(nodeFromObject({ metadata: { name: "n" }, status: { conditions } }).ready, ready);
  }
  // A node object without status (just registered, or written by hand).
  assert.equal(nodeFromObject({ metadata: { name: "n" } }).ready, undefined);
  assert.equal("ready" in nodeFromObject({ metadata: { name: "n" } }), false);
  assert.deepEqual(
    nodeFromObject({
      metadata: { name: "n1", namespace: "ignored", labels: { role: "edge" } },
      spec: { unschedulable: true },
      status: {
        addresses: [
          { type: "InternalIP", address: "10.0.0.1" },
          { type: "InternalIP", address: "fd00::1" },
          { type: "Hostname" },
          { type: "Hostname", address: "n1" },
        ],
      },
    }),
    {
      name: "n1",
      labels: { role: "edge" },
      unschedulable: true,
      addresses: [
        { type: "InternalIP", address: "10.0.0.1" },
        { type: "InternalIP", address: "fd00::1" },
        { type: "Hostname", address: "n1" },
      ],
    },
  );
});

Deno.test("endpointSliceFromObject() reads discovery.k8s.io/v1", () => {
  assert.deepEqual(
    endpointSliceFromObject({
      apiVersion: "discovery.k8s.io/v1",
      kind: "EndpointSlice",
      metadata: {
        name: "web-abc12",
        namespace: "edge",
        labels: { "kubernetes.io/service-name": "web" },
      },
      addressType: "IPv4",
      ports: [{ name: "http", port: 8080, protocol: "TCP" }, { name: null, port: null }],
      endpoints: [
        {
          addresses: ["10.1.0.1"],
          conditions: { ready: true, serving: true, terminating: false },
          nodeName: "n1",
          targetRef: { kind: "Pod", name: "web-1", namespace: "edge" },
        },
        { addresses: ["10.1.0.2"], conditions: {}, targetRef: { kind: "Node", name: "x" } },
        { addresses: ["10.1.0.3"], conditions: { ready: null } },
      ],
    }),
    {
      namespace: "edge",
      name: "web-abc12",
      serviceName: "web",
      addressType: "IPv4",
      ports: [{ name: "http", port: 8080, protocol: "TCP" }],
      endpoints: [
        {
          addresses: ["10.1.0.1"],
          ready: true,
          serving: true,
          terminating: false,
          nodeName: "n1",
          podName: "web-1",
        },
        { addresses: ["10.1.0.2"] },
        { addresses: ["10.1.0.3"] },
      ],
    },
  );
});

Deno.test("endpointSliceFromObject() reads v1beta1 topology hostname", () => {
  const slice = endpointSliceFromObject({
    apiVersion: "discovery.k8s.io/v1beta1",
    kind: "EndpointSlice",
    metadata: { name: "s", labels: { "kubernetes.io/service-name": "web" } },
    ports: [{ name: "", port: 80 }],
    endpoints: [
      {
        addresses: ["fd00::5"],
        conditions: { ready: false },
        topology: { "kubernetes.io/hostname": "n2", "topology.kubernetes.io/zone": "a" },
      },
    ],
  });
  assert.deepEqual(slice, {
    namespace: "default",
    name: "s",
    serviceName: "web",
    addressType: "IPv6",
    ports: [{ name: "", port: 80, protocol: "TCP" }],
    endpoints: [{ addresses: ["fd00::5"], ready: false, nodeName: "n2" }],
  });
  assert.equal(endpointSliceFromObject({ metadata: { name: "e" } }).serviceName, "");
});

Deno.test("endpointSlicesFromEndpoints() makes one slice for a one-subset object", () => {
  assert.deepEqual(
    endpointSlicesFromEndpoints({
      apiVersion: "v1",
      kind: "Endpoints",
      metadata: { name: "web", namespace: "edge" },
      subsets: [{
        addresses: [{ ip: "10.1.0.1", nodeName: "n1", targetRef: { kind: "Pod", name: "p1" } }],
        notReadyAddresses: [{ ip: "10.1.0.2", nodeName: "n2" }],
        ports: [{ name: "http", port: 8080, protocol: "TCP" }],
      }],
    }),
    [{
      namespace: "edge",
      name: "web",
      serviceName: "web",
      addressType: "IPv4",
      ports: [{ name: "http", port: 8080, protocol: "TCP" }],
      endpoints: [
        { addresses: ["10.1.0.1"], ready: true, nodeName: "n1", podName: "p1" },
        { addresses: ["10.1.0.2"], ready: false, nodeName: "n2" },
      ],
    }],
  );
  assert.deepEqual(endpointSlicesFromEndpoints({ metadata: { name: "empty" } }), []);
});

Deno.test("endpointSlicesFromEndpoints() splits subsets and address families", () => {
  const slices = endpointSlicesFromEndpoints({
    metadata: { name: "web", namespace: "edge" },
    subsets: [
      {
        addresses: [{ ip: "10.1.0.1" }, { ip: "fd00::1" }],
        ports: [{ name: "http", port: 8080 }],
      },
      { addresses: [{ ip: "10.1.0.9" }], ports: [{ name: "http", port: 9090 }] },
    ],
  });
  assert.deepEqual(
    slices.map((s) => [s.name, s.addressType, s.ports[0]?.port, s.endpoints[0]?.addresses[0]]),
    [
      ["web-0", "IPv4", 8080, "10.1.0.1"],
      ["web-1", "IPv6", 8080, "fd00::1"],
      ["web-2", "IPv4", 9090, "10.1.0.9"],
    ],
  );
});

Deno.test("convertObject() dispatches on kind and apiVersion", () => {
  const meta = { name: "x", namespace: "ns" };
  const table: [unknown, string | undefined, string | undefined][] = [
    [{ apiVersion: "v1", kind: "Service", metadata: meta }, "Service", "ns/x"],
    [{ kind: "Service", metadata: meta }, "Service", "ns/x"],
    [
      { apiVersion: "serving.knative.dev/v1", kind: "Service", metadata: meta },
      undefined,
      undefined,
    ],
    [{ apiVersion: "v1", kind: "Node", metadata: meta }, "Node", "x"],
    [
      { apiVersion: "discovery.k8s.io/v1", kind: "EndpointSlice", metadata: meta },
      "EndpointSlice",
      "ns/x",
    ],
    [
      { apiVersion: "discovery.k8s.io/v1beta1", kind: "EndpointSlice", metadata: meta },
      "EndpointSlice",
      "ns/x",
    ],
    [{ apiVersion: "example.com/v1", kind: "EndpointSlice", metadata: meta }, undefined, undefined],
    [{ apiVersion: "v1", kind: "Endpoints", metadata: meta }, "Endpoints", "ns/x"],
    [{ apiVersion: "apps/v1", kind: "Deployment", metadata: meta }, undefined, undefined],
    [{ metadata: meta }, undefined, undefined],
    ["text", undefined, undefined],
    [null, undefined, undefined],
  ];
  for (const [object, kind, key] of table) {
    const converted = convertObject(object);
    assert.deepEqual([converted?.kind, converted?.key], [kind, key], JSON.stringify(object));
  }
});
