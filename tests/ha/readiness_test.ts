/**
 * The readiness contract a keepalived check or a BGP health script relies on, through the
 * real CLI: `/readyz` answers 200 exactly when this instance should get new connections
 * (listeners bound, first plans applied, not shutting down), never on backend health.
 *
 * - before the first Kubernetes sync: nothing listens yet, the admin port included, so a
 *   check sees a refused connection (not ready);
 * - while the Kubernetes API is unreachable after the first sync: 200, the last known pools
 *   keep serving, `?verbose` says `[!]discovery kubernetes disconnected`;
 * - a dead backend: 200 (`[!]pool ... 0/1 backends eligible`): moving the address would
 *   reset every connection and gain nothing, the other instance sees the same backends;
 * - after SIGTERM with `shutdownDelay`: 503 `not ready: shutting down` at once, while the
 *   listener still accepts until the delay ends.
 *
 * No root needed.
 *
 * @module
 */
import assert from "node:assert/strict";
import { ServeProcess } from "../reliability/_harness.ts";
import { closeQuietly, delay, freePort, waitUntil } from "../_helpers.ts";
import { FakeKubeApi } from "../fake_kube_api.ts";

/** What `/readyz` answers: its status, or 0 when nothing listens. */
async function readyz(
  adminPort: number,
  verbose = false,
): Promise<{ status: number; body: string }> {
  try {
    const response = await fetch(
      `http://127.0.0.1:${adminPort}/readyz${verbose ? "?verbose" : ""}`,
      {
        signal: AbortSignal.timeout(2_000),
      },
    );
    return { status: response.status, body: await response.text() };
  } catch {
    return { status: 0, body: "" };
  }
}

async function canConnect(port: number): Promise<boolean> {
  try {
    closeQuietly(await Deno.connect({ hostname: "127.0.0.1", port }));
    return true;
  } catch {
    return false;
  }
}

Deno.test("/readyz: refused before the first sync, ready without the API or a backend, 503 draining", async () => {
  const nodePort = freePort();
  let backend: Deno.TcpListener | undefined = Deno.listen({
    hostname: "127.0.0.2",
    port: nodePort,
  });
  const accepting = (async () => {
    for await (const conn of backend!) closeQuietly(conn);
  })();
  await using fake = await FakeKubeApi.start();
  fake.upsert({
    kind: "Node",
    metadata: { name: "node-a" },
    spec: {},
    status: {
      addresses: [{ type: "InternalIP", address: "127.0.0.2" }],
      conditions: [{ type: "Ready", status: "True" }],
    },
  });
  fake.upsert({
    kind: "Service",
    metadata: {
      name: "web",
      namespace: "default",
      annotations: { "nautiluslb.cloudresty.io/enabled": "true" },
    },
    spec: {
      type: "NodePort",
      clusterIP: "10.96.0.10",
      ports: [{ name: "web", protocol: "TCP", port: 80, nodePort }],
    },
  });
  const kubeconfig = await fake.kubeconfig();
  // The API is away when serve starts: no first sync yet.
  await fake.stop();
  const adminPort = freePort();
  const listenPort = freePort();
  const starting = ServeProcess.start(
    `settings:
  kubeconfigPath: ${JSON.stringify(kubeconfig)}
  adminAddress: "127.0.0.1:${adminPort}"
  logLevel: warning
  shutdownDelay: 2s
configurations:
  - name: web
    listenerAddress: "127.0.0.1:${listenPort}"
    backendPortName: web
    namespace: default
    healthCheck: { interval: 200ms, timeout: 200ms, rise: 1, fall: 1 }
`,
    adminPort,
  );
  let serve: ServeProcess | undefined;
  try {
    // Before the first sync: neither the admin port nor the listener is bound.
    for (let i = 0; i < 10; i++) {
      assert.equal((await readyz(adminPort)).status, 0, "/readyz before the first sync");
      assert.equal(await canConnect(listenPort), false, "the listener before the first sync");
      await delay(150);
    }
    await fake.start();
    serve = await starting;
    assert.equal((await readyz(adminPort)).status, 200, "ready after the first sync");
    assert.ok(await canConnect(listenPort));

    // The API unreachable after the first sync: still ready, the last known pools serve.
    await fake.stop();
    await waitUntil(
      async () =>
        (await readyz(adminPort, true)).body.includes("[!]discovery kubernetes disconnected"),
      "discovery disconnected on /readyz?verbose",
      10_000,
    );
    const away = await readyz(adminPort, true);
    assert.equal(away.status, 200, away.body);
    assert.ok(await canConnect(listenPort));
    await fake.start();
    await waitUntil(
      async () => (await readyz(adminPort, true)).body.includes("[+]discovery ok"),
      "discovery in sync again",
      15_000,
    );

    // A dead backend: still ready; only the pool line says so.
    backend.close();
    backend = undefined;
    await accepting;
    await waitUntil(
      async () =>
        (await readyz(adminPort, true)).body.includes("[!]pool web 0/1 backends eligible"),
      "the pool without an eligible backend",
      10_000,
    );
    assert.equal((await readyz(adminPort)).status, 200);

    // SIGTERM: not ready at once, still accepting during shutdownDelay.
    serve.kill("SIGTERM");
    await waitUntil(
      async () => (await readyz(adminPort)).status === 503,
      "503 after SIGTERM",
      1_000,
    );
    const draining = await readyz(adminPort);
    assert.equal(draining.body, "not ready: shutting down\n");
    assert.ok(await canConnect(listenPort), "still accepting during shutdownDelay");
    assert.equal((await serve.status).code, 0);
  } finally {
    backend?.close();
    await (serve ?? (await starting.catch(() => undefined)))?.stop();
    await accepting;
  }
});
