/**
 * Fault injection on the data path, black box: the real `serve` CLI in front of backend
 * processes that get killed, blackholed (SYNs dropped inside a network namespace) or put
 * behind a slow, lossy link. Each test asserts what survived and prints what it measured.
 *
 * @module
 */
import assert from "node:assert/strict";
import { connect, freePort, randomBytes, withTimeout } from "../_helpers.ts";
import {
  BackendProcess,
  configYaml,
  echoTransfer,
  report,
  ServeProcess,
  type TransferResult,
  waitUntil,
} from "./_harness.ts";
import { ignoreWithoutNetns, NetNs } from "./_netns.ts";

const ignoreNetns = ignoreWithoutNetns();

Deno.test("a backend killed mid-transfer hurts only its own clients and is ejected", async () => {
  const backends = await Promise.all(["b0", "b1", "b2"].map((n) => BackendProcess.start(n)));
  const [, victim] = backends as [BackendProcess, BackendProcess, BackendProcess];
  const adminPort = freePort();
  const port = freePort();
  const serve = await ServeProcess.start(
    configYaml(adminPort, [{
      name: "faults",
      port,
      backends: backends.map((b) => b.key),
      extra: { balancer: "round_robin", connectTimeout: "1s", requestTimeout: "3s" },
      healthCheck: { interval: "250ms", timeout: "250ms", rise: 2, fall: 2 },
    }]),
    adminPort,
  );
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
