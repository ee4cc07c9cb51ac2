import assert from "node:assert/strict";
import { CONNECT_DURATION_BUCKETS, CONNECTION_DURATION_BUCKETS, Histogram } from "./histogram.ts";

Deno.test("Histogram counts values into buckets with inclusive upper bounds", () => {
  const h = new Histogram([1, 5, 10]);
  for (const v of [0, 1, 1.5, 5, 9, 10, 11, 1000, NaN]) h.observe(v);
  assert.deepEqual([...h.counts], [2, 2, 2, 2]);
  assert.equal(h.count, 8);
  assert.equal(h.sum, 0 + 1 + 1.5 + 5 + 9 + 10 + 11 + 1000);
});

Deno.test("Histogram rejects bounds that are not ascending and finite", () => {
  assert.throws(() => new Histogram([1, 1]), RangeError);
  assert.throws(() => new Histogram([2, 1]), RangeError);
  assert.throws(() => new Histogram([1, Infinity]), RangeError);
  assert.doesNotThrow(() => new Histogram(CONNECTION_DURATION_BUCKETS));
  assert.doesNotThrow(() => new Histogram(CONNECT_DURATION_BUCKETS));
});
