/**
 * PROXY protocol through the data path over real loopback sockets: the header a backend
 * receives before client bytes (v1, v2; IPv4 and `::1`), an accepted header becoming the
 * client address (Maglev, the header sent on), and refusals that close one connection only.
 */
import assert from "node:assert/strict";
import * as net from "node:net";
import { createBalancer } from "../src/balancer/mod.ts";
import { CidrList } from "../src/core/cidr.ts";
import type { Backend, BalancerKind, ProxyProtocolVersion } from "../src/core/types.ts";
import { Pool } from "../src/pool/mod.ts";
import {
  type AcceptProxyProtocolOptions,
  ProxyHeaderParser,
  ProxyListener,
} from "../src/proxy/mod.ts";
import {
  closeQuietly,
  concat,
  delay,
  isClosedWithin,
  readAll,
  WAIT_MS,
  waitFor,
  withTimeout,
  writeAll,
} from "./_helpers.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A backend that records everything a connection sent (to EOF), then answers `ok` and closes. */
class Recorder {
  readonly received: Uint8Array[] = [];
  readonly port: number;
  readonly #listener: Deno.TcpListener;
  readonly #tasks = new Set<Promise<void>>();
  readonly #conns = new Set<Deno.TcpConn>();
  readonly #loop: Promise<void>;

  constructor(readonly hostname: string) {
    this.#listener = Deno.listen({ hostname, port: 0 });
    this.port = this.#listener.addr.port;
    this.#loop = this.#accept();
  }

  backend(proxyProtocol?: ProxyProtocolVersion): Backend {
    const key = this.hostname.includes(":")
      ? `[${this.hostname}]:${this.port}`
      : `${this.hostname}:${this.port}`;
    return {
      key,
      host: this.hostname,
      port: this.port,
      weight: 1,
      ...(proxyProtocol && { proxyProtocol }),
    };
  }

  async #accept(): Promise<void> {
    while (true) {
      let conn: Deno.TcpConn;
      try {
        conn = await this.#listener.accept();
      } catch {
        return;
      }
      this.#conns.add(conn);
      const task = (async () => {
        try {
          this.received.push(await readAll(conn));
          await writeAll(conn, encoder.encode("ok"));
        } catch {
          // the test sees it from the client side
        } finally {
          this.#conns.delete(conn);
          closeQuietly(conn);
        }
      })();
      this.#tasks.add(task);
      task.finally(() => this.#tasks.delete(task));
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    closeQuietly(this.#listener);
    for (const conn of this.#conns) closeQuietly(conn);
    await this.#loop;
    await Promise.all(this.#tasks);
  }
}

interface Proxy {
  readonly listener: ProxyListener;
  readonly addr: Deno.NetAddr;
  [Symbol.asyncDispose](): Promise<void>;
}

function startProxy(
  hostname: string,
  backends: readonly Backend[],
  options: { balancer?: BalancerKind; accept?: AcceptProxyProtocolOptions } = {},
): Proxy {
  const pool = new Pool({
    name: "pp",
    balancer: createBalancer(options.balancer ?? "round_robin"),
  });
  pool.update(backends);
  const listener = new ProxyListener({
    name: "pp",
    hostname,
    port: 0,
    picker: pool,
    ...(options.accept && { acceptProxyProtocol: options.accept }),
  });
  const addr = listener.listen();
  const serving = listener.serve();
  return {
    listener,
    addr,
    async [Symbol.asyncDispose]() {
      await listener.shutdown(0);
      await serving;
      pool.close();
    },
  };
}

/** Sends `chunks` (in separate writes), half-closes, and returns the whole answer. */
async function exchange(conn: Deno.TcpConn, ...chunks: Uint8Array[]): Promise<string> {
  for (const chunk of chunks) await writeAll(conn, chunk);
  await conn.closeWrite();
  return decoder.decode(await withTimeout(readAll(conn), WAIT_MS, "answer"));
}

function ipv4Bytes(text: string): number[] {
  return text.split(".").map(Number);
}

/** `::1` as 16 bytes. */
const LOOPBACK_V6 = [...new Array(15).fill(0), 1];

/** The v2 header of a TCP connection, built byte by byte from the spec (section 2.2). */
function v2Header(
  family: "tcp4" | "tcp6",
  source: number[],
  destination: number[],
  sourcePort: number,
  destinationPort: number,
): Uint8Array {
  const signature = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];
  const length = family === "tcp4" ? 12 : 36;
  return Uint8Array.from([
    ...signature,
    0x21, // version 2, PROXY
    family === "tcp4" ? 0x11 : 0x21, // AF_INET/AF_INET6, STREAM
    0,
    length,
    ...source,
    ...destination,
    sourcePort >> 8,
    sourcePort & 0xff,
    destinationPort >> 8,
    destinationPort & 0xff,
  ]);
}

for (const version of ["v1", "v2"] as const) {
  for (const host of ["127.0.0.1", "::1"]) {
    Deno.test(`backend with proxyProtocol ${version} receives the header before client bytes (${host})`, async () => {
      await using recorder = new Recorder(host);
      await using proxy = startProxy(host, [recorder.backend(version)]);
      const conn = await Deno.connect({ hostname: host, port: proxy.addr.port });
      const client = conn.localAddr;
      try {
        assert.equal(await exchange(conn, encoder.encode("hello")), "ok");
      } finally {
        conn.close();
      }
      await waitFor(() => recorder.received.length === 1, "backend to record");
      const got = recorder.received[0]!;
      const isV4 = host === "127.0.0.1";
      const expected = version === "v1"
        ? encoder.encode(
          `PROXY ${isV4 ? "TCP4" : "TCP6"} ${host} ${host} ${client.port} ${proxy.addr.port}\r\n`,
        )
        : v2Header(
          isV4 ? "tcp4" : "tcp6",
          isV4 ? ipv4Bytes(host) : LOOPBACK_V6,
          isV4 ? ipv4Bytes(host) : LOOPBACK_V6,
          client.port,
          proxy.addr.port,
        );
      assert.deepEqual([...got], [...expected, ...encoder.encode("hello")]);
    });
  }
}

Deno.test("backend without proxyProtocol receives the client's bytes only", async () => {
  await using recorder = new Recorder("127.0.0.1");
  await using proxy = startProxy("127.0.0.1", [recorder.backend()]);
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: proxy.addr.port });
  try {
    assert.equal(await exchange(conn, encoder.encode("plain")), "ok");
  } finally {
    conn.close();
  }
  await waitFor(() => recorder.received.length === 1, "backend to record");
  assert.equal(decoder.decode(recorder.received[0]!), "plain");
});

function trusting(...cidrs: string[]): AcceptProxyProtocolOptions {
  return { trustedProxies: CidrList.from(cidrs), headerTimeoutMs: 300 };
}

Deno.test("an accepted header's address picks the Maglev backend and is passed on", async () => {
  await using a = new Recorder("127.0.0.1");
  await using b = new Recorder("127.0.0.1");
  await using c = new Recorder("127.0.0.1");
  const recorders = [a, b, c];
  const backends = recorders.map((r) => r.backend("v1"));
  await using proxy = startProxy("127.0.0.1", backends, {
    balancer: "maglev",
    accept: trusting("127.0.0.0/8"),
  });
  const maglev = createBalancer("maglev");
  const candidates = backends.map((backend) => ({ backend, activeConnections: 0 }));
  const sources = Array.from({ length: 12 }, (_, i) => `198.51.100.${10 + i * 17}`);
  const expected = new Map<string, string>();
  for (const [i, source] of sources.entries()) {
    const pick = maglev.pick(candidates, { address: source, port: 40_000 + i });
    expected.set(source, backends[pick]!.key);
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: proxy.addr.port });
    try {
      // Header and first client bytes in one write: the bytes after the header must follow.
      const header = `PROXY TCP4 ${source} 192.0.2.1 ${40_000 + i} 443\r\n`;
      assert.equal(await exchange(conn, encoder.encode(`${header}data-${i}`)), "ok");
    } finally {
      conn.close();
    }
  }
  await waitFor(
    () => recorders.reduce((n, r) => n + r.received.length, 0) === sources.length,
    "every connection recorded",
  );
  assert.ok(new Set(expected.values()).size > 1, "sources spread over several backends");
  for (const [r, recorder] of recorders.entries()) {
    for (const bytes of recorder.received) {
      const parsed = new ProxyHeaderParser().push(bytes);
      assert.equal(parsed.kind, "done");
      if (parsed.kind !== "done") continue;
      const { source, destination } = parsed.header;
      assert.ok(source !== undefined);
      assert.equal(expected.get(source.address), backends[r]!.key, `backend of ${source.address}`);
      const i = sources.indexOf(source.address);
      assert.deepEqual(source, { address: sources[i], port: 40_000 + i });
      assert.deepEqual(destination, { address: "192.0.2.1", port: 443 });
      assert.equal(decoder.decode(parsed.rest), `data-${i}`);
    }
  }
  assert.equal(proxy.listener.stats.refusedByCause.proxy_header, 0);
});

Deno.test("an accepted v2 header over IPv6 becomes the client address sent on", async () => {
  await using recorder = new Recorder("::1");
  await using proxy = startProxy("::1", [recorder.backend("v2")], { accept: trusting("::1") });
  const source = [0x20, 0x01, 0x0d, 0xb8, ...new Array(11).fill(0), 0x07]; // 2001:db8::7
  const inbound = v2Header("tcp6", source, LOOPBACK_V6, 5555, 8443);
  const conn = await Deno.connect({ hostname: "::1", port: proxy.addr.port });
  try {
    // The header in two writes, then data: the reader must wait for all of it.
    await writeAll(conn, inbound.subarray(0, 20));
    await delay(20);
    assert.equal(await exchange(conn, inbound.subarray(20), encoder.encode("six")), "ok");
  } finally {
    conn.close();
  }
  await waitFor(() => recorder.received.length === 1, "backend to record");
  assert.deepEqual([...recorder.received[0]!], [...inbound, ...encoder.encode("six")]);
});

Deno.test("a LOCAL header keeps the socket's address", async () => {
  await using recorder = new Recorder("127.0.0.1");
  await using proxy = startProxy("127.0.0.1", [recorder.backend("v1")], {
    accept: trusting("127.0.0.1/32"),
  });
  const local = Uint8Array.of(
    ...[0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a],
    0x20,
    0x00,
    0x00,
    0x00,
  );
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: proxy.addr.port });
  const client = conn.localAddr;
  try {
    assert.equal(await exchange(conn, concat([local, encoder.encode("x")])), "ok");
  } finally {
    conn.close();
  }
  await waitFor(() => recorder.received.length === 1, "backend to record");
  assert.equal(
    decoder.decode(recorder.received[0]!),
    `PROXY TCP4 127.0.0.1 127.0.0.1 ${client.port} ${proxy.addr.port}\r\nx`,
  );
});

/** A client with header and data ready, opened before a bad connection and finished after. */
async function healthyClient(port: number): Promise<{ finish(): Promise<string> }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await writeAll(conn, encoder.encode("PROXY TCP4 203.0.113.9 192.0.2.1 1111 80\r\nfirst-"));
  return {
    async finish() {
      try {
        return await exchange(conn, encoder.encode("second"));
      } finally {
        conn.close();
      }
    },
  };
}

function assertHealthyRecorded(recorder: Recorder): void {
  assert.equal(recorder.received.length, 1);
  assert.equal(
    decoder.decode(recorder.received[0]!),
    "PROXY TCP4 203.0.113.9 192.0.2.1 1111 80\r\nfirst-second",
  );
}

Deno.test("a slow header times out and closes that connection only", async () => {
  await using recorder = new Recorder("127.0.0.1");
  await using proxy = startProxy("127.0.0.1", [recorder.backend("v1")], {
    accept: trusting("127.0.0.0/8"),
  });
  const healthy = await healthyClient(proxy.addr.port);
  const slow = await Deno.connect({ hostname: "127.0.0.1", port: proxy.addr.port });
  try {
    await writeAll(slow, encoder.encode("PROXY TCP4 "));
    const started = performance.now();
    assert.ok(await isClosedWithin(slow, WAIT_MS), "slow connection closed");
    const ms = performance.now() - started;
    assert.ok(ms >= 200, `closed after the 300ms header timeout, not before: ${ms}ms`);
  } finally {
    slow.close();
  }
  assert.equal(await healthy.finish(), "ok");
  await waitFor(() => recorder.received.length === 1, "healthy connection recorded");
  assertHealthyRecorded(recorder);
  assert.equal(proxy.listener.stats.refusedByCause.proxy_header, 1);
});

Deno.test("a garbage header closes that connection only", async () => {
  await using recorder = new Recorder("127.0.0.1");
  await using proxy = startProxy("127.0.0.1", [recorder.backend("v1")], {
    accept: trusting("127.0.0.0/8"),
  });
  const healthy = await healthyClient(proxy.addr.port);
  const garbage = await Deno.connect({ hostname: "127.0.0.1", port: proxy.addr.port });
  try {
    await writeAll(garbage, encoder.encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    assert.ok(await isClosedWithin(garbage, WAIT_MS), "garbage connection closed");
  } finally {
    garbage.close();
  }
  assert.equal(await healthy.finish(), "ok");
  await waitFor(() => recorder.received.length === 1, "healthy connection recorded");
  assertHealthyRecorded(recorder);
  assert.equal(proxy.listener.stats.refusedByCause.proxy_header, 1);
  assert.equal(proxy.listener.stats.refusedByCause.untrusted, 0);
});

/** Connects from `localAddress` with node:net; resolves when the server closed it. */
function connectFrom(localAddress: string, port: number): Promise<"closed"> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: "127.0.0.1", port, localAddress });
    socket.on("error", () => {
      socket.destroy();
      resolve("closed");
    });
    socket.on("close", () => resolve("closed"));
    socket.on("connect", () => {
      socket.write("PROXY TCP4 203.0.113.66 192.0.2.1 6666 80\r\nforged");
    });
    socket.on("data", () => {
      socket.destroy();
      reject(new Error("an untrusted peer got an answer"));
    });
  });
}

Deno.test("a peer outside trustedProxies is refused; a trusted one is untouched", async () => {
  await using recorder = new Recorder("127.0.0.1");
  await using proxy = startProxy("127.0.0.1", [recorder.backend("v1")], {
    accept: trusting("127.0.0.1/32"),
  });
  const healthy = await healthyClient(proxy.addr.port);
  assert.equal(
    await withTimeout(connectFrom("127.0.0.5", proxy.addr.port), WAIT_MS, "untrusted close"),
    "closed",
  );
  assert.equal(await healthy.finish(), "ok");
  await waitFor(() => recorder.received.length === 1, "healthy connection recorded");
  assertHealthyRecorded(recorder);
  assert.equal(proxy.listener.stats.refusedByCause.untrusted, 1);
  assert.equal(proxy.listener.stats.refusedByCause.proxy_header, 0);
});

Deno.test("shutdown closes a connection still waiting for its header", async () => {
  const recorder = new Recorder("127.0.0.1");
  const proxy = startProxy("127.0.0.1", [recorder.backend()], {
    accept: { trustedProxies: CidrList.from(["127.0.0.0/8"]), headerTimeoutMs: 60_000 },
  });
  const waiting = await Deno.connect({ hostname: "127.0.0.1", port: proxy.addr.port });
  try {
    await waitFor(() => proxy.listener.stats.activeConnections === 1, "connection accepted");
    await withTimeout(proxy[Symbol.asyncDispose](), WAIT_MS, "shutdown");
    assert.ok(await isClosedWithin(waiting, WAIT_MS), "waiting connection closed");
    assert.equal(
      proxy.listener.stats.refusedByCause.proxy_header,
      0,
      "a shutdown is not a bad header",
    );
  } finally {
    waiting.close();
    await recorder[Symbol.asyncDispose]();
  }
});

Deno.test("a server-first backend gets the header without waiting for client bytes", async () => {
  // Like SMTP behind PROXY protocol: the backend reads the header, then greets; the client
  // says nothing before the greeting.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const serving = (async () => {
    const conn = await listener.accept();
    try {
      const parser = new ProxyHeaderParser();
      const buffer = new Uint8Array(256);
      let header = "";
      while (true) {
        const n = await conn.read(buffer);
        if (n === null) throw new Error("EOF before a PROXY header");
        const result = parser.push(buffer.subarray(0, n));
        if (result.kind === "error") throw new Error(result.message);
        if (result.kind === "done") {
          header = `${result.header.source?.address}`;
          break;
        }
      }
      await writeAll(conn, encoder.encode(`220 hello ${header}\r\n`));
    } finally {
      conn.close();
    }
  })();
  const backend: Backend = {
    key: `127.0.0.1:${listener.addr.port}`,
    host: "127.0.0.1",
    port: listener.addr.port,
    weight: 1,
    proxyProtocol: "v2",
  };
  try {
    await using proxy = startProxy("127.0.0.1", [backend]);
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: proxy.addr.port });
    try {
      const greeting = decoder.decode(await withTimeout(readAll(conn), WAIT_MS, "greeting"));
      assert.equal(greeting, "220 hello 127.0.0.1\r\n");
    } finally {
      conn.close();
    }
    await serving;
  } finally {
    listener.close();
  }
});
