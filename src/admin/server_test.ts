import assert from "node:assert/strict";
import { getLogger } from "../log/mod.ts";
import { startAdminServer } from "./server.ts";
import type { AdminServer, AdminServerOptions } from "./server.ts";
import type { AdminSnapshot } from "./types.ts";
import { sampleSnapshot } from "./_test_snapshot.ts";

const logger = getLogger("admin", "test");

interface Running {
  readonly server: AdminServer;
  readonly base: string;
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Options of a server on 127.0.0.1 port 0 serving the sample snapshot, without process metrics. */
function options(
  signal: AbortSignal,
  overrides: Partial<AdminServerOptions> = {},
): AdminServerOptions {
  return {
    hostname: "127.0.0.1",
    port: 0,
    signal,
    snapshot: () => sampleSnapshot(),
    logger,
    processMetrics: false,
    ...overrides,
  };
}

async function start(snapshot: () => AdminSnapshot): Promise<Running> {
  const controller = new AbortController();
  const server = await startAdminServer(options(controller.signal, { snapshot }));
  const stop = async () => {
    controller.abort();
    await server.finished;
  };
  return {
    server,
    base: `http://127.0.0.1:${server.addr.port}`,
    stop,
    [Symbol.asyncDispose]: stop,
  };
}

async function get(
  url: string,
  init?: RequestInit,
): Promise<{ status: number; body: string; headers: Headers }> {
  const response = await fetch(url, init);
  return { status: response.status, body: await response.text(), headers: response.headers };
}

Deno.test("startAdminServer binds loopback port 0 and reports the real address", async () => {
  await using admin = await start(() => sampleSnapshot());
  assert.equal(admin.server.addr.hostname, "127.0.0.1");
  assert.equal(admin.server.addr.transport, "tcp");
  assert.ok(admin.server.addr.port > 0);
});

Deno.test("GET /healthz answers ok without taking a snapshot", async () => {
  let calls = 0;
  await using admin = await start(() => {
    calls++;
    return sampleSnapshot();
  });
  const res = await get(`${admin.base}/healthz`);
  assert.equal(res.status, 200);
  assert.equal(res.body, "ok\n");
  assert.equal(res.headers.get("content-type"), "text/plain; charset=utf-8");
  assert.equal(calls, 0);
});

Deno.test("GET /readyz follows the snapshot's ready flag", async () => {
  let snapshot = sampleSnapshot();
  await using admin = await start(() => snapshot);

  let res = await get(`${admin.base}/readyz`);
  assert.equal(res.status, 200);
  assert.equal(res.body, "ok\n");

  snapshot = sampleSnapshot({
    ready: false,
    readyReasons: ["shutting down", "Kubernetes API disconnected"],
    discovery: { source: "kubernetes", state: "disconnected", lastError: "connection refused" },
  });
  res = await get(`${admin.base}/readyz`);
  assert.equal(res.status, 503);
  assert.equal(res.body, "not ready: shutting down; Kubernetes API disconnected\n");

  snapshot = sampleSnapshot({ ready: false, readyReasons: [] });
  res = await get(`${admin.base}/readyz`);
  assert.equal(res.status, 503);
  assert.equal(res.body, "not ready\n");

  snapshot = sampleSnapshot();
  res = await get(`${admin.base}/readyz`);
  assert.equal(res.status, 200);
});

Deno.test("GET /readyz stays ready when the caller says so, even with discovery disconnected", async () => {
  const snapshot = sampleSnapshot({
    ready: true,
    readyReasons: ["Kubernetes API disconnected"],
    discovery: {
      source: "kubernetes",
      state: "disconnected",
      lastChangeAt: Date.UTC(2024, 0, 2, 3, 4, 5),
      lastError: "connect ECONNREFUSED\nretrying",
    },
  });
  await using admin = await start(() => snapshot);
  const plain = await get(`${admin.base}/readyz`);
  assert.equal(plain.status, 200);
  assert.equal(plain.body, "ok\n");

  const verbose = await get(`${admin.base}/readyz?verbose`);
  assert.equal(verbose.status, 200);
  assert.equal(
    verbose.body,
    [
      "[+]ready ok",
      "[!]ready warning: Kubernetes API disconnected",
      "[!]discovery kubernetes disconnected since 2024-01-02T03:04:05.000Z: connect ECONNREFUSED retrying",
      "[+]pool a ok: 1/2 backends eligible",
      "readyz check passed",
      "",
    ].join("\n"),
  );
});

Deno.test("GET /readyz?verbose lists failed checks", async () => {
  const snapshot = sampleSnapshot({
    ready: false,
    readyReasons: ["shutting down"],
    discovery: { source: "static", state: "synced" },
    pools: [{
      name: "db",
      isFailOpen: true,
      backends: [{
        key: "10.0.0.9:5432",
        weight: 1,
        health: "unhealthy",
        activeConnections: 0,
        isDraining: false,
      }],
    }],
  });
  await using admin = await start(() => snapshot);
  const res = await get(`${admin.base}/readyz?verbose=1`);
  assert.equal(res.status, 503);
  assert.equal(
    res.body,
    [
      "[-]ready failed: shutting down",
      "[+]discovery ok: static synced",
      "[!]pool db 0/1 backends eligible, fail-open",
      "readyz check failed",
      "",
    ].join("\n"),
  );
});

Deno.test("GET /pools returns the documented fields only", async () => {
  const base = sampleSnapshot();
  const withExtras = {
    ...base,
    pools: base.pools.map((p) => ({
      ...p,
      secret: "x",
      backends: p.backends.map((b) => ({ ...b, host: "h", port: 1 })),
    })),
  };
  await using admin = await start(() => withExtras);
  const res = await get(`${admin.base}/pools`);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), "application/json");
  // The sample's pools carry exactly the documented fields; the extras must not show.
  assert.deepEqual(JSON.parse(res.body), {
    listeners: [{ name: "a", address: "0.0.0.0:8080" }],
    pools: base.pools,
  });
});

Deno.test("GET /pools shows each listener's ACL counts, at most 20 entries, and per-source limit", async () => {
  const allow = Array.from({ length: 25 }, (_, i) => `10.0.${i}.0/24`);
  const base = sampleSnapshot();
  const snapshot = sampleSnapshot({
    listeners: [
      {
        ...base.listeners[0]!,
        access: { allow, deny: ["10.0.3.7/32"] },
        maxConnectionsPerSource: 10,
      },
      {
        name: "b",
        address: "0.0.0.0:9090",
        stats: base.listeners[0]!.stats,
        access: { allow: [], deny: [] },
        maxConnectionsPerSource: 0,
      },
    ],
  });
  await using admin = await start(() => snapshot);
  const res = await get(`${admin.base}/pools`);
  assert.equal(res.status, 200);
  assert.deepEqual(JSON.parse(res.body).listeners, [
    {
      name: "a",
      address: "0.0.0.0:8080",
      access: { allowCount: 25, denyCount: 1, allow: allow.slice(0, 20), deny: ["10.0.3.7/32"] },
      maxConnectionsPerSource: 10,
    },
    {
      name: "b",
      address: "0.0.0.0:9090",
      access: { allowCount: 0, denyCount: 0, allow: [], deny: [] },
      maxConnectionsPerSource: 0,
    },
  ]);
});

Deno.test("GET /metrics computes values from the snapshot at scrape time", async () => {
  let accepted = 3;
  await using admin = await start(() => {
    const s = sampleSnapshot();
    return {
      ...s,
      listeners: s.listeners.map((l) => ({ ...l, stats: { ...l.stats, accepted } })),
    };
  });
  let res = await get(`${admin.base}/metrics`);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  let got = new Set(res.body.split("\n"));
  assert.ok(got.has('nautiluslb_listener_connections_accepted_total{listener="a"} 3'), res.body);
  assert.ok(got.has('nautiluslb_backend_up{pool="a",backend="10.0.0.2:80"} 0'), res.body);
  assert.ok(got.has("nautiluslb_ready 1"), res.body);

  accepted = 10;
  res = await get(`${admin.base}/metrics`);
  got = new Set(res.body.split("\n"));
  assert.ok(got.has('nautiluslb_listener_connections_accepted_total{listener="a"} 10'), res.body);
});

Deno.test("admin routes: unknown paths 404, other methods 405, HEAD allowed", async () => {
  await using admin = await start(() => sampleSnapshot());
  const notFound = await get(`${admin.base}/nope`);
  assert.equal(notFound.status, 404);
  assert.equal(notFound.body, "not found\n");
  assert.equal((await get(`${admin.base}/index.html`)).status, 404);
  assert.equal((await get(`${admin.base}/healthz/`)).status, 404);
  assert.equal((await get(`${admin.base}/nope`, { method: "POST" })).status, 404);

  for (const path of ["/", "/healthz", "/readyz", "/pools", "/metrics"]) {
    for (const method of ["POST", "PUT", "DELETE"]) {
      const res = await get(`${admin.base}${path}`, { method });
      assert.equal(res.status, 405, `${method} ${path}`);
      assert.equal(res.headers.get("allow"), "GET, HEAD");
    }
  }

  const head = await get(`${admin.base}/healthz`, { method: "HEAD" });
  assert.equal(head.status, 200);
  assert.equal(head.body, "");
});

Deno.test("a throwing snapshot gives 503 on /readyz and 500 elsewhere; /healthz stays ok", async () => {
  await using admin = await start(() => {
    throw new Error("boom");
  });
  assert.equal((await get(`${admin.base}/healthz`)).status, 200);
  const ready = await get(`${admin.base}/readyz`);
  assert.equal(ready.status, 503);
  assert.equal(ready.body, "not ready: snapshot failed\n");
  assert.equal((await get(`${admin.base}/pools`)).status, 500);
  assert.equal((await get(`${admin.base}/metrics`)).status, 500);
  assert.equal((await get(`${admin.base}/`)).status, 500);
});

Deno.test("GET / serves the status page: HTML, no store, scripts forbidden, refresh settable", async () => {
  let calls = 0;
  await using admin = await start(() => {
    calls++;
    return sampleSnapshot();
  });
  const res = await get(`${admin.base}/`);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), "text/html; charset=utf-8");
  assert.equal(res.headers.get("cache-control"), "no-store");
  assert.equal(res.headers.get("x-content-type-options"), "nosniff");
  const csp = res.headers.get("content-security-policy") ?? "";
  assert.ok(csp.startsWith("default-src 'none';") && !csp.includes("script-src"), csp);
  assert.ok(res.body.startsWith("<!doctype html>"));
  assert.ok(res.body.includes(`data-pool="a"`) && res.body.includes("abc123"));
  assert.ok(res.body.includes(`<meta http-equiv="refresh" content="5">`));
  assert.equal(calls, 1);

  const still = await get(`${admin.base}/?refresh=0`);
  assert.ok(!still.body.includes("http-equiv"));
  const bad = await get(`${admin.base}/?refresh=-3`);
  assert.equal(bad.status, 400);
  assert.match(bad.body, /^Cannot render the status page as 'refreshSeconds' must be an integer/);
  const head = await get(`${admin.base}/`, { method: "HEAD" });
  assert.equal(head.status, 200);
  assert.equal(head.body, "");
});

Deno.test("aborting the signal stops the server and closes the port", async () => {
  const admin = await start(() => sampleSnapshot());
  assert.equal((await get(`${admin.base}/healthz`)).status, 200);
  await admin.stop();
  await assert.rejects(() => fetch(`${admin.base}/healthz`));
});

Deno.test("several servers run side by side, each with its own registry", async () => {
  await using one = await start(() => sampleSnapshot());
  await using two = await start(() => sampleSnapshot({ ready: false }));
  assert.notEqual(one.server.addr.port, two.server.addr.port);
  assert.match((await get(`${one.base}/metrics`)).body, /^nautiluslb_ready 1$/m);
  assert.match((await get(`${two.base}/metrics`)).body, /^nautiluslb_ready 0$/m);
});

Deno.test("startAdminServer rejects when the port is taken", async () => {
  await using admin = await start(() => sampleSnapshot());
  const controller = new AbortController();
  await assert.rejects(
    () => startAdminServer(options(controller.signal, { port: admin.server.addr.port })),
    (error: Error) => {
      assert.match(error.message, /^Cannot start admin server on 127\.0\.0\.1:\d+: /);
      assert.ok(error.cause instanceof Deno.errors.AddrInUse);
      return true;
    },
  );
  controller.abort();
});

Deno.test("startAdminServer with process metrics serves them", async () => {
  const controller = new AbortController();
  const server = await startAdminServer(options(controller.signal, { processMetrics: true }));
  const res = await get(`http://127.0.0.1:${server.addr.port}/metrics`);
  assert.match(res.body, /^process_cpu_seconds_total \d/m);
  controller.abort();
  await server.finished;
});

Deno.test("startAdminServer rejects with the reason when the signal is already aborted", async () => {
  const controller = new AbortController();
  const reason = new Error("stopping");
  controller.abort(reason);
  await assert.rejects(
    () => startAdminServer(options(controller.signal)),
    (error) => error === reason,
  );
});

/** Sends raw bytes on a fresh connection and returns everything until the server closes. */
async function raw(port: number, request: string): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const timer = setTimeout(() => conn.close(), 5000);
  try {
    await conn.write(new TextEncoder().encode(request));
    let text = "";
    const buffer = new Uint8Array(4096);
    for (;;) {
      const n = await conn.read(buffer);
      if (n === null) break;
      text += new TextDecoder().decode(buffer.subarray(0, n));
    }
    return text;
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch {
      // Closed by the timer.
    }
  }
}

function statuses(text: string): number[] {
  return [...text.matchAll(/^HTTP\/1\.1 (\d{3}) /gm)].map((m) => Number(m[1]));
}

Deno.test("HTTP/1.1: pipelined requests on one connection are answered in order", async () => {
  await using admin = await start(() => sampleSnapshot());
  const text = await raw(
    admin.server.addr.port,
    "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" +
      "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n" +
      "HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n" +
      "GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
  );
  assert.deepEqual(statuses(text), [200, 404, 200, 200]);
  const heads = text.split(/(?=^HTTP\/1\.1 )/m);
  assert.match(heads[0]!, /\r\ncontent-length: 3\r\n(?:[^\r\n]*\r\n)*\r\nok\n$/);
  // HEAD: the length of the body it would have, no body.
  assert.match(heads[2]!, /\r\ncontent-length: 3\r\n(?:[^\r\n]*\r\n)*\r\n$/);
  assert.match(heads[3]!, /\r\nconnection: close\r\n/);
});

Deno.test("HTTP/1.0 gets one answer and a close; request bodies are read and dropped", async () => {
  await using admin = await start(() => sampleSnapshot());
  const port = admin.server.addr.port;
  const one = await raw(port, "GET /healthz HTTP/1.0\r\n\r\nGET /healthz HTTP/1.0\r\n\r\n");
  assert.deepEqual(statuses(one), [200]);
  const body = await raw(
    port,
    "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello" +
      "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
  );
  assert.deepEqual(statuses(body), [405, 200]);
});

Deno.test("bad requests get 4xx/501 and a close", async () => {
  await using admin = await start(() => sampleSnapshot());
  const port = admin.server.addr.port;
  const cases: [string, number][] = [
    ["POST /healthz HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 501],
    [`POST /healthz HTTP/1.1\r\nContent-Length: ${1024 * 1024}\r\n\r\n`, 413],
    ["GET /healthz HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400],
    ["GET http://x/healthz HTTP/1.1\r\n\r\n", 400],
    ["GET /healthz HTTP/2.0\r\n\r\n", 400],
    ["GET /healthz HTTP/1.1\r\nBad Name: x\r\n\r\n", 400],
    ["GET /healthz HTTP/1.1\r\n folded: x\r\n\r\n", 400],
    ["TRACE /healthz HTTP/1.1\r\n\r\n", 400],
    ["GET //evil/healthz HTTP/1.1\r\nConnection: close\r\n\r\n", 404],
  ];
  for (const [request, status] of cases) {
    const text = await raw(port, request);
    assert.deepEqual(statuses(text), [status], JSON.stringify(request));
  }
  assert.equal((await get(`${admin.base}/healthz`)).status, 200);
});

Deno.test("startAdminServer rejects a non-positive limit with a RangeError", async () => {
  for (const key of ["headerTimeoutMs", "idleTimeoutMs", "maxConnections", "maxHeaders"]) {
    const controller = new AbortController();
    await assert.rejects(
      () => startAdminServer(options(controller.signal, { [key]: 0 })),
      (error: Error) => {
        assert.ok(error instanceof RangeError);
        assert.equal(
          error.message,
          `Cannot start admin server as '${key}' must be a positive number: current value is 0`,
        );
        return true;
      },
    );
  }
});

Deno.test("stopping closes idle connections at once", async () => {
  const controller = new AbortController();
  const server = await startAdminServer(options(controller.signal));
  const idle = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
  await idle.write(new TextEncoder().encode("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
  const buffer = new Uint8Array(4096);
  assert.match(
    new TextDecoder().decode(buffer.subarray(0, (await idle.read(buffer)) ?? 0)),
    /^HTTP\/1\.1 200 /,
  );
  controller.abort();
  const started = performance.now();
  const after = await idle.read(buffer).catch(() => null);
  idle.close();
  assert.equal(after, null);
  await server.finished;
  assert.ok(performance.now() - started < 2000, "closed without waiting for the idle timeout");
  assert.equal(server.connections.openConnections, 0);
});

Deno.test("GET /pools says why and since when a backend is unhealthy, with its limit and totals", async () => {
  const base = sampleSnapshot();
  const snapshot = {
    ...base,
    pools: [{
      ...base.pools[0]!,
      backends: [{
        key: "10.0.0.2:80",
        weight: 2,
        health: "unhealthy" as const,
        activeConnections: 0,
        isDraining: false,
        maxConnections: 50,
        counters: { connections: 7, connectFailures: 4, bytesToBackend: 10, bytesFromBackend: 20 },
        healthDetail: {
          cause: "active",
          error: "Connection refused (os error 111)",
          sinceMs: Date.UTC(2026, 0, 2, 3, 4, 5),
        },
      }],
    }],
  };
  await using admin = await start(() => snapshot);
  const res = await get(`${admin.base}/pools`);
  assert.deepEqual(JSON.parse(res.body).pools[0].backends, [{
    key: "10.0.0.2:80",
    weight: 2,
    health: "unhealthy",
    activeConnections: 0,
    isDraining: false,
    maxConnections: 50,
    connections: 7,
    connectFailures: 4,
    bytesToBackend: 10,
    bytesFromBackend: 20,
    healthCause: "active",
    healthError: "Connection refused (os error 111)",
    healthSince: "2026-01-02T03:04:05.000Z",
  }]);
});
