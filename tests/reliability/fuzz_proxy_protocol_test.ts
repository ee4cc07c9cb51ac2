/**
 * Property tests for the PROXY protocol parser: whatever bytes a peer sends, in whatever
 * chunks, the parser returns one of its three outcomes, never throws and never holds more
 * than its cap; valid headers survive any chunking.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { isIPv4Mapped, parseIp } from "../../src/core/ip.ts";
import {
  encodeProxyHeader,
  type ProxyHeaderInfo,
  ProxyHeaderParser,
  type ProxyParseResult,
} from "../../src/proxy/proxy_protocol.ts";

const NUM_RUNS = 2_000;

/** Splits `bytes` at the given cut points (taken modulo its length). */
function chunked(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const chunks: Uint8Array[] = [];
  let at = 0;
  for (const p of points) {
    chunks.push(bytes.subarray(at, p));
    at = p;
  }
  chunks.push(bytes.subarray(at));
  return chunks;
}

interface Fed {
  result: ProxyParseResult;
  /** Bytes pushed up to and including the chunk that ended parsing. */
  pushed: number;
}

/** Feeds chunks until a terminal outcome, checking the invariants after every push. */
function feed(chunks: Uint8Array[], maxHeaderBytes?: number): Fed {
  const parser = new ProxyHeaderParser(maxHeaderBytes ? { maxHeaderBytes } : {});
  let pushed = 0;
  for (const chunk of chunks) {
    pushed += chunk.length;
    const result = parser.push(chunk);
    assert.ok(["need-more", "done", "error"].includes(result.kind));
    assert.ok(parser.bufferedBytes <= parser.maxHeaderBytes, "never buffers beyond the cap");
    if (result.kind === "need-more") {
      assert.equal(parser.bufferedBytes, pushed, "need-more holds exactly what was pushed");
      continue;
    }
    assert.equal(parser.bufferedBytes, 0, "a finished parser holds nothing");
    if (result.kind === "done") {
      assert.ok(result.headerBytes <= parser.maxHeaderBytes);
      assert.equal(result.headerBytes + result.rest.length, pushed, "header + rest = input");
    } else {
      assert.ok(result.message.startsWith("Cannot parse PROXY header: "));
    }
    return { result, pushed };
  }
  return { result: { kind: "need-more" }, pushed };
}

/** The outcome without the `rest` view, for comparing one-shot and chunked parses. */
function verdict(result: ProxyParseResult): unknown {
  if (result.kind === "done") return { kind: "done", h: result.header, n: result.headerBytes };
  if (result.kind === "error") return { kind: "error", reason: result.reason };
  return result;
}

const cuts = fc.array(fc.nat({ max: 5_000 }), { maxLength: 8 });
const cap = fc.option(fc.integer({ min: 107, max: 65_551 }), { nil: undefined });

Deno.test("fuzz: arbitrary bytes in arbitrary chunks keep the parser's invariants", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 600 }), cuts, cap, (bytes, cutPoints, max) => {
      const whole = feed([bytes], max);
      const split = feed(chunked(bytes, cutPoints), max);
      assert.deepEqual(verdict(split.result), verdict(whole.result), "chunking never matters");
    }),
    { numRuns: NUM_RUNS },
  );
});

Deno.test("fuzz: bytes starting like a header keep the parser's invariants", () => {
  const v1Start = fc.constantFrom("PROXY ", "PROXY TCP4 ", "PROXY TCP6 ", "PROXY UNKNOWN");
  const v1Like = fc.tuple(v1Start, fc.string({ maxLength: 120 })).map(([p, s]) =>
    Uint8Array.from(p + s, (c) => c.charCodeAt(0) & 0xff)
  );
  const v2Like = fc.tuple(fc.uint8Array({ minLength: 4, maxLength: 600 })).map(([tail]) => {
    const sig = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];
    return Uint8Array.from([...sig, ...tail]);
  });
  fc.assert(
    fc.property(fc.oneof(v1Like, v2Like), cuts, cap, (bytes, cutPoints, max) => {
      const whole = feed([bytes], max);
      const split = feed(chunked(bytes, cutPoints), max);
      assert.deepEqual(verdict(split.result), verdict(whole.result));
    }),
    { numRuns: NUM_RUNS },
  );
});

const address = fc.oneof(fc.ipV4(), fc.ipV6());
const port = fc.integer({ min: 0, max: 65_535 });
const info: fc.Arbitrary<ProxyHeaderInfo> = fc.oneof(
  {
    weight: 9,
    arbitrary: fc.record({ src: address, sport: port, dst: address, dport: port }).map(
      ({ src, sport, dst, dport }): ProxyHeaderInfo => ({
        command: "proxy",
        transport: "tcp",
        source: { address: src, port: sport },
        destination: { address: dst, port: dport },
      }),
    ),
  },
  { weight: 1, arbitrary: fc.constant<ProxyHeaderInfo>({ command: "local" }) },
);
const version = fc.constantFrom("v1" as const, "v2" as const);

/** Address bytes as IPv4 when IPv4 or IPv4-mapped, so encoded and parsed forms compare. */
function normalized(text: string): number[] {
  const bytes = parseIp(text)!;
  return bytes.length === 16 && isIPv4Mapped(bytes) ? [...bytes.subarray(12)] : [...bytes];
}

Deno.test("fuzz: every encoded header parses back to the same addresses in any chunking", () => {
  fc.assert(
    fc.property(version, info, fc.uint8Array({ maxLength: 64 }), cuts, (v, i, data, cutPoints) => {
      const header = encodeProxyHeader(v, i);
      const bytes = new Uint8Array(header.length + data.length);
      bytes.set(header);
      bytes.set(data, header.length);
      const { result } = feed(chunked(bytes, cutPoints));
      assert.equal(result.kind, "done");
      if (result.kind !== "done") return;
      assert.equal(result.headerBytes, header.length);
      assert.equal(result.header.version, v);
      if (i.command === "local") {
        assert.equal(result.header.command, "local");
        assert.equal(result.header.source, undefined);
        return;
      }
      const { source, destination } = result.header;
      assert.ok(source && destination);
      assert.deepEqual(normalized(source.address), normalized(i.source.address));
      assert.deepEqual(normalized(destination.address), normalized(i.destination.address));
      assert.equal(source.port, i.source.port);
      assert.equal(destination.port, i.destination.port);
      const isV4 = normalized(i.source.address).length === 4 &&
        normalized(i.destination.address).length === 4;
      assert.equal(result.header.family, isV4 ? "tcp4" : "tcp6");
    }),
    { numRuns: NUM_RUNS },
  );
});

type Mutation =
  | { op: "flip"; at: number; xor: number }
  | { op: "insert"; at: number; byte: number }
  | { op: "delete"; at: number }
  | { op: "truncate"; at: number };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({
    op: fc.constant("flip" as const),
    at: fc.nat(),
    xor: fc.integer({ min: 1, max: 255 }),
  }),
  fc.record({
    op: fc.constant("insert" as const),
    at: fc.nat(),
    byte: fc.integer({ min: 0, max: 255 }),
  }),
  fc.record({ op: fc.constant("delete" as const), at: fc.nat() }),
  fc.record({ op: fc.constant("truncate" as const), at: fc.nat() }),
);

function mutate(bytes: Uint8Array, mutations: Mutation[]): Uint8Array {
  const out = [...bytes];
  for (const m of mutations) {
    const at = out.length === 0 ? 0 : m.at % out.length;
    if (m.op === "flip" && out.length > 0) out[at] = out[at]! ^ m.xor;
    else if (m.op === "insert") out.splice(at, 0, m.byte);
    else if (m.op === "delete") out.splice(at, 1);
    else if (m.op === "truncate") out.length = at;
  }
  return Uint8Array.from(out);
}

Deno.test("fuzz: mutated valid headers keep the parser's invariants", () => {
  fc.assert(
    fc.property(
      version,
      info,
      fc.array(mutation, { minLength: 1, maxLength: 4 }),
      cuts,
      cap,
      (v, i, mutations, cutPoints, max) => {
        const bytes = mutate(encodeProxyHeader(v, i), mutations);
        const whole = feed([bytes], max);
        const split = feed(chunked(bytes, cutPoints), max);
        assert.deepEqual(verdict(split.result), verdict(whole.result));
        if (whole.result.kind === "done" && whole.result.header.source) {
          // Whatever got through is a well-formed endpoint.
          assert.ok(parseIp(whole.result.header.source.address));
          assert.ok(whole.result.header.source.port <= 65_535);
        }
      },
    ),
    { numRuns: NUM_RUNS },
  );
});

Deno.test("fuzz: input that starts with neither 'P' nor CR is rejected at its first byte", () => {
  const notAStart = fc.integer({ min: 0, max: 255 }).filter((b) => b !== 0x50 && b !== 0x0d);
  fc.assert(
    fc.property(notAStart, fc.uint8Array({ maxLength: 200 }), (first, tail) => {
      const parser = new ProxyHeaderParser();
      const result = parser.push(Uint8Array.of(first));
      assert.equal(result.kind, "error");
      assert.equal(result.kind === "error" && result.reason, "bad-signature");
      assert.equal(parser.bufferedBytes, 0);
      const whole = new ProxyHeaderParser().push(Uint8Array.from([first, ...tail]));
      assert.equal(whole.kind === "error" && whole.reason, "bad-signature");
    }),
    { numRuns: NUM_RUNS },
  );
});
