/**
 * Kubernetes API faults against `KubernetesDiscovery`, through the fake API server: an outage,
 * 5xx answers, bodies that are not lists or events, a watch that hangs, 410 Gone mid-stream,
 * 401/403. For each: the failure is logged, retried with backoff, the last inventory is kept
 * (never emptied), status says what is wrong, nothing crashes or rejects unhandled.
 */
import assert from "node:assert/strict";
import { KubernetesDiscovery, type KubernetesSyncStatus } from "../../src/discovery/mod.ts";
import { resetLogging, setupLogging } from "../../src/log/mod.ts";
import {
  type DiscoveryDriver,
  type DiscoveryDriverOptions,
  node,
  populate,
  service,
  startDiscovery,
} from "../_discovery_driver.ts";
import { delay } from "../_helpers.ts";
import { FakeKubeApi } from "../fake_kube_api.ts";

/** How long the API is down in the outage scenario. */
const OUTAGE_MS = 3_000;
/** Generous bound for anything that should happen "promptly" on a shared machine. */
const WAIT_MS = 5_000;
/** Window over which request rates are counted. */
const RATE_WINDOW_MS = 1_000;

/** A discovery on the populated fake, with its log lines and unhandled rejections. */
interface Harness extends DiscoveryDriver {
  readonly logs: string[];
  readonly unhandled: unknown[];
  /** Asserts the inventory still has everything `populate` put in. */
  assertKept(): void;
}

async function harness(
  discovery: DiscoveryDriverOptions["discovery"] = {},
  fake: DiscoveryDriverOptions["fake"] = {},
): Promise<Harness> {
  const logs: string[] = [];
  await setupLogging({ level: "trace", write: (line) => logs.push(line) });
  const unhandled: unknown[] = [];
  const onUnhandled = (e: PromiseRejectionEvent) => unhandled.push(e.reason);
  globalThis.addEventListener("unhandledrejection", onUnhandled);
  const restore = async () => {
    globalThis.removeEventListener("unhandledrejection", onUnhandled);
    await resetLogging();
  };
  let driver: DiscoveryDriver;
  try {
    driver = await startDiscovery({ setup: populate, discovery, fake, waitMs: WAIT_MS });
  } catch (error) {
    await restore();
    throw error;
  }
  return {
    ...driver,
    logs,
    unhandled,
    assertKept() {
      const inv = driver.discovery.inventory!;
      assert.deepEqual([...inv.services.keys()], ["a/web", "b/db"]);
      assert.deepEqual([...inv.nodes.keys()], ["n1", "n2"]);
      assert.deepEqual([...inv.endpointSlices.keys()], ["a/web-abc"]);
      assert.ok(
        driver.changes.every((c) => c.services.size > 0 && c.nodes.size > 0),
        "no emptied inventory was emitted",
      );
    },
    async [Symbol.asyncDispose]() {
      await driver[Symbol.asyncDispose]();
      await restore();
    },
  };
}

/** Requests matching `pattern` that arrive within {@linkcode RATE_WINDOW_MS}. */
async function countRequests(fake: FakeKubeApi, pattern: RegExp): Promise<number> {
  const before = fake.requests.length;
  await delay(RATE_WINDOW_MS);
  return fake.requests.slice(before).filter((r) => pattern.test(r)).length;
}

/** Recovery: heals the fake, then a new Service must arrive and status return to synced. */
async function assertRecovers(h: Harness, name: string): Promise<void> {
  h.fake.setFault(undefined);
  h.fake.upsert(service("a", name));
  await h.waitFor((i) => i.services.has(`a/${name}`), `a/${name} after recovery`);
  await h.waitForStatus(
    (s) => s.state === "synced" && h.statuses.at(-1) === s,
    "synced after recovery",
  );
  assert.deepEqual(h.unhandled, [], "no unhandled rejection");
}

Deno.test("API stopped, then back with changes: inventory kept meanwhile, change arrives", async () => {
  // The backoff the CLI uses, so the recovery time measured is the one operators see.
  await using h = await harness({ backoff: { initialMs: 250, maxMs: 5_000 } });
  const changesBefore = h.changes.length;
  await h.fake.stop();
  const down = await h.waitForStatus((s) => s.state === "disconnected", "disconnected");
  assert.equal(down.failure, "unreachable");
  assert.match(down.error ?? "", /^Cannot watch /);
  await delay(OUTAGE_MS);
  assert.equal(h.changes.length, changesBefore, "nothing emitted while down");
  h.assertKept();
  assert.ok(h.logs.some((l) => /WRN.*Cannot watch .*retrying with backoff/.test(l)), "logged");

  h.fake.upsert(node("n3"));
  h.fake.delete("Service", "b", "db");
  await h.fake.start();
  const t0 = performance.now();
  await h.waitFor((i) => i.nodes.has("n3") && !i.services.has("b/db"), "changes after outage");
  const elapsed = performance.now() - t0;
  console.log(`first change after a ${OUTAGE_MS} ms outage applied in ${elapsed.toFixed(0)} ms`);
  assert.ok(elapsed < WAIT_MS, `${elapsed} ms`);
  await h.waitForStatus((s) => s.state === "synced" && h.statuses.at(-1) === s, "synced");
  assert.deepEqual(h.unhandled, []);
});

Deno.test("a server answering 500s: logged, backed off, inventory kept", async () => {
  await using h = await harness();
  h.fake.setFault("server-error");
  h.fake.dropWatches();
  const down = await h.waitForStatus((s) => s.failure === "server-error", "server-error");
  assert.equal(down.state, "disconnected");
  assert.match(down.error ?? "", /returned 500: etcdserver: request timed out/);
  const watches = await countRequests(h.fake, /watch=1/);
  // 3 reflectors backing off towards 200 ms: ~15 a second; without backoff it is thousands.
  assert.ok(watches <= 40, `${watches} watch requests in ${RATE_WINDOW_MS} ms`);
  h.assertKept();
  assert.ok(h.logs.some((l) => /WRN.*returned 500/.test(l)), "logged");
  await assertRecovers(h, "after-500");
});

for (const fault of ["html", "empty-object"] as const) {
  Deno.test(`a relist answered 200 with ${fault}: an error, not an empty list`, async () => {
    await using h = await harness();
    h.fake.setFault(fault, "list");
    h.fake.compact(); // every watch gets 410 Gone and must relist
    const down = await h.waitForStatus((s) => s.failure === "invalid-response", "invalid-response");
    assert.equal(down.state, "disconnected");
    assert.match(down.error ?? "", /returned 200 without a list: /);
    const lists = await countRequests(h.fake, /limit=/);
    assert.ok(lists <= 40, `${lists} list requests in ${RATE_WINDOW_MS} ms`);
    h.assertKept();
    assert.ok(h.logs.some((l) => /WRN.*without a list/.test(l)), "logged");
    await assertRecovers(h, `after-${fault}`);
  });
}

Deno.test("garbage on a watch: logged (rate-limited), reconnected with backoff", async () => {
  await using h = await harness();
  h.fake.sendRaw("<html>502 Bad Gateway</html>");
  const down = await h.waitForStatus((s) => s.failure === "invalid-response", "invalid-response");
  assert.match(down.error ?? "", /sent a line that is not JSON: "<html>502 Bad Gateway<\/html>"/);
  h.assertKept();
  // A watch that keeps sending garbage: retried with backoff, logged once per reflector.
  h.fake.setFault("garbage", "watch");
  h.fake.dropWatches();
  const logsBefore = h.logs.length;
  const watches = await countRequests(h.fake, /watch=1/);
  assert.ok(watches <= 40, `${watches} watch requests in ${RATE_WINDOW_MS} ms`);
  const logged = h.logs.slice(logsBefore).filter((l) => /not JSON/.test(l)).length;
  assert.ok(logged >= 1 && logged <= 3, `${logged} log lines for ${watches} garbage watches`);
  h.assertKept();
  await assertRecovers(h, "after-garbage");
});

Deno.test("a watch that hangs without a byte is dropped after the idle timeout", async () => {
  await using h = await harness({ watchTimeoutSeconds: 1, watchIdleTimeoutMs: 1_500 });
  h.fake.setFault("hang", "watch");
  h.fake.dropWatches();
  await delay(200);
  assert.ok(h.fake.silentWatchCount > 0, "watches hang");
  const down = await h.waitForStatus((s) => s.failure === "timeout", "timeout");
  assert.equal(down.state, "disconnected");
  assert.match(down.error ?? "", /Watch sent nothing for 1500 ms/);
  assert.ok(h.fake.requests.some((r) => /watch=1.*timeoutSeconds=1/.test(r)));
  h.assertKept();
  assert.ok(h.logs.some((l) => /WRN.*Watch sent nothing/.test(l)), "logged");
  await assertRecovers(h, "after-hang");
});

Deno.test("410 Gone mid-stream relists without emptying; repeated 410s back off", async () => {
  await using h = await harness();
  const before = h.fake.requests.length;
  h.fake.compact();
  h.fake.upsert(service("a", "after-gone"));
  await h.waitFor((i) => i.services.has("a/after-gone"), "a/after-gone");
  assert.ok(h.fake.requests.slice(before).some((r) => /services\?limit=/.test(r)), "relisted");
  assert.ok(h.changes.every((c) => c.nodes.size === 2 && c.services.size >= 2), "never emptied");
  // A server that answers every watch with 410: relist, then back off, not 60-90 requests/s.
  h.fake.setFault("gone", "watch");
  h.fake.dropWatches();
  const requests = await countRequests(h.fake, /\/(services|nodes|endpointslices)\?/);
  assert.ok(requests <= 60, `${requests} requests in ${RATE_WINDOW_MS} ms`);
  assert.ok(h.logs.some((l) => /WRN.*too old resource version/.test(l)), "logged");
  assert.equal(h.discovery.inventory?.nodes.size, 2);
  await assertRecovers(h, "after-410");
});

for (const fault of ["unauthorized", "forbidden"] as const) {
  Deno.test(`${fault} is reported as ${fault} with the resource, not as unreachable`, async () => {
    await using h = await harness();
    h.fake.setFault(fault);
    h.fake.dropWatches();
    const down = await h.waitForStatus((s) => s.failure === fault, fault);
    assert.match(down.error ?? "", new RegExp(`^Cannot watch \\w+: ${fault}: GET /`));
    h.assertKept();
    await assertRecovers(h, `after-${fault}`);
  });
}

Deno.test("no credential appears in any log line or status at trace level", async () => {
  const token = "tok-5e1b9d0c77";
  const password = "pw-c40f2a9e13";
  const logs: string[] = [];
  await setupLogging({ level: "trace", write: (line) => logs.push(line) });
  await using fake = await FakeKubeApi.start({ token });
  populate(fake);
  const dir = await Deno.makeTempDir({ prefix: "nautiluslb-redact-test-" });
  try {
    const kubeconfigPath = `${dir}/config`;
    await Deno.writeTextFile(
      kubeconfigPath,
      [
        "apiVersion: v1",
        "kind: Config",
        "clusters:",
        "- name: c",
        "  cluster:",
        `    server: http://admin:${password}@127.0.0.1:${fake.port}`,
        "    insecure-skip-tls-verify: true",
        "users:",
        "- name: c",
        "  user:",
        `    token: ${token}`,
        "contexts:",
        "- name: c",
        "  context: { cluster: c, user: c }",
        "current-context: c",
        "",
      ].join("\n"),
    );
    const ac = new AbortController();
    const statuses: KubernetesSyncStatus[] = [];
    const discovery = new KubernetesDiscovery({
      kubeconfigPath,
      namespaces: "all",
      signal: ac.signal,
      backoff: { initialMs: 20, maxMs: 100 },
      onChange: () => {},
      onStatus: (s) => statuses.push(s),
    });
    const initial = await discovery.start();
    assert.equal(initial.nodes.size, 2, "the token still authenticates");
    // Failures that echo requests and bodies: 401, a body that is not a list, garbage.
    fake.setFault("unauthorized");
    fake.dropWatches();
    await delay(300);
    fake.setFault("html", "list");
    fake.compact();
    await delay(300);
    fake.setFault(undefined);
    fake.sendRaw(`{"token": "${token}", "url": "http://admin:${password}@x"}`);
    await delay(300);
    ac.abort();
    await discovery.finished;
    const logged = logs.join("\n");
    assert.match(logged, /Kubernetes discovery using .*server http:\/\/127\.0\.0\.1:\d+/);
    assert.match(logged, /unauthorized/);
    const reported = JSON.stringify(statuses);
    for (const secret of [token, password]) {
      assert.ok(!logged.includes(secret), `a log line shows ${secret}`);
      assert.ok(!reported.includes(secret), `a status shows ${secret}`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
    await resetLogging();
  }
});
