/**
 * The UDP data path over real loopback sockets: UdpListener + Pool + a real balancer in front
 * of UDP test backends.
 */
import assert from "node:assert/strict";
import { CidrList } from "../src/core/cidr.ts";
import { Admission } from "../src/proxy/mod.ts";
import { HOST, waitFor } from "./_helpers.ts";
import { startUdpProxy, UdpClient, UdpEcho } from "./_udp_helpers.ts";

Deno.test("udp: a datagram is answered through a session, from the listener's address", async () => {
  const b1 = new UdpEcho("b1");
  const proxy = startUdpProxy([b1.backend]);
  const client = new UdpClient();
  try {
    await client.send("hello", proxy.port);
    const reply = await client.receive();
    assert.equal(reply?.text, "b1:hello");
    assert.equal(reply?.from.hostname, HOST);
    assert.equal(reply?.from.port, proxy.port);
    assert.equal(proxy.listener.sessionCount, 1);
    assert.equal(proxy.listener.stats.accepted, 1);
    assert.equal(proxy.listener.stats.datagramsFromClients, 1);
    assert.equal(proxy.listener.stats.datagramsToClients, 1);
    assert.equal(proxy.listener.stats.bytesFromClients, 5);
    assert.equal(proxy.listener.stats.bytesToClients, 8);
  } finally {
    await client.close();
    await proxy.listener.shutdown(0);
    proxy.pool.close();
    await b1.close();
  }
});

Deno.test("udp: one backend socket per session, kept for the session's datagrams", async () => {
  const b1 = new UdpEcho("b1");
  const proxy = startUdpProxy([b1.backend]);
  const c1 = new UdpClient();
  const c2 = new UdpClient();
  try {
    for (let i = 0; i < 3; i++) assert.equal(await c1.ask(`a${i}`, proxy.port), `b1:a${i}`);
    assert.equal(await c2.ask("b", proxy.port), "b1:b");
    assert.equal(proxy.listener.sessionCount, 2);
    assert.equal(b1.peers.length, 4);
    // c1's three datagrams came from one backend-side port, c2's from another.
    assert.equal(new Set(b1.peers.slice(0, 3)).size, 1);
    assert.notEqual(b1.peers[3], b1.peers[0]);
  } finally {
    await c1.close();
    await c2.close();
    await proxy.listener.shutdown(0);
    proxy.pool.close();
    await b1.close();
  }
});

Deno.test("udp: maglev keeps every port of a client address on one backend", async () => {
  const echoes = [new UdpEcho("b1"), new UdpEcho("b2"), new UdpEcho("b3")];
  const proxy = startUdpProxy(echoes.map((e) => e.backend));
  const clients = Array.from({ length: 8 }, () => new UdpClient());
  try {
    const names = new Set<string>();
    for (const client of clients) {
      const reply = await client.ask("q", proxy.port);
      assert.ok(reply !== undefined);
      names.add(reply.split(":")[0]!);
    }
    assert.equal(names.size, 1, `one backend for 127.0.0.1, got ${[...names]}`);
    assert.equal(proxy.listener.sessionCount, 8);
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    await proxy.listener.shutdown(0);
    proxy.pool.close();
    await Promise.all(echoes.map((e) => e.close()));
  }
});

Deno.test("udp: an idle session expires by the injected clock; the next datagram opens another", async () => {
  let now = 0;
  const b1 = new UdpEcho("b1");
  const lines: Record<string, unknown>[] = [];
  const accessLogger = {
    info: (_message: string, properties: Record<string, unknown>) => lines.push(properties),
  } as unknown as import("../src/log/mod.ts").Logger;
  const proxy = startUdpProxy([b1.backend], {
    listener: { sessionIdleTimeoutMs: 60_000, clock: () => now, accessLogger },
  });
  const client = new UdpClient();
  try {
    assert.equal(await client.ask("1", proxy.port), "b1:1");
    now = 59_999;
    assert.equal(proxy.listener.sweep(), 0);
    assert.equal(proxy.listener.sessionCount, 1);
    now = 60_000;
    assert.equal(proxy.listener.sweep(), 1);
    assert.equal(proxy.listener.sessionCount, 0);
    assert.equal(proxy.listener.stats.idleTimeouts, 1);
    assert.equal(proxy.listener.stats.activeConnections, 0);
    assert.equal(lines.length, 1);
    assert.equal(lines[0]!.outcome, "idle");
    assert.equal(lines[0]!.durationMs, 60_000);
    assert.equal(lines[0]!.datagramsFromClient, 1);
    assert.equal(lines[0]!.datagramsToClient, 1);
    assert.equal(await client.ask("2", proxy.port), "b1:2");
    assert.equal(proxy.listener.stats.accepted, 2);
    // The new session has a new backend socket.
    assert.notEqual(b1.peers[0], b1.peers[1]);
  } finally {
    await client.close();
    await proxy.listener.shutdown(0);
    proxy.pool.close();
    await b1.close();
  }
});

Deno.test("udp: maxSessions and maxSessionsPerSource drop new sessions, counted by cause", async () => {
  const b1 = new UdpEcho("b1");
  const proxy = startUdpProxy([b1.backend], {
    listener: { maxSessions: 3, maxSessionsPerSource: 2 },
  });
  const clients = Array.from({ length: 3 }, () => new UdpClient());
  const other = new UdpClient("127.0.0.2");
  const last = new UdpClient("127.0.0.3");
  try {
    assert.equal(await clients[0]!.ask("a", proxy.port), "b1:a");
    assert.equal(await clients[1]!.ask("b", proxy.port), "b1:b");
    // A third port of 127.0.0.1: over maxSessionsPerSource.
    assert.equal(await clients[2]!.ask("c", proxy.port, 300), undefined);
    assert.equal(proxy.listener.stats.drops.source_limit, 1);
    assert.equal(await other.ask("d", proxy.port), "b1:d");
    // A fourth session: over maxSessions.
    assert.equal(await last.ask("e", proxy.port, 300), undefined);
    assert.equal(proxy.listener.stats.drops.limit, 1);
    assert.equal(proxy.listener.stats.refusedByCause.limit, 1);
    assert.equal(proxy.listener.stats.refusedByCause.source_limit, 1);
    assert.equal(proxy.listener.sessionCount, 3);
    // Open sessions still work at the cap.
    assert.equal(await clients[0]!.ask("f", proxy.port), "b1:f");
  } finally {
    await Promise.all([...clients, other, last].map((c) => c.close()));
    await proxy.listener.shutdown(0);
    proxy.pool.close();
    await b1.close();
  }
});

Deno.test("udp: no reply within replyTimeout ends the session and reports the backend", async () => {
  let now = 0;
  const reports: [string, boolean, string][] = [];
  const b1 = new UdpEcho("b1");
  b1.isMuted = true;
  const proxy = startUdpProxy([b1.backend], {
    pool: { onConnectResult: (key, ok, error) => reports.push([key, ok, String(error)]) },
    listener: { replyTimeoutMs: 1_000, clock: () => now },
  });
  const client = new UdpClient();
  try {
    assert.equal(await client.ask("q", proxy.port, 200), undefined);
    now = 999;
    assert.equal(proxy.listener.sweep(), 0);
    now = 1_000;
    assert.equal(proxy.listener.sweep(), 1);
    assert.equal(reports.length, 1);
    assert.equal(reports[0]![0], b1.backend.key);
    assert.equal(reports[0]![1], false);
    assert.match(reports[0]![2], /no reply within 1000ms/);
    assert.equal(proxy.listener.stats.connectFailures, 1);
    // A backend that answers is reported once per session as a success.
    b1.isMuted = false;
    assert.equal(await client.ask("r", proxy.port), "b1:r");
    assert.deepEqual(reports[1]?.slice(0, 2), [b1.backend.key, true]);
  } finally {
    await client.close();
    await proxy.listener.shutdown(0);
    proxy.pool.close();
    await b1.close();
  }
});

Deno.test("udp: datagrams over bufferSize and from strangers are dropped, never truncated", async () => {
  const b1 = new UdpEcho("b1");
  const proxy = startUdpProxy([b1.backend], { listener: { bufferSize: 16 } });
  const client = new UdpClient();
  const stranger = new UdpEcho("x");
  try {
    assert.equal(await client.ask("0123456789abcdef0", proxy.port, 300), undefined);
    assert.equal(proxy.listener.stats.drops.too_large, 1);
    assert.equal(await client.ask("short", proxy.port), "b1:short");
    // A datagram to the session's backend socket from another address is not relayed.
    const sessionPort = Number(b1.peers[0]!.split(":")[1]);
    await stranger.send("forged", { transport: "udp", hostname: HOST, port: sessionPort });
    await waitFor(() => proxy.listener.stats.drops.foreign === 1, "foreign drop");
    assert.equal(await client.receive(200), undefined);
  } finally {
    await client.close();
    await stranger.close();
    await proxy.listener.shutdown(0);
    proxy.pool.close();
    await b1.close();
  }
});

Deno.test("udp: update changes limits in place and keeps open sessions", async () => {
  const b1 = new UdpEcho("b1");
  const proxy = startUdpProxy([b1.backend], { listener: { maxSessions: 1 } });
  const c1 = new UdpClient();
  const c2 = new UdpClient();
  try {
    assert.equal(await c1.ask("a", proxy.port), "b1:a");
    assert.equal(await c2.ask("b", proxy.port, 200), undefined);
    proxy.listener.update({ maxSessions: 2, bufferSize: 1024 });
    assert.equal(await c2.ask("c", proxy.port), "b1:c");
    assert.equal(await c1.ask("d", proxy.port), "b1:d");
    // c1 kept its session: one backend-side port for "a" and "d".
    assert.equal(b1.peers[b1.texts.indexOf("a")], b1.peers[b1.texts.indexOf("d")]);
    assert.equal(proxy.listener.stats.accepted, 2);
    assert.throws(() => proxy.listener.update({ bufferSize: 70_000 }), RangeError);
  } finally {
    await c1.close();
    await c2.close();
    await proxy.listener.shutdown(0);
    proxy.pool.close();
    await b1.close();
  }
});

Deno.test("udp: with no backend the datagram is dropped as no_backend", async () => {
  const proxy = startUdpProxy([]);
  const client = new UdpClient();
  try {
    assert.equal(await client.ask("q", proxy.port, 300), undefined);
    assert.equal(proxy.listener.stats.drops.no_backend, 1);
    assert.equal(proxy.listener.stats.noBackend, 1);
    assert.equal(proxy.listener.sessionCount, 0);
  } finally {
    await client.close();
    await proxy.listener.shutdown(0);
    proxy.pool.close();
  }
});

Deno.test("udp: a backend removed with onRemoval close ends its sessions", async () => {
  const b1 = new UdpEcho("b1");
  const b2 = new UdpEcho("b2");
  const proxy = startUdpProxy([b1.backend], { pool: { onRemoval: "close" } });
  const client = new UdpClient();
  try {
    assert.equal(await client.ask("q", proxy.port), "b1:q");
    proxy.pool.update([b2.backend]);
    await waitFor(() => proxy.listener.sessionCount === 0, "session ended");
    assert.equal(await client.ask("r", proxy.port), "b2:r");
  } finally {
    await client.close();
    await proxy.listener.shutdown(0);
    proxy.pool.close();
    await b1.close();
    await b2.close();
  }
});

Deno.test("udp: shutdown ends answered sessions at once, waits for pending replies", async () => {
  const b1 = new UdpEcho("b1");
  const proxy = startUdpProxy([b1.backend]);
  const idle = new UdpClient();
  const waiting = new UdpClient();
  const late = new UdpClient();
  try {
    assert.equal(await idle.ask("q", proxy.port), "b1:q");
    b1.delayMs = 300;
    await waiting.send("slow", proxy.port);
    await waitFor(() => proxy.listener.sessionCount === 2, "two sessions");
    const started = performance.now();
    const stopping = proxy.listener.shutdown(5_000);
    // The answered session ends at once; the one waiting for its reply gets it, then ends.
    assert.equal(proxy.listener.sessionCount, 1);
    assert.equal(await late.ask("s", proxy.port, 100), undefined);
    assert.equal(proxy.listener.stats.drops.stopping, 1);
    assert.equal((await waiting.receive())?.text, "b1:slow");
    assert.equal(await stopping, 0);
    assert.ok(performance.now() - started < 2_000);
    await proxy.serving;
  } finally {
    await Promise.all([idle, waiting, late].map((c) => c.close()));
    proxy.pool.close();
  }
  b1.delayMs = 0;
  b1.isMuted = true;
  const muted = startUdpProxy([b1.backend]);
  const c = new UdpClient();
  try {
    await c.send("never", muted.port);
    await waitFor(() => muted.listener.sessionCount === 1, "a session");
    assert.equal(await muted.listener.shutdown(200), 1);
  } finally {
    await c.close();
    muted.pool.close();
  }
  b1.isMuted = false;
  const controller = new AbortController();
  const again = startUdpProxy([b1.backend], { listener: { signal: controller.signal } });
  const d = new UdpClient();
  try {
    assert.equal(await d.ask("q", again.port), "b1:q");
    controller.abort();
    await again.serving;
    assert.equal(again.listener.sessionCount, 0);
  } finally {
    await d.close();
    again.pool.close();
    await b1.close();
  }
});

Deno.test("udp: Deno reports no ICMP port-unreachable on datagram sockets", async () => {
  // What this proxy relies on: a datagram to a closed port fails neither the send nor the
  // pending receive (Linux reports ICMP errors only to connected sockets or with IP_RECVERR,
  // and Deno offers neither), so a dead UDP backend shows as a missing reply.
  const closed = Deno.listenDatagram({ hostname: HOST, port: 0, transport: "udp" });
  const port = (closed.addr as Deno.NetAddr).port;
  closed.close();
  const client = new UdpClient();
  try {
    assert.equal(await client.send("x", port), 1);
    assert.equal(await client.receive(300), undefined);
    assert.equal(await client.send("y", port), 1);
  } finally {
    await client.close();
  }
});

Deno.test("udp: with reuseAddress the listener bound last takes every datagram", async () => {
  // Why one worker serves all UDP sessions: Deno sets SO_REUSEADDR (not SO_REUSEPORT) for
  // datagram sockets, and Linux then delivers to the socket bound last, not by 4-tuple hash.
  const b1 = new UdpEcho("b1");
  const first = startUdpProxy([b1.backend], { listener: { reuseAddress: true } });
  const second = startUdpProxy([b1.backend], {
    listener: { reuseAddress: true, port: first.port },
  });
  const clients = Array.from({ length: 6 }, () => new UdpClient());
  try {
    assert.equal(second.port, first.port);
    for (const client of clients) assert.equal(await client.ask("q", first.port), "b1:q");
    assert.equal(first.listener.stats.datagramsFromClients, 0);
    assert.equal(second.listener.stats.datagramsFromClients, clients.length);
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    for (const proxy of [first, second]) {
      await proxy.listener.shutdown(0);
      proxy.pool.close();
    }
    await b1.close();
  }
});

Deno.test("udp: IPv6 clients and backends", async () => {
  let backend: Deno.DatagramConn;
  try {
    backend = Deno.listenDatagram({ hostname: "::1", port: 0, transport: "udp" });
  } catch {
    console.log("skipped udp IPv6 test: no ::1 here");
    return;
  }
  const port = (backend.addr as Deno.NetAddr).port;
  const serving = (async () => {
    for await (const [data, from] of backend) await backend.send(data, from);
  })().catch(() => {});
  const proxy = startUdpProxy([{ key: `[::1]:${port}`, host: "::1", port, weight: 1 }], {
    listener: { hostname: "::1" },
  });
  const client = new UdpClient("::1");
  try {
    await client.send("six", proxy.port, "::1");
    const reply = await client.receive();
    assert.equal(reply?.text, "six");
    assert.equal(reply?.from.hostname, "::1");
    assert.equal(proxy.listener.stats.drops.foreign, 0);
  } finally {
    await client.close();
    await proxy.listener.shutdown(0);
    proxy.pool.close();
    backend.close();
    await serving;
  }
});

Deno.test("udp: the source ACL refuses new sessions from denied addresses", async () => {
  const b1 = new UdpEcho("b1");
  const proxy = startUdpProxy([b1.backend], {
    listener: {
      admission: new Admission({
        allow: CidrList.from(["127.0.0.0/8"]),
        deny: CidrList.from(["127.0.0.2/32"]),
      }),
    },
  });
  const allowed = new UdpClient();
  const denied = new UdpClient("127.0.0.2");
  try {
    assert.equal(await allowed.ask("a", proxy.port), "b1:a");
    assert.equal(await denied.ask("b", proxy.port, 200), undefined);
    assert.equal(proxy.listener.stats.drops.acl, 1);
    assert.equal(proxy.listener.stats.refusedByCause.acl, 1);
    // A reload that drops the ACL lets the address in.
    proxy.listener.update({});
    assert.equal(await denied.ask("c", proxy.port), "b1:c");
  } finally {
    await allowed.close();
    await denied.close();
    await proxy.listener.shutdown(0);
    proxy.pool.close();
    await b1.close();
  }
});
