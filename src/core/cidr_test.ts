import assert from "node:assert/strict";
import { CidrList, parseCidr, parseCidrList } from "./cidr.ts";
import fc from "fast-check";

Deno.test("parseCidr normalizes blocks", () => {
  const cases: [string, string, number[], number][] = [
    ["10.0.0.0/8", "ipv4", [10, 0, 0, 0], 8],
    ["192.0.2.7", "ipv4", [192, 0, 2, 7], 32],
    ["0.0.0.0/0", "ipv4", [0, 0, 0, 0], 0],
    ["::ffff:10.0.0.0/104", "ipv4", [10, 0, 0, 0], 8],
    ["::ffff:0:0/96", "ipv4", [0, 0, 0, 0], 0],
    ["2001:db8::/32", "ipv6", [0x20, 0x01, 0x0d, 0xb8, ...new Array(12).fill(0)], 32],
    ["::1", "ipv6", [...new Array(15).fill(0), 1], 128],
  ];
  for (const [text, family, network, prefixLength] of cases) {
    const block = parseCidr(text);
    assert.deepEqual(
      { family: block.family, network: [...block.network], prefixLength: block.prefixLength },
      { family, network, prefixLength },
      text,
    );
  }
});

Deno.test("parseCidr rejects bad blocks with precise messages", () => {
  const cases: [string, ErrorConstructor, string][] = [
    ["10.0.0/8", SyntaxError, 'Cannot parse CIDR "10.0.0/8": "10.0.0" is not an IPv4 address'],
    ["", SyntaxError, 'Cannot parse CIDR "": "" is not an IPv4 address'],
    [
      "fe80::zz/64",
      SyntaxError,
      'Cannot parse CIDR "fe80::zz/64": "fe80::zz" is not an IPv6 address',
    ],
    [
      "10.0.0.0/",
      SyntaxError,
      'Cannot parse CIDR "10.0.0.0/": prefix length "" is not a decimal number',
    ],
    [
      "10.0.0.0/08",
      SyntaxError,
      'Cannot parse CIDR "10.0.0.0/08": prefix length "08" is not a decimal number',
    ],
    [
      "10.0.0.0/8/8",
      SyntaxError,
      'Cannot parse CIDR "10.0.0.0/8/8": prefix length "8/8" is not a decimal number',
    ],
    [
      "10.0.0.0/33",
      RangeError,
      'Cannot use CIDR "10.0.0.0/33": prefix length 33 is out of range 0-32',
    ],
    ["::/129", RangeError, 'Cannot use CIDR "::/129": prefix length 129 is out of range 0-128'],
    [
      "10.1.2.3/8",
      RangeError,
      'Cannot use CIDR "10.1.2.3/8": host bits are set after the /8 prefix, did you mean "10.0.0.0/8"?',
    ],
    [
      "2001:db8::1/32",
      RangeError,
      'Cannot use CIDR "2001:db8::1/32": host bits are set after the /32 prefix, did you mean "2001:db8::/32"?',
    ],
  ];
  for (const [text, type, message] of cases) {
    assert.throws(() => parseCidr(text), { name: type.name, message });
  }
});

Deno.test("parseCidrList collects every bad entry with its index", () => {
  const { list, issues } = parseCidrList(["10.0.0.0/8", "nope", "::1", "1.2.3.4/40"]);
  assert.deepEqual(list.size, 2);
  assert.deepEqual(issues.map((i) => [i.index, i.text, i.error.name]), [
    [1, "nope", "SyntaxError"],
    [3, "1.2.3.4/40", "RangeError"],
  ]);
  assert.throws(() => CidrList.from(["10.0.0.0/8", "nope"]), SyntaxError);
});

Deno.test("CidrList.contains matches IPv4, IPv6 and IPv4-mapped addresses", () => {
  const list = CidrList.from([
    "10.0.0.0/8",
    "192.168.1.128/25",
    "203.0.113.7",
    "2001:db8:abcc::/47",
    "::ffff:198.51.100.0/120",
  ]);
  const cases: [string, boolean][] = [
    ["10.0.0.0", true],
    ["10.255.255.255", true],
    ["11.0.0.0", false],
    ["9.255.255.255", false],
    ["192.168.1.128", true],
    ["192.168.1.255", true],
    ["192.168.1.127", false],
    ["203.0.113.7", true],
    ["203.0.113.8", false],
    ["::ffff:10.1.2.3", true],
    ["::FFFF:192.168.1.200", true],
    ["::ffff:11.1.2.3", false],
    ["198.51.100.9", true], // an IPv4 address in a block written as IPv4-mapped IPv6
    ["198.51.101.9", false],
    ["2001:db8:abcd::1", true],
    ["2001:db8:abcd:1::1", true],
    ["2001:db8:abce::", false], // differs in bit 47
    ["2001:db8:abcc::", true],
    ["2001:db8:abcb:ffff::", false],
    ["::10.1.2.3", false], // IPv4-compatible is not IPv4-mapped
    ["not an address", false],
    ["", false],
  ];
  for (const [address, expected] of cases) {
    assert.deepEqual(list.contains(address), expected, address);
  }
});

Deno.test("CidrList.contains with /0 blocks matches everything of that family", () => {
  const v4 = CidrList.from(["0.0.0.0/0"]);
  assert.deepEqual(v4.contains("1.2.3.4"), true);
  assert.deepEqual(v4.contains("::ffff:1.2.3.4"), true);
  assert.deepEqual(v4.contains("::1"), false);
  const v6 = CidrList.from(["::/0"]);
  assert.deepEqual(v6.contains("::1"), true);
  assert.deepEqual(v6.contains("1.2.3.4"), false);
  assert.deepEqual(CidrList.from([]).contains("1.2.3.4"), false);
});

// Property tests: CidrList against a BigInt model that knows nothing of its ranges.

const v4Text = (n: bigint) => [24n, 16n, 8n, 0n].map((s) => (n >> s) & 255n).join(".");
const v6Text = (n: bigint) =>
  Array.from({ length: 8 }, (_, i) => ((n >> BigInt(112 - 16 * i)) & 0xffffn).toString(16)).join(
    ":",
  );
const hostMask = (bits: number, len: number) => (1n << BigInt(bits - len)) - 1n;

/** A block as the model sees it: family width, network, prefix length, and its text. */
interface ModelBlock {
  readonly bits: 32 | 128;
  readonly network: bigint;
  readonly length: number;
  readonly text: string;
}

const v4Block = fc.tuple(
  fc.bigInt({ min: 0n, max: (1n << 32n) - 1n }),
  fc.integer({ min: 0, max: 32 }),
)
  .map(([addr, length]): ModelBlock => {
    const network = addr & ~hostMask(32, length) & ((1n << 32n) - 1n);
    return { bits: 32, network, length, text: `${v4Text(network)}/${length}` };
  });
const v6Block = fc.tuple(
  fc.bigInt({ min: 0n, max: (1n << 128n) - 1n }),
  fc.integer({ min: 0, max: 128 }),
)
  .map(([addr, length]): ModelBlock => {
    const network = addr & ~hostMask(128, length) & ((1n << 128n) - 1n);
    return { bits: 128, network, length, text: `${v6Text(network)}/${length}` };
  })
  // Blocks inside ::ffff:0:0/96 are IPv4 blocks by design; the v4 arbitrary covers them.
  .filter((b) => !(b.length >= 96 && (b.network >> 32n) === 0xffffn));

function modelContains(blocks: readonly ModelBlock[], bits: 32 | 128, addr: bigint): boolean {
  return blocks.some((b) => b.bits === bits && (addr & ~hostMask(bits, b.length)) === b.network);
}

Deno.test("CidrList.contains agrees with a BigInt model for any blocks and addresses", () => {
  fc.assert(
    fc.property(
      fc.array(fc.oneof(v4Block, v6Block), { maxLength: 40 }),
      fc.array(fc.bigInt({ min: 0n, max: (1n << 32n) - 1n }), { maxLength: 20 }),
      fc.array(fc.bigInt({ min: 0n, max: (1n << 128n) - 1n }), { maxLength: 20 }),
      (blocks, v4s, v6s) => {
        const list = CidrList.from(blocks.map((b) => b.text));
        // Probe the edges of every block too: that is where an off-by-one would hide.
        const edges = blocks.flatMap((b) => [b.network, b.network | hostMask(b.bits, b.length)]);
        for (const a of [...v4s, ...edges.filter((e) => e < 1n << 32n)]) {
          assert.equal(list.contains(v4Text(a)), modelContains(blocks, 32, a), v4Text(a));
          // The same client through a dual-stack socket.
          assert.equal(list.contains(`::ffff:${v4Text(a)}`), modelContains(blocks, 32, a));
        }
        for (const a of [...v6s, ...edges]) {
          if ((a >> 32n) === 0xffffn) continue; // v4-mapped: tested as IPv4 above
          assert.equal(list.contains(v6Text(a)), modelContains(blocks, 128, a), v6Text(a));
        }
      },
    ),
    { numRuns: 300 },
  );
});

Deno.test("parseCidr round-trips every normalized block and rejects set host bits", () => {
  fc.assert(
    fc.property(fc.oneof(v4Block, v6Block), fc.bigInt({ min: 1n, max: 255n }), (b, noise) => {
      const block = parseCidr(b.text);
      assert.equal(block.prefixLength, b.length);
      assert.equal(block.family, b.bits === 32 ? "ipv4" : "ipv6");
      if (b.length < b.bits) {
        const hostBit = 1n << BigInt(Number(noise) % (b.bits - b.length));
        const text = (b.bits === 32 ? v4Text : v6Text)(b.network | hostBit) + `/${b.length}`;
        assert.throws(() => parseCidr(text), RangeError);
      }
    }),
    { numRuns: 500 },
  );
});

Deno.test("CidrList with 1,000 blocks, nested ones and IPv6", () => {
  const texts = Array.from({ length: 1000 }, (_, i) => `10.${i >> 8}.${i & 255}.0/24`);
  texts.push("10.0.0.0/16", "2001:db8::/48", "2001:db8:0:1::/64");
  const list = CidrList.from(texts);
  assert.equal(list.contains("10.3.231.9"), true);
  assert.equal(list.contains("10.3.232.9"), false);
  assert.equal(list.contains("10.0.255.255"), true);
  assert.equal(list.contains("::ffff:10.1.2.3"), true);
  assert.equal(list.contains("2001:db8:0:1::5"), true);
  assert.equal(list.contains("2001:db8:1::"), false);
  assert.equal(list.contains("not an address"), false);
});
