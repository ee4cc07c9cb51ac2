import assert from "node:assert/strict";
import fc from "fast-check";
import { type ClientHelloProgress, ClientHelloReader, readClientHello } from "./client_hello.ts";
import { buildClientHello, buildHandshake, toRecords } from "./_test_hello.ts";

function feed(bytes: Uint8Array, cuts: readonly number[], maxBytes?: number) {
  const reader = new ClientHelloReader({ maxBytes });
  let at = 0;
  let progress: ClientHelloProgress = reader.progress;
  for (const cut of [...cuts].sort((a, b) => a - b)) {
    progress = reader.push(bytes.subarray(at, Math.max(at, cut)));
    at = Math.max(at, cut);
  }
  progress = reader.push(bytes.subarray(at));
  return { progress, taken: reader.bytesTaken };
}

const nameOf = (p: ClientHelloProgress) => p.kind === "done" ? p.hello.serverName : p.kind;

Deno.test("ClientHelloReader reads the server name of a hello in one record", () => {
  const hello = buildClientHello({ serverName: "api.example.com", alpn: ["h2", "http/1.1"] });
  const progress = readClientHello(hello);
  assert.deepEqual(progress, {
    kind: "done",
    hello: { serverName: "api.example.com", alpn: ["h2", "http/1.1"], recordBytes: hello.length },
  });
});

Deno.test("ClientHelloReader: table of hellos and answers", () => {
  const big = buildClientHello({ serverName: "a.example", padTo: 20_000, recordSizes: [8000] });
  const cases: [string, Uint8Array, string | undefined, number?][] = [
    ["no SNI", buildClientHello({}), undefined],
    [
      "upper case, trailing dot",
      buildClientHello({ serverName: "API.Example.COM." }),
      "api.example.com",
    ],
    ["IP literal", buildClientHello({ serverName: "10.1.2.3" }), "10.1.2.3"],
    ["GREASE", buildClientHello({ serverName: "g.example", grease: true }), "g.example"],
    [
      "ECH outer",
      buildClientHello({ serverName: "public.example", echPayloadBytes: 200 }),
      "public.example",
    ],
    ["padded to 6 KB", buildClientHello({ serverName: "p.example", padTo: 6000 }), "p.example"],
    [
      "one byte per record",
      buildClientHello({ serverName: "r.example", recordSizes: [1] }),
      "r.example",
    ],
    [
      "three records",
      buildClientHello({ serverName: "t.example", recordSizes: [10, 100] }),
      "t.example",
    ],
    ["over the bound", big, "too_large"],
    ["plain text", new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), "error"],
    ["SSH banner", new TextEncoder().encode("SSH-2.0-OpenSSH_9.2\r\n"), "error"],
    ["SSLv2 hello", new Uint8Array([0x80, 0x2e, 0x01, 0x03, 0x01, 0x00, 0x15]), "error"],
    ["alert record", new Uint8Array([0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x28]), "error"],
    ["empty record", new Uint8Array([0x16, 0x03, 0x01, 0x00, 0x00]), "error"],
    ["ServerHello", toRecords(new Uint8Array([0x02, 0, 0, 2, 3, 3])), "error"],
    ["truncated", buildClientHello({ serverName: "x.example" }).subarray(0, 60), "more"],
  ];
  for (const [label, bytes, expected] of cases) {
    const progress = readClientHello(bytes);
    const got = progress.kind === "error"
      ? (progress.problem === "too_large" ? "too_large" : "error")
      : nameOf(progress);
    assert.equal(got, expected, label);
  }
});

Deno.test("ClientHelloReader refuses SSLv2 hellos and names why", () => {
  const progress = readClientHello(new Uint8Array([0x80, 0x2e, 0x01, 0x03, 0x01]));
  assert.deepEqual(progress, {
    kind: "error",
    problem: "bad",
    message: "SSLv2-style ClientHello is not supported",
  });
});

Deno.test("ClientHelloReader stops at the record that ends the hello", () => {
  const hello = buildClientHello({ serverName: "s.example", recordSizes: [50] });
  const reader = new ClientHelloReader();
  const withTail = new Uint8Array([...hello, 0x17, 0x03, 0x03, 0x00, 0x05, 1, 2, 3, 4, 5]);
  const progress = reader.push(withTail);
  assert.equal(nameOf(progress), "s.example");
  assert.equal(reader.bytesTaken, hello.length);
  // Later pieces change nothing.
  assert.equal(reader.push(new Uint8Array([0xff])), progress);
});

Deno.test("ClientHelloReader refuses a too large hello once its length is known", () => {
  const hello = buildClientHello({ serverName: "x.example", padTo: 4000 });
  const reader = new ClientHelloReader({ maxBytes: 1000 });
  const progress = reader.push(hello.subarray(0, 9));
  assert.equal(progress.kind, "error");
  assert.equal(progress.kind === "error" && progress.problem, "too_large");
  assert.equal(reader.bytesTaken, 9);
});

Deno.test("ClientHelloReader: the bound counts record headers too", () => {
  const hello = buildClientHello({ serverName: "x.example", recordSizes: [1] });
  const exact = readClientHello(hello, { maxBytes: hello.length });
  assert.equal(nameOf(exact), "x.example");
  const short = readClientHello(hello, { maxBytes: hello.length - 1 });
  assert.equal(short.kind === "error" && short.problem, "too_large");
});

const helloArbitrary = fc.record({
  serverName: fc.option(
    fc.stringMatching(/^[A-Za-z0-9-]{1,20}(\.[A-Za-z0-9-]{1,20}){0,4}\.?$/),
    { nil: undefined },
  ),
  grease: fc.boolean(),
  echPayloadBytes: fc.option(fc.integer({ min: 0, max: 300 }), { nil: undefined }),
  padTo: fc.option(fc.integer({ min: 0, max: 7000 }), { nil: undefined }),
  recordSizes: fc.array(fc.integer({ min: 1, max: 3000 }), { minLength: 1, maxLength: 4 }),
});

Deno.test("ClientHelloReader: incremental reading equals one-shot reading (fast-check)", () => {
  fc.assert(
    fc.property(
      helloArbitrary,
      fc.array(fc.nat(), { maxLength: 30 }),
      fc.integer({ min: 1, max: 20_000 }),
      (spec, cuts, maxBytes) => {
        const bytes = buildClientHello(spec);
        const once = readClientHello(bytes, { maxBytes });
        const pieces = feed(bytes, cuts.map((c) => c % (bytes.length + 1)), maxBytes);
        assert.deepEqual(pieces.progress, once);
        assert.ok(pieces.taken <= maxBytes);
        if (once.kind === "done") {
          const expected = spec.serverName?.toLowerCase().replace(/\.$/, "");
          assert.equal(once.hello.serverName, expected);
          assert.equal(pieces.taken, bytes.length);
        }
      },
    ),
    { numRuns: 300 },
  );
});

Deno.test("ClientHelloReader: one byte per push equals one-shot (fast-check)", () => {
  fc.assert(
    fc.property(helloArbitrary, (spec) => {
      const bytes = buildClientHello(spec);
      const reader = new ClientHelloReader();
      let progress = reader.progress;
      for (let i = 0; i < bytes.length; i++) progress = reader.push(bytes.subarray(i, i + 1));
      assert.deepEqual(progress, readClientHello(bytes));
    }),
    { numRuns: 40 },
  );
});

Deno.test("ClientHelloReader never throws and never reads past its bound on any bytes (fast-check)", () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 3000 }),
      fc.array(fc.nat(), { maxLength: 10 }),
      fc.integer({ min: 1, max: 4000 }),
      (bytes, cuts, maxBytes) => {
        const once = readClientHello(bytes, { maxBytes });
        const pieces = feed(bytes, cuts.map((c) => c % (bytes.length + 1)), maxBytes);
        assert.deepEqual(pieces.progress, once);
        assert.ok(pieces.taken <= Math.min(maxBytes, bytes.length));
      },
    ),
    { numRuns: 500 },
  );
});

Deno.test("ClientHelloReader never throws on mutated real hellos (fast-check)", () => {
  const base = buildClientHello({ serverName: "m.example", grease: true, echPayloadBytes: 40 });
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.nat({ max: base.length - 1 }), fc.integer({ min: 0, max: 255 })), {
        minLength: 1,
        maxLength: 6,
      }),
      fc.array(fc.nat({ max: base.length }), { maxLength: 8 }),
      (mutations, cuts) => {
        const bytes = base.slice();
        for (const [at, value] of mutations) bytes[at] = value;
        const once = readClientHello(bytes);
        assert.deepEqual(feed(bytes, cuts).progress, once);
      },
    ),
    { numRuns: 500 },
  );
});

Deno.test("buildHandshake output is a ClientHello the reader accepts with ALPN", () => {
  const message = buildHandshake({ serverName: "h.example", alpn: ["h2"] });
  assert.equal(message[0], 1);
  const progress = readClientHello(toRecords(message, [7, 3]));
  assert.deepEqual(progress.kind === "done" && progress.hello.alpn, ["h2"]);
});
