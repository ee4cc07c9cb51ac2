import assert from "node:assert/strict";
import { isLocalNetworkError, probeHttp, probeTcp } from "./probe.ts";
import { probeTarget } from "./target.ts";
import {
  acceptAndClose,
  closedPort,
  httpStatus,
  readUntil,
  silent,
  startServer,
  write,
} from "./_test_server.ts";

const HOST = "127.0.0.1";

Deno.test("probeTcp: an open port passes", async () => {
  const server = startServer(acceptAndClose);
  try {
    const result = await probeTcp({ host: HOST, port: server.port }, { timeoutMs: 1000 });
    assert.equal(result.ok, true);
    assert.equal(result.error, undefined);
    assert.ok(result.latencyMs >= 0 && result.latencyMs < 1000);
  } finally {
    await server.close();
  }
});

Deno.test("probeTcp: a closed port fails with connection refused", async () => {
  const result = await probeTcp({ host: HOST, port: closedPort() }, { timeoutMs: 1000 });
  assert.deepEqual({ ok: result.ok, error: result.error }, {
    ok: false,
    error: "connection refused",
  });
});

Deno.test("probeTcp: a backend that never answers the expected text times out", async () => {
  const server = startServer(silent);
  try {
    const result = await probeTcp({ host: HOST, port: server.port }, {
      timeoutMs: 200,
      send: "PING\r\n",
      expect: "PONG",
    });
    assert.equal(result.ok, false);
    assert.equal(result.error, "timed out after 200ms");
    assert.ok(result.latencyMs >= 150 && result.latencyMs < 5000, `${result.latencyMs}`);
  } finally {
    await server.close();
  }
});

Deno.test("probeTcp: send and expect, with the reply split across writes", async () => {
  const server = startServer(async (conn, self) => {
    self.received.push(await readUntil(conn, "\r\n"));
    await write(conn, "+PO");
    await new Promise((resolve) => setTimeout(resolve, 20));
    await write(conn, "NG\r\n");
    await readUntil(conn, "\u0000never");
  });
  try {
    const result = await probeTcp({ host: HOST, port: server.port }, {
      timeoutMs: 2000,
      send: "PING\r\n",
      expect: "PONG",
    });
    assert.deepEqual({ ok: result.ok, error: result.error }, { ok: true, error: undefined });
    assert.deepEqual(server.received, ["PING\r\n"]);
  } finally {
    await server.close();
  }
});

Deno.test("probeTcp: a reply without the expected text fails at EOF", async () => {
  const server = startServer(async (conn) => {
    await write(conn, "-ERR unknown command\r\n");
  });
  try {
    const result = await probeTcp({ host: HOST, port: server.port }, {
      timeoutMs: 2000,
      expect: "PONG",
    });
    assert.deepEqual({ ok: result.ok, error: result.error }, {
      ok: false,
      error: 'expected "PONG" not found',
    });
  } finally {
    await server.close();
  }
});

Deno.test("probeTcp: abort before and during the probe", async () => {
  const early = await probeTcp({ host: HOST, port: 1 }, {
    timeoutMs: 1000,
    signal: AbortSignal.abort(),
  });
  assert.deepEqual(early, { ok: false, latencyMs: 0, error: "aborted" });

  const server = startServer(silent);
  try {
    const controller = new AbortController();
    const pending = probeTcp({ host: HOST, port: server.port }, {
      timeoutMs: 10_000,
      expect: "never",
      signal: controller.signal,
    });
    setTimeout(() => controller.abort(), 50);
    const result = await pending;
    assert.deepEqual({ ok: result.ok, error: result.error }, { ok: false, error: "aborted" });
    assert.ok(result.latencyMs < 5000);
  } finally {
    await server.close();
  }
});

Deno.test("probeTcp: a bad timeout is a failed result, not a throw", async () => {
  const result = await probeTcp({ host: HOST, port: 1 }, { timeoutMs: 0 });
  assert.equal(result.ok, false);
  assert.match(result.error ?? "", /^invalid timeout/);
});

Deno.test("probeHttp: 200 passes and sends an HTTP/1.0 GET", async () => {
  const server = startServer(httpStatus(200));
  try {
    const result = await probeHttp({ host: HOST, port: server.port }, { timeoutMs: 2000 });
    assert.deepEqual({ ok: result.ok, error: result.error }, { ok: true, error: undefined });
    const request = server.received[0] ?? "";
    assert.match(request, /^GET \/healthz HTTP\/1\.0\r\n/);
    assert.match(request, new RegExp(`\r\nHost: 127\\.0\\.0\\.1:${server.port}\r\n`));
    assert.ok(request.endsWith("\r\n\r\n"));
  } finally {
    await server.close();
  }
});

Deno.test("probeHttp: 503 fails with the status, custom path is requested", async () => {
  const server = startServer(httpStatus(503));
  try {
    const result = await probeHttp({ host: HOST, port: server.port }, {
      path: "/ready?x=1",
      timeoutMs: 2000,
    });
    assert.deepEqual({ ok: result.ok, error: result.error }, { ok: false, error: "HTTP 503" });
    assert.match(server.received[0] ?? "", /^GET \/ready\?x=1 HTTP\/1\.0\r\n/);
  } finally {
    await server.close();
  }
});

Deno.test("probeHttp: other 2xx pass, 3xx and 4xx fail", async () => {
  for (const [status, ok] of [[204, true], [299, true], [301, false], [404, false]] as const) {
    const server = startServer(httpStatus(status));
    try {
      const result = await probeHttp({ host: HOST, port: server.port }, { timeoutMs: 2000 });
      assert.equal(result.ok, ok, `status ${status}`);
      if (!ok) assert.equal(result.error, `HTTP ${status}`);
    } finally {
      await server.close();
    }
  }
});

Deno.test("probeHttp: garbage, early close, refusal and silence fail", async () => {
  const garbage = startServer(async (conn) => {
    await readUntil(conn, "\r\n\r\n");
    await write(conn, "SSH-2.0-OpenSSH_9.6\r\n");
  });
  const early = startServer(acceptAndClose);
  const quiet = startServer(silent);
  try {
    const target = (port: number) => ({ host: HOST, port });
    const results = await Promise.all([
      probeHttp(target(garbage.port), { timeoutMs: 2000 }),
      probeHttp(target(early.port), { timeoutMs: 2000 }),
      probeHttp(target(closedPort()), { timeoutMs: 2000 }),
      probeHttp(target(quiet.port), { timeoutMs: 100 }),
    ]);
    assert.deepEqual(results.map((r) => [r.ok, r.error]), [
      [false, 'invalid HTTP status line "SSH-2.0-OpenSSH_9.6"'],
      [false, "connection closed before an HTTP status line"],
      [false, "connection refused"],
      [false, "timed out after 100ms"],
    ]);
  } finally {
    await Promise.all([garbage.close(), early.close(), quiet.close()]);
  }
});

Deno.test("probeHttp: a path with spaces or line breaks is refused", async () => {
  for (const path of ["healthz", "/a b", "/a\r\nX: y"]) {
    const result = await probeHttp({ host: HOST, port: 1 }, { path, timeoutMs: 100 });
    assert.equal(result.ok, false);
    assert.match(result.error ?? "", /^invalid HTTP path/);
  }
});

Deno.test("isLocalNetworkError: running out of descriptors or ports is local", () => {
  const withCode = (code: string, message: string) => Object.assign(new Error(message), { code });
  const cases: [unknown, boolean][] = [
    [withCode("EMFILE", "Too many open files (os error 24)"), true],
    [withCode("ENFILE", "Too many open files in system (os error 23)"), true],
    [withCode("EADDRNOTAVAIL", "Cannot assign requested address (os error 99)"), true],
    [withCode("ENOBUFS", "No buffer space available (os error 105)"), true],
    [new Error("Too many open files (os error 24)"), true],
    [new Error("Cannot assign requested address (os error 99)"), true],
    [withCode("ECONNREFUSED", "Connection refused (os error 111)"), false],
    [withCode("ETIMEDOUT", "Connection timed out (os error 110)"), false],
    [withCode("EHOSTUNREACH", "No route to host (os error 113)"), false],
    [new Error("Connection reset by peer (os error 104)"), false],
    [new Error("timed out"), false],
    ["EMFILE", false],
    [undefined, false],
  ];
  for (const [error, expected] of cases) {
    assert.equal(isLocalNetworkError(error), expected, String(error));
  }
});

Deno.test("isLocalNetworkError: a real refused connect is the backend's fault", async () => {
  const error = await Deno.connect({ hostname: HOST, port: closedPort() }).then(
    (conn) => {
      conn.close();
      return undefined;
    },
    (e: unknown) => e,
  );
  assert.ok(error instanceof Error);
  assert.equal(isLocalNetworkError(error), false);
  const result = await probeTcp({ host: HOST, port: closedPort() }, { timeoutMs: 1000 });
  assert.equal(result.isLocalError, undefined);
});

/** A server that records the first `count` bytes of each connection, then answers `PONG`. */
function recordFirst(count: number, seen: number[][]) {
  return async (conn: Deno.TcpConn) => {
    const buffer = new Uint8Array(count);
    let n = 0;
    while (n < count) {
      const got = await conn.read(buffer.subarray(n));
      if (got === null) break;
      n += got;
    }
    seen.push([...buffer.subarray(0, n)]);
    await write(conn, "PONG");
  };
}

Deno.test("probeTcp: proxyProtocol sends a LOCAL (v2) or UNKNOWN (v1) header before send", async () => {
  const v2Local = [
    ...[0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a],
    0x20,
    0x00,
    0x00,
    0x00,
  ];
  const ping = [..."PING\r\n"].map((c) => c.charCodeAt(0));
  const cases = [
    { version: "v2" as const, expected: [...v2Local, ...ping] },
    {
      version: "v1" as const,
      expected: [..."PROXY UNKNOWN\r\n"].map((c) => c.charCodeAt(0)).concat(ping),
    },
  ];
  for (const { version, expected } of cases) {
    const seen: number[][] = [];
    const server = startServer(recordFirst(expected.length, seen));
    try {
      const result = await probeTcp({ host: HOST, port: server.port }, {
        timeoutMs: 1000,
        proxyProtocol: version,
        send: "PING\r\n",
        expect: "PONG",
      });
      assert.equal(result.ok, true, result.error ?? "");
      assert.deepEqual(seen, [expected]);
    } finally {
      await server.close();
    }
  }
});

Deno.test("probeTarget: the PROXY header goes to the backend's own port, not a health port", async () => {
  const seen: number[][] = [];
  const server = startServer(recordFirst(6, seen));
  try {
    const check = {
      enabled: true,
      intervalMs: 1000,
      timeoutMs: 1000,
      rise: 1,
      fall: 1,
      maxEjectionPercent: 50,
      send: "PING\r\n",
      expect: "PONG",
      proxyProtocol: "v1" as const,
    };
    const own = await probeTarget({
      key: `${HOST}:${server.port}`,
      pool: "p",
      host: HOST,
      port: server.port,
      check,
    });
    const other = await probeTarget({
      key: `${HOST}:1`,
      pool: "p",
      host: HOST,
      port: 1,
      check: { ...check, port: server.port },
    });
    assert.equal(own.ok, true, own.error ?? "");
    assert.equal(other.ok, true, other.error ?? "");
    const text = seen.map((bytes) => String.fromCharCode(...bytes));
    assert.deepEqual(text, ["PROXY ", "PING\r\n"]);
  } finally {
    await server.close();
  }
});
