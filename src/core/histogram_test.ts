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

Deno.test("Histogram.add sums another histogram's data, also after a structured clone", () => {
  const one = new Histogram([1, 5]);
  const two = new Histogram([1, 5]);
  for (const v of [0.5, 3, 9]) one.observe(v);
  for (const v of [3, 4]) two.observe(v);
  const merged = new Histogram([1, 5]);
  merged.add(one.toData());
  merged.add(structuredClone(two.toData()));
  assert.deepEqual([...merged.counts], [1, 3, 1]);
  assert.equal(merged.count, 5);
  assert.equal(merged.sum, 0.5 + 3 + 9 + 3 + 4);
  assert.throws(() => merged.add(new Histogram([1, 6]).toData()), RangeError);
  assert.throws(() => merged.add(new Histogram([1]).toData()), RangeError);
  assert.deepEqual([...merged.counts], [1, 3, 1], "a refused add changes nothing");
});
