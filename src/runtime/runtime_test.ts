import assert from "node:assert/strict";
import type { PoolPlan } from "../core/plan.ts";
import type { HealthCheckSpec, HealthTarget } from "../health/mod.ts";
import { resetLogging, setupLogging } from "../log/mod.ts";
import { Runtime, type RuntimeListener, type RuntimeOptions } from "./runtime.ts";
import { reusePortSupported } from "./reuse_port.ts";
import {
  CHECK,
  closedPort,
  listenerSpec,
  nameVia,
  planOf,
  startNamed,
  waitFor,
} from "./_test_backend.ts";

function listener(name: string): RuntimeListener {
  return { ...listenerSpec(name), healthCheck: CHECK };
}

/** Health targets of every planned backend with one check spec. */
function targetsWith(check: HealthCheckSpec) {
  return (plans: readonly PoolPlan[]): HealthTarget[] =>
    plans.flatMap((plan) =>
      plan.backends.map((b) => ({
        key: b.address,
        pool: plan.name,
        host: b.host,
        port: b.port,
        check,
      }))
    );
}

function options(overrides: Partial<RuntimeOptions> = {}): RuntimeOptions {
  return {
    listeners: [listener("web")],
    healthTargets: targetsWith(CHECK),
    discovery: () => ({ source: "static", state: "synced" }),
    ...overrides,
  };
}

function healthOf(runtime: Runtime, key: string): string | undefined {
  return runtime.snapshot().pools[0]!.backends.find((b) => b.key === key)?.health;
}

Deno.test("Runtime.snapshot shows left-out candidates, warnings and origins of the latest plan", async () => {
  const a = startNamed("a");
  try {
    const base = planOf("web", [a.port]);
    const plan = {
      ...base,
      backends: base.backends.map((b) => ({ ...b, service: "shop/web", node: "n1" })),
      excluded: [{ address: "10.0.0.9:30080", node: "n9", reason: "node-not-ready" as const }],
      warnings: ["Services shop/web and shop/api merged"],
    };
    const runtime = await Runtime.start(options(), [plan]);
    try {
      const pool = runtime.snapshot().pools[0]!;
      assert.deepEqual(pool.excluded, plan.excluded);
      assert.deepEqual(pool.warnings, plan.warnings);
      assert.equal(pool.backends[0]!.service, "shop/web");
      assert.equal(pool.backends[0]!.node, "n1");
      runtime.apply([planOf("web", [a.port])]);
      const after = runtime.snapshot().pools[0]!;
      assert.deepEqual([after.excluded, after.warnings], [[], []]);
      assert.equal(after.backends[0]!.service, undefined);
    } finally {
      await runtime.stop(0);
    }
  } finally {
    await a.close();
  }
});

Deno.test("Runtime.snapshot shows each listener's source ACL and per-source limit as they run now", async () => {
  const a = startNamed("a");
  const guarded = {
    ...listener("guarded"),
    access: { allow: ["10.0.0.0/8", "127.0.0.1/32"], deny: ["10.0.3.7/32"] },
    maxConnectionsPerSource: 5,
  };
  const runtime = await Runtime.start(
    options({ listeners: [guarded, listener("open")] }),
    [planOf("guarded", [a.port]), planOf("open", [a.port])],
  );
  try {
    const admission = () =>
      runtime.snapshot().listeners.map((l) => [l.name, l.access, l.maxConnectionsPerSource]);
    assert.deepEqual(admission(), [
      ["guarded", guarded.access, 5],
      ["open", { allow: [], deny: [] }, 0],
    ]);
    await runtime.reconfigure({
      add: [],
      remove: [],
      rebind: [],
      update: [{
        ...guarded,
        access: { allow: [], deny: ["192.0.2.0/24"] },
        maxConnectionsPerSource: 0,
      }],
    }, [planOf("guarded", [a.port]), planOf("open", [a.port])]);
    assert.deepEqual(admission(), [
      ["guarded", { allow: [], deny: ["192.0.2.0/24"] }, 0],
      ["open", { allow: [], deny: [] }, 0],
    ]);
  } finally {
    await runtime.stop(0);
    await a.close();
  }
});

Deno.test("Runtime forwards to the planned backends, applies new plans, and stops", async () => {
  const a = startNamed("a");
  const b = startNamed("b");
  try {
    const runtime = await Runtime.start(options(), [planOf("web", [a.port, b.port])]);
    const address = runtime.addresses.get("web")!;
    try {
      // The first check round ran before accepting: both are healthy, not unknown.
      assert.deepEqual(
        runtime.snapshot().pools[0]!.backends.map((r) => r.health),
        ["healthy", "healthy"],
      );
      const names: string[] = [];
      for (let i = 0; i < 4; i++) names.push(await nameVia(address));
      assert.deepEqual(names.toSorted(), ["a", "a", "b", "b"]);

      runtime.apply([planOf("web", [b.port]), planOf("unknown-listener", [a.port])]);
      const after: string[] = [];
      for (let i = 0; i < 3; i++) after.push(await nameVia(address));
      assert.deepEqual(after, ["b", "b", "b"]);
      const snapshot = runtime.snapshot();
      assert.deepEqual(snapshot.pools.map((p) => p.name), ["web"]);
      assert.deepEqual(snapshot.pools[0]!.backends.map((r) => r.key), [b.key]);
      assert.equal(snapshot.listeners[0]!.stats.accepted, 7);
      assert.equal(snapshot.ready, true);
      assert.ok(snapshot.healthTransitions! >= 2, "two first checks reported");
    } finally {
      const { forced } = await runtime.stop();
      assert.equal(forced, 0);
    }
    assert.equal(runtime.snapshot().ready, false);
    assert.deepEqual(runtime.snapshot().pools, [], "stopped: no listener left");
    await assert.rejects(nameVia(address), Deno.errors.ConnectionRefused);
    runtime.apply([planOf("web", [a.port])]); // ignored after stop
    assert.deepEqual(await runtime.stop(), { forced: 0 }, "stop is idempotent");
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
});

Deno.test("Runtime with checks off ejects a refused backend passively and re-admits it after the cooldown", async () => {
  const live = [startNamed("a"), startNamed("c")];
  const dead = closedPort();
  const off = { ...CHECK, enabled: false, maxEjectionPercent: 50 };
  try {
    const runtime = await Runtime.start(
      options({ healthTargets: targetsWith(off), passiveCooldownMs: 300 }),
      [planOf("web", [live[0]!.port, dead, live[1]!.port])],
    );
    try {
      const address = runtime.addresses.get("web")!;
      const deadKey = `127.0.0.1:${dead}`;
      const names: string[] = [];
      for (let i = 0; i < 12; i++) names.push(await nameVia(address));
      assert.ok(names.every((n) => n === "a" || n === "c"), names.join(" "));
      assert.equal(runtime.snapshot().listeners[0]!.stats.connectFailures, 1, "met once");
      assert.equal(healthOf(runtime, deadKey), "unhealthy");
      // After the ejection the two live backends alternate evenly.
      const after: string[] = [];
      for (let i = 0; i < 10; i++) after.push(await nameVia(address));
      assert.deepEqual(
        ["a", "c"].map((n) => after.filter((x) => x === n).length),
        [5, 5],
        after.join(" "),
      );
      await waitFor(() => healthOf(runtime, deadKey) === "unknown", 5_000, "re-admission");
    } finally {
      await runtime.stop();
    }
  } finally {
    await Promise.all(live.map((b) => b.close()));
  }
});

Deno.test("Runtime serves /readyz on its admin server until beginShutdown", async () => {
  const a = startNamed("a");
  try {
    const runtime = await Runtime.start(
      options({ admin: { hostname: "127.0.0.1", port: 0, address: "127.0.0.1:0" } }),
      [planOf("web", [a.port])],
    );
    try {
      const url = `http://127.0.0.1:${runtime.adminAddr!.port}/readyz`;
      const ready = await fetch(url);
      await ready.body?.cancel();
      assert.equal(ready.status, 200);
      runtime.beginShutdown();
      const stopping = await fetch(url);
      await stopping.body?.cancel();
      assert.equal(stopping.status, 503);
      assert.equal(await nameVia(runtime.addresses.get("web")!), "a", "still accepting");
    } finally {
      await runtime.stop();
    }
  } finally {
    await a.close();
  }
});

Deno.test("Runtime.start fails on a taken port and leaves nothing running", async () => {
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const listeners = [
      listener("first"),
      { ...listener("second"), port: taken.addr.port },
    ];
    await assert.rejects(
      Runtime.start(options({ listeners }), []),
      (error: Error) => {
        assert.match(error.message, /^Cannot start listeners: /);
        assert.ok(error.cause instanceof Deno.errors.AddrInUse);
        return true;
      },
    );
  } finally {
    taken.close();
  }
});

Deno.test("Runtime: an outage shows in /pools with cause and time, and both ends log at warning", async () => {
  const lines: string[] = [];
  await setupLogging({ level: "warning", format: "json", write: (line) => lines.push(line) });
  const a = startNamed("a");
  let isUp = true;
  const fast: HealthCheckSpec = { ...CHECK, intervalMs: 20, rise: 1, fall: 1 };
  try {
    const runtime = await Runtime.start(
      options({
        listeners: [{ ...listener("web"), healthCheck: fast }],
        healthTargets: targetsWith(fast),
        probe: () =>
          Promise.resolve(
            isUp
              ? { ok: true, latencyMs: 1 }
              : { ok: false, latencyMs: 1, error: "connection refused" },
          ),
      }),
      [planOf("web", [a.port])],
    );
    try {
      const before = Date.now();
      isUp = false;
      await waitFor(() => healthOf(runtime, a.key) === "unhealthy", 5_000, "backend to fail");
      const row = runtime.snapshot().pools[0]!.backends[0]!;
      assert.equal(row.healthDetail?.cause, "active");
      assert.equal(row.healthDetail?.error, "connection refused");
      assert.ok(row.healthDetail!.sinceMs >= before && row.healthDetail!.sinceMs <= Date.now());
      isUp = true;
      await waitFor(() => healthOf(runtime, a.key) === "healthy", 5_000, "backend to recover");
      const messages = lines.map((l) => JSON.parse(l)).filter((r) =>
        r.logger === "nautiluslb.health"
      );
      assert.deepEqual(messages.map((r) => r.level), ["WARN", "WARN"]);
      assert.match(messages[0].message, /is unhealthy/);
      assert.equal(messages[0].properties.error, "connection refused");
      assert.match(messages[1].message, /is "?healthy"? again/);
      assert.equal(messages[1].properties.to, "healthy");
    } finally {
      await runtime.stop(0);
    }
  } finally {
    await a.close();
    await resetLogging();
  }
});

Deno.test("Runtime.reconfigure adds, updates and removes listeners; others keep running", async () => {
  const a = startNamed("a");
  const b = startNamed("b");
  const c = startNamed("c");
  const runtime = await Runtime.start(
    options({ listeners: [listener("keep"), listener("tune"), listener("drop")] }),
    [planOf("keep", [a.port]), planOf("tune", [b.port]), planOf("drop", [c.port])],
  );
  try {
    const before = runtime.addresses;
    await runtime.reconfigure({
      add: [listener("new")],
      remove: ["drop", "unknown"],
      rebind: [],
      update: [{ ...listener("tune"), balancer: "maglev", maglevTableSize: 251 }],
    }, [planOf("keep", [a.port]), planOf("tune", [b.port]), planOf("new", [c.port])]);
    const after = runtime.addresses;
    assert.deepEqual([...after.keys()].sort(), ["keep", "new", "tune"]);
    assert.equal(after.get("keep"), before.get("keep"));
    assert.equal(after.get("tune"), before.get("tune"));
    assert.equal(await nameVia(after.get("keep")!), "a");
    assert.equal(await nameVia(after.get("tune")!), "b");
    assert.equal(await nameVia(after.get("new")!), "c");
    await assert.rejects(nameVia(before.get("drop")!), Deno.errors.ConnectionRefused);
    const tune = runtime.snapshot().pools.find((p) => p.name === "tune");
    assert.equal(typeof tune?.fingerprint, "string", "the new balancer (maglev) runs");
    // The kept listener kept its health verdict from the first round.
    assert.equal(healthOf(runtime, a.key), "healthy");
  } finally {
    await runtime.stop(0);
    await Promise.all([a.close(), b.close(), c.close()]);
  }
});

Deno.test("Runtime.reconfigure refuses the whole change when a listener cannot bind", async () => {
  const a = startNamed("a");
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const runtime = await Runtime.start(options(), [planOf("web", [a.port])]);
  try {
    const before = runtime.addresses;
    const free = closedPort();
    await assert.rejects(
      runtime.reconfigure({
        add: [listener("fine"), { ...listener("clash"), port: taken.addr.port }],
        remove: ["web"],
        rebind: [],
        update: [],
      }, [planOf("fine", [a.port])]),
      (error: Error) => {
        assert.match(error.message, /^Cannot bind 1 listener\(s\): clash on 127\.0\.0\.1:\d+: /);
        return true;
      },
    );
    assert.deepEqual([...runtime.addresses], [...before], "nothing changed");
    assert.equal(await nameVia(before.get("web")!), "a");
    // A rebind to a taken address is refused the same way, before the old socket closes.
    await assert.rejects(
      runtime.reconfigure({
        add: [],
        remove: [],
        rebind: [{ ...listener("web"), port: taken.addr.port }],
        update: [],
      }, [planOf("web", [a.port])]),
      /Cannot bind 1 listener/,
    );
    assert.equal(await nameVia(before.get("web")!), "a");
    // A free address moves the listener.
    await runtime.reconfigure({
      add: [],
      remove: [],
      rebind: [{ ...listener("web"), port: free }],
      update: [],
    }, [planOf("web", [a.port])]);
    assert.equal(runtime.addresses.get("web"), `127.0.0.1:${free}`);
    assert.equal(await nameVia(`127.0.0.1:${free}`), "a");
    await assert.rejects(nameVia(before.get("web")!), Deno.errors.ConnectionRefused);
  } finally {
    await runtime.stop(0);
    taken.close();
    await a.close();
  }
});

Deno.test({
  name: "Runtime with reusePort binds next to another process's socket, after its check round",
  ignore: !reusePortSupported(),
  fn: async () => {
    const a = startNamed("a");
    const dead = closedPort();
    const first = await Runtime.start(
      options({ reusePort: true }),
      [planOf("web", [a.port, dead])],
    );
    const port = Number(first.addresses.get("web")!.split(":")[1]);
    let second: Runtime | undefined;
    try {
      // The first round's verdicts reached the pool though it was created after the round,
      // with why and since when, and the check that decided them.
      assert.equal(healthOf(first, a.key), "healthy");
      assert.equal(healthOf(first, `127.0.0.1:${dead}`), "unhealthy");
      const row = first.snapshot().pools[0]!.backends.find((b) => b.key === `127.0.0.1:${dead}`)!;
      assert.equal(row.healthDetail?.cause, "active");
      assert.match(row.healthDetail?.error ?? "", /refused/i);
      assert.ok(Math.abs(row.healthDetail!.sinceMs - Date.now()) < 10_000);
      assert.deepEqual(row.check, CHECK);
      second = await Runtime.start(
        options({ reusePort: true, listeners: [{ ...listener("web"), port }] }),
        [planOf("web", [a.port])],
      );
      assert.equal(second.addresses.get("web"), `127.0.0.1:${port}`, "same port, both bound");
      await first.stop(0);
      // The old one is gone; the new one takes every connection.
      for (let i = 0; i < 3; i++) assert.equal(await nameVia(`127.0.0.1:${port}`), "a");
    } finally {
      await first.stop(0);
      await second?.stop(0);
      await a.close();
    }
  },
});
