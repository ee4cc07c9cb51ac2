/**
 * Fault injection on the data path, black box: the real `serve` CLI in front of backend
 * processes that get killed, blackholed (SYNs dropped inside a network namespace) or put
 * behind a slow, lossy link. Each test asserts what survived and prints what it measured.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  closeQuietly,
  connect,
  freePort,
  isClosedWithin,
  randomBytes,
  readExactly,
  withTimeout,
} from "../_helpers.ts";
import {
  BackendProcess,
  configYaml,
  echoTransfer,
  GREETING_BYTES,
  report,
  serveOneListener,
  ServeProcess,
  type TransferResult,
  waitUntil,
} from "./_harness.ts";
import { ignoreWithoutNetns, NetNs } from "./_netns.ts";

const ignoreNetns = ignoreWithoutNetns();

Deno.test("a backend killed mid-transfer hurts only its own clients and is ejected", async () => {
  const backends = await Promise.all(["b0", "b1", "b2"].map((n) => BackendProcess.start(n)));
  const [, victim] = backends as [BackendProcess, BackendProcess, BackendProcess];
  const { serve, port } = await serveOneListener({
    name: "faults",
    backends: backends.map((b) => b.key),
    extra: { balancer: "round_robin", connectTimeout: "1s", requestTimeout: "3s" },
    healthCheck: { interval: "250ms", timeout: "250ms", rise: 2, fall: 2 },
  });
  try {
    const clients = 9;
    const payloads = Array.from({ length: clients }, () => randomBytes(4 * 1024 * 1024));
    let greeted = 0;
    let killedAt = 0;
    const settledAt: number[] = [];
    const transfers = payloads.map(async (payload, i) => {
      const conn = await connect(port);
      try {
        return await echoTransfer(conn, payload, {
          chunkBytes: 32 * 1024,
          pauseMs: 15,
          onGreeting: () => greeted++,
        });
      } finally {
        settledAt[i] = performance.now();
      }
    });
    await waitUntil(() => greeted === clients, "every client greeted", 10_000);
    await new Promise((r) => setTimeout(r, 300));
    killedAt = performance.now();
    await victim.kill("SIGKILL");
    const ejected = waitUntil(
      async () => (await serve.health("faults", victim.key)) === "unhealthy",
      "the killed backend to be ejected",
      10_000,
    );
    const results = await withTimeout(
      Promise.allSettled(transfers),
      20_000,
      "every transfer to settle",
    );

    const survived = results.filter((r) => r.status === "fulfilled").map((r) =>
      (r as PromiseFulfilledResult<TransferResult>).value
    );
    const hurt = results.flatMap((r, i) => r.status === "rejected" ? [i] : []);
    // Round robin over three backends: a third of the clients were on the victim.
    assert.equal(hurt.length, clients / 3, `clients hurt: ${hurt.join(",")}`);
    assert.equal(survived.length, clients - clients / 3);
    for (const t of survived) {
      assert.notEqual(t.backend, victim.name, "a transfer through the killed backend completed");
      assert.equal(t.receivedSha, t.sentSha, `checksum via ${t.backend}`);
    }
    const closeMs = hurt.map((i) => Math.round(settledAt[i]! - killedAt));
    for (const ms of closeMs) assert.ok(ms < 5_000, `a hurt client was closed after ${ms}ms`);

    const ejectMs = await ejected;
    const others = await serve.backends("faults");
    for (const b of others.filter((b) => b.key !== victim.key)) {
      assert.notEqual(b.health, "unhealthy", `${b.key} stayed in service`);
    }
    report("backend killed mid-transfer", {
      clients,
      hurt: hurt.length,
      killToCloseMs: closeMs,
      killToEjectedMs: Math.round(ejectMs),
      bytesIntact: survived.reduce((s, t) => s + t.bytes, 0),
    });
  } finally {
    await serve.stop();
    await Promise.all(backends.map((b) => b.kill()));
  }
});

/** Connects and reads the greeting; returns the backend name and how long it took. */
async function greet(port: number): Promise<{ backend: string; ms: number }> {
  const started = performance.now();
  const conn = await connect(port);
  try {
    const bytes = await withTimeout(readExactly(conn, GREETING_BYTES), 10_000, "greeting");
    return { backend: new TextDecoder().decode(bytes).trim(), ms: performance.now() - started };
  } finally {
    closeQuietly(conn);
  }
}

Deno.test({
  name: "a blackholed backend: failover within connectTimeout, ejection, bounded failure",
  ignore: ignoreNetns,
  async fn() {
    await using ns = await NetNs.create();
    await using hole = await BackendProcess.start("hole", ns.address, 0, ns.execPrefix);
    await using good = await BackendProcess.start("good");
    const adminPort = freePort();
    const passivePort = freePort();
    const activePort = freePort();
    const onlyHolePort = freePort();
    const connectTimeoutMs = 500;
    const requestTimeoutMs = 1_000;
    await using serve = await ServeProcess.start(
      configYaml(adminPort, [
        {
          name: "passive",
          port: passivePort,
          backends: [hole.key, good.key],
          extra: {
            connectTimeout: `${connectTimeoutMs}ms`,
            requestTimeout: "5s",
            maxConnectAttempts: 3,
          },
          // Active checks run once at start and then only every minute: an ejection within
          // the test is passive (failed client connects).
          healthCheck: { interval: "60s", timeout: "1s", fall: 2, maxEjectionPercent: 50 },
        },
        {
          name: "active",
          port: activePort,
          backends: [hole.key, good.key],
          healthCheck: { interval: "250ms", timeout: "200ms", rise: 2, fall: 2 },
        },
        {
          name: "only_hole",
          port: onlyHolePort,
          backends: [hole.key],
          // The per-attempt timeout is longer than the budget: the budget must win.
          extra: {
            connectTimeout: "5s",
            requestTimeout: `${requestTimeoutMs}ms`,
            maxConnectAttempts: 3,
          },
          healthCheck: { enabled: false },
        },
      ]),
      adminPort,
    );
    // Before the fault the namespace path works.
    const seen = new Set<string>();
    for (let i = 0; i < 4; i++) seen.add((await greet(passivePort)).backend);
    assert.deepEqual([...seen].sort(), ["good", "hole"]);
    assert.equal((await greet(onlyHolePort)).backend, "hole");

    await ns.dropSyns(hole.port);
    const faultAt = performance.now();
    const activeEjected = waitUntil(
      async () => (await serve.health("active", hole.key)) === "unhealthy",
      "active health to eject the blackholed backend",
      10_000,
    );

    // Passive: clients that try the blackhole first move on after connectTimeout.
    const failoverMs: number[] = [];
    let clientsUntilEjected = 0;
    while ((await serve.health("passive", hole.key)) !== "unhealthy") {
      assert.ok(clientsUntilEjected < 20, "passive health never ejected the blackholed backend");
      clientsUntilEjected++;
      const { backend, ms } = await greet(passivePort);
      assert.equal(backend, "good");
      assert.ok(ms < connectTimeoutMs + 1_500, `served after ${Math.round(ms)}ms`);
      failoverMs.push(Math.round(ms));
    }
    const afterEjection: number[] = [];
    for (let i = 0; i < 5; i++) {
      const { backend, ms } = await greet(passivePort);
      assert.equal(backend, "good");
      afterEjection.push(Math.round(ms));
    }
    assert.ok(
      Math.max(...afterEjection) < connectTimeoutMs,
      `after ejection no client waits for the blackhole: ${afterEjection.join(",")}`,
    );

    // A pool of only blackholed backends fails its clients within requestTimeout.
    const failures = await Promise.all(Array.from({ length: 3 }, async () => {
      const started = performance.now();
      const conn = await connect(onlyHolePort);
      try {
        const closed = await isClosedWithin(conn, requestTimeoutMs + 2_000);
        return { closed, ms: Math.round(performance.now() - started) };
      } finally {
        closeQuietly(conn);
      }
    }));
    for (const { closed, ms } of failures) {
      assert.ok(closed, "a client of a blackholed pool was never closed");
      assert.ok(ms <= requestTimeoutMs + 750, `closed after ${ms}ms, later than requestTimeout`);
    }
    const activeMs = await activeEjected;
    assert.equal(await serve.health("active", good.key), "healthy");
    report("blackholed backend", {
      failoverMs,
      clientsUntilPassiveEjection: clientsUntilEjected,
      afterEjectionMs: afterEjection,
      faultToActiveEjectionMs: Math.round(activeMs),
      sinceFaultMs: Math.round(performance.now() - faultAt),
      onlyBlackholedPoolCloseMs: failures.map((f) => f.ms),
      connectFailures: await serve.metric("nautiluslb_listener_connect_failures_total"),
    });
  },
});

Deno.test({
  name: "a slow, lossy path to a backend keeps transfers intact",
  ignore: ignoreNetns,
  async fn() {
    await using ns = await NetNs.create();
    await using slow = await BackendProcess.start("slow", ns.address, 0, ns.execPrefix);
    const method = await ns.degrade(100, 1);
    await using rig = await serveOneListener({
      name: "lossy",
      backends: [slow.key],
      extra: { connectTimeout: "3s", requestTimeout: "10s" },
    });
    const { port } = rig;
    const started = performance.now();
    const results = await withTimeout(
      Promise.all(Array.from({ length: 4 }, async () => {
        const payload = randomBytes(512 * 1024);
        return echoTransfer(await connect(port), payload);
      })),
      60_000,
      "transfers over the lossy path",
    );
    for (const r of results) {
      assert.equal(r.backend, "slow");
      assert.equal(r.receivedSha, r.sentSha);
    }
    report("slow lossy path", {
      method,
      transfers: results.length,
      bytesEachWay: results.reduce((s, r) => s + r.bytes, 0),
      elapsedMs: Math.round(performance.now() - started),
    });
  },
});
