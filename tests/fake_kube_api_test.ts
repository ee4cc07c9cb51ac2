/** The fake API server speaks the list/watch protocol the discovery loop relies on. */
import assert from "node:assert/strict";
import { FakeKubeApi, type KubeObject } from "./fake_kube_api.ts";

const HEADERS = { Authorization: "Bearer fake-token" };

function svc(name: string, namespace = "default"): KubeObject {
  return { kind: "Service", metadata: { name, namespace }, spec: { ports: [] } };
}

async function readLines(
  res: Response,
  count: number,
): Promise<{ type: string; object: KubeObject }[]> {
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  try {
    while (text.split("\n").length - 1 < count) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
    }
  } finally {
    await reader.cancel();
  }
  return text.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l));
}

Deno.test("fake lists with a resourceVersion and pages", async () => {
  await using fake = await FakeKubeApi.start();
  fake.upsert(svc("a"));
  fake.upsert(svc("b"));
  fake.upsert(svc("c", "other"));
  const res = await fetch(`${fake.url}/api/v1/namespaces/default/services?limit=1`, {
    headers: HEADERS,
  });
  const body = await res.json();
  assert.equal(body.kind, "ServiceList");
  assert.equal(body.metadata.resourceVersion, String(fake.resourceVersion));
  assert.deepEqual(body.items.map((i: KubeObject) => i.metadata.name), ["a"]);
  assert.equal(body.metadata.continue, "1");
  const unauthorized = await fetch(`${fake.url}/api/v1/services`);
  assert.equal(unauthorized.status, 401);
  await unauthorized.body?.cancel();
});

Deno.test("fake replays history after a resourceVersion and streams live events", async () => {
  await using fake = await FakeKubeApi.start();
  fake.upsert(svc("a"));
  const from = fake.resourceVersion;
  fake.upsert(svc("b"));
  fake.delete("Service", "default", "a");
  const res = await fetch(
    `${fake.url}/api/v1/services?watch=1&resourceVersion=${from}&allowWatchBookmarks=true`,
    { headers: HEADERS },
  );
  const pending = readLines(res, 4);
  await new Promise((r) => setTimeout(r, 20));
  fake.upsert(svc("b"));
  fake.bookmark();
  const events = await pending;
  assert.deepEqual(events.map((e) => e.type), ["ADDED", "DELETED", "MODIFIED", "BOOKMARK"]);
  assert.equal(events[3]!.object.metadata.resourceVersion, String(fake.resourceVersion));
});

Deno.test("fake answers a compacted resourceVersion with 410 Gone", async () => {
  await using fake = await FakeKubeApi.start();
  fake.upsert(svc("a"));
  const old = fake.resourceVersion - 1;
  fake.compact();
  const res = await fetch(`${fake.url}/api/v1/services?watch=1&resourceVersion=${old}`, {
    headers: HEADERS,
  });
  const [event] = await readLines(res, 1);
  assert.equal(event!.type, "ERROR");
  assert.equal((event!.object as unknown as { code: number }).code, 410);
  fake.setGoneAs("http");
  const gone = await fetch(`${fake.url}/api/v1/services?watch=1&resourceVersion=${old}`, {
    headers: HEADERS,
  });
  assert.equal(gone.status, 410);
  assert.equal((await gone.json()).reason, "Expired");
});

Deno.test("fake serves the discovery.k8s.io versions it is told to", async () => {
  await using fake = await FakeKubeApi.start({ discoveryVersions: ["v1beta1"] });
  const v1 = await fetch(`${fake.url}/apis/discovery.k8s.io/v1`, { headers: HEADERS });
  assert.equal(v1.status, 404);
  await v1.body?.cancel();
  const beta = await fetch(`${fake.url}/apis/discovery.k8s.io/v1beta1`, { headers: HEADERS });
  assert.equal((await beta.json()).resources[0].name, "endpointslices");
  const groups = await (await fetch(`${fake.url}/apis`, { headers: HEADERS })).json();
  assert.deepEqual(groups.groups[0].versions.map((v: { version: string }) => v.version), [
    "v1beta1",
  ]);
});

Deno.test("fake goes down and comes back on the same port", async () => {
  await using fake = await FakeKubeApi.start();
  const port = fake.port;
  await fake.stop();
  await assert.rejects(fetch(`${fake.url}/api`, { headers: HEADERS }));
  await fake.start();
  assert.equal(fake.port, port);
  const res = await fetch(`${fake.url}/api`, { headers: HEADERS });
  assert.equal((await res.json()).kind, "APIVersions");
});

Deno.test("fake answers lists with the fault it is told to, and heals", async () => {
  await using fake = await FakeKubeApi.start();
  fake.upsert(svc("a"));
  const list = () => fetch(`${fake.url}/api/v1/services?limit=500`, { headers: HEADERS });
  fake.setFault("html", "list");
  let res = await list();
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), "text/html");
  assert.match(await res.text(), /^<!DOCTYPE html>/);
  fake.setFault("empty-object", "list");
  res = await list();
  assert.deepEqual(await res.json(), {});
  fake.setFault("server-error");
  res = await list();
  assert.equal(res.status, 500);
  assert.equal((await res.json()).reason, "InternalError");
  fake.setFault("forbidden");
  res = await list();
  assert.equal(res.status, 403);
  await res.body?.cancel();
  // Discovery documents are not affected.
  res = await fetch(`${fake.url}/apis/discovery.k8s.io/v1`, { headers: HEADERS });
  assert.equal((await res.json()).kind, "APIResourceList");
  fake.setFault(undefined);
  res = await list();
  assert.deepEqual((await res.json()).items.map((i: KubeObject) => i.metadata.name), ["a"]);
});

Deno.test("fake holds a hung watch open without a byte until dropped", async () => {
  await using fake = await FakeKubeApi.start();
  fake.setFault("hang", "watch");
  const res = await fetch(`${fake.url}/api/v1/services?watch=1&timeoutSeconds=1`, {
    headers: HEADERS,
  });
  assert.equal(res.status, 200);
  const reader = res.body!.getReader();
  const first = reader.read();
  const raced = await Promise.race([
    first.then(() => "data"),
    new Promise((r) => setTimeout(() => r("silent"), 1300)),
  ]);
  assert.equal(raced, "silent", "nothing arrives, not even after timeoutSeconds");
  assert.equal(fake.silentWatchCount, 1);
  fake.dropWatches();
  assert.equal((await first).done, true);
  assert.equal(fake.silentWatchCount, 0);
});

Deno.test("fake writes raw lines to open watches", async () => {
  await using fake = await FakeKubeApi.start();
  const res = await fetch(`${fake.url}/api/v1/services?watch=1&resourceVersion=1`, {
    headers: HEADERS,
  });
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  for (let i = 0; i < 100 && fake.watchCount === 0; i++) {
    await new Promise((r) => setTimeout(r, 5));
  }
  fake.sendRaw("<html>not json</html>");
  const { value } = await reader.read();
  assert.equal(value, "<html>not json</html>\n");
  await reader.cancel();
});
