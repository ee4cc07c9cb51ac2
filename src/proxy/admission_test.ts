import assert from "node:assert/strict";
import { CidrList } from "../core/cidr.ts";
import { LocalSourceCounter } from "../core/connection_counter.ts";
import { Admission, sourceKey } from "./admission.ts";

Deno.test("Admission: deny wins over allow; an empty allow admits every peer not denied", () => {
  const cases: [allow: string[], deny: string[], address: string, expected: boolean][] = [
    [[], [], "198.51.100.7", true],
    [["10.0.0.0/8"], [], "10.1.2.3", true],
    [["10.0.0.0/8"], [], "192.0.2.1", false],
    [["10.0.0.0/8"], ["10.6.0.0/16"], "10.6.0.1", false],
    [["10.0.0.0/8"], ["10.6.0.0/16"], "10.7.0.1", true],
    [[], ["10.6.0.0/16"], "10.6.255.255", false],
    [[], ["10.6.0.0/16"], "::ffff:10.6.0.9", false], // dual-stack socket, IPv4 client
    [["10.0.0.0/8"], [], "::ffff:10.0.0.9", true],
    [["2001:db8::/32"], [], "2001:db8:1::1", true],
    [["2001:db8::/32"], [], "2001:db9::1", false],
    [["0.0.0.0/0"], [], "2001:db8::1", false], // an IPv4 allowlist admits no IPv6 peer
    [["10.0.0.0/8"], [], "not-an-address", false],
  ];
  for (const [allow, deny, address, expected] of cases) {
    const admission = new Admission({ allow: CidrList.from(allow), deny: CidrList.from(deny) });
    assert.equal(admission.isAllowed(address), expected, `${allow} / ${deny}: ${address}`);
  }
});

Deno.test("Admission.acquire counts per source up to the limit, one over is refused", () => {
  const counter = new LocalSourceCounter();
  const admission = new Admission({ maxConnectionsPerSource: 2, sourceCounter: counter });
  const first = admission.acquire("192.0.2.1");
  const second = admission.acquire("::ffff:192.0.2.1"); // the same client, mapped
  assert.ok(first && second);
  assert.equal(admission.acquire("192.0.2.1"), undefined);
  assert.ok(admission.acquire("192.0.2.2"), "another client has its own count");
  first();
  first(); // a second call is a no-op, not a second release
  const third = admission.acquire("192.0.2.1");
  assert.ok(third);
  assert.equal(admission.acquire("192.0.2.1"), undefined);
  // A reload builds a new admission over the same counter: open connections stay counted.
  const reloaded = new Admission({ maxConnectionsPerSource: 3, sourceCounter: counter });
  assert.ok(reloaded.acquire("192.0.2.1"));
  assert.equal(reloaded.acquire("192.0.2.1"), undefined);
});

Deno.test("Admission without a limit counts nothing", () => {
  const counter = new LocalSourceCounter();
  const admission = new Admission({ sourceCounter: counter });
  for (let i = 0; i < 5; i++) admission.acquire("192.0.2.1")?.();
  assert.equal(counter.size, 0);
  assert.equal(admission.hasAcl, false);
  assert.throws(() => new Admission({ maxConnectionsPerSource: -1 }), RangeError);
});

Deno.test("sourceKey folds IPv4-mapped IPv6 into IPv4 only", () => {
  assert.equal(sourceKey("::ffff:10.0.0.1"), "10.0.0.1");
  assert.equal(sourceKey("::FFFF:10.0.0.1"), "10.0.0.1");
  assert.equal(sourceKey("::ffff:a00:1"), "::ffff:a00:1");
  assert.equal(sourceKey("2001:db8::1"), "2001:db8::1");
  assert.equal(sourceKey("10.0.0.1"), "10.0.0.1");
});
