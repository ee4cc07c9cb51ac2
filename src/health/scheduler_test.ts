import assert from "node:assert/strict";
import type { ProbeResult } from "./probe.ts";
import { HealthScheduler, type HealthStatus, type HealthTransition } from "./scheduler.ts";
import type { HealthCheckSpec, HealthTarget, ProbeFunction } from "./target.ts";
import { checkAll } from "./check_all.ts";
import { acceptAndClose, closedPort, silent, startServer, waitFor } from "./_test_server.ts";

const CHECK: HealthCheckSpec = {
  enabled: true,
  intervalMs: 60_000,
  timeoutMs: 1000,
  rise: 2,
  fall: 3,
  maxEjectionPercent: 50,
};

function target(port: number, check: Partial<HealthCheckSpec> = {}, pool = "web"): HealthTarget {
  return {
    key: `127.0.0.1:${port}`,
    pool,
    host: "127.0.0.1",
    port,
    check: { ...CHECK, ...check },
  };
}

/** A probe whose verdict per key the test sets; logs every call. */
function fakeProbe(initial: boolean) {
  const verdicts = new Map<string, boolean>();
  const calls: string[] = [];
  const probe: ProbeFunction = (t) => {
    calls.push(t.key);
    const ok = verdicts.get(t.key) ?? initial;
    return Promise.resolve(ok ? { ok, latencyMs: 1 } : { ok, latencyMs: 1, error: "nope" });
  };
  return { probe, verdicts, calls };
}

function status(scheduler: HealthScheduler, key: string): HealthStatus {
  const found = scheduler.snapshot().find((s) => s.key === key);
  assert.ok(found, `no status for ${key}`);
  return found;
}

Deno.test("HealthScheduler: a backend that stops listening goes down after fall, back after rise", async () => {
  let server = startServer(acceptAndClose);
  const port = server.port;
  const seen: { transition: HealthTransition; status: HealthStatus }[] = [];
  const scheduler = new HealthScheduler({
    onTransition: (transition) =>
      seen.push({ transition, status: status(scheduler, transition.key) }),
  });
  try {
    scheduler.update([target(port, { intervalMs: 50, timeoutMs: 500, rise: 2, fall: 3 })]);
    await waitFor(() => seen.length >= 1, 5000, "first check");
    assert.deepEqual(seen[0]!.transition.to, "healthy");
    assert.equal(seen[0]!.status.checks, 1, "healthy on the first success");

    await server.close();
    await waitFor(() => seen.length >= 2, 5000, "unhealthy");
    const down = seen[1]!;
    assert.deepEqual(
      { ...down.transition, at: 0 },
      {
        pool: "web",
        key: `127.0.0.1:${port}`,
        from: "healthy",
        to: "unhealthy",
        cause: "active",
        error: "connection refused",
        at: 0,
      },
    );
    assert.equal(down.status.consecutiveFailures, 3, "exactly fall failures");

    server = startServer(acceptAndClose, port);
    await waitFor(() => seen.length >= 3, 5000, "healthy again");
    assert.equal(seen[2]!.transition.from, "unhealthy");
    assert.equal(seen[2]!.transition.to, "healthy");
    assert.equal(seen[2]!.transition.error, undefined);
    assert.equal(seen[2]!.status.consecutiveSuccesses, 2, "exactly rise successes");
  } finally {
    await scheduler.close();
    await server.close();
  }
});

Deno.test("HealthScheduler: runOnce gives every target a verdict over real sockets", async () => {
  const up = startServer(acceptAndClose);
  const down = closedPort();
  const transitions: HealthTransition[] = [];
  const scheduler = new HealthScheduler({ onTransition: (t) => transitions.push(t) });
  try {
    scheduler.update([target(up.port), target(down)]);
    await scheduler.runOnce();
    assert.equal(scheduler.state("web", `127.0.0.1:${up.port}`), "healthy");
    assert.equal(scheduler.state("web", `127.0.0.1:${down}`), "unhealthy");
    assert.equal(transitions.length, 2);
    assert.equal(status(scheduler, `127.0.0.1:${down}`).lastError, "connection refused");
    assert.equal(scheduler.state("web", "127.0.0.1:1"), undefined);
    assert.equal(scheduler.state("other", `127.0.0.1:${up.port}`), undefined);
  } finally {
    await scheduler.close();
    await up.close();
  }
});

Deno.test("HealthScheduler: passive failures eject after fall, within maxEjectionPercent", async () => {
  const { probe, verdicts } = fakeProbe(true);
  const transitions: HealthTransition[] = [];
  const scheduler = new HealthScheduler({ onTransition: (t) => transitions.push(t), probe });
  try {
    const targets = [1001, 1002, 1003, 1004].map((p) => target(p, { fall: 3 }));
    scheduler.update(targets);
    await scheduler.runOnce();
    assert.deepEqual(scheduler.snapshot().map((s) => s.state), Array(4).fill("healthy"));
    transitions.length = 0;

    const [a, b, c] = targets.map((t) => t.key);
    assert.equal(scheduler.reportPassive("web", a!, false, "connection refused"), undefined);
    assert.equal(scheduler.reportPassive("web", a!, false), undefined);
    const out = scheduler.reportPassive("web", a!, false, "connection reset");
    assert.deepEqual(transitions, [out]);
    assert.deepEqual({ ...out, at: 0 }, {
      pool: "web",
      key: a,
      from: "healthy",
      to: "unhealthy",
      cause: "passive",
      error: "connection reset",
      at: 0,
    });

    // A success in between resets the count.
    scheduler.reportPassive("web", b!, false);
    scheduler.reportPassive("web", b!, false);
    scheduler.reportPassive("web", b!, true);
    scheduler.reportPassive("web", b!, false);
    scheduler.reportPassive("web", b!, false);
    assert.equal(scheduler.state("web", b!), "healthy");
    scheduler.reportPassive("web", b!, false);
    assert.equal(scheduler.state("web", b!), "unhealthy", "2 of 4 = 50% may be out");

    for (let i = 0; i < 10; i++) scheduler.reportPassive("web", c!, false);
    assert.equal(scheduler.state("web", c!), "healthy", "3 of 4 would exceed 50%");
    assert.equal(transitions.length, 2);

    scheduler.reportPassive("web", "127.0.0.1:9", false);
    assert.equal(scheduler.state("web", "127.0.0.1:9"), undefined, "unknown keys are ignored");

    // Active checks are not limited by maxEjectionPercent.
    for (const t of targets) verdicts.set(t.key, false);
    for (let round = 0; round < 3; round++) await scheduler.runOnce();
    assert.deepEqual(scheduler.snapshot().map((s) => s.state), Array(4).fill("unhealthy"));
  } finally {
    await scheduler.close();
  }
});

Deno.test("HealthScheduler: passive ejection never empties a one-backend pool; 100% may", async () => {
  const { probe } = fakeProbe(true);
  const scheduler = new HealthScheduler({ onTransition: () => {}, probe });
  try {
    const solo = target(2001, { fall: 1 }, "solo");
    const all = target(2002, { fall: 1, maxEjectionPercent: 100 }, "all");
    scheduler.update([solo, all]);
    await scheduler.runOnce();
    scheduler.reportPassive("solo", solo.key, false);
    scheduler.reportPassive("all", all.key, false);
    assert.equal(scheduler.state("solo", solo.key), "healthy");
    assert.equal(scheduler.state("all", all.key), "unhealthy");
  } finally {
    await scheduler.close();
  }
});

Deno.test("HealthScheduler: a passive failure ends unknown at once; a passive success does not end it", async () => {
  const never: ProbeFunction = (_t, signal) =>
    new Promise<ProbeResult>((resolve) =>
      signal.addEventListener("abort", () => resolve({ ok: false, latencyMs: 0, error: "x" }))
    );
  const transitions: HealthTransition[] = [];
  const scheduler = new HealthScheduler({ onTransition: (t) => transitions.push(t), probe: never });
  try {
    const targets = [3001, 3002, 3003].map((p) => target(p));
    scheduler.update(targets);
    scheduler.reportPassive("web", targets[0]!.key, true);
    assert.equal(scheduler.state("web", targets[0]!.key), "unknown");
    scheduler.reportPassive("web", targets[0]!.key, false, "connection refused");
    assert.equal(scheduler.state("web", targets[0]!.key), "unhealthy");
    assert.equal(transitions[0]?.from, "unknown");
    scheduler.reportPassive("web", targets[1]!.key, false);
    assert.equal(scheduler.state("web", targets[1]!.key), "unknown", "2 of 3 exceeds 50%");
  } finally {
    await scheduler.close();
  }
});

Deno.test("HealthScheduler: update keeps state of unchanged targets and checks new ones at once", async () => {
  const { probe, verdicts, calls } = fakeProbe(true);
  const transitions: HealthTransition[] = [];
  const scheduler = new HealthScheduler({ onTransition: (t) => transitions.push(t), probe });
  try {
    const [a, b, c] = [4001, 4002, 4003].map((p) => target(p));
    verdicts.set(b!.key, false);
    scheduler.update([a!, b!]);
    await scheduler.runOnce();
    assert.deepEqual(calls.toSorted(), [a!.key, b!.key]);
    assert.equal(scheduler.state("web", b!.key), "unhealthy");

    // b stays (with new settings), a goes, c is new.
    scheduler.update([{ ...b!, check: { ...b!.check, rise: 1 } }, c!]);
    assert.equal(scheduler.state("web", a!.key), undefined);
    assert.equal(scheduler.state("web", b!.key), "unhealthy", "state kept");
    assert.equal(status(scheduler, b!.key).failedChecks, 1, "counters kept");
    await waitFor(() => calls.length === 3, 2000, "immediate check of the new target");
    assert.equal(calls[2], c!.key);
    await waitFor(() => scheduler.state("web", c!.key) === "healthy", 2000, "c healthy");

    // runOnce checks everything again; b's new rise of 1 applies.
    verdicts.set(b!.key, true);
    await scheduler.runOnce();
    assert.equal(scheduler.state("web", b!.key), "healthy");
    assert.equal(calls.filter((k) => k === a!.key).length, 1, "removed targets are not probed");

    // The same key in another pool is another target.
    scheduler.update([b!, { ...b!, pool: "other" }]);
    assert.equal(scheduler.state("web", b!.key), "healthy");
    assert.equal(scheduler.state("other", b!.key), "unknown");
    await scheduler.runOnce();
    assert.equal(scheduler.state("other", b!.key), "healthy");
  } finally {
    await scheduler.close();
  }
});

Deno.test("HealthScheduler: removing a target aborts its probe and drops the late result", async () => {
  const server = startServer(silent);
  const transitions: HealthTransition[] = [];
  const scheduler = new HealthScheduler({ onTransition: (t) => transitions.push(t) });
  try {
    const t = target(server.port, { timeoutMs: 10_000, expect: "never" });
    scheduler.update([t]);
    await new Promise((resolve) => setTimeout(resolve, 30));
    scheduler.update([]);
    assert.equal(scheduler.state("web", t.key), undefined);
    const started = performance.now();
    await scheduler.close();
    assert.ok(performance.now() - started < 5000, "close does not wait for the timeout");
    assert.deepEqual(transitions, []);
  } finally {
    await scheduler.close();
    await server.close();
  }
});

Deno.test("HealthScheduler: jittered intervals from the injected random, and no timer after close", async () => {
  const delays: number[] = [];
  const timers = new Map<number, () => void>();
  let nextId = 1;
  const randoms = [0, 0.5, 0.999];
  const { probe, calls } = fakeProbe(true);
  const scheduler = new HealthScheduler({
    onTransition: () => {},
    probe,
    random: () => randoms.shift() ?? 0.5,
    setTimer: (callback, delayMs) => {
      delays.push(delayMs);
      timers.set(nextId, callback);
      return nextId++;
    },
    clearTimer: (id) => timers.delete(id as number),
  });
  const fire = async () => {
    const [id, callback] = [...timers][0]!;
    timers.delete(id);
    callback();
    await scheduler.runOnce(); // waits for the check the timer started
  };
  try {
    scheduler.update([target(5001, { intervalMs: 1000 })]);
    await scheduler.runOnce();
    assert.equal(calls.length, 1, "runOnce awaited the check update() started");
    await fire();
    await fire();
    assert.equal(calls.length, 3);
    assert.deepEqual(delays, [900, 1000, 1100]);
    assert.equal(timers.size, 1);
  } finally {
    await scheduler.close();
  }
  assert.equal(timers.size, 0, "close cleared the pending timer");
});

Deno.test("HealthScheduler: a new interval replaces the pending timer at once", async () => {
  const delays: number[] = [];
  const timers = new Map<number, () => void>();
  let nextId = 1;
  const { probe } = fakeProbe(true);
  const scheduler = new HealthScheduler({
    onTransition: () => {},
    probe,
    random: () => 0.5,
    setTimer: (callback, delayMs) => {
      delays.push(delayMs);
      timers.set(nextId, callback);
      return nextId++;
    },
    clearTimer: (id) => timers.delete(id as number),
  });
  try {
    scheduler.update([target(5001, { intervalMs: 3_600_000 })]);
    await scheduler.runOnce();
    assert.deepEqual(delays, [3_600_000]);
    scheduler.update([target(5001, { intervalMs: 5000 })]);
    assert.deepEqual(delays, [3_600_000, 5000]);
    assert.equal(timers.size, 1, "the hour-long timer is gone");
  } finally {
    await scheduler.close();
  }
});

Deno.test("HealthScheduler: runOnce bounds probes in flight", async () => {
  let inFlight = 0;
  let maxInFlight = 0;
  const probe: ProbeFunction = async () => {
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    await new Promise((resolve) => setTimeout(resolve, 5));
    inFlight--;
    return { ok: true, latencyMs: 5 };
  };
  const scheduler = new HealthScheduler({ onTransition: () => {}, probe, maxConcurrentProbes: 3 });
  try {
    scheduler.update(Array.from({ length: 20 }, (_, i) => target(6000 + i)));
    await scheduler.runOnce();
    assert.equal(maxInFlight, 3);
    assert.ok(scheduler.snapshot().every((s) => s.state === "healthy" && s.checks === 1));
  } finally {
    await scheduler.close();
  }
});

Deno.test("HealthScheduler: disabled checks never probe, ignore passive reports, reset to unknown", async () => {
  const { probe, calls } = fakeProbe(false);
  const transitions: HealthTransition[] = [];
  const scheduler = new HealthScheduler({ onTransition: (t) => transitions.push(t), probe });
  try {
    const on = target(7001, { fall: 1, maxEjectionPercent: 100 });
    const off = { ...on, check: { ...on.check, enabled: false } };
    scheduler.update([off]);
    await scheduler.runOnce();
    scheduler.reportPassive("web", off.key, false);
    assert.deepEqual(calls, []);
    assert.equal(scheduler.state("web", off.key), "unknown");

    scheduler.update([on]);
    await scheduler.runOnce();
    assert.equal(scheduler.state("web", on.key), "unhealthy");
    scheduler.update([off]);
    assert.equal(scheduler.state("web", on.key), "unknown");
    assert.deepEqual(transitions.map((t) => `${t.from}>${t.to}:${t.cause}`), [
      "unknown>unhealthy:active",
      "unhealthy>unknown:config",
    ]);
  } finally {
    await scheduler.close();
  }
});

Deno.test("HealthScheduler: with checks off and passiveCooldownMs, passive ejection holds for the cooldown", async () => {
  const timers = new Map<number, { callback: () => void; delayMs: number }>();
  let nextId = 1;
  let clock = 1_000;
  const { probe, calls } = fakeProbe(false);
  const transitions: HealthTransition[] = [];
  const scheduler = new HealthScheduler({
    onTransition: (t) => transitions.push(t),
    probe,
    now: () => clock,
    passiveCooldownMs: 5_000,
    setTimer: (callback, delayMs) => {
      timers.set(nextId, { callback, delayMs });
      return nextId++;
    },
    clearTimer: (id) => timers.delete(id as number),
  });
  try {
    const off = (port: number) => target(port, { enabled: false, fall: 3 });
    scheduler.update([off(7101), off(7102), off(7103)]);
    await scheduler.runOnce();
    assert.deepEqual(calls, [], "no active probe while checks are off");
    assert.equal(timers.size, 0);

    // One failure ends `unknown` at once; the ejection limit (50% of 3) allows one.
    const ejected = scheduler.reportPassive("web", "127.0.0.1:7101", false, "connection refused");
    assert.equal(ejected?.to, "unhealthy");
    assert.equal(scheduler.reportPassive("web", "127.0.0.1:7102", false), undefined);
    assert.equal(scheduler.state("web", "127.0.0.1:7102"), "unknown", "limit kept");
    assert.deepEqual([...timers.values()].map((t) => t.delayMs), [5_000]);

    clock = 6_000;
    const [id, timer] = [...timers][0]!;
    timers.delete(id);
    timer.callback();
    assert.equal(scheduler.state("web", "127.0.0.1:7101"), "unknown", "re-admitted");
    assert.deepEqual(
      transitions.map((t) => `${t.key} ${t.from}>${t.to}:${t.cause}@${t.at}`),
      [
        "127.0.0.1:7101 unknown>unhealthy:passive@1000",
        "127.0.0.1:7101 unhealthy>unknown:cooldown@6000",
      ],
    );

    // Enabling checks hands the target to active probes and drops a pending cooldown.
    scheduler.reportPassive("web", "127.0.0.1:7101", false);
    assert.equal(timers.size, 1);
    scheduler.update([target(7101, { fall: 3 }), off(7102), off(7103)]);
    await scheduler.runOnce();
    assert.equal(
      [...timers.values()].filter((t) => t.delayMs === 5_000).length,
      0,
      "cooldown timer cleared",
    );
  } finally {
    await scheduler.close();
  }
  assert.equal(timers.size, 0, "close cleared every timer");
});

Deno.test("HealthScheduler: the signal option closes it; runOnce honours its own signal", async () => {
  const never: ProbeFunction = (_t, signal) =>
    new Promise<ProbeResult>((resolve) =>
      signal.addEventListener("abort", () => resolve({ ok: false, latencyMs: 0, error: "x" }))
    );
  const controller = new AbortController();
  const transitions: HealthTransition[] = [];
  const scheduler = new HealthScheduler({
    onTransition: (t) => transitions.push(t),
    probe: never,
    signal: controller.signal,
  });
  scheduler.update([target(8001)]);
  const round = new AbortController();
  const pending = scheduler.runOnce(round.signal);
  round.abort(new Error("enough"));
  await assert.rejects(pending, { message: "enough" });
  controller.abort();
  assert.equal(scheduler.isClosed, true);
  await scheduler.close();
  assert.deepEqual(transitions, [], "aborted probes report nothing");
  scheduler.update([target(8002)]);
  assert.deepEqual(scheduler.snapshot().map((s) => s.key), ["127.0.0.1:8001"]);
});

Deno.test("HealthScheduler: rejects bad settings before changing anything", async () => {
  const scheduler = new HealthScheduler({ onTransition: () => {}, probe: fakeProbe(true).probe });
  try {
    assert.throws(
      () => scheduler.update([target(9001), target(9002, { intervalMs: 0 })]),
      {
        name: "RangeError",
        message:
          "Cannot check backend web/127.0.0.1:9002 as 'check.intervalMs' must be a positive number: current value is 0",
      },
    );
    assert.throws(() => scheduler.update([target(9001, { maxEjectionPercent: 101 })]), RangeError);
    assert.throws(() => scheduler.update([target(9001, { fall: 0 })]), RangeError);
    assert.deepEqual(scheduler.snapshot(), []);
    assert.throws(() => new HealthScheduler({ onTransition: () => {}, maxConcurrentProbes: 0 }));
  } finally {
    await scheduler.close();
  }
});

Deno.test("checkAll: probes each key once, reports progress, bounds concurrency", async () => {
  const up = startServer(acceptAndClose);
  const down = closedPort();
  try {
    const progress: string[] = [];
    const results = await checkAll(
      [target(up.port), target(down), { ...target(up.port), pool: "other" }],
      {
        concurrency: 1,
        onProgress: (p) => progress.push(`${p.done}/${p.total} ${p.result.ok}`),
      },
    );
    assert.deepEqual([...results.keys()], [`127.0.0.1:${up.port}`, `127.0.0.1:${down}`]);
    assert.deepEqual(
      [...results.values()].map((r) => [r.ok, r.error]),
      [[true, undefined], [false, "connection refused"]],
    );
    assert.deepEqual(progress, ["1/2 true", "2/2 false"]);
  } finally {
    await up.close();
  }
});

Deno.test("checkAll: abort stops the round and rejects with the reason", async () => {
  const server = startServer(silent);
  try {
    const controller = new AbortController();
    const targets = [target(server.port, { timeoutMs: 10_000, expect: "never" })];
    const pending = checkAll(targets, { signal: controller.signal });
    setTimeout(() => controller.abort(new Error("stop")), 30);
    await assert.rejects(pending, { message: "stop" });
    await assert.rejects(checkAll(targets, { signal: AbortSignal.abort(new Error("early")) }), {
      message: "early",
    });
    await assert.rejects(checkAll(targets, { concurrency: 0 }), RangeError);
  } finally {
    await server.close();
  }
});

Deno.test("HealthScheduler: local probe errors (EMFILE) never count against a backend", async () => {
  let result: ProbeResult = { ok: true, latencyMs: 1 };
  const transitions: HealthTransition[] = [];
  const scheduler = new HealthScheduler({
    onTransition: (t) => transitions.push(t),
    probe: () => Promise.resolve(result),
  });
  try {
    const t = target(1001, { fall: 2 });
    scheduler.update([t]);
    await scheduler.runOnce();
    assert.equal(status(scheduler, t.key).state, "healthy");

    result = {
      ok: false,
      latencyMs: 0,
      error: "local error: too many open files",
      isLocalError: true,
    };
    for (let i = 0; i < 5; i++) await scheduler.runOnce();
    assert.equal(status(scheduler, t.key).state, "healthy");
    assert.equal(transitions.length, 1);

    // Real failures still count, from where they were.
    result = { ok: false, latencyMs: 1, error: "connection refused" };
    await scheduler.runOnce();
    await scheduler.runOnce();
    assert.equal(status(scheduler, t.key).state, "unhealthy");
    assert.deepEqual(transitions.map((x) => [x.to, x.error]), [
      ["healthy", undefined],
      ["unhealthy", "connection refused"],
    ]);
  } finally {
    await scheduler.close();
  }
});
