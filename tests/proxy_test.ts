/**
 * The data path over real loopback sockets: ProxyListener + Pool + a real balancer in front
 * of small test backends.
 */
import assert from "node:assert/strict";
import type { Backend } from "../src/core/types.ts";
import {
  backendAt,
  closeQuietly,
  concat,
  connect,
  copy,
  delay,
  freePort,
  isClosedWithin,
  randomBytes,
  readAll,
  readExactly,
  readName,
  sha256Hex,
  startEcho,
  startNamed,
  startProxy,
  startSink,
  TestServer,
  WAIT_MS,
  waitFor,
  withTimeout,
  writeAll,
} from "./_helpers.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** One request/response round trip through an echo backend. */
async function echoOnce(conn: Deno.TcpConn, text: string): Promise<string> {
  await writeAll(conn, encoder.encode(text));
  const bytes = await withTimeout(readExactly(conn, text.length), WAIT_MS, `echo of ${text}`);
  return decoder.decode(bytes);
}

/** Connects through the proxy, reads the backend's name and closes. */
async function nameVia(port: number, nameLength: number): Promise<string> {
  const conn = await connect(port);
  try {
    return await readName(conn, nameLength);
  } finally {
    conn.close();
  }
}

Deno.test("proxy carries 16 MiB both ways at once with an equal sha256", async () => {
  await using echo = startEcho();
  await using proxy = startProxy({ backends: [echo.backend] });
  const data = randomBytes(16 * 1024 * 1024);
  const conn = await connect(proxy.port);
  try {
    const writing = (async () => {
      await writeAll(conn, data);
      await conn.closeWrite();
    })();
    const reading = readAll(conn);
    const [, received] = await withTimeout(
      Promise.all([writing, reading]),
      30_000,
      "16 MiB round trip",
    );
    assert.equal(received.length, data.length);
    assert.equal(await sha256Hex(received), await sha256Hex(data));
  } finally {
    conn.close();
  }
  await waitFor(() => proxy.listener.stats.activeConnections === 0, "connection to end");
  assert.equal(proxy.listener.stats.bytesFromClients, data.length);
  assert.equal(proxy.listener.stats.bytesToClients, data.length);
});

Deno.test("proxy delivers a half-closed client's request and the backend's full answer", async () => {
  // Like inetaf/tcpproxy TestBufferedClose: the write still reaches the backend after the
  // client has closed its side.
  const answer = randomBytes(256 * 1024);
  await using sink = startSink((request) =>
    concat([encoder.encode(`got ${request.length} bytes: ${decoder.decode(request)}\n`), answer])
  );
  await using proxy = startProxy({ backends: [sink.backend] });
  const conn = await connect(proxy.port);
  try {
    await writeAll(conn, encoder.encode("PING and then goodbye"));
    await conn.closeWrite();
    const received = await withTimeout(readAll(conn), WAIT_MS, "answer after half-close");
    const head = encoder.encode("got 21 bytes: PING and then goodbye\n");
    assert.equal(decoder.decode(received.subarray(0, head.length)), decoder.decode(head));
    assert.equal(received.length, head.length + answer.length);
    assert.equal(await sha256Hex(received.subarray(head.length)), await sha256Hex(answer));
  } finally {
    conn.close();
  }
});

Deno.test("proxy skips a dead backend and lands on a live one", async () => {
  await using live = startNamed("live");
  const dead = backendAt(freePort());
  const outcomes: string[] = [];
  await using proxy = startProxy({
    backends: [dead, live.backend],
    pool: { onConnectResult: (key, ok) => outcomes.push(`${key} ${ok}`) },
  });
  for (let i = 0; i < 4; i++) {
    assert.equal(await nameVia(proxy.port, 4), "live", `connection ${i}`);
  }
  const failures = proxy.listener.stats.connectFailures;
  assert.ok(failures >= 1, "round robin must have tried the dead backend at least once");
  assert.equal(outcomes.filter((o) => o === `${dead.key} false`).length, failures);
  assert.equal(outcomes.filter((o) => o === `${live.backend.key} true`).length, 4);
  assert.equal(live.accepted, 4);
});

Deno.test("proxy closes the client promptly when every backend is dead", async () => {
  const dead = [backendAt(freePort()), backendAt(freePort())];
  await using proxy = startProxy({ backends: dead });
  const conn = await connect(proxy.port);
  try {
    const started = performance.now();
    assert.equal(await isClosedWithin(conn, 2_000), true);
    assert.ok(performance.now() - started < 2_000);
  } finally {
    conn.close();
  }
  await waitFor(() => proxy.listener.stats.activeConnections === 0, "connection to end");
  assert.equal(proxy.listener.stats.connectFailures, 2);
  assert.equal(proxy.listener.stats.noBackend, 0);
});

Deno.test("proxy closes the client when the pool is empty and counts noBackend", async () => {
  await using proxy = startProxy({ backends: [] });
  const conn = await connect(proxy.port);
  try {
    assert.equal(await isClosedWithin(conn, 2_000), true);
  } finally {
    conn.close();
  }
  await waitFor(() => proxy.listener.stats.activeConnections === 0, "connection to end");
  assert.equal(proxy.listener.stats.noBackend, 1);
  assert.equal(proxy.listener.stats.connectFailures, 0);
});

Deno.test("proxy closes a silent connection after idleTimeoutMs and keeps an active one", async () => {
  await using echo = startEcho();
  await using proxy = startProxy({ backends: [echo.backend], idleTimeoutMs: 200 });
  const silent = await connect(proxy.port);
  const active = await connect(proxy.port);
  try {
    assert.equal(await echoOnce(silent, "hello"), "hello");
    const quietSince = performance.now();
    let exchanges = 0;
    const closed = isClosedWithin(silent, 2_000);
    // Talk on the other connection for three idle periods meanwhile.
    while (performance.now() - quietSince < 600) {
      assert.equal(await echoOnce(active, `tick${exchanges}`), `tick${exchanges}`);
      exchanges++;
      await delay(50);
    }
    assert.equal(await closed, true, "the silent connection was closed");
    const quietMs = performance.now() - quietSince;
    assert.ok(quietMs >= 190, `closed too early: ${quietMs}ms`);
    assert.equal(await echoOnce(active, "still here"), "still here");
    assert.equal(proxy.listener.stats.idleTimeouts, 1);
  } finally {
    silent.close();
    active.close();
  }
});

Deno.test("proxy refuses a connection beyond maxConnections at once", async () => {
  await using named = startNamed("n");
  await using proxy = startProxy({ backends: [named.backend], maxConnections: 2 });
  const first = await connect(proxy.port);
  const second = await connect(proxy.port);
  let third: Deno.TcpConn | undefined;
  try {
    assert.equal(await readName(first, 1), "n");
    assert.equal(await readName(second, 1), "n");
    third = await connect(proxy.port);
    assert.equal(await isClosedWithin(third, 1_000), true);
    assert.equal(proxy.listener.stats.refused, 1);
    assert.equal(proxy.listener.stats.accepted, 3);
    assert.equal(named.accepted, 2);
  } finally {
    first.close();
    second.close();
    if (third) third.close();
  }
  // Once a slot frees up, connections are accepted again.
  await waitFor(() => proxy.listener.stats.activeConnections === 0, "connections to end");
  assert.equal(await nameVia(proxy.port, 1), "n");
});

Deno.test("proxy with round_robin rotates exactly over three backends", async () => {
  const servers = ["b0", "b1", "b2"].map((name) => ({ name, server: startNamed(name) }));
  try {
    await using proxy = startProxy({
      backends: servers.map((s) => s.server.backend),
      balancer: "round_robin",
    });
    // The pool orders candidates by key; rotation starts at the first.
    const order = [...servers]
      .sort((x, y) => x.server.backend.key < y.server.backend.key ? -1 : 1)
      .map((s) => s.name);
    const got: string[] = [];
    for (let i = 0; i < 7; i++) got.push(await nameVia(proxy.port, 2));
    assert.deepEqual(got, [...order, ...order, order[0]]);
  } finally {
    await Promise.all(servers.map((s) => s.server.close()));
  }
});

Deno.test("proxy with least_connections sends the next connection to the less busy backend", async () => {
  await using x = startNamed("x");
  await using y = startNamed("y");
  await using proxy = startProxy({
    backends: [x.backend, y.backend],
    balancer: "least_connections",
  });
  const keyOf = (name: string) => (name === "x" ? x : y).backend.key;
  const held: Deno.TcpConn[] = [];
  try {
    held.push(await connect(proxy.port));
    const first = await readName(held[0]!, 1);
    held.push(await connect(proxy.port));
    const second = await readName(held[1]!, 1);
    assert.notEqual(second, first, "the idle backend gets the second connection");

    held.pop()!.close();
    await waitFor(
      () =>
        proxy.pool.snapshot().backends.find((r) => r.key === keyOf(second))!
          .activeConnections === 0,
      "the second connection to end",
    );
    for (let i = 0; i < 3; i++) {
      // `first` still holds one connection, so the other backend wins every time.
      assert.equal(await nameVia(proxy.port, 1), second, `connection ${i}`);
      await waitFor(() => proxy.listener.stats.activeConnections === 1, "connection to end");
    }
  } finally {
    for (const conn of held) conn.close();
  }
});

Deno.test("proxy with maglev sends every connection from 127.0.0.1 to the same backend", async () => {
  const servers = ["m0", "m1", "m2"].map((name) => startNamed(name));
  try {
    await using proxy = startProxy({
      backends: servers.map((s) => s.backend),
      balancer: "maglev",
    });
    const got = new Set<string>();
    for (let i = 0; i < 6; i++) got.add(await nameVia(proxy.port, 2));
    assert.equal(got.size, 1, `landed on ${[...got].join(", ")}`);
    const [name] = got;
    assert.equal(servers[Number(name!.slice(1))]!.accepted, 6);
  } finally {
    await Promise.all(servers.map((s) => s.close()));
  }
});

Deno.test("proxy with random_two forwards to a live backend", async () => {
  await using x = startNamed("x");
  await using y = startNamed("y");
  await using proxy = startProxy({ backends: [x.backend, y.backend], balancer: "random_two" });
  for (let i = 0; i < 4; i++) assert.match(await nameVia(proxy.port, 1), /^[xy]$/);
  assert.equal(x.accepted + y.accepted, 4);
});

Deno.test("proxy keeps other connections open when a backend drops one", async () => {
  // A request starting with "R" makes the backend close with unread input (the kernel
  // answers with a TCP RST); anything else is echoed.
  await using backend = new TestServer(async (conn) => {
    const first = new Uint8Array(1);
    if ((await conn.read(first)) === null) return;
    if (first[0] === "R".charCodeAt(0)) {
      await delay(20); // let the rest of the request arrive unread
      return;
    }
    await writeAll(conn, first);
    await copy(conn, conn);
  });
  await using proxy = startProxy({ backends: [backend.backend] });
  const healthy = await connect(proxy.port);
  const doomed = await connect(proxy.port);
  try {
    assert.equal(await echoOnce(healthy, "before"), "before");
    await writeAll(doomed, concat([encoder.encode("R"), randomBytes(64 * 1024)]));
    assert.equal(await isClosedWithin(doomed, 2_000), true, "the client sees the end");
    // The backend's side is gone for good: the next write through the proxy fails there and
    // the proxy closes the whole connection.
    await writeAll(doomed, encoder.encode("anyone there?")).catch(() => {});
    await waitFor(() => proxy.listener.stats.activeConnections === 1, "dropped connection to end");
    assert.equal(await echoOnce(healthy, "after"), "after");
  } finally {
    closeQuietly(doomed);
    healthy.close();
  }
});

Deno.test("passive health hears only backend faults with a fair connect budget", async () => {
  const local = backendAt(freePort());
  const dialed: number[] = [];
  // `local` fails for a reason of our own (no ephemeral port); every other backend hangs.
  const dial = (options: Deno.ConnectOptions) => {
    dialed.push(options.port);
    if (options.port === local.port) {
      return Promise.reject(new Deno.errors.AddrNotAvailable("Cannot assign requested address"));
    }
    return new Promise<Deno.TcpConn>((_, reject) => {
      options.signal?.addEventListener("abort", () => reject(options.signal!.reason), {
        once: true,
      });
    });
  };
  const run = async (backends: Backend[]) => {
    const reports: [string, boolean][] = [];
    dialed.length = 0;
    await using proxy = startProxy({
      backends,
      requestTimeoutMs: 300,
      connectTimeoutMs: 250,
      dial,
      pool: { onConnectResult: (key, ok) => reports.push([key, ok]) },
    });
    const conn = await connect(proxy.port);
    try {
      assert.ok(await isClosedWithin(conn, 2000), "client closed after the attempts");
    } finally {
      closeQuietly(conn);
    }
    return { reports, dialed: [...dialed], failures: proxy.listener.stats.connectFailures };
  };
  // Our own error: counted, not held against the backend.
  assert.deepEqual(await run([local]), { reports: [], dialed: [local.port], failures: 1 });
  // A timeout with the full connectTimeout is the backend's; the ~50 ms left of the
  // requestTimeout are not worth a second attempt that could only time out unfairly.
  const a = backendAt(freePort());
  const b = backendAt(freePort());
  const result = await run([a, b]);
  assert.equal(result.dialed.length, 1);
  const first = result.dialed[0] === a.port ? a : b;
  assert.deepEqual(result.reports, [[first.key, false]]);
  assert.equal(result.failures, 1);
});
