/**
 * Per-backend connection limits, refusal causes, the access log, per-backend totals and the
 * timing histograms over real loopback sockets.
 */
import assert from "node:assert/strict";
import { BALANCER_KINDS } from "../src/core/types.ts";
import { getLogger, resetLogging, setupLogging } from "../src/log/mod.ts";
import {
  closeQuietly,
  connect,
  isClosedWithin,
  readExactly,
  readName,
  startEcho,
  startNamed,
  startProxy,
  waitFor,
  writeAll,
} from "./_helpers.ts";

const NAME_LENGTH = 2;

for (const kind of BALANCER_KINDS) {
  Deno.test(`${kind}: maxConnectionsPerBackend fills every backend, then refuses with cause limit`, async () => {
    await using b1 = startNamed("b1");
    await using b2 = startNamed("b2");
    await using b3 = startNamed("b3");
    await using proxy = startProxy({
      backends: [b1.backend, b2.backend, b3.backend],
      balancer: kind,
      pool: { maxConnectionsPerBackend: 2 },
    });
    const open: Deno.TcpConn[] = [];
    try {
      const names: string[] = [];
      for (let n = 0; n < 6; n++) {
        const conn = await connect(proxy.port);
        open.push(conn);
        names.push(await readName(conn, NAME_LENGTH));
      }
      assert.deepEqual(names.toSorted(), ["b1", "b1", "b2", "b2", "b3", "b3"]);
      const refused = await connect(proxy.port);
      assert.ok(await isClosedWithin(refused, 2_000), "a 7th client must be refused at once");
      closeQuietly(refused);
      await waitFor(
        () => proxy.listener.stats.refusedByCause.limit === 1,
        "refusal counted as limit",
      );
      assert.equal(proxy.listener.stats.noBackend, 0);
      // One connection to b2 ends: the next client gets b2, whatever the policy.
      const index = names.indexOf("b2");
      open[index]!.close();
      open.splice(index, 1);
      await waitFor(
        () => proxy.pool.snapshot().backends.some((b) => b.activeConnections === 1),
        "the b2 slot to be released",
      );
      const next = await connect(proxy.port);
      open.push(next);
      assert.equal(await readName(next, NAME_LENGTH), "b2");
    } finally {
      for (const conn of open) closeQuietly(conn);
    }
  });
}

Deno.test("a Service's own limit on a backend overrides the pool's", async () => {
  await using b1 = startNamed("b1");
  await using b2 = startNamed("b2");
  await using proxy = startProxy({
    backends: [{ ...b1.backend, maxConnections: 1 }, b2.backend],
    balancer: "least_connections",
    pool: { maxConnectionsPerBackend: 3 },
  });
  const open: Deno.TcpConn[] = [];
  try {
    const names: string[] = [];
    for (let n = 0; n < 4; n++) {
      const conn = await connect(proxy.port);
      open.push(conn);
      names.push(await readName(conn, NAME_LENGTH));
    }
    assert.deepEqual(names.toSorted(), ["b1", "b2", "b2", "b2"]);
    const refused = await connect(proxy.port);
    assert.ok(await isClosedWithin(refused, 2_000));
    closeQuietly(refused);
  } finally {
    for (const conn of open) closeQuietly(conn);
  }
});

Deno.test("access log: one JSON line per closed connection; totals and histograms", async () => {
  const lines: string[] = [];
  await setupLogging({ format: "json", level: "error", write: (line) => lines.push(line) });
  try {
    await using echo = startEcho();
    await using proxy = startProxy({
      backends: [echo.backend, { key: "127.0.0.1:1", host: "127.0.0.1", port: 1, weight: 0 }],
      accessLogger: getLogger("access"),
      maxConnections: 1,
    });
    const conn = await connect(proxy.port);
    const payload = new TextEncoder().encode("hello world");
    await writeAll(conn, payload);
    await readExactly(conn, payload.length);
    // maxConnections 1: a second client is refused while the first is open.
    const refused = await connect(proxy.port);
    assert.ok(await isClosedWithin(refused, 2_000));
    closeQuietly(refused);
    await conn.closeWrite();
    await isClosedWithin(conn, 2_000);
    conn.close();
    await waitFor(() => proxy.listener.stats.activeConnections === 0, "connection to end");
    await waitFor(() => lines.length >= 2, "two access log lines");
    const records = lines.map((line) => JSON.parse(line));
    const refusedLine = records.find((r) => r.properties.outcome === "limit");
    const doneLine = records.find((r) => r.properties.outcome === "done");
    assert.ok(refusedLine !== undefined && doneLine !== undefined, lines.join(""));
    assert.equal(doneLine.logger, "nautiluslb.access");
    assert.equal(doneLine.level, "INFO");
    const { client, durationMs, ...rest } = doneLine.properties;
    assert.match(client, /^127\.0\.0\.1:\d+$/);
    assert.ok(Number.isInteger(durationMs) && durationMs >= 0);
    assert.deepEqual(rest, {
      listener: "test",
      backend: echo.backend.key,
      outcome: "done",
      bytesFromClient: payload.length,
      bytesToClient: payload.length,
    });
    assert.equal(refusedLine.properties.backend, "-");
    assert.equal(refusedLine.properties.bytesFromClient, 0);

    const stats = proxy.listener.stats;
    assert.deepEqual(stats.refusedByCause, {
      limit: 1,
      no_backend: 0,
      proxy_header: 0,
      untrusted: 0,
      acl: 0,
      source_limit: 0,
      tls_peek_timeout: 0,
      tls_hello_too_large: 0,
      tls_no_route: 0,
      tls_bad_hello: 0,
    });
    assert.equal(stats.connectionDuration.count, 1);
    assert.equal(stats.connectDuration.count, 1);
    assert.ok(stats.connectDuration.sum >= 0 && stats.connectDuration.sum < 5);
    const row = proxy.pool.snapshot().backends.find((b) => b.key === echo.backend.key)!;
    assert.deepEqual(row.counters, {
      connections: 1,
      connectFailures: 0,
      bytesToBackend: payload.length,
      bytesFromBackend: payload.length,
    });
  } finally {
    await resetLogging();
  }
});

Deno.test("access log off: connections are forwarded and nothing is logged", async () => {
  const lines: string[] = [];
  await setupLogging({ format: "json", level: "trace", write: (line) => lines.push(line) });
  try {
    await using echo = startEcho();
    await using proxy = startProxy({ backends: [echo.backend] });
    const conn = await connect(proxy.port);
    await writeAll(conn, new Uint8Array([1, 2, 3]));
    await readExactly(conn, 3);
    conn.close();
    await waitFor(() => proxy.listener.stats.activeConnections === 0, "connection to end");
    assert.equal(proxy.listener.stats.connectionDuration.count, 1);
    assert.deepEqual(lines.filter((l) => l.includes("nautiluslb.access")), []);
  } finally {
    await resetLogging();
  }
});

Deno.test("no backend and connect failures count per cause and per backend", async () => {
  const closedPort = (() => {
    const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = l.addr.port;
    l.close();
    return port;
  })();
  const dead = { key: `127.0.0.1:${closedPort}`, host: "127.0.0.1", port: closedPort, weight: 1 };
  await using proxy = startProxy({ backends: [dead], maxConnectAttempts: 1 });
  const conn = await connect(proxy.port);
  assert.ok(await isClosedWithin(conn, 3_000));
  conn.close();
  await waitFor(() => proxy.listener.stats.activeConnections === 0, "connection to end");
  assert.equal(proxy.pool.snapshot().backends[0]!.counters.connectFailures, 1);
  assert.equal(proxy.listener.stats.connectFailures, 1);
  proxy.pool.update([]);
  const none = await connect(proxy.port);
  assert.ok(await isClosedWithin(none, 3_000));
  none.close();
  await waitFor(
    () => proxy.listener.stats.refusedByCause.no_backend === 1,
    "refusal counted as no_backend",
  );
});

Deno.test("rate-limited failure lines say how many similar lines they left out", async () => {
  const lines: string[] = [];
  await setupLogging({ format: "json", level: "warning", write: (line) => lines.push(line) });
  try {
    await using proxy = startProxy({
      backends: [],
      logger: getLogger("proxy"),
    });
    const refuseOne = async () => {
      const conn = await connect(proxy.port);
      assert.ok(await isClosedWithin(conn, 3_000));
      conn.close();
    };
    for (let n = 0; n < 5; n++) await refuseOne();
    // The next line may be written once a second has passed since the first.
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    await refuseOne();
    await waitFor(() => proxy.listener.stats.refusedByCause.no_backend === 6, "six refusals");
    const failures = lines.map((l) => JSON.parse(l)).filter((r) =>
      r.message.startsWith("Cannot forward")
    );
    assert.equal(failures.length, 2, lines.join(""));
    assert.equal(failures[0].properties.suppressed, 0);
    assert.ok(!failures[0].message.includes("suppressed"));
    assert.equal(failures[1].properties.suppressed, 4);
    assert.match(failures[1].message, /\(4 similar lines suppressed\)$/);
  } finally {
    await resetLogging();
  }
});
