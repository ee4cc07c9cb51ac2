import assert from "node:assert/strict";
import type { ClientInfo } from "../core/types.ts";
import { RoundRobinBalancer } from "./round_robin.ts";
import { candidatesOf } from "./_test_random.ts";

const CLIENT: ClientInfo = { address: "203.0.113.7", port: 40000 };

function sequence(balancer: RoundRobinBalancer, weights: readonly number[], n: number): number[] {
  const candidates = candidatesOf(weights);
  return Array.from({ length: n }, () => balancer.pick(candidates, CLIENT));
}

Deno.test("RoundRobinBalancer yields exact sequences", async (t) => {
  const cases: { weights: number[]; expected: number[] }[] = [
    { weights: [1, 1, 1], expected: [0, 1, 2, 0, 1, 2, 0] },
    // nginx's documented smooth sequence for weights 5, 1, 1: a a b a c a a.
    { weights: [5, 1, 1], expected: [0, 0, 1, 0, 2, 0, 0, 0, 0, 1, 0, 2, 0, 0] },
    { weights: [2, 0, 1], expected: [0, 2, 0, 0, 2, 0] },
    { weights: [1, 2], expected: [1, 0, 1, 1, 0, 1] },
    { weights: [0, 3], expected: [1, 1, 1] },
  ];
  for (const { weights, expected } of cases) {
    await t.step(`weights ${weights.join(", ")}`, () => {
      assert.deepEqual(sequence(new RoundRobinBalancer(), weights, expected.length), expected);
    });
  }
});

Deno.test("RoundRobinBalancer continues the sequence across a pool change", () => {
  const balancer = new RoundRobinBalancer();
  const before = candidatesOf([5, 1, 1]);
  assert.deepEqual([0, 1, 2].map(() => balancer.pick(before, CLIENT)), [0, 0, 1]);
  // Same backends in a new array (a pool refresh): the sequence goes on, not restarts.
  const after = candidatesOf([5, 1, 1]);
  assert.deepEqual([0, 1, 2, 3].map(() => balancer.pick(after, CLIENT)), [0, 2, 0, 0]);
});

Deno.test("RoundRobinBalancer rotation continues across a pool change", () => {
  const balancer = new RoundRobinBalancer();
  const before = candidatesOf([1, 1, 1]);
  assert.deepEqual([0, 1].map(() => balancer.pick(before, CLIENT)), [0, 1]);
  const after = candidatesOf([1, 1, 1, 1]);
  assert.deepEqual([0, 1, 2, 3].map(() => balancer.pick(after, CLIENT)), [2, 3, 0, 1]);
});

Deno.test("RoundRobinBalancer keeps separate state per candidates array", () => {
  const balancer = new RoundRobinBalancer();
  const a = candidatesOf([1, 1, 1]);
  const b = candidatesOf([1, 1]);
  const picks = [a, b, a, b, a, b].map((candidates) => balancer.pick(candidates, CLIENT));
  assert.deepEqual(picks, [0, 1, 1, 0, 2, 1]);
});

Deno.test("RoundRobinBalancer with a shared ticket rotates once over every balancer", () => {
  let next = 0;
  const ticket = () => next++;
  const one = new RoundRobinBalancer({ ticket });
  const two = new RoundRobinBalancer({ ticket });
  const candidates = ["a", "b", "c"].map((host) => ({
    backend: { key: `${host}:80`, host, port: 80, weight: 1 },
    activeConnections: 0,
  }));
  const client = { address: "192.0.2.1", port: 1 };
  const picks = [one, one, two, one, two, two].map((b) => b.pick(candidates, client));
  assert.deepEqual(picks, [0, 1, 2, 0, 1, 2]);
  const weighted = candidates.map((c, i) => ({ ...c, backend: { ...c.backend, weight: i + 1 } }));
  const before = next;
  one.pick(weighted, client);
  assert.equal(next, before, "unequal weights rotate per balancer, without tickets");
});
