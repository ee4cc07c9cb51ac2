/**
 * Kubernetes discovery against a real kube-apiserver (1.20: core/v1 and
 * discovery.k8s.io/v1beta1), running as the least-privilege ServiceAccount of deploy/kubernetes/rbac.yaml.
 *
 * Skipped with a message when the binary is not built (scripts/kube_apiserver_build.sh).
 * `NAUTILUS_E2E_OUTAGE_MS` sets how long the apiserver stays down (default 20000).
 */
import assert from "node:assert/strict";
import type { Inventory } from "../../src/core/inventory.ts";
import type { PoolSpec } from "../../src/core/pool_spec.ts";
import { KubernetesDiscovery, type KubernetesSyncStatus } from "../../src/discovery/mod.ts";
import { resolvePool } from "../../src/resolve/mod.ts";
import { e2eSkipReason, KubeCluster, nodeObject, serviceObject } from "./_cluster.ts";

const skipReason = e2eSkipReason();
if (skipReason) console.warn(`discovery e2e skipped: ${skipReason}`);

const ANNOTATED = { "nautiluslb.cloudresty.io/enabled": "true" };
const OUTAGE_MS = Number(Deno.env.get("NAUTILUS_E2E_OUTAGE_MS") ?? "20000");

const WEB_POOL: PoolSpec = {
  name: "web",
  listenerAddress: ":8080",
  backendPortName: "http",
  namespaces: ["e2e"],
  backendMode: "auto",
  nodeAddressTypes: ["InternalIP"],
  excludeCordonedNodes: false,
  backends: [],
};

function poolAddresses(inv: Inventory): string[] {
  return resolvePool(inv, WEB_POOL).backends.map((b) => b.address);
}

Deno.test({
  name: "discovery against a real kube-apiserver",
  ignore: skipReason !== undefined,
  async fn(t) {
    await using cluster = await KubeCluster.start();
    await cluster.ensureNamespace("e2e");
    await cluster.ensureNamespace("other");
    await cluster.create(nodeObject("node-a", { address: "127.0.0.2" }));
    await cluster.create(nodeObject("node-b", { address: "127.0.0.3" }));
    await cluster.create(nodeObject("node-c", { address: "127.0.0.4", ready: "False" }));
    const web = await cluster.create(serviceObject("e2e", "web", { annotations: ANNOTATED }));
    await cluster.create(serviceObject("e2e", "plain"));
    await cluster.create(serviceObject("other", "web", { annotations: ANNOTATED }));
    const nodePort = (web.spec as { ports: { nodePort: number }[] }).ports[0]!.nodePort;
    assert.ok(nodePort >= 30000 && nodePort <= 32767, `allocated nodePort ${nodePort}`);

    const ac = new AbortController();
    const statuses: KubernetesSyncStatus[] = [];
    const changes: Inventory[] = [];
    const waiters = new Set<() => void>();
    const discovery = new KubernetesDiscovery({
      kubeconfigPath: cluster.lbKubeconfig,
      namespaces: ["e2e"],
      signal: ac.signal,
      backoff: { initialMs: 200, maxMs: 2000 },
      initialSyncTimeoutMs: 15_000,
      onChange: (inv) => {
        changes.push(inv);
        for (const w of [...waiters]) w();
      },
      onStatus: (s) => {
        statuses.push(s);
        for (const w of [...waiters]) w();
      },
    });
    const until = (check: () => boolean, timeoutMs: number, what: string) =>
      new Promise<void>((resolve, reject) => {
        if (check()) return resolve();
        const w = () => {
          if (!check()) return;
          waiters.delete(w);
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(() => {
          waiters.delete(w);
          reject(new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`));
        }, timeoutMs);
        waiters.add(w);
      });
    const current = () => discovery.inventory!;

    try {
      const initial = await discovery.start();

      await t.step("annotated NodePort Service is discovered and pooled on Ready nodes", () => {
        assert.equal(discovery.endpointsSource, "discovery.k8s.io/v1beta1");
        assert.ok(initial.services.has("e2e/web"));
        assert.equal(initial.services.get("e2e/web")?.ports[0]?.nodePort, nodePort);
        assert.equal(initial.nodes.size, 3);
        assert.deepEqual(poolAddresses(initial), [
          `127.0.0.2:${nodePort}`,
          `127.0.0.3:${nodePort}`,
        ]);
        const excluded = resolvePool(initial, WEB_POOL).excluded;
        assert.ok(excluded.some((e) => e.node === "node-c" && e.reason === "node-not-ready"));
      });

      await t.step("unannotated and other-namespace Services are ignored", () => {
        assert.ok(initial.services.has("e2e/plain"), "in the inventory, not in the pool");
        assert.equal(initial.services.has("other/web"), false, "namespace not watched");
        const services = new Set(resolvePool(initial, WEB_POOL).backends.map((b) => b.service));
        assert.deepEqual([...services], ["e2e/web"]);
      });

      await t.step("a node turning NotReady is reflected within a second", async () => {
        const t0 = performance.now();
        await cluster.setNodeReady("node-a", "False");
        await until(
          () => current().nodes.get("node-a")?.ready === "False",
          5000,
          "node-a NotReady",
        );
        const ms = performance.now() - t0;
        console.log(`node NotReady -> inventory: ${ms.toFixed(0)} ms (incl. the PUT)`);
        assert.ok(ms < 1000, `${ms} ms`);
        assert.deepEqual(poolAddresses(current()), [`127.0.0.3:${nodePort}`]);
      });

      await t.step("a deleted Service empties the pool", async () => {
        const t0 = performance.now();
        await cluster.delete("Service", "e2e", "web");
        await until(() => !current().services.has("e2e/web"), 5000, "e2e/web gone");
        console.log(`Service deleted -> inventory: ${(performance.now() - t0).toFixed(0)} ms`);
        assert.deepEqual(poolAddresses(current()), []);
      });

      await t.step("the last inventory is kept while the apiserver is down", async () => {
        const before = current();
        const changesBefore = changes.length;
        await cluster.stopApiserver();
        await until(() => statuses.at(-1)?.state === "disconnected", 10_000, "disconnected");
        console.log(`disconnected: ${statuses.at(-1)?.error}`);
        await new Promise((r) => setTimeout(r, OUTAGE_MS));
        assert.equal(changes.length, changesBefore, "no inventory emitted while down");
        assert.equal(current(), before);
        assert.equal(current().nodes.size, 3);

        await cluster.startApiserver();
        const t0 = performance.now();
        await cluster.create(serviceObject("e2e", "web", { annotations: ANNOTATED }));
        await until(() => current().services.has("e2e/web"), 15_000, "e2e/web back");
        console.log(
          `change after the apiserver returned -> inventory: ${
            (performance.now() - t0).toFixed(0)
          } ms`,
        );
        await until(() => statuses.at(-1)?.state === "synced", 15_000, "synced");
        assert.equal(poolAddresses(current()).length, 1);
      });
    } finally {
      ac.abort();
      await discovery.finished;
    }
  },
});
