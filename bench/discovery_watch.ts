/**
 * Discovery at scale, end to end through the same code `serve` runs: a fake API server that
 * speaks the real list/watch protocol holds 5,000 Services, 500 Nodes and 20,000 endpoints;
 * we time the initial list + resolution, then how long a watch event (a node turning
 * NotReady or Ready) takes to reach the live pool.
 *
 * Run: `deno run -A bench/discovery_watch.ts [--flips N]`. Prints a Markdown table.
 *
 * @module
 */
import { parseConfig } from "../src/config/mod.ts";
import { KubernetesDiscovery } from "../src/discovery/mod.ts";
import { resolvePools } from "../src/resolve/mod.ts";
import { createBalancer } from "../src/balancer/mod.ts";
import { Pool } from "../src/pool/mod.ts";
import type { Inventory } from "../src/core/inventory.ts";
import { FakeKubeApi, type KubeObject } from "../tests/fake_kube_api.ts";

const SERVICES = 5_000;
const NODES = 500;
const ENDPOINTS_PER_SERVICE = 4;
const annotatedArg = Deno.args.indexOf("--annotated");
const ANNOTATED = annotatedArg >= 0 ? Number(Deno.args[annotatedArg + 1]) : 50;
const ANNOTATED_EVERY = Math.max(1, Math.floor(SERVICES / ANNOTATED));
const flipsArg = Deno.args.indexOf("--flips");
const FLIPS = flipsArg >= 0 ? Number(Deno.args[flipsArg + 1]) : 40;

function node(i: number, ready: boolean): KubeObject {
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: { name: `node-${i}` },
    spec: {},
    status: {
      addresses: [{ type: "InternalIP", address: `127.1.${i >> 8}.${i & 255}` }],
      conditions: [{ type: "Ready", status: ready ? "True" : "False" }],
    },
  };
}

function service(i: number): KubeObject {
  const ns = `ns-${i % 50}`;
  const port = ["http", "https", "mongodb", "amqp"][i % 4]!;
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: {
      name: `svc-${i}`,
      namespace: ns,
      annotations: i % ANNOTATED_EVERY === 0 ? { "nautiluslb.cloudresty.io/enabled": "true" } : {},
    },
    spec: {
      type: i % 3 === 0 ? "ClusterIP" : "NodePort",
      clusterIP: `10.96.${i >> 8}.${i & 255}`,
      ports: [{
        name: port,
        protocol: "TCP",
        port: 80,
        targetPort: 8080,
        nodePort: 30000 + (i % 2000),
      }],
    },
  };
}

function slice(i: number): KubeObject {
  const ns = `ns-${i % 50}`;
  const port = ["http", "https", "mongodb", "amqp"][i % 4]!;
  return {
    apiVersion: "discovery.k8s.io/v1",
    kind: "EndpointSlice",
    metadata: {
      name: `svc-${i}-abc`,
      namespace: ns,
      labels: { "kubernetes.io/service-name": `svc-${i}` },
    },
    addressType: "IPv4",
    ports: [{ name: port, port: 8080, protocol: "TCP" }],
    endpoints: Array.from({ length: ENDPOINTS_PER_SERVICE }, (_, k) => ({
      addresses: [`10.244.${(i * 4 + k) >> 8 & 255}.${(i * 4 + k) & 255}`],
      conditions: { ready: true },
      nodeName: `node-${(i + k) % NODES}`,
    })),
  };
}

const CONFIG = `
configurations:
  - { name: http, listenerAddress: ":80", backendPortName: http }
  - { name: https, listenerAddress: ":443", backendPortName: https }
  - { name: mongodb, listenerAddress: ":27017", backendPortName: mongodb }
  - { name: amqp, listenerAddress: ":5672", backendPortName: amqp }
`;

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

const parsed = parseConfig(CONFIG, "bench.yaml");
if (!parsed.ok) throw new Error(JSON.stringify(parsed.issues));
const listeners = parsed.config.configurations;

await using fake = await FakeKubeApi.start();
for (let i = 0; i < NODES; i++) fake.upsert(node(i, true));
for (let i = 0; i < SERVICES; i++) {
  fake.upsert(service(i));
  fake.upsert(slice(i));
}
const kubeconfig = await fake.kubeconfig();

const pools = new Map(listeners.map((l) => [
  l.name,
  new Pool({ name: l.name, balancer: createBalancer(l.balancer) }),
]));
let onApplied: (() => void) | undefined;
const apply = (inventory: Inventory) => {
  for (const plan of resolvePools(inventory, listeners)) {
    pools.get(plan.name)!.update(plan.backends.map((b) => ({
      key: b.address,
      host: b.host,
      port: b.port,
      weight: b.weight,
    })));
  }
  onApplied?.();
};

const controller = new AbortController();
const t0 = performance.now();
const discovery = new KubernetesDiscovery({
  kubeconfigPath: kubeconfig,
  namespaces: "all",
  signal: controller.signal,
  pageSize: 500,
  onChange: apply,
});
const initial = await discovery.start();
const listedMs = performance.now() - t0;
const r0 = performance.now();
apply(initial);
const resolveMs = performance.now() - r0;
const backends = [...pools.values()].reduce((n, p) => n + p.size, 0);

// Flip node-7 back and forth; the pool of every listener gains/loses its NodePort backends.
const flipNode = 7;
const probeKey = `127.1.0.${flipNode}:`;
const hasNode = () =>
  pools.get("http")!.snapshot().backends.some((b) => b.key.startsWith(probeKey));
const latencies: number[] = [];
for (let i = 0; i < FLIPS; i++) {
  const ready = i % 2 === 1;
  const applied = new Promise<void>((resolve) => {
    onApplied = () => {
      if (hasNode() === ready) resolve();
    };
  });
  const start = performance.now();
  fake.upsert(node(flipNode, ready));
  await applied;
  latencies.push(performance.now() - start);
}
onApplied = undefined;
controller.abort();
await discovery.finished;
for (const p of pools.values()) p.close();

latencies.sort((a, b) => a - b);
const fmt = (ms: number) => `${ms.toFixed(1)} ms`;
console.log(`| measure | value |
|---|---|
| objects listed (Services / Nodes / EndpointSlices / endpoints) | ${SERVICES} / ${NODES} / ${SERVICES} / ${
  SERVICES * ENDPOINTS_PER_SERVICE
} |
| initial list + watch start (fake API over HTTP, paged by 500) | ${fmt(listedMs)} |
| resolve 4 listeners + apply to live pools | ${fmt(resolveMs)} (${backends} backends) |
| watch event → live pool, p50 over ${FLIPS} node flips | ${fmt(percentile(latencies, 0.5))} |
| watch event → live pool, p99 / max | ${fmt(percentile(latencies, 0.99))} / ${
  fmt(latencies.at(-1)!)
} |`);
