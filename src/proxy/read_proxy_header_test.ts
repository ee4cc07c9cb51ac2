import assert from "node:assert/strict";
import { encodeProxyHeader } from "./proxy_protocol.ts";
import { readProxyHeader } from "./read_proxy_header.ts";

const HOST = "127.0.0.1";
const encoder = new TextEncoder();

/** A connected loopback pair: `client` dials, `server` is the accepted side. */
async function pair(): Promise<{ client: Deno.TcpConn; server: Deno.TcpConn; close(): void }> {
  const listener = Deno.listen({ hostname: HOST, port: 0 });
  const [client, server] = await Promise.all([
    Deno.connect({ hostname: HOST, port: listener.addr.port }),
    listener.accept(),
  ]);
  listener.close();
  return {
    client,
    server,
    close() {
      for (const conn of [client, server]) {
        try {
          conn.close();
        } catch {
          // already closed
        }
      }
    },
  };
}

const HEADER = encodeProxyHeader("v2", {
  command: "proxy",
  transport: "tcp",
  source: { address: "203.0.113.7", port: 40000 },
  destination: { address: "192.0.2.1", port: 443 },
});

Deno.test("readProxyHeader reads a header split over writes and returns the client bytes", async () => {
  const { client, server, close } = await pair();
  try {
    const reading = readProxyHeader(server, { readBufferBytes: 8 });
    await client.write(HEADER.subarray(0, 5));
    await new Promise((resolve) => setTimeout(resolve, 20));
    await client.write(HEADER.subarray(5, 20));
    await new Promise((resolve) => setTimeout(resolve, 20));
    const tail = new Uint8Array([...HEADER.subarray(20), ...encoder.encode("hi")]);
    await client.write(tail);
    const result = await reading;
    assert.equal(result.kind, "done");
    if (result.kind !== "done") return;
    assert.deepEqual(result.header.source, { address: "203.0.113.7", port: 40000 });
    assert.equal(result.headerBytes, HEADER.length);
    // With 8-byte reads the client bytes may still be in the socket: read the remainder.
    const got = [...result.rest];
    const buffer = new Uint8Array(8);
    while (got.length < 2) {
      const n = await server.read(buffer);
      assert.ok(n !== null);
      got.push(...buffer.subarray(0, n));
    }
    assert.deepEqual(new TextDecoder().decode(Uint8Array.from(got)), "hi");
  } finally {
    close();
  }
});

Deno.test("readProxyHeader reports truncation at end of stream and bad input at once", async () => {
  const truncated = await pair();
  try {
    const reading = readProxyHeader(truncated.server);
    await truncated.client.write(HEADER.subarray(0, 10));
    truncated.client.closeWrite();
    const result = await reading;
    assert.equal(result.kind === "error" && result.reason, "truncated");
  } finally {
    truncated.close();
  }
  const http = await pair();
  try {
    const reading = readProxyHeader(http.server);
    await http.client.write(encoder.encode("GET / HTTP/1.1\r\n"));
    const result = await reading;
    assert.equal(result.kind === "error" && result.reason, "bad-signature");
  } finally {
    http.close();
  }
});

Deno.test("readProxyHeader rejects with the signal's reason when a peer sends nothing", async () => {
  const { server, close } = await pair();
  const controller = new AbortController();
  try {
    const reading = readProxyHeader(server, { signal: controller.signal });
    setTimeout(() => controller.abort(new Error("header timeout")), 20);
    await assert.rejects(reading, { message: "header timeout" });
  } finally {
    close(); // ends the pending read
  }
  await assert.rejects(
    readProxyHeader(server, { signal: AbortSignal.abort(new Error("already")) }),
    { message: "already" },
  );
  assert.throws(() => readProxyHeader(server, { readBufferBytes: 0 }), RangeError);
});
