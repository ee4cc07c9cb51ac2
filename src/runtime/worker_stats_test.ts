import assert from "node:assert/strict";
import type { PoolBackendSnapshot } from "../pool/mod.ts";
import { createListenerStats } from "../proxy/mod.ts";
import {
  addListenerStats,
  listenerStatsData,
  mergeBackendRows,
  sumListenerStats,
} from "./worker_stats.ts";

Deno.test("sumListenerStats adds counters, causes and histogram buckets after a clone", () => {
  const one = createListenerStats();
  one.accepted = 3;
  one.activeConnections = 2;
  one.refusedByCause.limit = 1;
  one.connectionDuration.observe(0.002);
  one.connectDuration.observe(0.0001);
  const two = createListenerStats();
  two.accepted = 4;
  two.activeConnections = 1;
  two.refusedByCause.limit = 2;
  two.refusedByCause.untrusted = 5;
  two.connectionDuration.observe(20);
  const retired = createListenerStats();
  addListenerStats(retired, structuredClone(listenerStatsData(two)), false);
  assert.equal(retired.activeConnections, 0, "a dead worker's open connections are not kept");

  const sum = sumListenerStats([
    [structuredClone(listenerStatsData(one)), true],
    [structuredClone(listenerStatsData(two)), true],
    [retired, false],
  ]);
  assert.equal(sum.accepted, 11);
  assert.equal(sum.activeConnections, 3);
  assert.deepEqual(sum.refusedByCause, {
    limit: 5,
    no_backend: 0,
    proxy_header: 0,
    untrusted: 10,
    acl: 0,
    source_limit: 0,
    tls_peek_timeout: 0,
    tls_hello_too_large: 0,
    tls_no_route: 0,
    tls_bad_hello: 0,
  });
  assert.equal(sum.connectionDuration.count, 3);
  assert.equal(sum.connectionDuration.counts[0], 1);
  assert.equal(
    sum.connectionDuration.counts[sum.connectionDuration.bounds.indexOf(30)],
    2,
    "20 s falls in (10, 30]",
  );
  assert.equal(sum.connectDuration.count, 1);
  assert.equal(typeof sum.connectDuration.observe, "function", "a real Histogram");
});

function row(key: string, overrides: Partial<PoolBackendSnapshot> = {}): PoolBackendSnapshot {
  return {
    key,
    host: "127.0.0.1",
    port: 80,
    weight: 1,
    health: "healthy",
    activeConnections: 1,
    isDraining: false,
    maxConnections: 0,
    counters: { connections: 2, connectFailures: 1, bytesToBackend: 10, bytesFromBackend: 20 },
    ...overrides,
  };
}

Deno.test("mergeBackendRows sums per-backend totals and keeps the newest health detail", () => {
  const rows = mergeBackendRows(
    [
      row("b:80", { healthDetail: { cause: "active", sinceMs: 1 } }),
      row("a:80", { isDraining: true }),
      row("b:80", { healthDetail: { cause: "passive", error: "refused", sinceMs: 2 } }),
      row("a:80", { isDraining: false }),
    ],
    new Map([["b:80", {
      connections: 5,
      connectFailures: 0,
      bytesToBackend: 0,
      bytesFromBackend: 1,
    }]]),
  );
  assert.deepEqual(rows.map((r) => r.key), ["a:80", "b:80"]);
  assert.equal(rows[0]!.isDraining, false, "draining only when draining in every worker");
  assert.equal(rows[0]!.activeConnections, 2);
  assert.deepEqual(rows[1]!.counters, {
    connections: 9,
    connectFailures: 2,
    bytesToBackend: 20,
    bytesFromBackend: 41,
  });
  assert.deepEqual(rows[1]!.healthDetail, { cause: "passive", error: "refused", sinceMs: 2 });
});
