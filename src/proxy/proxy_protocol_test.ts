import assert from "node:assert/strict";
import {
  DEFAULT_PROXY_HEADER_MAX_BYTES,
  encodeProxyHeader,
  type ProxyHeaderInfo,
  ProxyHeaderParser,
  type ProxyParseResult,
  type ProxyProtocolVersion,
} from "./proxy_protocol.ts";

// ---------------------------------------------------------------------------------------
// An independent reading of the spec (HAProxy doc/proxy-protocol.txt, sections 2.1-2.2),
// written without the product's parser so the encoder is checked against the layouts.

const SIG = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];

interface SpecV1 {
  proto: string;
  src?: string;
  dst?: string;
  sport?: number;
  dport?: number;
}

/** Section 2.1: one ASCII line, single spaces, CRLF, at most 107 bytes. */
function specDecodeV1(bytes: Uint8Array): SpecV1 {
  assert.ok(bytes.length <= 107, "v1 line is at most 107 bytes");
  const text = new TextDecoder("ascii").decode(bytes);
  assert.ok(text.endsWith("\r\n") && text.indexOf("\r\n") === text.length - 2, "one CRLF at end");
  const unknown = /^PROXY UNKNOWN(?: [^\r\n]*)?\r\n$/.exec(text);
  if (unknown) return { proto: "UNKNOWN" };
  const m = /^PROXY (TCP4|TCP6) (\S+) (\S+) (0|[1-9]\d{0,4}) (0|[1-9]\d{0,4})\r\n$/.exec(text);
  assert.ok(m, `v1 line matches the spec grammar: ${JSON.stringify(text)}`);
  return { proto: m[1]!, src: m[2]!, dst: m[3]!, sport: Number(m[4]), dport: Number(m[5]) };
}

interface SpecV2 {
  version: number;
  command: number;
  family: number;
  transport: number;
  length: number;
  src?: number[];
  dst?: number[];
  sport?: number;
  dport?: number;
}

/** Section 2.2: 16-byte fixed header, then the address block for the family. */
function specDecodeV2(bytes: Uint8Array): SpecV2 {
  assert.deepEqual([...bytes.subarray(0, 12)], SIG, "v2 signature");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: SpecV2 = {
    version: bytes[12]! >> 4,
    command: bytes[12]! & 0xf,
    family: bytes[13]! >> 4,
    transport: bytes[13]! & 0xf,
    length: view.getUint16(14, false),
  };
  assert.equal(bytes.length, 16 + out.length, "declared length covers the rest exactly");
  const size = out.family === 1 ? 4 : out.family === 2 ? 16 : 0;
  if (size > 0 && out.command === 1) {
    out.src = [...bytes.subarray(16, 16 + size)];
    out.dst = [...bytes.subarray(16 + size, 16 + 2 * size)];
    out.sport = view.getUint16(16 + 2 * size, false);
    out.dport = view.getUint16(18 + 2 * size, false);
  }
  return out;
}

// ---------------------------------------------------------------------------------------

const ascii = (text: string) => Uint8Array.from(text, (c) => c.charCodeAt(0));
const concat = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
};

function proxy(
  src: string,
  sport: number,
  dst: string,
  dport: number,
): ProxyHeaderInfo {
  return {
    command: "proxy",
    transport: "tcp",
    source: { address: src, port: sport },
    destination: { address: dst, port: dport },
  };
}

const V4 = proxy("203.0.113.7", 40000, "192.0.2.1", 443);
const V6 = proxy("2001:db8::7", 40000, "2001:db8::1", 443);
const LOCAL: ProxyHeaderInfo = { command: "local" };

const V6_SRC = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7];
const V6_DST = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];

Deno.test("encodeProxyHeader v1 writes the exact spec lines", () => {
  const cases: [ProxyHeaderInfo, string][] = [
    [V4, "PROXY TCP4 203.0.113.7 192.0.2.1 40000 443\r\n"],
    [V6, "PROXY TCP6 2001:db8::7 2001:db8::1 40000 443\r\n"],
    [LOCAL, "PROXY UNKNOWN\r\n"],
    [
      proxy("0.0.0.0", 0, "255.255.255.255", 65535),
      "PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n",
    ],
  ];
  for (const [info, line] of cases) {
    const bytes = encodeProxyHeader("v1", info);
    assert.equal(new TextDecoder().decode(bytes), line);
    specDecodeV1(bytes);
  }
  const v1 = specDecodeV1(encodeProxyHeader("v1", V4));
  assert.deepEqual(v1, {
    proto: "TCP4",
    src: "203.0.113.7",
    dst: "192.0.2.1",
    sport: 40000,
    dport: 443,
  });
});

Deno.test("encodeProxyHeader v1 keeps the longest TCP6 line within 107 bytes", () => {
  const full = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe";
  const bytes = encodeProxyHeader("v1", proxy(full, 65535, full, 65535));
  assert.equal(bytes.length, 104); // the spec's worst case for TCP6
  assert.equal(specDecodeV1(bytes).src, full);
});

Deno.test("encodeProxyHeader v2 writes the spec's binary layout", () => {
  const v4 = encodeProxyHeader("v2", V4);
  assert.deepEqual(
    [...v4],
    [...SIG, 0x21, 0x11, 0x00, 0x0c, 203, 0, 113, 7, 192, 0, 2, 1, 0x9c, 0x40, 0x01, 0xbb],
  );
  assert.deepEqual(specDecodeV2(v4), {
    version: 2,
    command: 1,
    family: 1,
    transport: 1,
    length: 12,
    src: [203, 0, 113, 7],
    dst: [192, 0, 2, 1],
    sport: 40000,
    dport: 443,
  });
  const v6 = encodeProxyHeader("v2", V6);
  assert.deepEqual(
    [...v6],
    [...SIG, 0x21, 0x21, 0x00, 0x24, ...V6_SRC, ...V6_DST, 0x9c, 0x40, 0x01, 0xbb],
  );
  assert.deepEqual(specDecodeV2(v6).src, V6_SRC);
  assert.deepEqual([...encodeProxyHeader("v2", LOCAL)], [...SIG, 0x20, 0x00, 0x00, 0x00]);
  assert.deepEqual(specDecodeV2(encodeProxyHeader("v2", LOCAL)), {
    version: 2,
    command: 0,
    family: 0,
    transport: 0,
    length: 0,
  });
});

Deno.test("encodeProxyHeader sends IPv4 when both sides are IPv4 or IPv4-mapped, else TCP6", () => {
  // Both IPv4-mapped: unmapped to TCP4.
  const mapped = proxy("::ffff:203.0.113.7", 40000, "::FFFF:192.0.2.1", 443);
  assert.deepEqual(encodeProxyHeader("v2", mapped), encodeProxyHeader("v2", V4));
  assert.equal(
    new TextDecoder().decode(encodeProxyHeader("v1", mapped)),
    "PROXY TCP4 203.0.113.7 192.0.2.1 40000 443\r\n",
  );
  // Mixed: IPv4 side mapped into TCP6.
  const mixed = proxy("203.0.113.7", 40000, "2001:db8::1", 443);
  assert.equal(
    new TextDecoder().decode(encodeProxyHeader("v1", mixed)),
    "PROXY TCP6 ::ffff:203.0.113.7 2001:db8::1 40000 443\r\n",
  );
  const v2 = specDecodeV2(encodeProxyHeader("v2", mixed));
  assert.equal(v2.family, 2);
  assert.deepEqual(v2.src, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 203, 0, 113, 7]);
  assert.deepEqual(v2.dst, V6_DST);
});

Deno.test("encodeProxyHeader rejects bad addresses and ports", () => {
  assert.throws(() => encodeProxyHeader("v1", proxy("example.com", 1, "1.2.3.4", 2)), {
    name: "TypeError",
    message: 'Cannot encode PROXY header: source address "example.com" is not an IP',
  });
  assert.throws(() => encodeProxyHeader("v2", proxy("1.2.3.4", 1, "1::2::3", 2)), {
    name: "TypeError",
    message: 'Cannot encode PROXY header: destination address "1::2::3" is not an IP',
  });
  assert.throws(() => encodeProxyHeader("v2", proxy("1.2.3.4", 65536, "1.2.3.4", 2)), {
    name: "RangeError",
    message:
      "Cannot encode PROXY header: source port must be an integer in 0-65535: current value is 65536",
  });
  assert.throws(() => encodeProxyHeader("v1", proxy("1.2.3.4", 1, "1.2.3.4", 1.5)), RangeError);
});

// ---------------------------------------------------------------------------------------
// Parser

const DATA = ascii("GET / HTTP/1.1\r\n\r\n");

function done(result: ProxyParseResult) {
  assert.equal(result.kind, "done", JSON.stringify(result));
  return result as Extract<ProxyParseResult, { kind: "done" }>;
}

function errorReason(result: ProxyParseResult): string {
  assert.equal(result.kind, "error", JSON.stringify(result));
  return (result as Extract<ProxyParseResult, { kind: "error" }>).reason;
}

/** What the parser must return for a PROXY header from `source`:40000 to `destination`:443. */
function parsedProxy(
  version: ProxyProtocolVersion,
  family: string,
  source: string,
  destination: string,
) {
  return {
    version,
    command: "proxy",
    family,
    source: { address: source, port: 40000 },
    destination: { address: destination, port: 443 },
  };
}

/** Each header in both versions, with what the parser must return for it. */
const ROUND_TRIPS: [ProxyProtocolVersion, ProxyHeaderInfo, object][] = (["v1", "v2"] as const)
  .flatMap((version): [ProxyProtocolVersion, ProxyHeaderInfo, object][] => [
    [version, V4, parsedProxy(version, "tcp4", "203.0.113.7", "192.0.2.1")],
    [version, V6, parsedProxy(version, "tcp6", "2001:db8::7", "2001:db8::1")],
    [version, LOCAL, { version, command: "local", family: "unspec" }],
  ]);

Deno.test("ProxyHeaderParser round-trips every encoded header and returns the rest", () => {
  for (const [version, info, expected] of ROUND_TRIPS) {
    const header = encodeProxyHeader(version, info);
    const chunk = concat(header, DATA);
    const result = done(new ProxyHeaderParser().push(chunk));
    assert.deepEqual(result.header, expected);
    assert.equal(result.headerBytes, header.length);
    assert.deepEqual(result.rest, DATA);
    assert.equal(result.rest.buffer, chunk.buffer, "rest is a view, not a copy");
    // Header alone: done with an empty rest.
    assert.equal(done(new ProxyHeaderParser().push(header)).rest.length, 0);
  }
});

Deno.test("ProxyHeaderParser answers need-more for every truncation, then done", () => {
  for (const [version, info, expected] of ROUND_TRIPS) {
    const header = encodeProxyHeader(version, info);
    for (let cut = 0; cut < header.length; cut++) {
      const parser = new ProxyHeaderParser();
      assert.equal(parser.push(header.subarray(0, cut)).kind, "need-more", `${version} cut ${cut}`);
      assert.ok(parser.bufferedBytes <= cut);
      const result = done(parser.push(concat(header.subarray(cut), DATA)));
      assert.deepEqual(result.header, expected);
      assert.deepEqual(result.rest, DATA);
      assert.equal(parser.bufferedBytes, 0, "the buffer is released when done");
    }
  }
});

Deno.test("ProxyHeaderParser accepts headers fed one byte at a time", () => {
  for (const [version, info, expected] of ROUND_TRIPS) {
    const header = encodeProxyHeader(version, info);
    const parser = new ProxyHeaderParser();
    for (let i = 0; i < header.length - 1; i++) {
      assert.equal(parser.push(header.subarray(i, i + 1)).kind, "need-more");
      assert.equal(parser.bufferedBytes, i + 1);
    }
    const result = done(parser.push(concat(header.subarray(header.length - 1), DATA)));
    assert.deepEqual(result.header, expected);
    assert.deepEqual(result.rest, DATA);
  }
});

Deno.test("ProxyHeaderParser normalizes v1 TCP6 text and accepts UNKNOWN with addresses", () => {
  const tcp6 = done(
    new ProxyHeaderParser().push(ascii("PROXY TCP6 2001:DB8:0:0::7 ::FFFF:1.2.3.4 1 2\r\n")),
  );
  assert.equal(tcp6.header.source?.address, "2001:db8::7");
  assert.equal(tcp6.header.destination?.address, "::ffff:1.2.3.4");
  const unknown = done(
    new ProxyHeaderParser().push(ascii("PROXY UNKNOWN ffff:: ffff:: 1 2\r\nX")),
  );
  assert.deepEqual(unknown.header, { version: "v1", command: "local", family: "unspec" });
  assert.deepEqual(unknown.rest, ascii("X"));
});

function v2(verCmd: number, famProto: number, body: number[]): Uint8Array {
  return Uint8Array.from([...SIG, verCmd, famProto, body.length >> 8, body.length & 0xff, ...body]);
}
const INET_BLOCK = [10, 0, 0, 1, 10, 0, 0, 2, 0x30, 0x39, 0x00, 0x50];

Deno.test("ProxyHeaderParser skips v2 TLVs within the declared length", () => {
  const alpn = [0x01, 0x00, 0x02, 0x68, 0x32]; // PP2_TYPE_ALPN "h2"
  const noop = [0x04, 0x00, 0x03, 0, 0, 0]; // PP2_TYPE_NOOP padding
  const header = v2(0x21, 0x11, [...INET_BLOCK, ...alpn, ...noop]);
  const result = done(new ProxyHeaderParser().push(concat(header, DATA)));
  assert.deepEqual(result.header, {
    version: "v2",
    command: "proxy",
    family: "tcp4",
    source: { address: "10.0.0.1", port: 12345 },
    destination: { address: "10.0.0.2", port: 80 },
  });
  assert.equal(result.headerBytes, header.length);
  assert.deepEqual(result.rest, DATA);
});

Deno.test("ProxyHeaderParser accepts v2 families it does not use, without addresses", () => {
  const unixBlock = new Array(216).fill(0x61);
  const cases: [Uint8Array, object][] = [
    [v2(0x21, 0x12, INET_BLOCK), { version: "v2", command: "proxy", family: "udp4" }],
    [v2(0x21, 0x22, new Array(36).fill(0)), { version: "v2", command: "proxy", family: "udp6" }],
    [v2(0x21, 0x31, unixBlock), { version: "v2", command: "proxy", family: "unix-stream" }],
    [v2(0x21, 0x32, unixBlock), { version: "v2", command: "proxy", family: "unix-dgram" }],
    [v2(0x21, 0x00, [1, 2, 3]), { version: "v2", command: "proxy", family: "unspec" }],
    // LOCAL ignores whatever block follows, family included.
    [v2(0x20, 0x11, INET_BLOCK), { version: "v2", command: "local", family: "unspec" }],
    [v2(0x20, 0x11, []), { version: "v2", command: "local", family: "unspec" }],
  ];
  for (const [header, expected] of cases) {
    const result = done(new ProxyHeaderParser().push(header));
    assert.deepEqual(result.header, expected);
    assert.equal(result.headerBytes, header.length);
  }
});

Deno.test("ProxyHeaderParser rejects invalid headers with a reason", () => {
  const long = ascii("PROXY " + "A".repeat(120));
  const crAt106 = ascii("PROXY TCP4 " + "1".repeat(95) + "\r\n");
  const cases: [Uint8Array, string][] = [
    [ascii("GET / HTTP/1.1\r\n"), "bad-signature"],
    [ascii("G"), "bad-signature"],
    [ascii("PROXX"), "bad-signature"],
    [Uint8Array.of(0x0d, 0x0a, 0x0d, 0x0a, 0x01), "bad-signature"],
    [ascii("PROXY UDP4 1.2.3.4 1.2.3.4 1 2\r\n"), "unsupported-family"],
    [ascii("PROXY TCP4 1.2.3.4 1.2.3.4 1 2 3\r\n"), "bad-syntax"],
    [ascii("PROXY TCP4  1.2.3.4 1.2.3.4 1 2\r\n"), "bad-syntax"],
    [ascii("PROXY TCP4 1.2.3.4 1.2.3.4 1 2\rX"), "bad-syntax"],
    [ascii("PROXY TCP4 1.2.3.4\n"), "bad-syntax"],
    [ascii("PROXY TCP4 1.2.3.256 1.2.3.4 1 2\r\n"), "bad-address"],
    [ascii("PROXY TCP4 ::1 1.2.3.4 1 2\r\n"), "bad-address"],
    [ascii("PROXY TCP6 1.2.3.4 ::1 1 2\r\n"), "bad-address"],
    [ascii("PROXY TCP4 1.2.3.4 1.2.3.4 01 2\r\n"), "bad-port"],
    [ascii("PROXY TCP4 1.2.3.4 1.2.3.4 1 65536\r\n"), "bad-port"],
    [ascii("PROXY TCP4 1.2.3.4 1.2.3.4 1 -2\r\n"), "bad-port"],
    [long, "missing-crlf"],
    [crAt106, "missing-crlf"],
    [v2(0x11, 0x11, INET_BLOCK), "unsupported-version"],
    [v2(0x22, 0x11, INET_BLOCK), "unsupported-command"],
    [v2(0x21, 0x41, INET_BLOCK), "unsupported-family"],
    [v2(0x21, 0x13, INET_BLOCK), "unsupported-family"],
    [v2(0x21, 0x01, INET_BLOCK), "unsupported-family"],
    [v2(0x21, 0x11, INET_BLOCK.slice(0, 8)), "bad-length"],
    [v2(0x21, 0x21, INET_BLOCK), "bad-length"],
    [v2(0x21, 0x11, [...INET_BLOCK, 0x01, 0x00]), "bad-tlv"],
    [v2(0x21, 0x11, [...INET_BLOCK, 0x01, 0x00, 0x05, 1, 2]), "bad-tlv"],
    [v2(0x21, 0x11, new Array(5000).fill(0)), "too-long"],
  ];
  for (const [bytes, reason] of cases) {
    const text = new TextDecoder().decode(bytes.subarray(0, 40));
    assert.equal(errorReason(new ProxyHeaderParser().push(bytes)), reason, text);
    // The same verdict when the bytes trickle in.
    const parser = new ProxyHeaderParser();
    let result: ProxyParseResult = { kind: "need-more" };
    for (let i = 0; i < bytes.length && result.kind === "need-more"; i++) {
      result = parser.push(bytes.subarray(i, i + 1));
    }
    assert.equal(errorReason(result), reason, `byte by byte: ${text}`);
  }
});

Deno.test("ProxyHeaderParser decides on the first byte and on the v2 length field", () => {
  assert.equal(errorReason(new ProxyHeaderParser().push(ascii("\x16"))), "bad-signature");
  // A v2 header declaring more than the cap is rejected after its 16 fixed bytes.
  const parser = new ProxyHeaderParser({ maxHeaderBytes: 200 });
  const big = v2(0x21, 0x11, new Array(300).fill(0));
  assert.equal(parser.push(big.subarray(0, 15)).kind, "need-more");
  assert.equal(errorReason(parser.push(big.subarray(15, 16))), "too-long");
  assert.equal(parser.bufferedBytes, 0);
});

Deno.test("ProxyHeaderParser never buffers more than the header or the cap", () => {
  const parser = new ProxyHeaderParser({ maxHeaderBytes: 300 });
  const header = v2(0x21, 0x11, [...INET_BLOCK, 0x04, 0x00, 250, ...new Array(250).fill(0)]);
  assert.equal(header.length, 281);
  assert.equal(parser.push(header.subarray(0, 10)).kind, "need-more");
  assert.equal(parser.push(header.subarray(10, 200)).kind, "need-more");
  assert.equal(parser.bufferedBytes, 200);
  const result = done(parser.push(concat(header.subarray(200), new Uint8Array(10_000))));
  assert.equal(result.rest.length, 10_000);
  assert.equal(result.headerBytes, 281);
  const v1 = new ProxyHeaderParser();
  assert.equal(v1.push(ascii("PROXY TCP4 ")).kind, "need-more");
  assert.equal(errorReason(v1.push(ascii("1".repeat(10_000)))), "missing-crlf");
});

Deno.test("ProxyHeaderParser.end reports truncation; a finished parser refuses more", () => {
  const parser = new ProxyHeaderParser();
  assert.equal(parser.push(ascii("PROXY TCP4 1.2")).kind, "need-more");
  const ended = parser.end();
  assert.equal(ended.reason, "truncated");
  assert.equal(
    ended.message,
    "Cannot parse PROXY header: connection closed after 14 of the header's bytes",
  );
  assert.throws(() => parser.push(ascii("x")), TypeError);
  const finished = new ProxyHeaderParser();
  done(finished.push(encodeProxyHeader("v2", V4)));
  assert.throws(() => finished.push(DATA), TypeError);
  assert.throws(() => finished.end(), TypeError);
  assert.equal(new ProxyHeaderParser().end().reason, "truncated");
});

Deno.test("ProxyHeaderParser validates maxHeaderBytes", () => {
  assert.equal(new ProxyHeaderParser().maxHeaderBytes, DEFAULT_PROXY_HEADER_MAX_BYTES);
  assert.equal(new ProxyHeaderParser({ maxHeaderBytes: 107 }).maxHeaderBytes, 107);
  assert.equal(new ProxyHeaderParser({ maxHeaderBytes: 65551 }).maxHeaderBytes, 65551);
  for (const bad of [106, 65552, 1.5, Number.NaN]) {
    assert.throws(() => new ProxyHeaderParser({ maxHeaderBytes: bad }), {
      name: "RangeError",
      message:
        `Cannot create PROXY header parser as 'maxHeaderBytes' must be an integer in 107-65551: current value is ${bad}`,
    });
  }
});
