import assert from "node:assert/strict";
import type { ClientInfo } from "../core/types.ts";
import { LeastConnectionsBalancer } from "./least_connections.ts";
import { candidatesOf } from "./_test_random.ts";

const CLIENT: ClientInfo = { address: "203.0.113.7", port: 40000 };

Deno.test("LeastConnectionsBalancer picks the least loaded per unit of weight", async (t) => {
  const cases: { name: string; weights: number[]; loads: number[]; expected: number }[] = [
    { name: "fewest connections", weights: [1, 1, 1], loads: [5, 2, 7], expected: 1 },
    { name: "last is least", weights: [1, 1, 1], loads: [5, 6, 4], expected: 2 },
    { name: "weight divides load", weights: [2, 1], loads: [4, 3], expected: 0 },
    { name: "heavier wins at equal count", weights: [1, 3, 2], loads: [3, 3, 3], expected: 1 },
    { name: "weight 0 skipped though idle", weights: [0, 1], loads: [0, 50], expected: 1 },
    { name: "fractional weights", weights: [0.5, 1.5], loads: [1, 2], expected: 1 },
  ];
  for (const { name, weights, loads, expected } of cases) {
    await t.step(name, () => {
      const balancer = new LeastConnectionsBalancer();
      assert.equal(balancer.pick(candidatesOf(weights, loads), CLIENT), expected);
    });
  }
});

Deno.test("LeastConnectionsBalancer breaks ties by round robin", () => {
  const balancer = new LeastConnectionsBalancer();
  const idle = candidatesOf([1, 1, 1]);
  assert.deepEqual([0, 1, 2, 3, 4].map(() => balancer.pick(idle, CLIENT)), [0, 1, 2, 0, 1]);
  const someBusy = candidatesOf([1, 1, 1, 1], [1, 0, 3, 0]);
  assert.deepEqual([0, 1, 2, 3].map(() => balancer.pick(someBusy, CLIENT)), [3, 1, 3, 1]);
});

Deno.test("LeastConnectionsBalancer spreads a burst evenly as counts rise", () => {
  const balancer = new LeastConnectionsBalancer();
  const candidates = candidatesOf([1, 1, 1, 1]);
  const order: number[] = [];
  for (let n = 0; n < 8; n++) {
    const index = balancer.pick(candidates, CLIENT);
    candidates[index]!.activeConnections++;
    order.push(index);
  }
  assert.deepEqual(order, [0, 1, 2, 3, 0, 1, 2, 3]);
});
