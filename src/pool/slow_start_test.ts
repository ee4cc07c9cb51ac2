import assert from "node:assert/strict";
import { createBalancer } from "../balancer/mod.ts";
import type { Backend, BalancerKind, Lease } from "../core/types.ts";
import { Pool, SLOW_START_MIN_FRACTION } from "./pool.ts";

const NONE: ReadonlySet<string> = new Set();

function backend(name: string, weight = 10): Backend {
  return { key: `${name}:80`, host: name, port: 80, weight };
}

function weights(pool: Pool): Record<string, number> {
  return Object.fromEntries(pool.snapshot().backends.map((b) => [b.host, b.weight]));
}

/** Picks `n` times from distinct clients, releasing each lease; counts per backend host. */
function share(pool: Pool, n: number): Record<string, number> {
  const counts: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const lease = pool.acquire({ address: `198.51.100.${i % 250}`, port: 1000 + i }, NONE);
    assert.notEqual(typeof lease, "string");
    const host = (lease as Lease).backend.host;
    counts[host] = (counts[host] ?? 0) + 1;
    (lease as Lease).release();
  }
  return counts;
}

Deno.test("slow start ramps a joining backend's weight linearly; the first members start full", () => {
  let now = 0;
  const pool = new Pool({
    name: "web",
    balancer: createBalancer("round_robin"),
    slowStartMs: 10_000,
    now: () => now,
  });
  pool.update([backend("a"), backend("b")]);
  assert.deepEqual(weights(pool), { a: 10, b: 10 });
  pool.update([backend("a"), backend("b"), backend("c")]);
  assert.deepEqual(weights(pool), { a: 10, b: 10, c: 10 * SLOW_START_MIN_FRACTION });
  now = 2_500;
  assert.deepEqual(weights(pool), { a: 10, b: 10, c: 2.5 });
  // round_robin at a quarter of the weight: c takes about 2.5 / 22.5 of new connections.
  const early = share(pool, 900);
  assert.ok(Math.abs(early.c! - 100) <= 5, `c took ${early.c}`);
  now = 10_000;
  assert.deepEqual(weights(pool), { a: 10, b: 10, c: 10 });
  const later = share(pool, 900);
  assert.deepEqual(later, { a: 300, b: 300, c: 300 });
  pool.close();
});

Deno.test("slow start after a backend turns healthy again, and never with maglev", () => {
  let now = 0;
  const make = (kind: BalancerKind) =>
    new Pool({ name: kind, balancer: createBalancer(kind), slowStartMs: 1_000, now: () => now });
  const pool = make("least_connections");
  pool.update([backend("a"), backend("b")]);
  pool.setHealth("b:80", "unhealthy");
  now = 100;
  pool.setHealth("b:80", "healthy");
  assert.equal(weights(pool).b, 10 * SLOW_START_MIN_FRACTION);
  now = 600;
  assert.equal(weights(pool).b, 5);
  // Another verdict of the same kind does not restart the ramp.
  pool.setHealth("b:80", "healthy");
  now = 1_100;
  assert.equal(weights(pool).b, 10);
  pool.close();

  const maglev = make("maglev");
  maglev.update([backend("a")]);
  maglev.update([backend("a"), backend("b")]);
  assert.deepEqual(weights(maglev), { a: 10, b: 10 });
  maglev.close();
});

Deno.test("slow start set on a running pool by configure applies to the next joins", () => {
  let now = 0;
  const balancer = createBalancer("random_two");
  const pool = new Pool({ name: "web", balancer, now: () => now });
  pool.update([backend("a")]);
  pool.update([backend("a"), backend("b")]);
  assert.equal(weights(pool).b, 10, "off by default");
  pool.configure({ balancer, slowStartMs: 2_000 });
  pool.update([backend("a"), backend("b"), backend("c")]);
  now = 1_000;
  assert.deepEqual(weights(pool), { a: 10, b: 10, c: 5 });
  pool.close();
});
