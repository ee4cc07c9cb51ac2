import assert from "node:assert/strict";
import { SharedCounts } from "./shared_counts.ts";

Deno.test("SharedCounts: every worker's counter reads the total of all workers", () => {
  const counts = SharedCounts.create(4, 2);
  const a = counts.counter(1, 0);
  const b = SharedCounts.attach(counts.init).counter(1, 1);
  assert.ok(a.tryAcquire(0));
  assert.ok(b.tryAcquire(0));
  assert.ok(b.tryAcquire(0));
  assert.equal(a.value, 3);
  assert.equal(b.value, 3);
  assert.equal(counts.total(1), 3);
  assert.equal(counts.ofWorker(1, 0), 1);
  assert.equal(counts.ofWorker(1, 1), 2);
  assert.equal(counts.total(0), 0, "other slots untouched");
  b.release();
  assert.equal(a.value, 2);
  assert.equal(counts.ofWorker(1, 1), 1);
});

Deno.test("SharedCounts: tryAcquire stops at the limit across workers", () => {
  const counts = SharedCounts.create(1, 3);
  const counters = [0, 1, 2].map((w) => counts.counter(0, w));
  let admitted = 0;
  for (let i = 0; i < 10; i++) if (counters[i % 3]!.tryAcquire(5)) admitted++;
  assert.equal(admitted, 5);
  assert.equal(counts.total(0), 5);
  counters[0]!.release();
  assert.ok(counters[2]!.tryAcquire(5));
  assert.equal(counters[1]!.tryAcquire(5), false);
});

Deno.test("SharedCounts: reclaim takes back a dead worker's connections only", () => {
  const counts = SharedCounts.create(3, 2);
  for (let i = 0; i < 4; i++) counts.counter(0, 0).tryAcquire(0);
  counts.counter(2, 0).tryAcquire(0);
  counts.counter(0, 1).tryAcquire(0);
  assert.equal(counts.reclaim(0), 5);
  assert.equal(counts.total(0), 1);
  assert.equal(counts.total(2), 0);
  assert.equal(counts.ofWorker(0, 0), 0);
  assert.equal(counts.ofWorker(0, 1), 1);
  assert.equal(counts.reclaim(0), 0, "idempotent");
});

Deno.test("SharedCounts: bad arguments are RangeErrors", () => {
  assert.throws(() => SharedCounts.create(0, 1), RangeError);
  assert.throws(() => SharedCounts.create(1, 1.5), RangeError);
  const counts = SharedCounts.create(2, 1);
  assert.throws(() => counts.counter(2, 0), RangeError);
  assert.throws(() => counts.counter(0, 1), RangeError);
  assert.throws(
    () => SharedCounts.attach({ buffer: new SharedArrayBuffer(4), slots: 2, workers: 1 }),
    RangeError,
  );
});

Deno.test("SharedCounts: workers racing for a limit never admit more than it", async () => {
  const limit = 1000;
  const workers = 2;
  const counts = SharedCounts.create(1, workers);
  const source = `
    import { SharedCounts } from ${
    JSON.stringify(new URL("./shared_counts.ts", import.meta.url).href)
  };
    self.onmessage = (e) => {
      const counter = SharedCounts.attach(e.data.init).counter(0, e.data.worker);
      let admitted = 0;
      for (let i = 0; i < 5000; i++) {
        if (counter.tryAcquire(${limit})) admitted++;
        if (i % 3 === 0 && admitted > 0) { counter.release(); admitted--; }
      }
      postMessage(admitted);
    };`;
  const url = URL.createObjectURL(new Blob([source], { type: "text/javascript" }));
  try {
    const results = await Promise.all(
      Array.from({ length: workers }, (_, worker) => {
        const w = new Worker(url, { type: "module" });
        return new Promise<number>((resolve, reject) => {
          w.onmessage = (e) => {
            w.terminate();
            resolve(e.data);
          };
          w.onerror = (e) => {
            e.preventDefault();
            w.terminate();
            reject(new Error(e.message));
          };
          w.postMessage({ init: counts.init, worker });
        });
      }),
    );
    const total = results.reduce((a, b) => a + b, 0);
    assert.equal(counts.total(0), total, "no update lost");
    assert.ok(total <= limit, `${total} admitted, limit ${limit}`);
    for (let w = 0; w < workers; w++) assert.equal(counts.ofWorker(0, w), results[w]);
  } finally {
    URL.revokeObjectURL(url);
  }
});

Deno.test("SharedCounts.ticket hands out consecutive numbers to every holder", () => {
  const counts = SharedCounts.create(2, 1);
  const a = counts.ticket(1);
  const b = SharedCounts.attach(counts.init).ticket(1);
  assert.deepEqual([a(), b(), a(), b()], [0, 1, 2, 3]);
  assert.equal(counts.ticket(0)(), 0, "slots are independent");
  assert.throws(() => counts.ticket(2), RangeError);
});
