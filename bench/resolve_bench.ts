/**
 * Resolution cost at cluster scale: 5,000 Services, 500 Nodes, 20,000 endpoints, the four
 * listeners of `config.yaml`. Run with `deno bench bench/resolve_bench.ts`.
 *
 * @module
 */
import type {
  EndpointInfo,
  EndpointSliceInfo,
  Inventory,
  NodeInfo,
  ServiceInfo,
} from "../src/core/inventory.ts";
import type { PoolSpec } from "../src/core/pool_spec.ts";
import { loadConfigFile } from "../src/config/mod.ts";
import { diffPlans, indexEndpointSlices, resolvePools } from "../src/resolve/mod.ts";

const SERVICES = 5_000;
const NODES = 500;
const ENDPOINTS_PER_SERVICE = 4; // 20,000 endpoints
const NAMESPACES = 50;

function octets(i: number): string {
  return `${(i >> 8) & 255}.${i & 255}`;
}

function makeNodes(): Map<string, NodeInfo> {
  const nodes = new Map<string, NodeInfo>();
  for (let i = 0; i < NODES; i++) {
    const name = `node-${String(i).padStart(3, "0")}`;
    nodes.set(name, {
      name,
      labels: i % 100 === 1
        ? { "node.kubernetes.io/exclude-from-external-load-balancers": "" }
        : {},
      ready: i % 50 === 7 ? "False" : "True",
      unschedulable: i % 100 === 3,
      addresses: [
        { type: "InternalIP", address: `10.0.${octets(i)}` },
        { type: "Hostname", address: name },
      ],
    });
  }
  return nodes;
}

/**
 * Every Service has `http` and `https` ports; those in `development` also `mongodb` or
 * `amqp`. `annotated(i)` decides which carry the enabled annotation; `kind(i)` the shape.
 */
function makeInventory(
  annotated: (i: number) => boolean,
  kind: (i: number) => "nodeport" | "nodeport-local" | "clusterip" | "headless",
): Inventory {
  const services = new Map<string, ServiceInfo>();
  const slices = new Map<string, EndpointSliceInfo>();
  for (let i = 0; i < SERVICES; i++) {
    const namespace = i % NAMESPACES === 0 ? "development" : `team-${i % NAMESPACES}`;
    const name = `svc-${i}`;
    const shape = kind(i);
    const isNodePort = shape === "nodeport" || shape === "nodeport-local";
    const nodePort = (p: number) => (isNodePort ? { nodePort: 30000 + ((i * 4 + p) % 2700) } : {});
    const ports = [
      { name: "http", protocol: "TCP", port: 80, targetPort: 8080, ...nodePort(0) },
      { name: "https", protocol: "TCP", port: 443, targetPort: 8443, ...nodePort(1) },
    ];
    if (namespace === "development") {
      ports.push(
        i % 2 === 0
          ? { name: "mongodb", protocol: "TCP", port: 27017, targetPort: 27017, ...nodePort(2) }
          : { name: "amqp", protocol: "TCP", port: 5672, targetPort: 5672, ...nodePort(3) },
      );
    }
    services.set(`${namespace}/${name}`, {
      namespace,
      name,
      type: isNodePort ? "NodePort" : "ClusterIP",
      labels: { app: name },
      annotations: annotated(i) ? { "nautiluslb.cloudresty.io/enabled": "true" } : {},
      clusterIPs: shape === "headless" ? ["None"] : [`10.96.${octets(i)}`],
      ...(shape === "nodeport-local" ? { externalTrafficPolicy: "Local" } : {}),
      ports,
    });
    const endpoints: EndpointInfo[] = [];
    for (let e = 0; e < ENDPOINTS_PER_SERVICE; e++) {
      const n = i * ENDPOINTS_PER_SERVICE + e;
      endpoints.push({
        addresses: [`10.${64 + ((n >> 16) & 63)}.${octets(n)}`],
        ...(n % 37 === 0 ? { ready: false } : {}),
        ...(n % 101 === 0 ? { ready: false, serving: true, terminating: true } : {}),
        nodeName: `node-${String(n % NODES).padStart(3, "0")}`,
        podName: `${name}-${e}`,
      });
    }
    const sliceName = `${name}-abcde`;
    slices.set(`${namespace}/${sliceName}`, {
      namespace,
      name: sliceName,
      serviceName: name,
      addressType: "IPv4",
      ports: ports.map((p) => ({ name: p.name, port: p.targetPort, protocol: "TCP" })),
      endpoints,
    });
  }
  return { services, nodes: makeNodes(), endpointSlices: slices, hasEndpointSlices: true };
}

/** The four listeners of the repository's config.yaml, as `serve` would read them. */
const LISTENERS: readonly PoolSpec[] =
  (await loadConfigFile(new URL("../config.yaml", import.meta.url).pathname)).config
    .configurations;

// Typical: one Service in ten is annotated; of those, a few NodePort (some with
// externalTrafficPolicy Local), half ClusterIP, the rest headless (pods directly).
const typical = makeInventory(
  (i) => i % 10 === 0,
  (i) =>
    i % 500 === 0
      ? "nodeport-local"
      : i % 250 === 0
      ? "nodeport"
      : i % 20 === 0
      ? "clusterip"
      : "headless",
);
// Heavy: every Service annotated and headless, so every endpoint lands in a pool.
const heavy = makeInventory(() => true, () => "headless");
// NodePort-heavy: 100 annotated NodePort Services, half with externalTrafficPolicy Local.
const nodePortHeavy = makeInventory(
  (i) => i % 50 === 0,
  (i) => (i % 100 === 0 ? "nodeport-local" : "nodeport"),
);

function describe(name: string, inventory: Inventory): void {
  const plans = resolvePools(inventory, LISTENERS);
  const backends = plans.reduce((n, p) => n + p.backends.length, 0);
  const excluded = plans.reduce((n, p) => n + p.excluded.length, 0);
  console.log(`${name}: ${backends} backends, ${excluded} excluded over ${plans.length} pools`);
}
describe("typical", typical);
describe("heavy", heavy);
describe("nodeport-heavy", nodePortHeavy);

Deno.bench("resolvePools, typical (500 annotated Services, mixed modes)", {
  group: "resolve",
  baseline: true,
}, () => {
  resolvePools(typical, LISTENERS);
});

Deno.bench("resolvePools, heavy (5,000 annotated headless Services)", { group: "resolve" }, () => {
  resolvePools(heavy, LISTENERS);
});

Deno.bench(
  "resolvePools, nodeport-heavy (100 NodePort Services x 500 nodes)",
  { group: "resolve" },
  () => {
    resolvePools(nodePortHeavy, LISTENERS);
  },
);

Deno.bench("indexEndpointSlices (5,000 slices, uncached: includes copying the map)", () => {
  // The index is cached on the slice map's identity; a fresh map measures a real build.
  indexEndpointSlices({ ...heavy, endpointSlices: new Map(heavy.endpointSlices) });
});

// The http pool of the heavy inventory (about 19,000 backends) against itself after one
// Service in ten got weight 5: about 1,900 changes to find.
const [before] = resolvePools(heavy, LISTENERS);
const reweighted = structuredClone(before!.backends).map((b, i) =>
  i % 10 === 0 ? { ...b, weight: 5 } : b
);
const after = { ...before!, backends: reweighted };
Deno.bench("diffPlans (19,000-backend pool, 1,900 changes)", () => {
  diffPlans(before!, after);
});
