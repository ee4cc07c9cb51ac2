import assert from "node:assert/strict";
import type { PlannedBackend, PoolPlan } from "../core/plan.ts";
import { diffPlans } from "./mod.ts";

function plan(backends: PlannedBackend[]): PoolPlan {
  return {
    name: "web",
    listenerAddress: ":80",
    backends,
    excluded: [],
    warnings: [],
    inputWarnings: [],
    healthTargets: [],
  };
}

function backend(host: string, overrides: Partial<PlannedBackend> = {}): PlannedBackend {
  return { address: `${host}:80`, host, port: 80, weight: 1, service: "web/app", ...overrides };
}

Deno.test("diffPlans() reports added, removed and changed backends by address", () => {
  const before = plan([
    backend("10.0.0.1"),
    backend("10.0.0.2"),
    backend("10.0.0.3", { node: "n3" }),
  ]);
  const after = plan([
    backend("10.0.0.10"),
    backend("10.0.0.2", { weight: 5 }),
    backend("10.0.0.3", { node: "n3" }),
    backend("10.0.0.4"),
  ]);
  assert.deepEqual(diffPlans(before, after), {
    added: [backend("10.0.0.4"), backend("10.0.0.10")],
    removed: [backend("10.0.0.1")],
    changed: [{
      before: backend("10.0.0.2"),
      after: backend("10.0.0.2", { weight: 5 }),
      fields: ["weight"],
    }],
  });
});

Deno.test("diffPlans() of equal plans is empty", () => {
  const p = plan([backend("10.0.0.1"), backend("10.0.0.2")]);
  assert.deepEqual(diffPlans(p, structuredClone(p)), { added: [], removed: [], changed: [] });
});

Deno.test("diffPlans() sees draining and Service moves", () => {
  const before = plan([backend("10.0.0.1")]);
  const after = plan([backend("10.0.0.1", { draining: true, service: "web/other" })]);
  assert.deepEqual(diffPlans(before, after).changed.map((c) => c.fields), [
    ["draining", "service"],
  ]);
});

Deno.test("diffPlans() sees a backend become a terminating fallback", () => {
  const before = plan([backend("10.0.0.1", { node: "n1" })]);
  const after = plan([backend("10.0.0.1", { node: "n1", terminating: true })]);
  assert.deepEqual(diffPlans(before, after).changed.map((c) => c.fields), [["terminating"]]);
});
