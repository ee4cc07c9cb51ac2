import assert from "node:assert/strict";
import { RateMeter } from "./_rates.ts";

Deno.test("RateMeter: no rates from one sample, then per-second differences", () => {
  const meter = new RateMeter(1000);
  assert.deepEqual(meter.update(new Map([["a", 100]]), 10_000), {
    perSecond: new Map(),
    windowMs: 0,
  });
  const rates = meter.update(new Map([["a", 2100], ["b", 5]]), 12_000);
  assert.equal(rates.windowMs, 2000);
  assert.deepEqual([...rates.perSecond], [["a", 1000]]);
});

Deno.test("RateMeter: samples inside the minimum window reuse the last rates", () => {
  const meter = new RateMeter(1000);
  meter.update(new Map([["a", 0]]), 0);
  const first = meter.update(new Map([["a", 1000]]), 1000);
  assert.equal(first.perSecond.get("a"), 1000);
  // 500 ms later: too close, the same rates, and the base stays at t=1000.
  assert.equal(meter.update(new Map([["a", 9999]]), 1500), first);
  const next = meter.update(new Map([["a", 3000]]), 2000);
  assert.equal(next.perSecond.get("a"), 2000);
});

Deno.test("RateMeter: a counter that went down (reset) and a clock that went back give no rate", () => {
  const meter = new RateMeter(1000);
  meter.update(new Map([["a", 500]]), 5000);
  assert.equal(meter.update(new Map([["a", 100]]), 7000).perSecond.has("a"), false);
  assert.deepEqual(meter.update(new Map([["a", 200]]), 1000).windowMs, 0);
  assert.equal(meter.update(new Map([["a", 1200]]), 3000).perSecond.get("a"), 500);
});
