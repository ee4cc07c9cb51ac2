import assert from "node:assert/strict";
import { CidrList, parseCidr, parseCidrList } from "./cidr.ts";

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
