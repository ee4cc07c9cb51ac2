/**
 * A `tls` listener over real loopback sockets: ClientHellos routed by server name to pools
 * whose backends answer with their name, the hello replayed byte for byte, refusals counted.
 */
import assert from "node:assert/strict";
import { createBalancer } from "../src/balancer/mod.ts";
import { Pool } from "../src/pool/mod.ts";
import {
  encodeProxyHeader,
  ProxyListener,
  type ProxyListenerOptions,
  TlsRouter,
} from "../src/proxy/mod.ts";
import { buildClientHello } from "../src/proxy/tls/_test_hello.ts";
import { getLogger, resetLogging, setupLogging } from "../src/log/mod.ts";
import {
  closeQuietly,
  connect,
  HOST,
  isClosedWithin,
  readExactly,
  readName,
  startSink,
  TestServer,
  WAIT_MS,
  waitFor,
  withTimeout,
  writeAll,
} from "./_helpers.ts";

/** A backend that answers `name:` then the sha-less length and first bytes it got. */
function startRecorder(name: string): TestServer & { readonly got: Uint8Array[] } {
  const got: Uint8Array[] = [];
  const server = new TestServer(async (conn) => {
    await writeAll(conn, new TextEncoder().encode(name));
    const scratch = new Uint8Array(65536);
    const chunks: Uint8Array[] = [];
    let n: number | null;
    while ((n = await conn.read(scratch).catch(() => null)) !== null) {
      chunks.push(scratch.slice(0, n));
    }
    got.push(new Uint8Array(chunks.flatMap((c) => [...c])));
  });
  return Object.assign(server, { got });
}

interface TlsProxy {
  readonly listener: ProxyListener;
  readonly port: number;
  readonly pools: Pool[];
  [Symbol.asyncDispose](): Promise<void>;
}

function startTlsProxy(
  routes: { name: string; hosts: string[]; server: TestServer }[],
  options:
    & { defaultRoute?: string; peekTimeoutMs?: number; maxClientHelloBytes?: number }
    & Partial<ProxyListenerOptions> = {},
): TlsProxy {
  const pools = routes.map((r) => {
    const pool = new Pool({ name: `tls/${r.name}`, balancer: createBalancer("round_robin") });
    pool.update([r.server.backend]);
    return pool;
  });
  const { defaultRoute, peekTimeoutMs, maxClientHelloBytes, ...rest } = options;
  const router = new TlsRouter({
    routes: routes.map((r, i) => ({ name: r.name, hosts: r.hosts, picker: pools[i]! })),
    defaultRoute,
    peekTimeoutMs,
    maxClientHelloBytes,
  });
  const listener = new ProxyListener({
    name: "tls",
    hostname: HOST,
    port: 0,
    picker: pools[0]!,
    router,
    ...rest,
  });
  const { port } = listener.listen();
  const serving = listener.serve();
  return {
    listener,
    port,
    pools,
    async [Symbol.asyncDispose]() {
      await listener.shutdown(0);
      await serving;
      for (const pool of pools) pool.close();
    },
  };
}

async function nameFor(port: number, bytes: Uint8Array, perByte = false): Promise<string> {
  const conn = await connect(port);
  try {
    if (perByte) {
      conn.setNoDelay(true);
      for (let i = 0; i < bytes.length; i++) await writeAll(conn, bytes.subarray(i, i + 1));
    } else {
      await writeAll(conn, bytes);
    }
    return await withTimeout(readName(conn, 3), WAIT_MS, "backend name");
  } finally {
    closeQuietly(conn);
  }
}

Deno.test("tls listener routes by server name and replays the hello intact", async () => {
  await using api = startRecorder("api");
  await using web = startRecorder("web");
  await using proxy = startTlsProxy([
    { name: "api", hosts: ["api.example.com"], server: api },
    { name: "web", hosts: ["*.example.com"], server: web },
  ]);
  const hello = buildClientHello({ serverName: "API.example.com.", recordSizes: [100] });
  assert.equal(await nameFor(proxy.port, hello), "api");
  assert.equal(await nameFor(proxy.port, buildClientHello({ serverName: "w.example.com" })), "web");
  // One byte per segment, the hello in 1-byte records.
  const tiny = buildClientHello({ serverName: "x.example.com", recordSizes: [1] });
  assert.equal(await nameFor(proxy.port, tiny, true), "web");
  await waitForGot(api, 1);
  assert.deepEqual(api.got[0], hello);
  await waitForGot(web, 2);
  assert.deepEqual(web.got[1], tiny);
});

async function waitForGot(server: { got: unknown[] }, count: number): Promise<void> {
  const until = performance.now() + WAIT_MS;
  while (server.got.length < count && performance.now() < until) {
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.ok(server.got.length >= count, `backend got ${server.got.length} of ${count}`);
}

Deno.test("tls listener refuses without a route and counts each cause", async () => {
  await using api = startRecorder("api");
  await using proxy = startTlsProxy(
    [{ name: "api", hosts: ["api.example.com"], server: api }],
    { peekTimeoutMs: 300, maxClientHelloBytes: 2048 },
  );
  const cases: [Uint8Array, string][] = [
    [buildClientHello({ serverName: "nope.example.com" }), "tls_no_route"],
    [buildClientHello({}), "tls_no_route"],
    [new TextEncoder().encode("GET / HTTP/1.0\r\n\r\n"), "tls_bad_hello"],
    [buildClientHello({ serverName: "api.example.com", padTo: 5000 }), "tls_hello_too_large"],
    [buildClientHello({ serverName: "api.example.com" }).subarray(0, 30), "tls_peek_timeout"],
  ];
  for (const [bytes, cause] of cases) {
    const conn = await connect(proxy.port);
    try {
      await writeAll(conn, bytes).catch(() => {});
      assert.ok(await isClosedWithin(conn, WAIT_MS), `${cause}: connection closed`);
    } finally {
      closeQuietly(conn);
    }
  }
  const by = proxy.listener.stats.refusedByCause;
  assert.deepEqual(
    [by.tls_no_route, by.tls_bad_hello, by.tls_hello_too_large, by.tls_peek_timeout],
    [2, 1, 1, 1],
  );
  assert.equal(api.got.length, 0);
});

Deno.test("tls listener: the default route takes no SNI, no match and plain bytes", async () => {
  await using api = startRecorder("api");
  await using dflt = startRecorder("dfl");
  await using proxy = startTlsProxy([
    { name: "api", hosts: ["api.example.com"], server: api },
    { name: "fallback", hosts: [], server: dflt },
  ], { defaultRoute: "fallback" });
  assert.equal(await nameFor(proxy.port, buildClientHello({})), "dfl");
  assert.equal(await nameFor(proxy.port, buildClientHello({ serverName: "zz.test" })), "dfl");
  const plain = new TextEncoder().encode("PING\r\n");
  assert.equal(await nameFor(proxy.port, plain), "dfl");
  await waitForGot(dflt, 3);
  assert.deepEqual(dflt.got[2], plain);
});

Deno.test("tls listener: PROXY in before the hello, PROXY out before the replayed hello", async () => {
  const seen: Uint8Array[] = [];
  await using sink = startSink((request) => {
    seen.push(request);
    return new TextEncoder().encode("ok!");
  });
  const pool = new Pool({ name: "tls/r", balancer: createBalancer("round_robin") });
  pool.update([{ ...sink.backend, proxyProtocol: "v1" }]);
  const { parseCidrList } = await import("../src/core/cidr.ts");
  const listener = new ProxyListener({
    name: "tls",
    hostname: HOST,
    port: 0,
    picker: pool,
    router: new TlsRouter({ routes: [{ name: "r", hosts: ["r.example"], picker: pool }] }),
    acceptProxyProtocol: { trustedProxies: parseCidrList(["127.0.0.1/32"]).list },
  });
  const { port } = listener.listen();
  const serving = listener.serve();
  try {
    const conn = await connect(port);
    const inbound = encodeProxyHeader("v1", {
      command: "proxy",
      transport: "tcp",
      source: { address: "198.51.100.7", port: 4242 },
      destination: { address: "203.0.113.1", port: 443 },
    });
    const hello = buildClientHello({ serverName: "r.example", recordSizes: [40] });
    await writeAll(conn, new Uint8Array([...inbound, ...hello.subarray(0, 20)]));
    await new Promise((r) => setTimeout(r, 20));
    await writeAll(conn, hello.subarray(20));
    await conn.closeWrite();
    assert.equal(new TextDecoder().decode(await readExactly(conn, 3)), "ok!");
    conn.close();
    const header = "PROXY TCP4 198.51.100.7 203.0.113.1 4242 443\r\n";
    const got = seen[0]!;
    assert.equal(new TextDecoder().decode(got.subarray(0, header.length)), header);
    assert.deepEqual(got.subarray(header.length), hello);
  } finally {
    await listener.shutdown(0);
    await serving;
    pool.close();
  }
});

Deno.test("tls listener: shutdown closes a connection still being peeked", async () => {
  await using api = startRecorder("api");
  const proxy = startTlsProxy([{ name: "api", hosts: ["api.example.com"], server: api }]);
  const conn = await connect(proxy.port);
  await writeAll(conn, buildClientHello({ serverName: "api.example.com" }).subarray(0, 10));
  await new Promise((r) => setTimeout(r, 20));
  const started = performance.now();
  await proxy[Symbol.asyncDispose]();
  assert.ok(performance.now() - started < 2_000);
  assert.ok(await isClosedWithin(conn, WAIT_MS));
  closeQuietly(conn);
});

Deno.test("tls listener: the access log names the server, refusals by their cause", async () => {
  const lines: string[] = [];
  await setupLogging({ format: "json", level: "warning", write: (line) => lines.push(line) });
  try {
    await using api = startRecorder("api");
    await using proxy = startTlsProxy(
      [{ name: "api", hosts: ["api.example.com"], server: api }],
      { accessLogger: getLogger("access"), logger: getLogger("proxy") },
    );
    assert.equal(
      await nameFor(proxy.port, buildClientHello({ serverName: "API.example.com" })),
      "api",
    );
    for (let i = 0; i < 3; i++) {
      const conn = await connect(proxy.port);
      await writeAll(conn, buildClientHello({ serverName: "nope.example.com" }));
      assert.ok(await isClosedWithin(conn, WAIT_MS));
      closeQuietly(conn);
    }
    await waitFor(() => lines.length >= 5, "access and warning lines");
    const records = lines.map((line) => JSON.parse(line));
    const done = records.find((r) => r.properties.outcome === "done");
    assert.equal(done?.properties.serverName, "api.example.com");
    assert.match(done?.message ?? "", / sni=api\.example\.com$/);
    const hello = buildClientHello({ serverName: "API.example.com" });
    assert.equal(done?.properties.bytesFromClient, hello.length);
    const refused = records.filter((r) => r.properties.outcome === "tls_no_route");
    assert.equal(refused.length, 3);
    assert.equal(refused[0].properties.serverName, "nope.example.com");
    // The unmatched name is logged once, the next two within the second are suppressed.
    const warnings = records.filter((r) => /no route for server name/.test(r.message ?? ""));
    assert.equal(warnings.length, 1, JSON.stringify(records));
    assert.equal(warnings[0].properties.serverName, "nope.example.com");
    assert.equal(warnings[0].properties.cause, "tls_no_route");
  } finally {
    await resetLogging();
  }
});
