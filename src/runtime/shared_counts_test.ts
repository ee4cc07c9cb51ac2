import assert from "node:assert/strict";
import { type BalancerKind, createBalancer } from "../balancer/mod.ts";
import type { ConnectionCounter } from "../core/connection_counter.ts";
import type { Backend, Candidate, Lease, NoBackendReason } from "../core/types.ts";
import { Pool } from "../pool/mod.ts";
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

/**
 * One pool per worker over one `SharedCounts`, as two workers run the same listener. The
 * pool of worker 0 can be made to lose a race: `beforeNextCount(fn)` runs `fn` right before
 * its next count of a connection, after its balancer chose by the counts it read.
 */
function twoWorkerPools(
  kind: BalancerKind,
  backends: readonly Backend[],
  maxConnectionsPerBackend: number,
) {
  const counts = SharedCounts.create(backends.length, 2);
  const slots = new Map(backends.map((b, i) => [b.key, i]));
  let hook: (() => void) | undefined;
  const counterOf = (worker: number) => (key: string): ConnectionCounter => {
    const counter = counts.counter(slots.get(key)!, worker);
    if (worker !== 0) return counter;
    return {
      get value() {
        return counter.value;
      },
      tryAcquire(limit: number): boolean {
        const run = hook;
        hook = undefined;
        run?.();
        return counter.tryAcquire(limit);
      },
      release: () => counter.release(),
    };
  };
  const pools = [0, 1].map((worker) => {
    const pool = new Pool({
      name: "web",
      balancer: createBalancer(kind, { maglevTableSize: 251, maglevSeed: 3 }),
      counterOf: counterOf(worker),
      maxConnectionsPerBackend,
    });
    pool.update(backends);
    return pool;
  });
  return {
    counts,
    mine: pools[0]!,
    other: pools[1]!,
    beforeNextCount: (fn: () => void) => void (hook = fn),
    close: () => pools.forEach((p) => p.close()),
  };
}

function keyOf(result: Lease | NoBackendReason): string {
  assert.notEqual(typeof result, "string", `expected a lease, got ${String(result)}`);
  return (result as Lease).backend.key;
}

const NONE: ReadonlySet<string> = new Set();

function backendsNamed(...names: string[]): Backend[] {
  return names.map((name) => ({ key: `${name}:80`, host: name, port: 80, weight: 1 }));
}

Deno.test("Pool over SharedCounts: a lost race for the last place takes the rotation's next backend", () => {
  const [a, b, c, d] = backendsNamed("a", "b", "c", "d");
  // Only `a` has a limit: one connection.
  const pools = twoWorkerPools("round_robin", [{ ...a!, maxConnections: 1 }, b!, c!, d!], 0);
  const client = { address: "203.0.113.7", port: 40000 };
  const held: Lease[] = [];
  try {
    let stolen = "";
    // Worker 0 picked `a` (free when it looked); worker 1 takes it before worker 0 counts.
    pools.beforeNextCount(() => stolen = keyOf(pools.other.acquire(client, NONE)));
    const first = pools.mine.acquire(client, NONE);
    assert.equal(stolen, a!.key);
    assert.equal(keyOf(first), b!.key, "the next backend of the rotation, not a refusal");
    held.push(first as Lease);
    // The rotation is where it would be had `a` been full at the pick: one step on.
    for (let i = 0; i < 3; i++) held.push(pools.mine.acquire(client, NONE) as Lease);
    assert.deepEqual(held.slice(1).map(keyOf), [c!.key, d!.key, b!.key]);
    assert.deepEqual([0, 1, 2, 3].map((slot) => pools.counts.total(slot)), [1, 2, 1, 1]);
    assert.equal(pools.counts.ofWorker(0, 0), 0, "the lost race counted nothing");
  } finally {
    for (const lease of held) lease.release();
    pools.close();
  }
});

Deno.test("Pool over SharedCounts: a lost race under Maglev falls through its table as for a full backend", () => {
  const backends = backendsNamed("a", "b", "c", "d", "e");
  // Maglev with the client's backend full: what the pool of the losing worker must give.
  const fallThrough = (address: string, full: string): string => {
    const candidates: Candidate[] = backends.map((backend) => ({
      backend,
      activeConnections: backend.key === full ? 1 : 0,
      maxConnections: 1,
    }));
    const balancer = createBalancer("maglev", { maglevTableSize: 251, maglevSeed: 3 });
    return candidates[balancer.pick(candidates, { address, port: 1 })]!.backend.key;
  };
  let checked = 0;
  for (let host = 1; host <= 40; host++) {
    const client = { address: `198.51.100.${host}`, port: 40000 };
    const pools = twoWorkerPools("maglev", backends, 1);
    try {
      let stolen = "";
      pools.beforeNextCount(() => stolen = keyOf(pools.other.acquire(client, NONE)));
      const got = keyOf(pools.mine.acquire(client, NONE));
      assert.notEqual(stolen, "");
      assert.notEqual(got, stolen);
      assert.equal(got, fallThrough(client.address, stolen), `client ${client.address}`);
      const next = backends[(backends.findIndex((b) => b.key === stolen) + 1) % 5]!.key;
      if (got !== next) checked++;
    } finally {
      pools.close();
    }
  }
  assert.ok(checked > 0, "some clients fall through to another backend than the key-order next");
});

Deno.test("Pool over SharedCounts: a lost race is refused as full only when every backend is", () => {
  const [a, b] = backendsNamed("a", "b");
  const client = { address: "203.0.113.7", port: 40000 };
  for (const kind of ["round_robin", "least_connections", "random_two", "maglev"] as const) {
    const pools = twoWorkerPools(kind, [a!, b!], 1);
    const held: Lease[] = [];
    try {
      // Worker 1 holds one backend; worker 0 goes for the other, and loses it too.
      held.push(pools.other.acquire(client, NONE) as Lease);
      pools.beforeNextCount(() => held.push(pools.other.acquire(client, NONE) as Lease));
      assert.equal(pools.mine.acquire(client, NONE), "full", kind);
      assert.deepEqual(held.map(keyOf).sort(), [a!.key, b!.key], kind);
      assert.equal(pools.counts.ofWorker(0, 0) + pools.counts.ofWorker(1, 0), 0, kind);
      held.pop()!.release();
      assert.equal(typeof pools.mine.acquire(client, NONE), "object", `${kind}: a place again`);
    } finally {
      for (const lease of held) lease.release();
      pools.close();
    }
  }
});
