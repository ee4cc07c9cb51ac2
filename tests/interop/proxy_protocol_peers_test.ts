/**
 * The PROXY protocol codec against real peers on loopback:
 * - nginx (`listen … proxy_protocol`) must log the address our encoded headers carry;
 * - HAProxy (`send-proxy`, `send-proxy-v2`) in front of a server using our parser must
 *   deliver the real client's address and the client's bytes intact.
 *
 * Needs nginx and HAProxy installed (`bash scripts/interop_install.sh`); skipped otherwise.
 */
import assert from "node:assert/strict";
import {
  encodeProxyHeader,
  type ProxyHeader,
  type ProxyHeaderInfo,
  type ProxyProtocolVersion,
} from "../../src/proxy/proxy_protocol.ts";
import { readProxyHeader } from "../../src/proxy/read_proxy_header.ts";
import { findExecutable, PEER_HOST, startHaproxy, startNginx } from "./_peers.ts";

const WAIT_MS = 10_000;
const hasNginx = findExecutable("nginx") !== undefined;
const hasHaproxy = findExecutable("haproxy") !== undefined;
if (Deno.env.get("NAUTILUS_INTEROP_REQUIRED") === "1" && !(hasNginx && hasHaproxy)) {
  throw new Error(
    "Cannot run the interop tests: nginx and haproxy are required (bash scripts/interop_install.sh)",
  );
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Reads until EOF (bounded by `WAIT_MS` and 1 MiB). */
async function readAll(conn: Deno.Conn): Promise<string> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  const buffer = new Uint8Array(16 * 1024);
  const timer = setTimeout(() => conn.close(), WAIT_MS);
  try {
    while (total < 1 << 20) {
      const n = await conn.read(buffer);
      if (n === null) break;
      chunks.push(buffer.slice(0, n));
      total += n;
    }
  } finally {
    clearTimeout(timer);
  }
  return chunks.map((c) => decoder.decode(c)).join("");
}

async function waitFor<T>(probe: () => Promise<T | undefined>, what: string): Promise<T> {
  const deadline = Date.now() + WAIT_MS;
  while (Date.now() < deadline) {
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`Timed out waiting for ${what}`);
}

function fake(source: string, destination: string): ProxyHeaderInfo {
  return {
    command: "proxy",
    transport: "tcp",
    source: { address: source, port: 40000 },
    destination: { address: destination, port: 443 },
  };
}

Deno.test({
  name: "interop: nginx logs the client address from encoded v1 and v2 headers",
  ignore: !hasNginx,
  async fn() {
    const nginx = await startNginx();
    try {
      const cases: [ProxyProtocolVersion, ProxyHeaderInfo, string][] = [
        ["v1", fake("203.0.113.7", "192.0.2.1"), "203.0.113.7:40000"],
        ["v2", fake("203.0.113.7", "192.0.2.1"), "203.0.113.7:40000"],
        ["v1", fake("2001:db8::7", "2001:db8::1"), "2001:db8::7:40000"],
        ["v2", fake("2001:db8::7", "2001:db8::1"), "2001:db8::7:40000"],
        // Mixed families go out as TCP6 with the IPv4 side mapped.
        ["v2", fake("2001:db8::7", "192.0.2.1"), "2001:db8::7:40000"],
        // LOCAL / UNKNOWN: nginx keeps no header address and logs "-" for each part.
        ["v2", { command: "local" }, "-:-"],
        ["v1", { command: "local" }, "-:-"],
      ];
      for (const [index, [version, info, expected]] of cases.entries()) {
        const path = `/case-${index}-${version}`;
        const conn = await Deno.connect({ hostname: PEER_HOST, port: nginx.port });
        try {
          await conn.write(encodeProxyHeader(version, info));
          await conn.write(
            encoder.encode(`GET ${path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n`),
          );
          const response = await readAll(conn);
          assert.match(
            response,
            /^HTTP\/1\.1 200 /,
            `case ${index}: ${response}\n${await nginx.diagnostics()}`,
          );
        } finally {
          conn.close();
        }
        const line = await waitFor(
          async () => (await nginx.accessLog()).find((l) => l.includes(` ${path} `)),
          `the access log line for ${path}`,
        );
        assert.equal(line, `${expected} "GET ${path} HTTP/1.1"`, `case ${index}`);
      }
    } finally {
      await nginx.stop();
    }
  },
});

/** What the backend saw on one connection. */
interface Seen {
  header?: ProxyHeader;
  headerBytes?: number;
  error?: string;
  data: string;
}

/**
 * A TCP server that reads a PROXY header with {@linkcode readProxyHeader}, then reads
 * `expectedBytes` of client data and answers `ok`. Records each connection by the header's
 * source port (HAProxy may also open connections of its own, e.g. for readiness probes).
 */
class ParsingBackend {
  readonly port: number;
  readonly seen: Seen[] = [];
  #listener: Deno.TcpListener;
  #tasks = new Set<Promise<void>>();
  #conns = new Set<Deno.Conn>();
  #loop: Promise<void>;

  constructor(readonly expectedBytes: number) {
    this.#listener = Deno.listen({ hostname: PEER_HOST, port: 0 });
    this.port = this.#listener.addr.port;
    this.#loop = this.#accept();
  }

  async #accept(): Promise<void> {
    while (true) {
      let conn: Deno.Conn;
      try {
        conn = await this.#listener.accept();
      } catch (error) {
        // A peer that reset before accept (ENOTCONN) is not the end of the listener.
        if (error instanceof Deno.errors.BadResource) return;
        continue;
      }
      this.#conns.add(conn);
      const task = this.#serve(conn).finally(() => {
        this.#conns.delete(conn);
        this.#tasks.delete(task);
        try {
          conn.close();
        } catch {
          // closed by close()
        }
      });
      this.#tasks.add(task);
    }
  }

  async #serve(conn: Deno.Conn): Promise<void> {
    const seen: Seen = { data: "" };
    let data = new Uint8Array(0);
    try {
      const result = await readProxyHeader(conn, { signal: AbortSignal.timeout(WAIT_MS) });
      if (result.kind === "error") {
        seen.error = result.reason;
      } else {
        seen.header = result.header;
        seen.headerBytes = result.headerBytes;
        data = Uint8Array.from(result.rest);
        const buffer = new Uint8Array(4096);
        while (data.length < this.expectedBytes) {
          const n = await conn.read(buffer);
          if (n === null) break;
          data = Uint8Array.from([...data, ...buffer.subarray(0, n)]);
        }
        if (data.length >= this.expectedBytes) await conn.write(encoder.encode("ok\n"));
      }
    } catch {
      // The peer went away or sent nothing in time; what was seen so far is recorded.
    }
    seen.data = decoder.decode(data);
    this.seen.push(seen);
  }

  /** The connection whose header names `port` as the source port, once complete. */
  bySourcePort(port: number): Seen | undefined {
    return this.seen.find((s) => s.header?.source?.port === port);
  }

  async close(): Promise<void> {
    this.#listener.close();
    for (const conn of this.#conns) {
      try {
        conn.close();
      } catch {
        // already closed
      }
    }
    await this.#loop.catch(() => {});
    await Promise.all(this.#tasks);
  }
}

interface HaproxyCase {
  readonly label: string;
  readonly version: "v1" | "v2";
  readonly serverOptions?: string;
  readonly frontendHost?: "127.0.0.1" | "::1";
  /** Expected v2 header size (a v1 line's length varies with the ports). */
  readonly headerBytes?: number;
}

const HAPROXY_CASES: HaproxyCase[] = [
  { label: "send-proxy", version: "v1" },
  { label: "send-proxy-v2", version: "v2", headerBytes: 16 + 12 },
  // CRC32C adds one TLV: type, 2-byte length, 4-byte checksum.
  {
    label: "send-proxy-v2 with a CRC32C TLV",
    version: "v2",
    serverOptions: "proxy-v2-options crc32c",
    headerBytes: 16 + 12 + 7,
  },
  { label: "send-proxy over IPv6", version: "v1", frontendHost: "::1" },
  { label: "send-proxy-v2 over IPv6", version: "v2", frontendHost: "::1", headerBytes: 16 + 36 },
];

for (const { label, version, serverOptions, frontendHost, headerBytes } of HAPROXY_CASES) {
  Deno.test({
    name: `interop: HAProxy ${label} → our parser sees the real client address`,
    ignore: !hasHaproxy,
    async fn() {
      const payload = `hello through haproxy ${label}\n`;
      const backend = new ParsingBackend(payload.length);
      const haproxy = await startHaproxy({
        backendPort: backend.port,
        version,
        serverOptions,
        frontendHost,
      });
      try {
        const client = await Deno.connect({ hostname: haproxy.host, port: haproxy.port });
        const local = client.localAddr;
        let reply: string;
        try {
          await client.write(encoder.encode(payload));
          reply = await readAll(client);
        } finally {
          client.close();
        }
        assert.equal(reply, "ok\n", await haproxy.diagnostics());
        const seen = await waitFor(
          () => Promise.resolve(backend.bySourcePort(local.port)),
          `the backend's record of client port ${local.port}`,
        );
        assert.deepEqual(seen.header, {
          version,
          command: "proxy",
          family: haproxy.host.includes(":") ? "tcp6" : "tcp4",
          source: { address: local.hostname, port: local.port },
          destination: { address: haproxy.host, port: haproxy.port },
        });
        assert.equal(seen.data, payload);
        if (headerBytes !== undefined) assert.equal(seen.headerBytes, headerBytes);
      } finally {
        await haproxy.stop();
        await backend.close();
      }
    },
  });
}
