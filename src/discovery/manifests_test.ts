import assert from "node:assert/strict";
import type { PoolPlan } from "../core/plan.ts";
import type { PoolSpec } from "../core/pool_spec.ts";
import { resolvePools } from "../resolve/mod.ts";
import { loadManifests, MAX_MANIFEST_DEPTH, parseManifests } from "./manifests.ts";

const EXAMPLES = new URL("../../examples/cluster/", import.meta.url);
const CLUSTERS = new URL("../../tests/fixtures/clusters/", import.meta.url);

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
      `Conflicting copies of Service ns/web (different spec): ${dir}/a.json:1:1 (document 1) ` +
      `and ${dir}/b/b.yaml:1:1 (document 1); using the one at ${dir}/b/b.yaml:1:1 (document 1)`,
      `Conflicting copies of Service ns/web (different spec): ${dir}/b/b.yaml:1:1 (document 1) ` +
      `and ${dir}/b/nested/c.yml:1:1 (document 1); using the one at ` +
      `${dir}/b/nested/c.yml:1:1 (document 1)`,
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
        "bad.yaml:5:1: invalid YAML: deficient indentation",
        "bad.yaml:6:5: invalid YAML: bad indentation of a mapping entry",
        "worse.json:1:17: invalid YAML: expected the node content, but found ','",
      ]);
      return true;
    },
  );
});

/** A Service whose `metadata.labels` holds lists nested until the document has `levels` levels. */
function nestedService(levels: number): string {
  // The top-level map, `metadata` and `labels` are three levels; `x` holds the rest.
  const lists = levels - 3;
  return "kind: Service\napiVersion: v1\nmetadata:\n  name: deep\n  namespace: default\n" +
    `  labels:\n    x: ${"[".repeat(lists)}${"]".repeat(lists)}\n`;
}

Deno.test("parseManifests() accepts nesting up to the limit, names the first level past it", () => {
  const loaded = parseManifests([{ name: "ok.yaml", text: nestedService(MAX_MANIFEST_DEPTH) }]);
  assert.deepEqual([...loaded.inventory.services.keys()], ["default/deep"]);

  const limit = `invalid YAML: nesting is deeper than ${MAX_MANIFEST_DEPTH} levels`;
  // Line 7 is `    x: [[…`: the first list, at column 8, is level 4.
  const column = 8 + (MAX_MANIFEST_DEPTH + 1 - 4);
  assert.throws(
    () => parseManifests([{ name: "deep.yaml", text: nestedService(MAX_MANIFEST_DEPTH + 1) }]),
    (error: Error) => {
      assert.equal(error.name, "SyntaxError");
      assert.equal(error.message, `deep.yaml:7:${column}: ${limit}`);
      return true;
    },
  );
});

Deno.test("parseManifests() fails with a located error, not a stack overflow, at depth 1,000", () => {
  const deepFlow = "kind: Service\nmetadata: " + "[".repeat(1_000) + "]".repeat(1_000) + "\n";
  const deepBlock = "kind: Node\nmetadata:\n" +
    Array.from({ length: 1_000 }, (_, i) => `${" ".repeat(i + 1)}a:`).join("\n") + " 1\n";
  const deepJson = '{"kind": "Service", "metadata": ' + '{"a": '.repeat(1_000) + "1" +
    "}".repeat(1_000) + "}";
  const limit = `invalid YAML: nesting is deeper than ${MAX_MANIFEST_DEPTH} levels`;
  const past = MAX_MANIFEST_DEPTH + 1;
  assert.throws(
    () =>
      parseManifests([
        { name: "flow.yaml", text: deepFlow },
        { name: "block.yaml", text: deepBlock },
        { name: "deep.json", text: deepJson },
        { name: "bad.yaml", text: "kind: Node\nmetadata: {name: n1,, }\n" },
      ]),
    (error: Error) => {
      assert.equal(error.name, "SyntaxError");
      assert.doesNotMatch(error.message, /call stack/);
      const lines = error.message.split("\n") as [string, string, string, string];
      assert.equal(lines.length, 4, error.message);
      // This deep, the parser stops first, at a level past the first one too deep (exact
      // for a document less deep: the test above); the place is inside the part too deep.
      const at = (line: string, file: string) => {
        const match = new RegExp(`^${file}:(\\d+):(\\d+): ${limit}$`).exec(line);
        assert.ok(match, line);
        return { line: Number(match[1]), column: Number(match[2]) };
      };
      // Level 2 is the first list, at column 11 after `metadata: `.
      const flow = at(lines[0], "flow\\.yaml");
      assert.equal(flow.line, 2);
      assert.ok(flow.column >= 11 + (past - 2) && flow.column < 11 + 1_000, lines[0]);
      // Line n holds level n - 1 (the map under `metadata` is level 2) at column n - 1.
      const block = at(lines[1], "block\\.yaml");
      assert.ok(block.line >= past + 1 && block.line <= 1_002, lines[1]);
      assert.equal(block.column, block.line - 1);
      // Level 2 is the first `{"a": ` (6 columns), at column 33.
      const json = at(lines[2], "deep\\.json");
      assert.ok(json.column >= 33 + 6 * (past - 2) && json.column <= 33 + 6 * 1_000, lines[2]);
      // The other documents are still checked and reported.
      assert.equal(
        lines[3],
        "bad.yaml:2:21: invalid YAML: expected the node content, but found ','",
      );
      return true;
    },
  );
});

Deno.test("parseManifests() reads a top-level JSON array or YAML sequence as a list", () => {
  const json = JSON.stringify([
    { apiVersion: "v1", kind: "Node", metadata: { name: "n1" } },
    { apiVersion: "v1", kind: "Service", metadata: { namespace: "x" } },
  ]);
  const yaml = "- apiVersion: v1\n  kind: Node\n  metadata: {name: n2}\n";
  const { inventory, warnings } = parseManifests([
    { name: "bundle.json", text: json },
    { name: "seq.yaml", text: yaml },
  ]);
  assert.deepEqual([...inventory.nodes.keys()], ["n1", "n2"]);
  assert.deepEqual(warnings, [
    "bundle.json:1:61: Cannot convert Service: metadata.name is missing; skipped",
  ]);
});

Deno.test("parseManifests() names a text with no Kubernetes object in it", () => {
  const { warnings } = parseManifests([
    { name: "values.yaml", text: "controller:\n  replicaCount: 2\n" },
    { name: "empty.yaml", text: "# nothing yet\n" },
    { name: "numbers.json", text: "[1, 2, 3]" },
    // Objects of kinds NautilusLB does not read are still Kubernetes objects: no warning.
    { name: "deploy.yaml", text: "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a}\n" },
    // An empty List is an answer from the API server, not a stray file.
    { name: "slices.yaml", text: "apiVersion: v1\nkind: List\nitems: []\n" },
  ]);
  assert.deepEqual(warnings, [
    'values.yaml: no Kubernetes object (nothing with a "kind") found; ignored',
    'empty.yaml: no Kubernetes object (nothing with a "kind") found; ignored',
    'numbers.json: no Kubernetes object (nothing with a "kind") found; ignored',
  ]);
});

Deno.test("parseManifests() merges identical copies quietly and names conflicting ones", () => {
  const svc = (meta: string, ip = "10.96.0.1") =>
    `apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: ns${meta}}\n` +
    `spec: {clusterIP: ${ip}, ports: [{name: http, port: 80}]}\n`;
  const same = ", uid: u1, resourceVersion: '7'";
  const quiet = parseManifests([
    { name: "a.yaml", text: svc(same) },
    // Key order differs; the object does not.
    {
      name: "b.yaml",
      text: "kind: List\napiVersion: v1\nitems:\n  - spec: {ports: [{port: 80, name: http}], " +
        "clusterIP: 10.96.0.1}\n    metadata: {resourceVersion: '7', uid: u1, namespace: ns, " +
        "name: web}\n    kind: Service\n    apiVersion: v1\n",
    },
  ]);
  assert.deepEqual(quiet.warnings, []);
  assert.equal(quiet.inventory.services.size, 1);

  const cases: [string, string, string][] = [
    ["resourceVersion", svc(", uid: u1, resourceVersion: '8'"), "resourceVersion"],
    ["uid", svc(", uid: u2, resourceVersion: '7'"), "uid"],
    ["spec", svc(same, "10.96.0.2"), "spec"],
    ["all", svc(", uid: u2, resourceVersion: '9'", "10.96.0.2"), "uid, resourceVersion, spec"],
  ];
  for (const [label, text, what] of cases) {
    const { inventory, warnings } = parseManifests([
      { name: "a.yaml", text: svc(same) },
      { name: "b.yaml", text: `---\n# again\n---\n${text}` },
    ]);
    assert.deepEqual(warnings, [
      `Conflicting copies of Service ns/web (different ${what}): a.yaml:1:1 (document 1) and ` +
      "b.yaml:4:1 (document 2); using the one at b.yaml:4:1 (document 2)",
    ], label);
    assert.equal(inventory.services.size, 1, label);
  }
});

Deno.test("parseManifests() names list items in a duplicate warning", () => {
  const node = (ip: string) =>
    `  - {apiVersion: v1, kind: Node, metadata: {name: n1}, status: {addresses: [{type: InternalIP, address: ${ip}}]}}\n`;
  const { warnings } = parseManifests([{
    name: "nodes.yaml",
    text: `apiVersion: v1\nkind: List\nitems:\n${node("10.0.0.1")}${node("10.0.0.2")}`,
  }]);
  assert.deepEqual(warnings, [
    "Conflicting copies of Node n1 (different contents): nodes.yaml:4:5 (document 1, item 1) " +
    "and nodes.yaml:5:5 (document 1, item 2); using the one at nodes.yaml:5:5 (document 1, item 2)",
  ]);
});

/** A listener as the default config gives it, with a health check. */
function checked(name: string, portName: string, extra: Partial<PoolSpec> = {}): PoolSpec {
  return {
    ...listener(name, ":80", portName),
    healthCheck: {
      enabled: true,
      intervalMs: 5000,
      timeoutMs: 1000,
      rise: 2,
      fall: 2,
      maxEjectionPercent: 50,
    },
    ...extra,
  };
}

Deno.test("kind dump: repeated default/kubernetes merges; kube-dns UDP; terminating fallback", async () => {
  const { inventory, warnings } = await loadManifests(new URL("kind/", CLUSTERS).pathname);
  assert.deepEqual(warnings, []);
  assert.deepEqual([...inventory.services.keys()].sort(), [
    "default/kubernetes",
    "kube-system/kube-dns",
    "shop/web",
  ]);
  const [dns, web] = resolvePools(inventory, [checked("dns", "dns"), checked("web", "http")]);
  assert.deepEqual(dns!.backends, []);
  assert.deepEqual(dns!.excluded, [{
    service: "kube-system/kube-dns",
    reason: "unsupported-protocol",
    detail:
      'port "dns" is UDP; a tcp listener takes TCP ports; port "dns-tcp" is TCP on the same number',
  }]);
  assert.deepEqual(dns!.warnings, []);
  // Every pod of web is on its way out: the one still serving takes new connections.
  assert.deepEqual(web!.backends, [{
    address: "10.244.1.7:8080",
    host: "10.244.1.7",
    port: 8080,
    weight: 1,
    service: "shop/web",
    node: "kind-worker",
    pod: "web-6d4cf56db6-2xvqt",
    terminating: true,
  }]);
  assert.deepEqual(web!.excluded.map((e) => [e.address, e.reason]), [
    ["10.244.2.9:8080", "terminating"],
    ["10.244.2.11:8080", "not-ready"],
  ]);
  assert.deepEqual(web!.healthTargets.map((t) => t.key), ["10.244.1.7:8080"]);
});

Deno.test("OpenShift bundle: a JSON array; Endpoints nodeName; a node without status", async () => {
  const { inventory, warnings } = await loadManifests(new URL("openshift/", CLUSTERS).pathname);
  assert.deepEqual(warnings, []);
  const [nodePort, endpoints] = resolvePools(inventory, [
    checked("http", "http"),
    checked("pods", "http", { backendMode: "endpoints" }),
  ]);
  // LoadBalancer, Local: only the node running the router, checked through kube-proxy.
  assert.deepEqual(nodePort!.backends.map((b) => [b.address, b.node]), [
    ["192.168.126.51:31080", "worker-0.ocp.example.com"],
  ]);
  assert.deepEqual(nodePort!.healthTargets[0]!.check.http, { port: 31987, path: "/healthz" });
  assert.deepEqual(nodePort!.excluded.map((e) => [e.node, e.reason, e.detail]), [
    ["worker-2.ocp.example.com", "node-not-ready", "no Ready condition"],
    [
      "worker-1.ocp.example.com",
      "no-local-endpoint",
      "externalTrafficPolicy is Local and no ready endpoint runs on this node",
    ],
  ]);
  // core/v1 Endpoints carry nodeName: the pod's node is known.
  assert.deepEqual(endpoints!.backends.map((b) => [b.address, b.node, b.pod]), [
    ["10.128.2.14:80", "worker-0.ocp.example.com", "router-default-5c9f7d8b6-4hjkl"],
  ]);
  assert.equal(endpoints!.healthTargets[0]!.check.http, undefined);
});

Deno.test("minikube: v1beta1 topology, a UDP port, a stale copy named", async () => {
  const dir = new URL("minikube/", CLUSTERS).pathname;
  const { inventory, warnings } = await loadManifests(dir);
  assert.deepEqual(warnings, [
    `Conflicting copies of Service default/echo (different resourceVersion, spec): ` +
    `${dir}before-upgrade.yaml:2:1 (document 1) and ${dir}cluster.yaml:23:1 (document 2); ` +
    `using the one at ${dir}cluster.yaml:23:1 (document 2)`,
  ]);
  const [http, syslog] = resolvePools(inventory, [
    checked("http", "http"),
    checked("syslog", "syslog"),
  ]);
  assert.deepEqual(http!.backends.map((b) => [b.address, b.node]), [
    ["192.168.49.2:30808", "minikube"],
  ]);
  assert.deepEqual(syslog!.excluded.map((e) => e.reason), ["unsupported-protocol"]);
});

Deno.test("ingress-nginx rendered by Helm: values.yaml named, missing endpoint data", async () => {
  const dir = new URL("ingress-nginx/", CLUSTERS).pathname;
  const { inventory, warnings } = await loadManifests(dir);
  assert.deepEqual(warnings, [
    `${dir}values.yaml: no Kubernetes object (nothing with a "kind") found; ignored`,
  ]);
  const [http] = resolvePools(inventory, [checked("http", "http")]);
  assert.deepEqual(http!.backends, []);
  assert.deepEqual(http!.excluded.map((e) => [e.node, e.reason]), [
    ["edge-1", "endpoints-unavailable"],
    ["edge-2", "endpoints-unavailable"],
  ]);
  assert.deepEqual(http!.inputWarnings, [
    "Service ingress-nginx/ingress-nginx-controller has externalTrafficPolicy Local but the " +
    "input has no EndpointSlice or Endpoints for it, so the nodes running its pods are unknown",
  ]);
});
