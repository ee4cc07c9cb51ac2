import assert from "node:assert/strict";
import { fmix32, fnv1a32 } from "./hash.ts";

Deno.test("fnv1a32() gives the published FNV-1a values", () => {
  // Reference values of 32-bit FNV-1a (offset basis 0x811c9dc5) for ASCII text.
  assert.equal(fnv1a32("", 0x811c9dc5), 0x811c9dc5);
  assert.equal(fnv1a32("a", 0x811c9dc5), 0xe40c292c);
  assert.equal(fnv1a32("foobar", 0x811c9dc5), 0xbf9cf968);
});

Deno.test("fmix32() maps 0 to 0, is a bijection on samples and always unsigned", () => {
  assert.equal(fmix32(0), 0);
  const seen = new Set<number>();
  for (let i = 0; i < 10_000; i++) {
    const h = fmix32(i * 2_654_435_761);
    assert.ok(h >= 0 && h <= 0xffff_ffff && Number.isInteger(h));
    seen.add(h);
  }
  assert.equal(seen.size, 10_000);
});
