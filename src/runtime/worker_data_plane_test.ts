import assert from "node:assert/strict";
import type { HealthCheckSpec } from "../health/mod.ts";
import { Runtime, type RuntimeListener, type RuntimeOptions } from "./runtime.ts";
import { WorkerDataPlane } from "./worker_data_plane.ts";
import { CRASH_WORKER_MODULE, crashWorker } from "./_test_crash_worker.ts";
import {
  CHECK,
  closedPort,
  type HeldClient,
  holdVia,
  listenerSpec,
  nameVia,
  planOf,
  startEchoNamed,
  startNamed,
  targets,
  waitFor,
} from "./_test_backend.ts";

function options(
  listener: Partial<RuntimeListener>,
  overrides: Partial<RuntimeOptions> = {},
): RuntimeOptions {
  return {
    listeners: [{ ...listenerSpec("web"), healthCheck: CHECK, ...listener }],
    healthTargets: targets,
    discovery: () => ({ source: "static", state: "synced" }),
    workers: 2,
    workerStatsIntervalMs: 50,
    ...overrides,
  };
}

function fingerprints(runtime: Runtime): (string | undefined)[] {
  return runtime.workers().map((w) => w.pools.find((p) => p.name === "web")?.fingerprint);
}

Deno.test("workers: connections spread over workers, Maglev tables agree in every worker", async () => {
  const backends = ["a", "b", "c"].map(startNamed);
  const runtime = await Runtime.start(
    options({ balancer: "maglev", maglevTableSize: 65537, maglevSeed: 7 }),
    [planOf("web", backends.map((b) => b.port))],
  );
  try {
    const address = runtime.addresses.get("web")!;
    const names = new Set<string>();
    const count = 40;
    for (let i = 0; i < count; i++) names.add(await nameVia(address));
    assert.equal(names.size, 1, `one client address, one backend in every worker: ${[...names]}`);
    await waitFor(
      () => runtime.workers().reduce((n, w) => n + w.accepted, 0) === count,
      3_000,
      "per-worker accepted counts add up",
    );
    const accepted = runtime.workers().map((w) => w.accepted);
    assert.ok(accepted.every((n) => n > 0), `both workers accepted: ${accepted}`);
    assert.equal(runtime.snapshot().listeners[0]!.stats.accepted, count);
    // Histograms and per-backend totals are summed over workers.
    await waitFor(
      () => runtime.snapshot().listeners[0]!.stats.connectionDuration?.count === count,
      3_000,
      "one connection duration per closed connection, over both workers",
    );
    const merged = runtime.snapshot().listeners[0]!.stats;
    assert.equal(merged.connectDuration?.count, count, "one connect duration per connect");
    assert.equal([...merged.connectionDuration?.counts ?? []].reduce((a, b) => a + b, 0), count);
    const connections = runtime.snapshot().pools[0]!.backends.reduce(
      (n, b) => n + (b.counters?.connections ?? 0),
      0,
    );
    assert.equal(connections, count, "per-backend totals add up over workers");

    const before = runtime.snapshot().pools[0]!.fingerprint;
    assert.ok(before !== undefined);
    await waitFor(() => fingerprints(runtime).every((f) => f === before), 3_000, "fingerprints");

    runtime.apply([planOf("web", backends.slice(0, 2).map((b) => b.port))]);
    const started = performance.now();
    await waitFor(
      () => {
        const f = fingerprints(runtime);
        return f[0] !== before && f.every((x) => x === f[0]) &&
          runtime.snapshot().pools[0]!.backends.filter((b) => !b.isDraining).length === 2;
      },
      3_000,
      "every worker has the new pool",
    );
    const tookMs = performance.now() - started;
    assert.ok(tookMs < 3_000, `took ${tookMs}ms`);
    const after = new Set<string>();
    for (let i = 0; i < 10; i++) after.add(await nameVia(address));
    assert.equal(after.size, 1);
  } finally {
    await runtime.stop();
    await Promise.all(backends.map((b) => b.close()));
  }
});

Deno.test("workers: maxConnections and least_connections count the whole process", async () => {
  const backends = ["a", "b"].map(startEchoNamed);
  const runtime = await Runtime.start(
    options({ balancer: "least_connections", maxConnections: 6 }),
    [planOf("web", backends.map((b) => b.port))],
  );
  const held: HeldClient[] = [];
  try {
    const address = runtime.addresses.get("web")!;
    // One after another: each pick sees the counts of every earlier connection, whichever
    // worker took it, so two backends get exactly half each.
    for (let i = 0; i < 6; i++) held.push(await holdVia(address));
    const served = held.map((c) => c.name);
    assert.equal(served.filter((n) => n === "a").length, 3, `picks: ${served}`);
    assert.equal(served.filter((n) => n === "b").length, 3, `picks: ${served}`);
    const extra: HeldClient[] = [];
    for (let i = 0; i < 6; i++) extra.push(await holdVia(address, 1, 500));
    held.push(...extra);
    assert.deepEqual(extra.map((c) => c.name), ["", "", "", "", "", ""], "over the limit");
    await waitFor(
      () => runtime.snapshot().listeners[0]!.stats.refused === 6,
      3_000,
      "refusals reported",
    );
    assert.equal(runtime.snapshot().listeners[0]!.stats.activeConnections, 6);
    assert.equal(runtime.snapshot().listeners[0]!.stats.refusedByCause?.limit, 6, "by cause");
    // Pool rows come from the workers' reports (at most a stats interval old).
    const rows = () => runtime.snapshot().pools[0]!.backends.map((b) => b.activeConnections);
    await waitFor(() => rows().join() === "3,3", 3_000, `3 connections per backend: ${rows()}`);
  } finally {
    for (const c of held) c.conn.close();
    await runtime.stop();
    await Promise.all(backends.map((b) => b.close()));
  }
});

Deno.test("workers: a crashed worker loses its own connections only and is replaced", async () => {
  const backend = startEchoNamed("a");
  const runtime = await Runtime.start(
    options({}, { workerModule: CRASH_WORKER_MODULE }),
    [planOf("web", [backend.port])],
  );
  const held: HeldClient[] = [];
  try {
    const address = runtime.addresses.get("web")!;
    for (let i = 0; i < 24; i++) held.push(await holdVia(address));
    assert.ok(held.every((c) => c.name === "a"));
    await waitFor(
      () => runtime.workers().reduce((n, w) => n + w.activeConnections, 0) === 24,
      3_000,
      "active connections reported",
    );
    const perWorker = runtime.workers().map((w) => w.activeConnections);
    assert.ok(perWorker.every((n) => n > 0), `spread: ${perWorker}`);

    crashWorker(0);
    await waitFor(() => runtime.workers()[0]!.restarts === 1, 5_000, "worker 0 replaced");
    const alive = await Promise.all(held.map((c) => c.isAlive()));
    assert.equal(alive.filter((x) => !x).length, perWorker[0], "worker 0's connections lost");
    assert.equal(alive.filter((x) => x).length, perWorker[1], "worker 1's connections kept");
    assert.equal(
      runtime.snapshot().listeners[0]!.stats.activeConnections,
      perWorker[1],
      "the dead worker's counts are released",
    );
    // The replacement serves again: new connections reach both workers.
    await waitFor(() => runtime.workers()[0]!.pools.length === 1, 5_000, "replacement reports");
    const before = runtime.workers()[0]!.accepted;
    for (let i = 0; i < 40 && runtime.workers()[0]!.accepted === before; i++) {
      const c = await holdVia(address);
      assert.equal(c.name, "a");
      c.conn.close();
      await new Promise((r) => setTimeout(r, 60));
    }
    assert.ok(runtime.workers()[0]!.accepted > before, "the replacement accepts");
  } finally {
    for (const c of held) c.conn.close();
    await runtime.stop();
    await backend.close();
  }
});

Deno.test("workers: a passive ejection decided by the control plane reaches every worker", async () => {
  const live = startNamed("live");
  const dead = closedPort();
  const passive: HealthCheckSpec = { ...CHECK, enabled: false, fall: 2 };
  const runtime = await Runtime.start(
    options({ healthCheck: passive }, {
      healthTargets: (plans) => targets(plans).map((t) => ({ ...t, check: passive })),
    }),
    [planOf("web", [live.port, dead])],
  );
  try {
    const address = runtime.addresses.get("web")!;
    const deadKey = `127.0.0.1:${dead}`;
    const health = () =>
      runtime.snapshot().pools[0]!.backends.find((b) => b.key === deadKey)?.health;
    for (let i = 0; i < 20 && health() !== "unhealthy"; i++) {
      assert.equal(await nameVia(address), "live", "a failed dial moves on to the live backend");
    }
    await waitFor(() => health() === "unhealthy", 3_000, "the dead backend ejected");
    const detail = () =>
      runtime.snapshot().pools[0]!.backends.find((b) => b.key === deadKey)?.healthDetail;
    await waitFor(() => detail() !== undefined, 3_000, "health detail reported by workers");
    assert.equal(detail()!.cause, "passive");
    const stats = () => runtime.snapshot().listeners[0]!.stats;
    await waitFor(
      () => stats().accepted === runtime.workers().reduce((n, w) => n + w.accepted, 0),
      3_000,
      "reports",
    );
    await new Promise((r) => setTimeout(r, 200));
    const failures = stats().connectFailures;
    const accepted = runtime.workers().map((w) => w.accepted);
    for (let i = 0; i < 30; i++) assert.equal(await nameVia(address), "live");
    await waitFor(
      () =>
        runtime.workers().reduce((n, w) => n + w.accepted, 0) === accepted[0]! + accepted[1]! + 30,
      3_000,
      "reports after",
    );
    const after = runtime.workers().map((w) => w.accepted);
    assert.ok(
      after.every((n, i) => n > accepted[i]!),
      `both workers served: ${accepted} -> ${after}`,
    );
    assert.equal(stats().connectFailures, failures, "no worker dials the ejected backend");
  } finally {
    await runtime.stop();
    await live.close();
  }
});

Deno.test("workers: equal-weight round_robin rotates once over the whole process", async () => {
  const backends = ["a", "b", "c"].map(startNamed);
  const runtime = await Runtime.start(options({ balancer: "round_robin" }), [
    planOf("web", backends.map((b) => b.port)),
  ]);
  try {
    const address = runtime.addresses.get("web")!;
    const names: string[] = [];
    for (let i = 0; i < 30; i++) names.push(await nameVia(address));
    for (const name of ["a", "b", "c"]) {
      assert.equal(names.filter((n) => n === name).length, 10, `picks: ${names}`);
    }
    await waitFor(
      () => runtime.workers().every((w) => w.accepted > 0),
      3_000,
      "both workers took connections",
    );
  } finally {
    await runtime.stop();
    await Promise.all(backends.map((b) => b.close()));
  }
});

Deno.test("workers: reconfigure adds a listener in every worker and updates settings in each", async () => {
  const backend = startEchoNamed("a");
  const other = startNamed("b");
  const runtime = await Runtime.start(options({}), [planOf("web", [backend.port])]);
  const held: HeldClient[] = [];
  try {
    const address = runtime.addresses.get("web")!;
    const web = { ...listenerSpec("web"), healthCheck: CHECK, idleTimeoutMs: 300 };
    const api = { ...listenerSpec("api"), healthCheck: CHECK };
    await runtime.reconfigure(
      { add: [api], remove: [], rebind: [], update: [web] },
      [planOf("web", [backend.port]), planOf("api", [other.port])],
    );
    const apiAddress = runtime.addresses.get("api")!;
    const acceptedBefore = runtime.workers().map((w) => w.accepted);
    for (let i = 0; i < 20; i++) assert.equal(await nameVia(apiAddress), "b");
    await waitFor(
      () => runtime.workers().every((w) => w.pools.some((p) => p.name === "api")),
      3_000,
      "every worker runs the new listener",
    );
    // New connections in every worker get the new idle timeout.
    for (let i = 0; i < 16; i++) held.push(await holdVia(address));
    assert.ok(held.every((c) => c.name === "a"));
    await waitFor(
      () => runtime.snapshot().listeners.find((l) => l.name === "web")!.stats.idleTimeouts === 16,
      5_000,
      "every held connection closed by the idle timeout",
    );
    const alive = await Promise.all(held.map((c) => c.isAlive(500)));
    assert.deepEqual(alive.filter((x) => x), [], "none left open");
    await waitFor(
      () => runtime.workers().reduce((n, w) => n + w.accepted, 0) >= 36,
      3_000,
      "reports",
    );
    const acceptedAfter = runtime.workers().map((w) => w.accepted);
    assert.ok(
      acceptedAfter.every((n, i) => n > acceptedBefore[i]!),
      `both workers took connections after the reload: ${acceptedBefore} -> ${acceptedAfter}`,
    );

    // A second reload: the API listener goes, web moves to another port; neither waits for
    // the other's drain in the workers.
    const free = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const moved = { ...web, port: free.addr.port };
    free.close();
    const started = performance.now();
    await runtime.reconfigure(
      { add: [], remove: ["api"], rebind: [moved], update: [] },
      [planOf("web", [backend.port])],
    );
    const tookMs = performance.now() - started;
    const movedAddress = runtime.addresses.get("web")!;
    assert.equal(movedAddress, `127.0.0.1:${moved.port}`);
    for (let i = 0; i < 10; i++) {
      const c = await holdVia(movedAddress);
      assert.equal(c.name, "a");
      c.conn.close();
    }
    assert.equal(runtime.addresses.has("api"), false);
    await waitFor(
      () => runtime.workers().every((w) => !w.pools.some((p) => p.name === "api")),
      3_000,
      "every worker dropped the removed listener",
    );
    console.log(`rebind and remove in two workers took ${tookMs.toFixed(0)}ms`);
  } finally {
    for (const c of held) c.conn.close();
    await runtime.stop();
    await backend.close();
    await other.close();
  }
});

Deno.test("workers: PROXY protocol accepted from trusted peers, untrusted ones refused and counted", async () => {
  const backend = startNamed("a");
  const runtime = await Runtime.start(
    options({}, {
      listeners: [
        {
          ...listenerSpec("web"),
          healthCheck: CHECK,
          acceptProxyProtocol: true,
          trustedProxies: ["127.0.0.1/32"],
          maxConnections: 4,
        },
        {
          ...listenerSpec("strict"),
          healthCheck: CHECK,
          acceptProxyProtocol: true,
          trustedProxies: ["10.0.0.0/8"],
          maxConnections: 4,
        },
      ],
    }),
    [planOf("web", [backend.port]), planOf("strict", [backend.port])],
  );
  try {
    const viaHeader = async (address: string): Promise<string> => {
      const [hostname, port] = address.split(":");
      const conn = await Deno.connect({ hostname, port: Number(port) });
      try {
        await conn.write(new TextEncoder().encode("PROXY TCP4 198.51.100.7 127.0.0.1 5555 80\r\n"));
        const buffer = new Uint8Array(1);
        const n = await conn.read(buffer).catch(() => null);
        return n === null ? "" : new TextDecoder().decode(buffer.subarray(0, n));
      } finally {
        conn.close();
      }
    };
    for (let i = 0; i < 12; i++) {
      assert.equal(await viaHeader(runtime.addresses.get("web")!), "a", "trusted peer forwarded");
      assert.equal(await viaHeader(runtime.addresses.get("strict")!), "", "untrusted refused");
    }
    const strict = () => runtime.snapshot().listeners.find((l) => l.name === "strict")!.stats;
    await waitFor(() => strict().refusedByCause?.untrusted === 12, 3_000, "refusals by cause");
    assert.equal(strict().activeConnections, 0, "a refused peer gives its place back");
  } finally {
    await runtime.stop();
    await backend.close();
  }
});

Deno.test("WorkerDataPlane.remove() drains for drainMs when given, else for drainTimeoutMs", async () => {
  const backend = startEchoNamed("a");
  const plane = new WorkerDataPlane({ workers: 2, statsIntervalMs: 50 });
  const held: HeldClient[] = [];
  try {
    const member = { key: backend.key, host: "127.0.0.1", port: backend.port, weight: 1 };
    const addressOf = (addr: Deno.NetAddr) => `${addr.hostname}:${addr.port}`;
    const web = addressOf(await plane.add(listenerSpec("web", { drainTimeoutMs: 60_000 })));
    const api = addressOf(await plane.add(listenerSpec("api", { drainTimeoutMs: 400 })));
    plane.setBackends("web", [member]);
    plane.setBackends("api", [member]);
    plane.start();
    for (let i = 0; i < 8; i++) held.push(await holdVia(web));
    const onApi = await holdVia(api);
    held.push(onApi);
    assert.ok(held.every((c) => c.name === "a"), `names: ${held.map((c) => c.name)}`);

    // An explicit drain time wins over the listener's minute.
    let started = performance.now();
    const forced = await plane.remove("web", 100);
    let tookMs = performance.now() - started;
    const alive = await Promise.all(held.slice(0, 8).map((c) => c.isAlive(500)));
    assert.equal(alive.filter((x) => x).length, 0, "none of the removed listener's left open");
    assert.equal(forced, 8, "every open connection closed at the 100ms deadline");
    assert.ok(tookMs >= 90 && tookMs < 3_000, `drained for ${tookMs.toFixed(0)}ms`);
    assert.ok(await onApi.isAlive(), "the other listener's connection is untouched");
    assert.deepEqual(plane.names, ["api"]);

    // Without one, the listener's own drainTimeoutMs.
    started = performance.now();
    assert.equal(await plane.remove("api"), 1);
    tookMs = performance.now() - started;
    assert.ok(tookMs >= 390 && tookMs < 3_000, `drained for ${tookMs.toFixed(0)}ms`);
    assert.equal(await onApi.isAlive(500), false);
    assert.equal(await plane.remove("api", 0), 0, "an unknown name");
  } finally {
    for (const c of held) c.conn.close();
    await plane.stop(0);
    await backend.close();
  }
});
