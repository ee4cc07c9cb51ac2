/**
 * Admission across data-plane workers: `maxConnectionsPerSource` counts the whole process,
 * and a reload changes the ACL and the limit in place in every worker, open connections kept
 * and still counted.
 */
import assert from "node:assert/strict";
import type { PoolPlan } from "../core/plan.ts";
import type { HealthCheckSpec, HealthTarget } from "../health/mod.ts";
import { Runtime } from "./runtime.ts";
import {
  type HeldClient,
  holdVia,
  listenerSpec,
  planOf,
  startEchoNamed,
  waitFor,
} from "./_test_backend.ts";

const CHECK: HealthCheckSpec = {
  enabled: true,
  intervalMs: 60_000,
  timeoutMs: 500,
  rise: 2,
  fall: 3,
  maxEjectionPercent: 50,
};

function targets(plans: readonly PoolPlan[]): HealthTarget[] {
  return plans.flatMap((plan) =>
    plan.backends.map((b) => ({
      key: b.address,
      pool: plan.name,
      host: b.host,
      port: b.port,
      check: CHECK,
    }))
  );
}

Deno.test("workers: maxConnectionsPerSource holds process-wide; a reload changes ACL and limit in place", async () => {
  const backend = startEchoNamed("a");
  const web = { ...listenerSpec("web"), healthCheck: CHECK, maxConnectionsPerSource: 8 };
  const runtime = await Runtime.start(
    {
      listeners: [web],
      healthTargets: targets,
      discovery: () => ({ source: "static", state: "synced" }),
      workers: 2,
      workerStatsIntervalMs: 50,
    },
    [planOf("web", [backend.port])],
  );
  const held: HeldClient[] = [];
  const stats = () => runtime.snapshot().listeners[0]!.stats;
  try {
    const address = runtime.addresses.get("web")!;
    for (let i = 0; i < 8; i++) held.push(await holdVia(address));
    assert.ok(held.every((c) => c.name === "a"), "8 connections, the limit, all forwarded");
    const over: HeldClient[] = [];
    for (let i = 0; i < 4; i++) over.push(await holdVia(address, 1, 500));
    held.push(...over);
    assert.deepEqual(over.map((c) => c.name), ["", "", "", ""], "one over (and more) refused");
    await waitFor(() => stats().refusedByCause?.source_limit === 4, 3_000, "source_limit reported");
    const accepted = runtime.workers().map((w) => w.accepted);
    console.log(`accepted per worker: ${accepted.join(", ")}`);

    // Deny this client: new connections refused as acl in every worker, open ones stay.
    await runtime.reconfigure(
      {
        add: [],
        remove: [],
        rebind: [],
        update: [{ ...web, access: { allow: [], deny: ["127.0.0.0/8"] } }],
      },
      [planOf("web", [backend.port])],
    );
    const denied: HeldClient[] = [];
    for (let i = 0; i < 4; i++) denied.push(await holdVia(address, 1, 500));
    held.push(...denied);
    assert.deepEqual(denied.map((c) => c.name), ["", "", "", ""]);
    await waitFor(() => stats().refusedByCause?.acl === 4, 3_000, "acl refusals reported");
    const alive = await Promise.all(held.slice(0, 8).map((c) => c.isAlive(1_000)));
    assert.deepEqual(alive, new Array(8).fill(true), "open connections survive the reload");

    // Allow again with a limit of 9: the 8 open connections still count, so exactly one more.
    await runtime.reconfigure(
      { add: [], remove: [], rebind: [], update: [{ ...web, maxConnectionsPerSource: 9 }] },
      [planOf("web", [backend.port])],
    );
    const next = [await holdVia(address, 1, 1_000), await holdVia(address, 1, 500)];
    held.push(...next);
    assert.deepEqual(next.map((c) => c.name), ["a", ""]);
  } finally {
    for (const c of held) c.conn.close();
    await runtime.stop();
    await backend.close();
  }
});
