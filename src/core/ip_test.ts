import assert from "node:assert/strict";
import { formatIp, formatIPv6, isIPv4Mapped, parseIp, parseIPv4Into, parseIPv6Into } from "./ip.ts";

Deno.test("parseIp reads IPv4 dotted quads strictly", () => {
  assert.deepEqual(parseIp("0.0.0.0"), Uint8Array.of(0, 0, 0, 0));
  assert.deepEqual(parseIp("203.0.113.7"), Uint8Array.of(203, 0, 113, 7));
  assert.deepEqual(parseIp("255.255.255.255"), Uint8Array.of(255, 255, 255, 255));
  for (
    const bad of [
      "",
      "1.2.3",
      "1.2.3.4.5",
      "256.1.1.1",
      "01.2.3.4",
      "1..2.3",
      "1.2.3.4 ",
      "a.b.c.d",
    ]
  ) {
    assert.deepEqual(parseIp(bad), undefined, bad);
  }
});

Deno.test("parseIp reads IPv6 text with compression and IPv4 tails", () => {
  const cases: [string, number[]][] = [
    ["::", new Array(16).fill(0)],
    ["::1", [...new Array(15).fill(0), 1]],
    ["1::", [0, 1, ...new Array(14).fill(0)]],
    ["2001:DB8::8:800:200c:417a", [
      0x20,
      0x01,
      0x0d,
      0xb8,
      0,
      0,
      0,
      0,
      0,
      0x08,
      0x08,
      0x00,
      0x20,
      0x0c,
      0x41,
      0x7a,
    ]],
    ["::ffff:10.1.2.3", [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 1, 2, 3]],
    ["1:2:3:4:5:6:7:8", [0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 8]],
    ["1:2:3:4:5:6:7::", [0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 0]],
    ["1:2:3:4:5:6:1.2.3.4", [0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 1, 2, 3, 4]],
  ];
  for (const [text, bytes] of cases) assert.deepEqual(parseIp(text), Uint8Array.from(bytes), text);
  for (
    const bad of [
      ":",
      ":::",
      "1:",
      ":1",
      "1::2::3",
      "1:2:3:4:5:6:7:8:9",
      "1:2:3:4:5:6:7:8::",
      "12345::",
      "g::",
      "::1.2.3",
      "::1.2.3.4:5",
      "1:2:3:4:5:6:7:1.2.3.4",
      "fe80::1%eth0",
    ]
  ) {
    assert.deepEqual(parseIp(bad), undefined, bad);
  }
});

Deno.test("parse*Into write at an offset and read a slice of the text", () => {
  const out = new Uint8Array(20).fill(9);
  assert.deepEqual(parseIPv4Into("x10.0.0.1y", out, 2, 1, 9), true);
  assert.deepEqual([...out.subarray(0, 7)], [9, 9, 10, 0, 0, 1, 9]);
  assert.deepEqual(parseIPv6Into("[::2]", out, 4, 1, 4), true);
  assert.deepEqual(out[19], 2);
  assert.deepEqual(out[4], 0);
});

Deno.test("formatIPv6 follows RFC 5952", () => {
  const cases: [string, string][] = [
    ["2001:0db8:0000:0000:0000:0000:0002:0001", "2001:db8::2:1"],
    ["2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"], // one zero group is not compressed
    ["2001:0:0:1:0:0:0:1", "2001:0:0:1::1"], // the longest run wins
    ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"], // the first of equal runs wins
    ["0:0:0:0:0:0:0:0", "::"],
    ["0:0:0:0:0:0:0:1", "::1"],
    ["1:0:0:0:0:0:0:0", "1::"],
    ["::FFFF:192.0.2.1", "::ffff:192.0.2.1"],
  ];
  for (const [input, expected] of cases) assert.deepEqual(formatIPv6(parseIp(input)!), expected);
  assert.deepEqual(formatIp(Uint8Array.of(192, 0, 2, 1)), "192.0.2.1");
});

Deno.test("isIPv4Mapped recognises only ::ffff:0:0/96", () => {
  assert.deepEqual(isIPv4Mapped(parseIp("::ffff:1.2.3.4")!), true);
  assert.deepEqual(isIPv4Mapped(parseIp("::1.2.3.4")!), false);
  assert.deepEqual(isIPv4Mapped(parseIp("1::ffff:1.2.3.4")!), false);
});
