import assert from "node:assert/strict";
import type { Backend, Balancer, Candidate, Lease, NoBackendReason } from "../core/types.ts";
import { Pool, type PoolOptions } from "./pool.ts";

const CLIENT = { address: "203.0.113.7", port: 40000 };
const NO_TRAFFIC = { connections: 0, connectFailures: 0, bytesToBackend: 0, bytesFromBackend: 0 };
const NONE: ReadonlySet<string> = new Set();

function backend(name: string, weight = 1): Backend {
  return { key: `${name}:80`, host: name, port: 80, weight };
}

const a = backend("a");
const b = backend("b");
const c = backend("c");

/** Always picks the first candidate, and remembers what it was shown. */
class FirstBalancer implements Balancer {
  readonly kind = "round_robin" as const;
  seen: (readonly Candidate[])[] = [];
  pick(candidates: readonly Candidate[]): number {
    this.seen.push(candidates);
    return candidates.length === 0 ? -1 : 0;
  }
}

function makePool(options: Partial<PoolOptions> = {}): Pool {
  return new Pool({ name: "web", balancer: new FirstBalancer(), ...options });
}

function lease(result: Lease | NoBackendReason): Lease {
  assert.notEqual(typeof result, "string", `expected a lease, got ${String(result)}`);
  return result as Lease;
}

function row(pool: Pool, key: string) {
  return pool.snapshot().backends.find((r) => r.key === key);
}

/**
 * Connection counts shared by every pool given `counterOf`, as workers share them: one cell
 * per backend key, in `shared`; a limit of 0 is none.
 */
function sharedCounts() {
  const shared = new Map<string, { value: number }>();
  const counterOf = (key: string) => {
    const cell = shared.get(key) ?? { value: 0 };
    shared.set(key, cell);
    return {
      get value() {
        return cell.value;
      },
      tryAcquire: (limit: number) =>
        limit > 0 && cell.value >= limit ? false : (cell.value++, true),
      release: () => void cell.value--,
    };
  };
  return { shared, counterOf };
}

function keysOf(pool: Pool): string[] {
  return pool.snapshot().backends.map((r) => r.key);
}

/** Resolves when `signal` aborts; rejects after `ms`. */
function aborted(signal: AbortSignal, ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`Signal not aborted within ${ms}ms`)), ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    }, { once: true });
  });
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

Deno.test("Pool.acquire() returns 'empty' for a pool without members", () => {
  const pool = makePool();
  assert.equal(pool.acquire(CLIENT, NONE), "empty");
  pool.update([]);
  assert.equal(pool.acquire(CLIENT, NONE), "empty");
  assert.equal(pool.size, 0);
});

Deno.test("Pool.update() keeps health and connections of unchanged backends", () => {
  const pool = makePool();
  pool.update([a, b]);
  pool.setHealth(a.key, "healthy");
  pool.setHealth(b.key, "unhealthy");
  const held = lease(pool.acquire(CLIENT, NONE));
  assert.equal(held.backend.key, a.key);

  pool.update([{ ...a, weight: 5 }, b, c]);

  assert.deepEqual(pool.snapshot(), {
    name: "web",
    backends: [
      {
        key: "a:80",
        host: "a",
        port: 80,
        weight: 5,
        health: "healthy",
        activeConnections: 1,
        isDraining: false,
        maxConnections: 0,
        counters: NO_TRAFFIC,
      },
      {
        key: "b:80",
        host: "b",
        port: 80,
        weight: 1,
        health: "unhealthy",
        activeConnections: 0,
        isDraining: false,
        maxConnections: 0,
        counters: NO_TRAFFIC,
      },
      {
        key: "c:80",
        host: "c",
        port: 80,
        weight: 1,
        health: "unknown",
        activeConnections: 0,
        isDraining: false,
        maxConnections: 0,
        counters: NO_TRAFFIC,
      },
    ],
  });
  assert.equal(held.signal.aborted, false);
  held.release();
  pool.close();
});

Deno.test("Pool.update() forgets a removed idle backend at once", () => {
  const pool = makePool();
  pool.update([a, b]);
  const held = lease(pool.acquire(CLIENT, NONE));
  held.release();
  pool.update([b]);
  assert.deepEqual(keysOf(pool), ["b:80"]);
  assert.equal(pool.health(a.key), undefined);
  assert.equal(pool.size, 1);
  pool.close();
});

Deno.test("Pool drains a removed backend, aborts its leases after drainTimeoutMs, forgets it on last release", async () => {
  const pool = makePool({ drainTimeoutMs: 40 });
  pool.update([a, b]);
  const first = lease(pool.acquire(CLIENT, NONE));
  const second = lease(pool.acquire(CLIENT, NONE));
  assert.equal(first.backend.key, a.key);
  assert.equal(second.backend.key, a.key);

  const removedAt = performance.now();
  pool.update([b]);
  assert.deepEqual(row(pool, a.key), {
    key: "a:80",
    host: "a",
    port: 80,
    weight: 1,
    health: "unknown",
    activeConnections: 2,
    isDraining: true,
    maxConnections: 0,
    counters: NO_TRAFFIC,
  });
  assert.equal(pool.size, 1);
  assert.equal(first.signal.aborted, false);
  for (let i = 0; i < 5; i++) {
    const other = lease(pool.acquire(CLIENT, NONE));
    assert.equal(other.backend.key, b.key, "a draining backend takes no new connections");
    other.release();
  }

  await aborted(first.signal, 2_000);
  assert.ok(performance.now() - removedAt >= 35, "aborted before drainTimeoutMs");
  assert.equal(second.signal.aborted, true);
  assert.match(String((first.signal.reason as Error).message), /a:80 left pool web/);

  first.release();
  assert.equal(row(pool, a.key)?.activeConnections, 1, "still draining with one lease");
  second.release();
  assert.deepEqual(keysOf(pool), ["b:80"]);
  pool.close();
});

Deno.test("Pool forgets a draining backend when its last lease ends before the deadline", async () => {
  // The sanitizer fails this test if the drain timer is left running.
  const pool = makePool({ drainTimeoutMs: 10_000 });
  pool.update([a]);
  const held = lease(pool.acquire(CLIENT, NONE));
  pool.update([]);
  assert.equal(row(pool, a.key)?.isDraining, true);
  assert.equal(pool.acquire(CLIENT, NONE), "empty", "only draining backends left");
  held.release();
  assert.deepEqual(keysOf(pool), []);
  await delay(1);
  assert.equal(held.signal.aborted, false);
  pool.close();
});

Deno.test("Pool takes back a backend re-added while draining: connections kept, health anew", async () => {
  const pool = makePool({ drainTimeoutMs: 30 });
  pool.update([a, b]);
  pool.setHealth(a.key, "healthy");
  const held = lease(pool.acquire(CLIENT, NONE));
  pool.update([b]);
  assert.equal(row(pool, a.key)?.isDraining, true);

  pool.update([a, b]);
  assert.deepEqual(row(pool, a.key), {
    key: "a:80",
    host: "a",
    port: 80,
    weight: 1,
    health: "unknown",
    activeConnections: 1,
    isDraining: false,
    maxConnections: 0,
    counters: NO_TRAFFIC,
  });
  await delay(60);
  assert.equal(held.signal.aborted, false, "the drain timer was cancelled");
  const again = lease(pool.acquire(CLIENT, NONE));
  assert.equal(again.backend.key, a.key);
  assert.equal(row(pool, a.key)?.activeConnections, 2);
  held.release();
  again.release();
  assert.equal(row(pool, a.key)?.activeConnections, 0, "a member stays when idle");
  pool.close();
});

Deno.test("Pool gives live leases to a backend re-added after its drain ran out", async () => {
  const pool = makePool({ drainTimeoutMs: 10 });
  pool.update([a]);
  const old = lease(pool.acquire(CLIENT, NONE));
  pool.update([]);
  await aborted(old.signal, 2_000);
  // The old connection is still closing (lease not released yet) when `a` comes back.
  pool.update([a]);
  const fresh = lease(pool.acquire(CLIENT, NONE));
  assert.equal(fresh.backend.key, a.key);
  assert.equal(fresh.signal.aborted, false, "a new connection must not start out aborted");
  old.release();
  fresh.release();
  pool.close();
});

Deno.test("Pool with onRemoval 'close' aborts leases of a removed backend at once", () => {
  const pool = makePool({ onRemoval: "close", drainTimeoutMs: 10_000 });
  pool.update([a, b]);
  const held = lease(pool.acquire(CLIENT, NONE));
  pool.update([b]);
  assert.equal(held.signal.aborted, true);
  assert.equal(row(pool, a.key)?.isDraining, true, "kept until the connection lets go");
  held.release();
  assert.deepEqual(keysOf(pool), ["b:80"]);

  pool.update([a, b]);
  const fresh = lease(pool.acquire(CLIENT, NONE));
  assert.equal(fresh.backend.key, a.key);
  assert.equal(fresh.signal.aborted, false);
  fresh.release();
  pool.close();
});

Deno.test("Pool with onRemoval 'close' re-adding a backend with a closing connection gives live leases", () => {
  const pool = makePool({ onRemoval: "close" });
  pool.update([a]);
  const old = lease(pool.acquire(CLIENT, NONE));
  pool.update([]);
  assert.equal(old.signal.aborted, true);
  pool.update([a]);
  const fresh = lease(pool.acquire(CLIENT, NONE));
  assert.equal(fresh.signal.aborted, false);
  assert.equal(row(pool, a.key)?.activeConnections, 2);
  old.release();
  fresh.release();
  assert.equal(row(pool, a.key)?.activeConnections, 0);
  pool.close();
});

Deno.test("Pool gives unhealthy backends no new connections", () => {
  const pool = makePool();
  pool.update([a, b]);
  pool.setHealth(a.key, "unhealthy");
  assert.equal(pool.health(a.key), "unhealthy");
  for (let i = 0; i < 3; i++) {
    const l = lease(pool.acquire(CLIENT, NONE));
    assert.equal(l.backend.key, b.key);
    l.release();
  }
  pool.setHealth(a.key, "healthy");
  const l = lease(pool.acquire(CLIENT, NONE));
  assert.equal(l.backend.key, a.key);
  l.release();
  pool.setHealth("zz:80", "unhealthy"); // unknown keys are ignored
  assert.equal(pool.health("zz:80"), undefined);
  pool.close();
});

Deno.test("Pool with whenAllUnhealthy 'reject' returns 'all_unhealthy'", () => {
  const pool = makePool({ whenAllUnhealthy: "reject" });
  pool.update([a, b]);
  pool.setHealth(a.key, "unhealthy");
  pool.setHealth(b.key, "unhealthy");
  assert.equal(pool.acquire(CLIENT, NONE), "all_unhealthy");
  assert.equal(pool.isFailOpen, false);
  pool.setHealth(b.key, "healthy");
  const l = lease(pool.acquire(CLIENT, NONE));
  assert.equal(l.backend.key, b.key);
  l.release();
  pool.close();
});

Deno.test("Pool with whenAllUnhealthy 'any' fails open to every member", () => {
  const balancer = new FirstBalancer();
  const pool = makePool({ whenAllUnhealthy: "any", balancer });
  pool.update([b, a]);
  pool.setHealth(a.key, "unhealthy");
  pool.setHealth(b.key, "unhealthy");
  assert.equal(pool.isFailOpen, true);
  const l = lease(pool.acquire(CLIENT, NONE));
  assert.equal(l.backend.key, a.key);
  assert.deepEqual(balancer.seen.at(-1)!.map((x) => x.backend.key), ["a:80", "b:80"]);
  l.release();
  pool.setHealth(a.key, "healthy");
  assert.equal(pool.isFailOpen, false);
  assert.deepEqual(
    lease(pool.acquire(CLIENT, NONE)).backend.key,
    a.key,
  );
  pool.close();
});

Deno.test("Pool.acquire() walks from the balancer's choice to the next untried backend", () => {
  const pool = makePool();
  pool.update([a, b, c, backend("d", 0)]);
  const cases: [string[], string | NoBackendReason][] = [
    [[], "a:80"],
    [["a:80"], "b:80"],
    [["a:80", "b:80"], "c:80"],
    [["b:80"], "a:80"],
    [["a:80", "c:80"], "b:80"],
    [["a:80", "b:80", "c:80"], "exhausted"], // d has weight 0 and is never tried
    [["a:80", "b:80", "c:80", "d:80"], "exhausted"],
  ];
  for (const [tried, expected] of cases) {
    const result = pool.acquire(CLIENT, new Set(tried));
    const got = typeof result === "string" ? result : result.backend.key;
    assert.equal(got, expected, `tried ${JSON.stringify(tried)}`);
    if (typeof result !== "string") result.release();
  }
  assert.deepEqual(pool.snapshot().backends.map((r) => r.activeConnections), [0, 0, 0, 0]);
  pool.close();
});

Deno.test("Pool.acquire() with `after` retries without asking the balancer again", () => {
  let picks = 0;
  let turn = 0;
  const rotate: Balancer = {
    kind: "round_robin",
    pick: (candidates) => {
      picks++;
      return candidates.length === 0 ? -1 : turn++ % candidates.length;
    },
  };
  const pool = makePool({ balancer: rotate });
  pool.update([a, b, c, backend("d", 0)]);
  const cases: [string[], string, string | NoBackendReason][] = [
    [["a:80"], "a:80", "b:80"],
    [["b:80"], "b:80", "c:80"],
    [["c:80"], "c:80", "a:80"], // wraps; d has weight 0
    [["b:80", "c:80"], "c:80", "a:80"],
    [["a:80", "b:80", "c:80"], "c:80", "exhausted"],
    [["x:80"], "x:80", "a:80"], // a key no longer in the pool: the next one after it
  ];
  for (const [tried, after, expected] of cases) {
    const result = pool.acquire(CLIENT, new Set(tried), after);
    const got = typeof result === "string" ? result : result.backend.key;
    assert.equal(got, expected, `tried ${JSON.stringify(tried)} after ${after}`);
    if (typeof result !== "string") result.release();
  }
  assert.equal(picks, 0, "no retry asked the balancer");

  // One failed attempt per client on a dead `b` leaves the rotation of a and c even.
  pool.update([a, b, c]);
  const dead = "b:80";
  const first: string[] = [];
  const served: string[] = [];
  for (let client = 0; client < 30; client++) {
    let l = lease(pool.acquire(CLIENT, NONE));
    first.push(l.backend.key);
    if (l.backend.key === dead) {
      l.release();
      l = lease(pool.acquire(CLIENT, new Set([dead]), dead));
    }
    served.push(l.backend.key);
    l.release();
  }
  assert.equal(picks, 30, "one pick per client");
  assert.ok(!served.includes(dead), served.join(" "));
  assert.deepEqual(
    ["a:80", "b:80", "c:80"].map((k) => first.filter((x) => x === k).length),
    [10, 10, 10],
  );
  pool.close();
});

Deno.test("Pool counts active connections per backend, and release is idempotent", () => {
  let turn = 0;
  const rotate: Balancer = {
    kind: "round_robin",
    pick: (candidates) => candidates.length === 0 ? -1 : turn++ % candidates.length,
  };
  const pool = makePool({ balancer: rotate });
  pool.update([a, b]);
  const leases = [0, 1, 2].map(() => lease(pool.acquire(CLIENT, NONE)));
  assert.deepEqual(leases.map((l) => l.backend.key), ["a:80", "b:80", "a:80"]);
  assert.deepEqual(pool.snapshot().backends.map((r) => r.activeConnections), [2, 1]);

  leases[0]!.release();
  leases[0]!.release();
  leases[0]!.release();
  assert.deepEqual(pool.snapshot().backends.map((r) => r.activeConnections), [1, 1]);
  leases[1]!.release();
  leases[2]!.release();
  leases[2]!.release();
  assert.deepEqual(pool.snapshot().backends.map((r) => r.activeConnections), [0, 0]);
  pool.close();
});

Deno.test("Pool shows live connection counts to the balancer", () => {
  const counts: number[][] = [];
  const spy: Balancer = {
    kind: "least_connections",
    pick: (candidates) => {
      counts.push(candidates.map((x) => x.activeConnections));
      return 0;
    },
  };
  const pool = makePool({ balancer: spy });
  pool.update([a, b]);
  const first = lease(pool.acquire(CLIENT, NONE));
  const second = lease(pool.acquire(CLIENT, NONE));
  second.release();
  lease(pool.acquire(CLIENT, NONE)).release();
  first.release();
  assert.deepEqual(counts, [[0, 0], [1, 0], [1, 0]]);
  pool.close();
});

Deno.test("Lease.reportConnect() reaches onConnectResult with the backend key", () => {
  const results: [string, boolean, unknown][] = [];
  const pool = makePool({ onConnectResult: (key, ok, error) => results.push([key, ok, error]) });
  pool.update([a]);
  const l = lease(pool.acquire(CLIENT, NONE));
  const refused = new Deno.errors.ConnectionRefused("refused");
  l.reportConnect(false, refused);
  l.reportConnect(true);
  l.release();
  assert.deepEqual(results, [["a:80", false, refused], ["a:80", true, undefined]]);
  pool.close();
});

Deno.test("Pool.close() aborts every lease and stops drain timers", () => {
  const pool = makePool({ drainTimeoutMs: 60_000 });
  pool.update([a, b]);
  const onA = lease(pool.acquire(CLIENT, NONE));
  pool.update([b]);
  const onB = lease(pool.acquire(CLIENT, NONE));
  pool.close();
  assert.equal(onA.signal.aborted, true);
  assert.equal(onB.signal.aborted, true);
  assert.deepEqual(keysOf(pool), []);
  onA.release();
  onB.release();
});

Deno.test("Pool with counterOf: balancers see the shared count, snapshot and drain its own", () => {
  const { shared, counterOf } = sharedCounts();
  const least = {
    kind: "least_connections" as const,
    pick: (cs: readonly Candidate[]) =>
      cs.reduce((best, c, i) => (c.activeConnections < cs[best]!.activeConnections ? i : best), 0),
  };
  const one = new Pool({ name: "web", balancer: least, counterOf });
  const two = new Pool({ name: "web", balancer: least, counterOf });
  one.update([a, b]);
  two.update([a, b]);
  const first = lease(one.acquire(CLIENT, NONE));
  assert.equal(first.backend.key, a.key);
  const second = lease(two.acquire(CLIENT, NONE));
  assert.equal(second.backend.key, b.key, "the other pool's lease on a counts");
  assert.equal(row(one, a.key)?.activeConnections, 1);
  assert.equal(row(two, a.key)?.activeConnections, 0, "snapshot shows this pool's leases");
  one.update([b]);
  assert.equal(row(one, a.key)?.isDraining, true);
  first.release();
  first.release();
  assert.equal(shared.get(a.key)?.value, 0, "released once into the counter");
  assert.equal(row(one, a.key), undefined, "drained by its own count");
  second.release();
  assert.equal(shared.get(b.key)?.value, 0);
  one.close();
  two.close();
});

Deno.test("Pool skips backends at maxConnectionsPerBackend and answers 'full' when all are", () => {
  const pool = new Pool({
    name: "web",
    balancer: new FirstBalancer(),
    maxConnectionsPerBackend: 2,
  });
  pool.update([a, b, { ...c, maxConnections: 1 }]);
  // FirstBalancer ignores limits; the pool walks on past a full pick.
  const keys: string[] = [];
  for (let n = 0; n < 5; n++) keys.push(lease(pool.acquire(CLIENT, NONE)).backend.key);
  assert.deepEqual(keys, ["a:80", "a:80", "b:80", "b:80", "c:80"]);
  assert.deepEqual(pool.snapshot().backends.map((r) => r.maxConnections), [2, 2, 1]);
  assert.equal(pool.acquire(CLIENT, NONE), "full");
  // A retry walk meets only full backends: also `full`, not `exhausted`.
  assert.equal(pool.acquire(CLIENT, new Set(["a:80"]), "a:80"), "full");
});

Deno.test("Pool keeps health detail for snapshot() and clears it when a backend returns", () => {
  const pool = makePool();
  pool.update([a]);
  const held = lease(pool.acquire(CLIENT, NONE));
  pool.setHealth(a.key, "unhealthy", { cause: "active", error: "connection refused", sinceMs: 5 });
  assert.deepEqual(row(pool, a.key)?.healthDetail, {
    cause: "active",
    error: "connection refused",
    sinceMs: 5,
  });
  pool.update([]);
  pool.update([a]);
  assert.equal(row(pool, a.key)?.healthDetail, undefined);
  held.release();
});

Deno.test("Pool with counterOf: maxConnectionsPerBackend holds over every pool sharing the count", () => {
  const { shared, counterOf } = sharedCounts();
  const one = new Pool({
    name: "web",
    balancer: new FirstBalancer(),
    counterOf,
    maxConnectionsPerBackend: 1,
  });
  const two = new Pool({
    name: "web",
    balancer: new FirstBalancer(),
    counterOf,
    maxConnectionsPerBackend: 1,
  });
  one.update([a, b]);
  two.update([a, b]);
  const first = lease(one.acquire(CLIENT, NONE));
  const second = lease(two.acquire(CLIENT, NONE));
  assert.deepEqual([first.backend.key, second.backend.key], ["a:80", "b:80"]);
  assert.equal(one.acquire(CLIENT, NONE), "full", "the other pool's leases count");
  first.release();
  assert.equal(lease(one.acquire(CLIENT, NONE)).backend.key, "a:80");
  assert.deepEqual([...shared.values()].map((c) => c.value), [1, 1]);
  one.close();
  two.close();
});
