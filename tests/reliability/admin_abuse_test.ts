/**
 * Abusive admin clients: silent and slowloris connections are closed after the header
 * timeout, idle keep-alive connections after the idle timeout, surplus connections are shed
 * at the cap while a real probe is still answered, and oversized or garbage requests get an
 * error and a close without harming the server.
 *
 * Timings are measured and printed; assertions use bounds several times the configured
 * timeouts so a loaded machine does not fail them.
 */
import assert from "node:assert/strict";
import { type AdminServer, startAdminServer } from "../../src/admin/server.ts";
import { sampleSnapshot } from "../../src/admin/_test_snapshot.ts";
import { getLogger } from "../../src/log/mod.ts";
import { closeQuietly } from "../_helpers.ts";

const HOST = "127.0.0.1";
const encoder = new TextEncoder();
const decoder = new TextDecoder();

interface Running extends AsyncDisposable {
  readonly server: AdminServer;
  readonly port: number;
}

async function start(
  options: {
    headerTimeoutMs?: number;
    idleTimeoutMs?: number;
    maxConnections?: number;
  } = {},
): Promise<Running> {
  const controller = new AbortController();
  const server = await startAdminServer({
    hostname: HOST,
    port: 0,
    signal: controller.signal,
    snapshot: () => sampleSnapshot(),
    logger: getLogger("admin", "test"),
    processMetrics: false,
    ...options,
  });
  return {
    server,
    port: server.addr.port,
    async [Symbol.asyncDispose]() {
      controller.abort();
      await server.finished;
    },
  };
}

function connect(port: number): Promise<Deno.TcpConn> {
  return Deno.connect({ hostname: HOST, port });
}

/**
 * Reads until the server closes `conn` (EOF or reset) and resolves with the bytes read, or
 * with `undefined` when it is still open after `limitMs`.
 */
async function untilClosed(conn: Deno.Conn, limitMs: number): Promise<string | undefined> {
  let text = "";
  let isTimedOut = false;
  const timer = setTimeout(() => {
    isTimedOut = true;
    closeQuietly(conn);
  }, limitMs);
  const buffer = new Uint8Array(4096);
  try {
    for (;;) {
      const n = await conn.read(buffer);
      if (n === null) break;
      text += decoder.decode(buffer.subarray(0, n));
    }
  } catch {
    // A reset is a close too; a read interrupted by our own timer is not.
  } finally {
    clearTimeout(timer);
  }
  return isTimedOut ? undefined : text;
}

/** A one-shot `GET` with `Connection: close`; resolves with the status or an error text. */
async function healthz(port: number): Promise<number | string> {
  let conn: Deno.TcpConn;
  try {
    conn = await connect(port);
  } catch (error) {
    return String(error);
  }
  try {
    await conn.write(
      encoder.encode("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
    );
    const text = await untilClosed(conn, 5000);
    if (text === undefined) return "no answer within 5s";
    const match = /^HTTP\/1\.1 (\d{3}) /.exec(text);
    return match === null ? `bad answer ${JSON.stringify(text.slice(0, 40))}` : Number(match[1]);
  } catch (error) {
    return String(error);
  } finally {
    closeQuietly(conn);
  }
}

function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return Math.round(sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? NaN);
}

Deno.test("silent connections are closed after the header timeout", async () => {
  const headerTimeoutMs = 500;
  await using admin = await start({ headerTimeoutMs, maxConnections: 200 });
  const started = performance.now();
  const conns = await Promise.all(Array.from({ length: 100 }, () => connect(admin.port)));
  const closedAfter = await Promise.all(conns.map(async (conn) => {
    const text = await untilClosed(conn, 10_000);
    closeQuietly(conn);
    assert.equal(text, "", "closed without an answer");
    return performance.now() - started;
  }));
  console.log(
    `100 silent connections closed after p50 ${percentile(closedAfter, 0.5)}ms, ` +
      `max ${percentile(closedAfter, 1)}ms (header timeout ${headerTimeoutMs}ms)`,
  );
  assert.ok(Math.min(...closedAfter) >= headerTimeoutMs * 0.8, `${Math.min(...closedAfter)}`);
  assert.equal(admin.server.connections.openConnections, 0);
  assert.ok(admin.server.connections.timedOut >= 100);
  assert.equal(await healthz(admin.port), 200);
});

Deno.test("slowloris connections (one header byte per second) are closed after the header timeout", async () => {
  const headerTimeoutMs = 2000;
  await using admin = await start({ headerTimeoutMs, maxConnections: 400 });
  const head = "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: 1234567890\r\n\r\n";
  const started = performance.now();
  const conns = await Promise.all(Array.from({ length: 300 }, () => connect(admin.port)));
  const results = await Promise.all(conns.map(async (conn) => {
    const closed = untilClosed(conn, 15_000);
    let isClosed = false;
    void closed.then(() => isClosed = true);
    // At most 12 bytes, one a second: never a whole request head.
    for (let i = 0; i < 12 && !isClosed; i++) {
      try {
        await conn.write(encoder.encode(head[i]!));
      } catch {
        break;
      }
      await Promise.race([closed, new Promise((resolve) => setTimeout(resolve, 1000))]);
    }
    const text = await closed;
    closeQuietly(conn);
    return { text, ms: performance.now() - started };
  }));
  const times = results.map((r) => r.ms);
  console.log(
    `300 slowloris connections closed after p50 ${percentile(times, 0.5)}ms, ` +
      `max ${percentile(times, 1)}ms (header timeout ${headerTimeoutMs}ms)`,
  );
  for (const { text } of results) assert.equal(text, "", "closed without an answer");
  assert.ok(Math.max(...times) < 12_000, `${Math.max(...times)}`);
  assert.equal(admin.server.connections.openConnections, 0);
  assert.equal(await healthz(admin.port), 200);
});

Deno.test("an idle keep-alive connection is closed after the idle timeout", async () => {
  const idleTimeoutMs = 300;
  await using admin = await start({ idleTimeoutMs, headerTimeoutMs: 5000 });
  const conn = await connect(admin.port);
  await conn.write(encoder.encode("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
  const buffer = new Uint8Array(4096);
  const n = await conn.read(buffer);
  assert.match(decoder.decode(buffer.subarray(0, n ?? 0)), /^HTTP\/1\.1 200 OK\r\n/);
  const idleStart = performance.now();
  const rest = await untilClosed(conn, 10_000);
  const idleMs = Math.round(performance.now() - idleStart);
  closeQuietly(conn);
  console.log(
    `idle keep-alive connection closed after ${idleMs}ms (idle timeout ${idleTimeoutMs}ms)`,
  );
  assert.equal(rest, "");
  assert.ok(idleMs >= idleTimeoutMs * 0.8, `${idleMs}`);
});

Deno.test("at the connection cap, abusers are shed and a probe is still answered", async () => {
  const maxConnections = 16;
  // Long timeouts: only the cap sheds here.
  await using admin = await start({ maxConnections, headerTimeoutMs: 60_000 });
  const abusers = await Promise.all(Array.from({ length: 200 }, () => connect(admin.port)));
  const closed = abusers.map((conn) => untilClosed(conn, 20_000));
  const statuses: (number | string)[] = [];
  for (let i = 0; i < 5; i++) statuses.push(await healthz(admin.port));
  assert.deepEqual(statuses, [200, 200, 200, 200, 200]);
  assert.ok(
    admin.server.connections.openConnections <= maxConnections,
    `${admin.server.connections.openConnections}`,
  );
  // The oldest silent connections made room; at most the cap's worth are still open.
  const grace = new Promise<"open">((resolve) => setTimeout(() => resolve("open"), 300));
  const outcomes = await Promise.all(closed.map((p) => Promise.race([p, grace])));
  const shedByServer = outcomes.filter((t) => t === "").length;
  console.log(
    `cap ${maxConnections}: ${shedByServer} of 200 silent connections shed by the server, ` +
      `stats ${JSON.stringify(admin.server.connections)}`,
  );
  for (const conn of abusers) closeQuietly(conn);
  await Promise.all(closed);
  assert.ok(shedByServer >= 200 - maxConnections, `${shedByServer}`);
  assert.ok(shedByServer < 200, "the newest connections stay within the cap");
});

Deno.test("a 1 MiB header, 10,000 headers and random bytes get an error; the server stays up", async () => {
  await using admin = await start();
  const send = async (bytes: Uint8Array): Promise<string> => {
    const conn = await connect(admin.port);
    const reading = untilClosed(conn, 10_000);
    try {
      let offset = 0;
      while (offset < bytes.length) offset += await conn.write(bytes.subarray(offset));
    } catch {
      // The server may close before it has read everything.
    }
    const text = await reading;
    closeQuietly(conn);
    return text ?? "still open after 10s";
  };

  const big = encoder.encode(
    `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(1024 * 1024)}\r\n\r\n`,
  );
  const bigAnswer = await send(big);
  // 431, or a reset that beat it to the client: never a 200, never left open.
  assert.ok(bigAnswer === "" || bigAnswer.startsWith("HTTP/1.1 431 "), bigAnswer.slice(0, 60));

  let many = "GET /healthz HTTP/1.1\r\nHost: x\r\n";
  for (let i = 0; i < 10_000; i++) many += `X-H${i}: v\r\n`;
  const manyAnswer = await send(encoder.encode(many + "\r\n"));
  assert.ok(manyAnswer === "" || manyAnswer.startsWith("HTTP/1.1 431 "), manyAnswer.slice(0, 60));

  // Few fields, each under the byte limit: the count limit answers.
  let counted = "GET /healthz HTTP/1.1\r\nHost: x\r\n";
  for (let i = 0; i < 150; i++) counted += `X${i}: v\r\n`;
  assert.match(await send(encoder.encode(counted + "\r\n")), /^HTTP\/1\.1 431 /);

  const random = new Uint8Array(64 * 1024);
  for (let i = 0; i < random.length; i += 65536) crypto.getRandomValues(random.subarray(i));
  const randomAnswer = await send(random);
  assert.ok(
    randomAnswer === "" || /^HTTP\/1\.1 (400|431) /.test(randomAnswer),
    randomAnswer.slice(0, 60),
  );
  assert.match(
    await send(encoder.encode("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n")),
    /^HTTP\/1\.1 400 /,
  );

  assert.equal(await healthz(admin.port), 200);
  assert.equal(admin.server.connections.openConnections, 0);
});
