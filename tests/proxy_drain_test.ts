/**
 * Graceful stop and drain over real loopback sockets: ProxyListener.shutdown() and a backend
 * leaving the pool while connections are open.
 */
import assert from "node:assert/strict";
import {
  concat,
  connect,
  delay,
  HOST,
  isClosedWithin,
  readAll,
  readExactly,
  sha256Hex,
  startEcho,
  startProxy,
  startSilent,
  TestServer,
  WAIT_MS,
  waitFor,
  withTimeout,
  writeAll,
} from "./_helpers.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Streams `chunks` chunks of `chunkBytes` bytes, `gapMs` apart, then closes. */
function startSlowStream(chunks: number, chunkBytes: number, gapMs: number): TestServer {
  return new TestServer(async (conn) => {
    for (let i = 0; i < chunks; i++) {
      await writeAll(conn, new Uint8Array(chunkBytes).fill(i));
      await delay(gapMs);
    }
  });
}

/**
 * Asserts that a new connection to `port` gets nowhere: refused, or reset before or right
 * after the handshake (a SYN that raced the listener's close sits in its backlog and is reset
 * when the socket goes).
 */
async function expectRefused(port: number): Promise<void> {
  let conn: Deno.TcpConn;
  try {
    conn = await Deno.connect({ hostname: HOST, port });
  } catch (error) {
    assert.ok(
      error instanceof Deno.errors.ConnectionRefused ||
        error instanceof Deno.errors.ConnectionReset,
      `unexpected connect error: ${error}`,
    );
    return;
  }
  try {
    assert.equal(await isClosedWithin(conn, 1_000), true, "a new connection was served");
  } finally {
    conn.close();
  }
}

async function echoOnce(conn: Deno.TcpConn, text: string): Promise<string> {
  await writeAll(conn, encoder.encode(text));
  return decoder.decode(await withTimeout(readExactly(conn, text.length), WAIT_MS, text));
}

Deno.test("ProxyListener.shutdown() resolves at once with nothing open", async () => {
  await using proxy = startProxy({ backends: [] });
  const started = performance.now();
  assert.equal(await proxy.listener.shutdown(10_000), 0);
  assert.ok(performance.now() - started < 1_000);
  await expectRefused(proxy.port);
});

Deno.test("ProxyListener.shutdown() lets an in-flight transfer finish and refuses new connections", async () => {
  const chunks = 8;
  const chunkBytes = 32 * 1024;
  await using backend = startSlowStream(chunks, chunkBytes, 40);
  await using proxy = startProxy({ backends: [backend.backend] });
  const conn = await connect(proxy.port);
  try {
    // The transfer is under way before the stop begins.
    const head = await withTimeout(readExactly(conn, 1), WAIT_MS, "first byte");
    const started = performance.now();
    const stopping = proxy.listener.shutdown(5_000);

    await expectRefused(proxy.port);
    const rest = await withTimeout(readAll(conn), WAIT_MS, "rest of the transfer");
    const received = concat([head, rest]);
    const expected = concat(
      Array.from({ length: chunks }, (_, i) => new Uint8Array(chunkBytes).fill(i)),
    );
    assert.equal(received.length, expected.length);
    assert.equal(await sha256Hex(received), await sha256Hex(expected));

    // The client closes its side; nothing is left to drain, long before the deadline.
    conn.close();
    assert.equal(await withTimeout(stopping, WAIT_MS, "shutdown"), 0);
    assert.ok(performance.now() - started < 4_000, "shutdown waited for the deadline");
    assert.equal(proxy.listener.stats.activeConnections, 0);
  } finally {
    try {
      conn.close();
    } catch {
      // closed above
    }
  }
});

Deno.test("ProxyListener.shutdown() force-closes a stuck connection at the deadline", async () => {
  await using silent = startSilent();
  await using echo = startEcho();
  await using proxy = startProxy({ backends: [silent.backend, echo.backend] });
  // Round robin sends one connection to each backend; find out which went where.
  const conns = [await connect(proxy.port), await connect(proxy.port)];
  try {
    await waitFor(() => silent.accepted === 1 && echo.accepted === 1, "both backends to connect");
    for (const conn of conns) await writeAll(conn, encoder.encode("?"));
    // Only the echo connection answers; the other one is stuck.
    const echoConn = await withTimeout(
      Promise.race(conns.map((conn) => readExactly(conn, 1).then(() => conn))),
      WAIT_MS,
      "the echo connection to answer",
    );
    const stuck = conns.find((c) => c !== echoConn)!;

    const drainMs = 300;
    const started = performance.now();
    const stopping = proxy.listener.shutdown(drainMs);
    await expectRefused(proxy.port);
    // The echo connection finishes its exchange during the drain and closes.
    assert.equal(await echoOnce(echoConn, "last words"), "last words");
    echoConn.close();

    assert.equal(await withTimeout(stopping, WAIT_MS, "shutdown"), 1, "one forced close");
    const elapsed = performance.now() - started;
    assert.ok(elapsed >= drainMs - 10, `shutdown returned early: ${elapsed}ms`);
    assert.ok(elapsed < drainMs + 1_500, `shutdown returned late: ${elapsed}ms`);
    assert.equal(await isClosedWithin(stuck, 1_000), true, "the stuck client was closed");
    assert.equal(proxy.listener.stats.activeConnections, 0);
  } finally {
    for (const conn of conns) {
      try {
        conn.close();
      } catch {
        // closed above
      }
    }
  }
});

Deno.test("a backend removed from the pool keeps its connection until drainTimeoutMs, then closes it", async () => {
  await using echo = startEcho();
  const drainTimeoutMs = 300;
  await using proxy = startProxy({ backends: [echo.backend], pool: { drainTimeoutMs } });
  const conn = await connect(proxy.port);
  try {
    assert.equal(await echoOnce(conn, "hello"), "hello");
    const removedAt = performance.now();
    proxy.pool.update([]);
    assert.equal(proxy.pool.snapshot().backends[0]?.isDraining, true);

    // New connections find no backend; the open one keeps working meanwhile.
    const late = await connect(proxy.port);
    assert.equal(await isClosedWithin(late, 2_000), true);
    late.close();
    assert.equal(proxy.listener.stats.noBackend, 1);
    await delay(100);
    assert.equal(await echoOnce(conn, "still draining"), "still draining");

    assert.equal(await isClosedWithin(conn, 2_000), true, "closed when the drain ran out");
    const elapsed = performance.now() - removedAt;
    assert.ok(elapsed >= drainTimeoutMs - 10, `closed early: ${elapsed}ms`);
    await waitFor(() => proxy.pool.snapshot().backends.length === 0, "pool to forget it");
    assert.equal(proxy.listener.stats.activeConnections, 0);
  } finally {
    conn.close();
  }
});

Deno.test("a backend removed and re-added during its drain keeps its connection", async () => {
  await using echo = startEcho();
  await using proxy = startProxy({ backends: [echo.backend], pool: { drainTimeoutMs: 100 } });
  const conn = await connect(proxy.port);
  try {
    assert.equal(await echoOnce(conn, "one"), "one");
    proxy.pool.update([]);
    proxy.pool.update([echo.backend]);
    await delay(250);
    assert.equal(await echoOnce(conn, "two"), "two");
    const other = await connect(proxy.port);
    try {
      assert.equal(await echoOnce(other, "three"), "three");
    } finally {
      other.close();
    }
  } finally {
    conn.close();
  }
});
