import assert from "node:assert/strict";
import { dnsResponseCode, encodeDnsQuery, probeDns } from "./dns_probe.ts";

Deno.test("encodeDnsQuery: header, labels and question as RFC 1035 lays them out", () => {
  assert.deepEqual(
    [...encodeDnsQuery(0x1234, "ab.c.")],
    [
      0x12,
      0x34,
      0x01,
      0x00,
      0,
      1,
      0,
      0,
      0,
      0,
      0,
      0, // header: RD, one question
      2,
      0x61,
      0x62,
      1,
      0x63,
      0, // ab.c
      0,
      1,
      0,
      1, // type A, class IN
    ],
  );
  assert.deepEqual([...encodeDnsQuery(1, ".").subarray(12)], [0, 0, 1, 0, 1]);
  assert.throws(() => encodeDnsQuery(1, "a..b"), RangeError);
  assert.throws(() => encodeDnsQuery(1, `${"x".repeat(64)}.test`), RangeError);
});

Deno.test("dnsResponseCode: only a response with the query's ID counts", () => {
  const response = (id: number, flags: number) =>
    new Uint8Array([id >> 8, id & 0xff, flags >> 8, flags & 0xff, 0, 0, 0, 0, 0, 0, 0, 0]);
  assert.equal(dnsResponseCode(response(7, 0x8180), 7), 0);
  assert.equal(dnsResponseCode(response(7, 0x8183), 7), 3);
  assert.equal(dnsResponseCode(response(7, 0x8185), 7), 5);
  assert.equal(dnsResponseCode(response(8, 0x8180), 7), undefined);
  assert.equal(dnsResponseCode(response(7, 0x0100), 7), undefined);
  assert.equal(dnsResponseCode(new Uint8Array(11), 0), undefined);
});

/** A UDP server on loopback answering each query with `flags`, or nothing when undefined. */
function fakeServer(flags: number | undefined) {
  const socket = Deno.listenDatagram({ hostname: "127.0.0.1", port: 0, transport: "udp" });
  const loop = (async () => {
    for await (const [data, from] of socket) {
      if (flags === undefined) continue;
      const reply = data.slice();
      reply[2] = flags >> 8;
      reply[3] = flags & 0xff;
      await socket.send(reply, from);
    }
  })().catch(() => {});
  return {
    port: (socket.addr as Deno.NetAddr).port,
    close: async () => {
      socket.close();
      await loop;
    },
  };
}

Deno.test("probeDns: NOERROR and NXDOMAIN pass, REFUSED and silence fail", async () => {
  for (
    const [flags, ok, error] of [
      [0x8180, true, undefined],
      [0x8183, true, undefined],
      [0x8185, false, "rcode REFUSED"],
      [undefined, false, "timed out after 200ms"],
    ] as const
  ) {
    const server = fakeServer(flags);
    try {
      const result = await probeDns({ host: "127.0.0.1", port: server.port }, {
        name: "example.test",
        timeoutMs: 200,
      });
      assert.equal(result.ok, ok);
      assert.equal(result.error, error);
    } finally {
      await server.close();
    }
  }
});

Deno.test("probeDns: an abort ends the probe at once", async () => {
  const server = fakeServer(undefined);
  const controller = new AbortController();
  try {
    const probing = probeDns({ host: "127.0.0.1", port: server.port }, {
      name: ".",
      timeoutMs: 5_000,
      signal: controller.signal,
    });
    controller.abort();
    const result = await probing;
    assert.equal(result.ok, false);
    assert.equal(result.error, "aborted");
  } finally {
    await server.close();
  }
});
