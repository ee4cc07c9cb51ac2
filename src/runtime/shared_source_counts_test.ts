import assert from "node:assert/strict";
import { SharedSourceCounts } from "./shared_source_counts.ts";

Deno.test("SharedSourceCounts: one client's limit holds across workers", () => {
  const control = SharedSourceCounts.create(2, 1024);
  // Each worker attaches to the same buffer, as worker_main does.
  const w0 = SharedSourceCounts.attach(control.init).counter("web", 0);
  const w1 = SharedSourceCounts.attach(control.init).counter("web", 1);
  assert.equal(w0.tryAcquire("192.0.2.1", 3), true);
  assert.equal(w1.tryAcquire("192.0.2.1", 3), true);
  assert.equal(w0.tryAcquire("192.0.2.1", 3), true);
  assert.equal(w1.tryAcquire("192.0.2.1", 3), false, "the 4th, in either worker, is refused");
  assert.equal(w0.tryAcquire("192.0.2.1", 3), false);
  assert.equal(control.estimate("web", "192.0.2.1"), 3);
  // Another listener and another client count apart.
  const other = SharedSourceCounts.attach(control.init).counter("db", 1);
  assert.equal(other.tryAcquire("192.0.2.1", 1), true);
  assert.equal(w1.tryAcquire("192.0.2.2", 3), true);
  w1.release("192.0.2.1");
  assert.equal(w0.tryAcquire("192.0.2.1", 3), true);
});

Deno.test("SharedSourceCounts.reclaim takes back what a dead worker counted", () => {
  const counts = SharedSourceCounts.create(2, 64);
  const w0 = counts.counter("web", 0);
  const w1 = counts.counter("web", 1);
  w0.tryAcquire("198.51.100.1", 2);
  w1.tryAcquire("198.51.100.1", 2);
  assert.equal(w0.tryAcquire("198.51.100.1", 2), false);
  assert.equal(counts.reclaim(1), 1);
  assert.equal(counts.estimate("web", "198.51.100.1"), 1);
  assert.equal(w0.tryAcquire("198.51.100.1", 2), true);
});

Deno.test("SharedSourceCounts never lets a client past its limit, even with a tiny sketch", () => {
  // 4 cells: every client collides; refusals come early, never late.
  const counts = SharedSourceCounts.create(1, 4);
  const c = counts.counter("web", 0);
  const held = new Map<string, number>();
  for (let i = 0; i < 200; i++) {
    const address = `10.0.0.${i % 20}`;
    if (c.tryAcquire(address, 2)) held.set(address, (held.get(address) ?? 0) + 1);
  }
  for (const [address, n] of held) assert.ok(n <= 2, `${address} holds ${n}`);
  assert.ok(held.size > 0);
  assert.throws(() => SharedSourceCounts.create(1, 1000), RangeError);
});
