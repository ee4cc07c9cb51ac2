import assert from "node:assert/strict";
import { type Bound, boundAddress, BoundAddresses, overlaps } from "./_address_conflicts.ts";

function bound(text: string, i = 0): Bound {
  const address = boundAddress(["configurations", i, "listenerAddress"], text);
  assert.ok(address !== undefined, text);
  return address;
}

Deno.test("boundAddress() takes valid listen addresses only, host lower-cased", () => {
  assert.deepEqual(bound("LB.example:80"), {
    path: ["configurations", 0, "listenerAddress"],
    text: "LB.example:80",
    host: "lb.example",
    port: 80,
  });
  assert.equal(boundAddress([], ""), undefined);
  assert.equal(boundAddress([], 8080), undefined);
  assert.equal(boundAddress([], "host:70000"), undefined);
});

Deno.test("overlaps() follows what the kernel lets two sockets bind", () => {
  const cases: [string, string, boolean][] = [
    [":80", "127.0.0.1:80", true],
    ["[::]:80", "[::1]:80", true],
    ["0.0.0.0:80", "10.0.0.1:80", true],
    ["0.0.0.0:80", "[::1]:80", false],
    ["10.0.0.1:80", "10.0.0.2:80", false],
    ["10.0.0.1:80", "10.0.0.1:81", false],
    ["a.example:80", "A.EXAMPLE:80", true],
  ];
  for (const [a, b, expected] of cases) {
    assert.equal(overlaps(bound(a), bound(b)), expected, `${a} ${b}`);
    assert.equal(overlaps(bound(b), bound(a)), expected, `${b} ${a}`);
  }
});

Deno.test("BoundAddresses.firstOverlap() names the earliest overlapping address", () => {
  const texts = ["10.0.0.1:80", "[::1]:80", "0.0.0.0:80", "10.0.0.2:81"];
  const seen = new BoundAddresses();
  texts.forEach((text, i) => seen.add(bound(text, i)));
  const firstOf = (text: string) => seen.firstOverlap(bound(text, 9))?.text;
  assert.equal(firstOf("10.0.0.3:80"), "0.0.0.0:80");
  assert.equal(firstOf("10.0.0.1:80"), "10.0.0.1:80");
  assert.equal(firstOf("[::1]:80"), "[::1]:80");
  assert.equal(firstOf(":80"), "10.0.0.1:80");
  assert.equal(firstOf("[::2]:80"), undefined);
  assert.equal(firstOf("10.0.0.1:82"), undefined);
  // The index answers as a scan of every address added would.
  for (const text of ["10.0.0.3:80", "[::]:80", "0.0.0.0:81", "[fe80::1]:80"]) {
    const probe = bound(text, 9);
    assert.equal(seen.firstOverlap(probe), seen.all.find((b) => overlaps(b, probe)), text);
  }
});
