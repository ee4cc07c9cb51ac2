import assert from "node:assert/strict";
import type { PoolPlan } from "../core/plan.ts";
import type { PoolSpec } from "../core/pool_spec.ts";
import { resolvePools } from "../resolve/mod.ts";
import { loadManifests, parseManifests } from "./manifests.ts";

const EXAMPLES = new URL("../../examples/cluster/", import.meta.url);

function listener(
  name: string,
  listenerAddress: string,
  backendPortName: string,
  namespace?: string,
): PoolSpec {
  return {
    name,
    listenerAddress,
    backendPortName,
    ...(namespace === undefined ? {} : { namespace }),
    backendMode: "auto",
    nodeAddressTypes: ["InternalIP", "ExternalIP"],
    excludeCordonedNodes: false,
    backends: [],
  };
}

/** The pool the example cluster gives a listener: node-a and node-b at the nodePort. */
function examplePool(
  name: string,
  listenerAddress: string,
  service: string,
  nodePort: number,
): PoolPlan {
  const at = (ip: string) => `${ip}:${nodePort}`;
  return {
    name,
    listenerAddress,
    backends: [
      {
        address: at("127.0.0.2"),
        host: "127.0.0.2",
        port: nodePort,
        weight: 1,
        service,
        node: "node-a",
      },
      {
        address: at("127.0.0.3"),
        host: "127.0.0.3",
        port: nodePort,
        weight: 1,
        service,
        node: "node-b",
      },
    ],
    excluded: [
      {
        address: at("127.0.0.4"),
        service,
        node: "node-c",
        reason: "node-not-ready",
        detail: "Ready condition is False",
      },
      {
        address: at("127.0.0.5"),
        service,
        node: "node-d",
        reason: "node-excluded",
        detail: "label node.kubernetes.io/exclude-from-external-load-balancers",
      },
    ],
    warnings: [],
    inputWarnings: [],
    healthTargets: [],
  };
}

Deno.test("loadManifests() of examples/cluster resolves the README's pools", async () => {
  const { inventory, warnings } = await loadManifests(EXAMPLES.pathname);
  assert.deepEqual(warnings, []);
  assert.equal(inventory.hasEndpointSlices, true);
  assert.deepEqual([...inventory.services.keys()].sort(), [
    "development/mongodb-service",
    "development/rabbitmq-amqp-service",
    "ingress-nginx/ingress-nginx-controller",
  ]);
  assert.deepEqual([...inventory.nodes.keys()].sort(), ["node-a", "node-b", "node-c", "node-d"]);

  // The listeners of the repository's config.yaml.
  const plans = resolvePools(inventory, [
    listener("http_traffic_configuration", ":80", "http"),
    listener("https_traffic_configuration", ":443", "https"),
    listener("mongodb_internal_service", ":27017", "mongodb", "development"),
    listener("rabbitmq_amqp_service", ":15672", "amqp", "development"),
  ]);
  assert.deepEqual(plans, [
    examplePool(
      "http_traffic_configuration",
      ":80",
      "ingress-nginx/ingress-nginx-controller",
      30080,
    ),
    examplePool(
      "https_traffic_configuration",
      ":443",
      "ingress-nginx/ingress-nginx-controller",
      30443,
    ),
    examplePool("mongodb_internal_service", ":27017", "development/mongodb-service", 30017),
    examplePool("rabbitmq_amqp_service", ":15672", "development/rabbitmq-amqp-service", 30672),
  ]);
});

Deno.test("loadManifests() reads a directory recursively, in sorted order", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${dir}/b/nested`, { recursive: true });
    await Deno.mkdir(`${dir}/.hidden`);
    const svc = (ip: string) =>
      JSON.stringify({
        apiVersion: "v1",
        kind: "Service",
        metadata: { name: "web", namespace: "ns" },
        spec: { clusterIP: ip, ports: [{ name: "http", port: 80 }] },
      });
    await Deno.writeTextFile(`${dir}/a.json`, svc("10.96.0.1"));
    await Deno.writeTextFile(`${dir}/b/nested/c.yml`, svc("10.96.0.3"));
    await Deno.writeTextFile(`${dir}/b/b.yaml`, svc("10.96.0.2"));
    await Deno.writeTextFile(`${dir}/.hidden/z.yaml`, svc("10.96.0.9"));
    await Deno.writeTextFile(`${dir}/notes.txt`, "kind: [");
    await Deno.symlink(`${dir}/b`, `${dir}/loop`);

    const { inventory, warnings } = await loadManifests(dir);
    // a.json, b/b.yaml, b/nested/c.yml; the link to b/ is read once; hidden and .txt skipped.
    assert.deepEqual(inventory.services.get("ns/web")?.clusterIPs, ["10.96.0.3"]);
    assert.deepEqual(warnings, [
      `${dir}/b/b.yaml:1:1: Service ns/web is defined again (first at ${dir}/a.json:1:1); ` +
      "using this one",
      `${dir}/b/nested/c.yml:1:1: Service ns/web is defined again (first at ${dir}/b/b.yaml:1:1); ` +
      "using this one",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadManifests() reports a missing path", async () => {
  await assert.rejects(loadManifests("does/not/exist"), (error: Error) => {
    assert.match(error.message, /^Cannot read manifests from "does\/not\/exist": /);
    assert.ok(error.cause instanceof Deno.errors.NotFound);
    return true;
  });
});

Deno.test("parseManifests() reads multi-document YAML and *List kinds, skipping other kinds", () => {
  const text = `
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
---
# empty documents and plain values are skipped
---
just text
---
apiVersion: v1
kind: ServiceList
items:
  - kind: Service
    metadata: {name: a, namespace: x}
  - kind: Service
    metadata: {namespace: x}
  - apiVersion: serving.knative.dev/v1
    kind: Service
    metadata: {name: knative}
---
apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: Node
    metadata: {name: n1}
---
apiVersion: v1
kind: List
`;
  const { inventory, warnings } = parseManifests([{ name: "all.yaml", text }]);
  assert.deepEqual([...inventory.services.keys()], ["x/a"]);
  assert.deepEqual([...inventory.nodes.keys()], ["n1"]);
  assert.deepEqual(warnings, [
    "all.yaml:15:5: Cannot convert Service: metadata.name is missing; skipped",
  ]);
});

Deno.test("parseManifests() uses Endpoints only for Services without EndpointSlices", () => {
  const text = `
apiVersion: v1
kind: Endpoints
metadata: {name: web, namespace: ns}
subsets:
  - addresses: [{ip: 10.1.0.1}]
    ports: [{name: http, port: 8080}]
---
apiVersion: v1
kind: Endpoints
metadata: {name: db, namespace: ns}
subsets:
  - addresses: [{ip: 10.1.0.2}]
    ports: [{name: pg, port: 5432}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-x1
  namespace: ns
  labels: {kubernetes.io/service-name: web}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints: [{addresses: [10.1.0.1]}]
`;
  const { inventory } = parseManifests([{ name: "eps.yaml", text }]);
  assert.deepEqual([...inventory.endpointSlices.keys()].sort(), ["ns/db", "ns/web-x1"]);
  assert.equal(inventory.endpointSlices.get("ns/db")?.serviceName, "db");
});

Deno.test("parseManifests() fails with file:line:column for every broken document", () => {
  const good = "apiVersion: v1\nkind: Node\nmetadata: {name: n1}\n";
  const bad = "apiVersion: v1\nkind: Service\nmetadata:\n  name: [web\n---\na: b: c\n";
  assert.throws(
    () =>
      parseManifests([
        { name: "good.yaml", text: good },
        { name: "bad.yaml", text: bad },
        { name: "worse.json", text: '{"kind": "Node",, }' },
      ]),
    (error: Error) => {
      assert.equal(error.name, "SyntaxError");
      assert.deepEqual(error.message.split("\n"), [
        "bad.yaml:5:1: Flow sequence in block collection must be sufficiently indented and end " +
        "with a ]",
        "bad.yaml:6:4: Nested mappings are not allowed in compact mappings",
        "worse.json:1:17: Unexpected , in flow map",
      ]);
      return true;
    },
  );
});
