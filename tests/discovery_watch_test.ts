/**
 * The Kubernetes discovery loop against the in-process fake API server: initial list, watch
 * events, bookmarks, 410 Gone, dropped watches, API outages, EndpointSlice API versions.
 */
import assert from "node:assert/strict";
import { KubernetesDiscovery, type KubernetesSyncStatus } from "../src/discovery/mod.ts";
import { endpoints, node, populate, service, slice, startDiscovery } from "./_discovery_driver.ts";
import { FakeKubeApi } from "./fake_kube_api.ts";

function median(values: readonly number[]): number {
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[Math.floor(sorted.length / 2)]!;
}

Deno.test("discovery lists Services, Nodes and EndpointSlices before start() resolves", async () => {
  await using h = await startDiscovery({ setup: populate });
  assert.deepEqual([...h.initial.services.keys()], ["a/web", "b/db"]);
  assert.deepEqual([...h.initial.nodes.keys()], ["n1", "n2"]);
  assert.deepEqual([...h.initial.endpointSlices.keys()], ["a/web-abc"]);
  assert.equal(h.initial.hasEndpointSlices, true);
  assert.equal(h.initial.nodes.get("n2")?.ready, "False");
  assert.equal(h.discovery.endpointsSource, "discovery.k8s.io/v1");
  assert.equal(h.statuses.at(-1)?.state, "synced");
  assert.equal(h.changes.length, 0, "the initial snapshot is start()'s result, not an onChange");
  // Lists are namespace-wide and watches carry bookmarks and the list's resourceVersion.
  const watch = h.fake.requests.find((r) => r.startsWith("GET /api/v1/services?watch=1"));
  assert.ok(watch, "a services watch was opened");
  assert.match(watch, /allowWatchBookmarks=true/);
  assert.match(watch, /resourceVersion=\d+/);
});

Deno.test("discovery watches only the given namespaces; nodes stay cluster-wide", async () => {
  await using h = await startDiscovery({ setup: populate, discovery: { namespaces: ["a"] } });
  assert.deepEqual([...h.initial.services.keys()], ["a/web"]);
  assert.deepEqual([...h.initial.endpointSlices.keys()], ["a/web-abc"]);
  assert.equal(h.initial.nodes.size, 2);
  h.fake.upsert(service("b", "other"));
  h.fake.upsert(service("a", "api"));
  const inv = await h.waitFor((i) => i.services.has("a/api"));
  assert.equal(inv.services.has("b/other"), false);
});

Deno.test("discovery follows all pages of a paginated list", async () => {
  await using h = await startDiscovery({
    setup: (fake) => {
      for (let i = 0; i < 7; i++) fake.upsert(service("a", `s${i}`));
    },
    discovery: { pageSize: 2 },
  });
  assert.equal(h.initial.services.size, 7);
  assert.ok(h.fake.requests.some((r) => r.includes("continue=")));
});

Deno.test("discovery reflects add, modify and delete within a second", async () => {
  await using h = await startDiscovery({ setup: populate });
  const latencies: number[] = [];
  for (let i = 0; i < 10; i++) {
    let t0 = performance.now();
    h.fake.upsert(service("a", `svc${i}`));
    await h.waitFor((inv) => inv.services.has(`a/svc${i}`));
    latencies.push(performance.now() - t0);

    t0 = performance.now();
    h.fake.upsert(service("a", `svc${i}`, { port: 81 }));
    await h.waitFor((inv) => inv.services.get(`a/svc${i}`)?.ports[0]?.port === 81);
    latencies.push(performance.now() - t0);

    t0 = performance.now();
    h.fake.delete("Service", "a", `svc${i}`);
    await h.waitFor((inv) => !inv.services.has(`a/svc${i}`));
    latencies.push(performance.now() - t0);
  }
  const t0 = performance.now();
  h.fake.upsert(node("n1", "False"));
  await h.waitFor((inv) => inv.nodes.get("n1")?.ready === "False");
  latencies.push(performance.now() - t0);
  const max = Math.max(...latencies);
  console.log(
    `upsert -> onChange latency over ${latencies.length} changes: median ${
      median(latencies).toFixed(1)
    } ms, max ${max.toFixed(1)} ms`,
  );
  assert.ok(max < 1000, `latency ${max} ms`);
  // Snapshots are fresh objects: an earlier one is not changed by later events.
  assert.equal(h.initial.services.has("a/svc0"), false);
});

Deno.test("discovery coalesces a burst of events into few snapshots", async () => {
  await using h = await startDiscovery({ setup: populate });
  for (let i = 0; i < 100; i++) h.fake.upsert(service("a", `burst${i}`));
  await h.waitFor((inv) => inv.services.has("a/burst99"));
  assert.ok(h.changes.length <= 20, `${h.changes.length} snapshots for 100 events`);
  const last = h.changes.at(-1)!;
  assert.equal(last.services.size, 102);
});

Deno.test("discovery resumes a dropped watch from the last BOOKMARK", async () => {
  await using h = await startDiscovery({ setup: populate });
  h.fake.upsert(node("n3")); // moves the resourceVersion past the services' last event
  await h.waitFor((inv) => inv.nodes.has("n3"));
  h.fake.bookmark();
  const bookmarkRv = h.fake.resourceVersion;
  await new Promise((r) => setTimeout(r, 50));
  const before = h.fake.requests.length;
  h.fake.dropWatches();
  h.fake.upsert(service("a", "after-drop"));
  await h.waitFor((inv) => inv.services.has("a/after-drop"));
  const rewatch = h.fake.requests.slice(before).find((r) =>
    r.startsWith("GET /api/v1/services?watch=1")
  );
  assert.ok(rewatch);
  assert.match(rewatch, new RegExp(`resourceVersion=${bookmarkRv}(&|$)`));
  // Re-watching from a resourceVersion needs no relist.
  const relists = h.fake.requests.slice(before).filter((r) =>
    r.startsWith("GET /api/v1/services?limit")
  );
  assert.equal(relists.length, 0);
});

Deno.test("discovery reconnects after every watch connection is dropped", async () => {
  await using h = await startDiscovery({ setup: populate });
  for (let i = 0; i < 3; i++) {
    h.fake.dropWatches();
    h.fake.upsert(node(`drop${i}`));
    await h.waitFor((inv) => inv.nodes.has(`drop${i}`));
  }
  for (let i = 0; i < 100 && h.fake.watchCount < 3; i++) {
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.equal(h.fake.watchCount, 3);
});

Deno.test("discovery relists after 410 Gone sent as an ERROR event", async () => {
  await using h = await startDiscovery({ setup: populate });
  const before = h.fake.requests.length;
  h.fake.compact();
  h.fake.upsert(service("a", "after-gone"));
  h.fake.delete("Service", "b", "db");
  const inv = await h.waitFor((i) => i.services.has("a/after-gone") && !i.services.has("b/db"));
  assert.equal(inv.nodes.size, 2);
  assert.ok(h.fake.requests.slice(before).some((r) => r.startsWith("GET /api/v1/services?limit")));
  assert.ok(h.changes.every((c) => c.nodes.size > 0), "no emptied inventory was emitted");
  assert.notEqual(h.statuses.at(-1)?.state, "disconnected");
});

Deno.test("discovery relists after HTTP 410 Gone on re-watch", async () => {
  await using h = await startDiscovery({ setup: populate, fake: { goneAs: "http" } });
  await h.fake.stop();
  h.fake.upsert(service("a", "while-down"));
  h.fake.compact();
  await h.fake.start();
  const inv = await h.waitFor((i) => i.services.has("a/while-down"));
  assert.equal(inv.services.size, 3);
});

Deno.test("discovery keeps the last inventory while the API is down and catches up after", async () => {
  await using h = await startDiscovery({ setup: populate });
  const changesBefore = h.changes.length;
  await h.fake.stop();
  await h.waitForStatus((s) => s.state === "disconnected");
  const down = h.statuses.find((s) => s.state === "disconnected")!;
  assert.match(down.error ?? "", /Cannot watch/);
  await new Promise((r) => setTimeout(r, 300)); // several failed retries
  assert.equal(h.changes.length, changesBefore, "no inventory emitted while down");
  assert.equal(h.discovery.inventory?.services.size, 2);
  assert.equal(h.discovery.inventory?.nodes.size, 2);

  h.fake.upsert(node("n1", "False"));
  h.fake.delete("Service", "b", "db");
  await h.fake.start();
  const inv = await h.waitFor((i) =>
    i.nodes.get("n1")?.ready === "False" && !i.services.has("b/db")
  );
  assert.equal(inv.services.size, 1);
  await h.waitForStatus((s) => s.state === "synced" && h.statuses.at(-1) === s);
});

Deno.test("discovery uses discovery.k8s.io/v1beta1 when v1 is not served", async () => {
  await using h = await startDiscovery({
    setup: populate,
    fake: { discoveryVersions: ["v1beta1"] },
  });
  assert.equal(h.discovery.endpointsSource, "discovery.k8s.io/v1beta1");
  assert.equal(h.initial.hasEndpointSlices, true);
  assert.deepEqual([...h.initial.endpointSlices.keys()], ["a/web-abc"]);
  assert.ok(
    h.fake.requests.some((r) => r.startsWith("GET /apis/discovery.k8s.io/v1beta1/endpointslices")),
  );
});

Deno.test("discovery falls back to core/v1 Endpoints when no EndpointSlice API is served", async () => {
  await using h = await startDiscovery({
    setup: (fake) => {
      populate(fake);
      fake.upsert(endpoints("a", "web"));
    },
    fake: { discoveryVersions: [] },
  });
  assert.equal(h.discovery.endpointsSource, "v1/endpoints");
  assert.equal(h.initial.hasEndpointSlices, true);
  assert.deepEqual([...h.initial.endpointSlices.keys()], ["a/web"]);
  assert.equal(h.statuses.at(-1)?.endpointsSource, "v1/endpoints");
});

Deno.test("discovery reports no EndpointSlices when neither API nor fallback is available", async () => {
  await using h = await startDiscovery({
    setup: populate,
    discovery: { endpointsFallback: false },
    fake: { discoveryVersions: [] },
  });
  assert.equal(h.initial.hasEndpointSlices, false);
  assert.equal(h.initial.endpointSlices.size, 0);
  assert.equal(h.initial.services.size, 2);
  h.fake.upsert(service("a", "still-works"));
  await h.waitFor((i) => i.services.has("a/still-works"));
});

Deno.test("discovery switches EndpointSlice API version when the server stops serving v1", async () => {
  await using h = await startDiscovery({ setup: populate });
  h.fake.setDiscoveryVersions(["v1beta1"]);
  await h.waitForStatus((s) => s.endpointsSource === "discovery.k8s.io/v1beta1");
  h.fake.upsert(slice("a", "web-new", "web"));
  await h.waitFor((i) => i.endpointSlices.has("a/web-new"));
});

Deno.test("discovery survives an onChange callback that throws", async () => {
  let calls = 0;
  await using h = await startDiscovery({
    setup: populate,
    discovery: {
      onChange: () => {
        calls++;
        throw new Error("consumer bug");
      },
    },
  });
  const poll = async (key: string) => {
    for (let i = 0; i < 200 && !h.discovery.inventory?.services.has(key); i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.ok(h.discovery.inventory?.services.has(key), key);
  };
  h.fake.upsert(service("a", "one"));
  await poll("a/one");
  h.fake.upsert(service("a", "two"));
  await poll("a/two");
  assert.ok(calls >= 2);
});

Deno.test("discovery reports a rejected token and start() times out clearly", async () => {
  const fake = await FakeKubeApi.start();
  try {
    const kubeconfigPath = await fake.kubeconfig({ token: "wrong" });
    const ac = new AbortController();
    const statuses: KubernetesSyncStatus[] = [];
    const discovery = new KubernetesDiscovery({
      kubeconfigPath,
      namespaces: "all",
      signal: ac.signal,
      backoff: { initialMs: 20, maxMs: 100 },
      initialSyncTimeoutMs: 300,
      onChange: () => {},
      onStatus: (s) => statuses.push(s),
    });
    await assert.rejects(discovery.start(), /within 300 ms: Cannot watch .*401: Unauthorized/);
    assert.ok(statuses.some((s) => s.state === "disconnected" && /401/.test(s.error ?? "")));
    ac.abort();
    await discovery.finished;
  } finally {
    await fake.close();
  }
});

Deno.test("discovery stops cleanly when aborted before the initial sync", async () => {
  const fake = await FakeKubeApi.start();
  const kubeconfigPath = await fake.kubeconfig();
  await fake.stop();
  try {
    const ac = new AbortController();
    const discovery = new KubernetesDiscovery({
      kubeconfigPath,
      namespaces: "all",
      signal: ac.signal,
      backoff: { initialMs: 20, maxMs: 100 },
      onChange: () => assert.fail("no change before sync"),
    });
    const started = discovery.start();
    setTimeout(() => ac.abort(new Error("test abort")), 100);
    await assert.rejects(started, /test abort/);
    await discovery.finished;
  } finally {
    await fake.close();
  }
});
