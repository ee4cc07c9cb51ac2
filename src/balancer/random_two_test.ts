import assert from "node:assert/strict";
import type { ClientInfo } from "../core/types.ts";
import { RandomTwoBalancer } from "./random_two.ts";
import { candidatesOf, seededRandom } from "./_test_random.ts";

const CLIENT: ClientInfo = { address: "203.0.113.7", port: 40000 };

/** A random source that replays `values` in a loop. */
function replay(...values: number[]): () => number {
  let i = 0;
  return () => values[i++ % values.length]!;
}

Deno.test("RandomTwoBalancer picks the less loaded of the two samples", async (t) => {
  // Weights 1, 1, 1, 1: the first draw 0.1 * 4 = 0.4 samples index 0; the second draws over
  // the 3 remaining units, 0.5 * 3 = 1.5, shifted past index 0's unit to 2.5: index 2.
  const cases: { name: string; loads: number[]; expected: number }[] = [
    { name: "second sample less loaded", loads: [5, 0, 3, 0], expected: 2 },
    { name: "first sample less loaded", loads: [1, 0, 3, 0], expected: 0 },
    { name: "tie keeps the first sample", loads: [3, 0, 3, 0], expected: 0 },
  ];
  for (const { name, loads, expected } of cases) {
    await t.step(name, () => {
      const balancer = new RandomTwoBalancer({ random: replay(0.1, 0.5) });
      assert.equal(balancer.pick(candidatesOf([1, 1, 1, 1], loads), CLIENT), expected);
    });
  }
});

Deno.test("RandomTwoBalancer samples by weight and never the same candidate twice", async (t) => {
  const cases: {
    name: string;
    weights: number[];
    loads: number[];
    random: number[];
    expected: number;
  }[] = [
    // Total 4: 0.2 * 4 = 0.8 falls in index 0's unit; the second must be index 1.
    { name: "heavy second", weights: [1, 3], loads: [9, 0], random: [0.2, 0.0], expected: 1 },
    // 0.3 * 4 = 1.2 falls in index 1's span [1, 4); the second must be index 0.
    { name: "heavy first", weights: [1, 3], loads: [9, 0], random: [0.3, 0.99], expected: 1 },
    // Zero weights hold no span: 0.5 * 2 = 1.0 is index 3, then index 1.
    {
      name: "zero weights skipped",
      weights: [0, 1, 0, 1],
      loads: [0, 0, 0, 4],
      random: [0.5, 0.5],
      expected: 1,
    },
    // A source that returns 1 (out of contract) still yields valid, distinct samples.
    { name: "random returns 1", weights: [1, 1, 1], loads: [2, 2, 1], random: [1, 1], expected: 2 },
  ];
  for (const { name, weights, loads, random, expected } of cases) {
    await t.step(name, () => {
      const balancer = new RandomTwoBalancer({ random: replay(...random) });
      assert.equal(balancer.pick(candidatesOf(weights, loads), CLIENT), expected);
    });
  }
  await t.step("two candidates: the idle one always wins", () => {
    const balancer = new RandomTwoBalancer({ random: seededRandom(1) });
    const candidates = candidatesOf([1, 1], [0, 10]);
    for (let n = 0; n < 1000; n++) assert.equal(balancer.pick(candidates, CLIENT), 0);
  });
});

Deno.test("RandomTwoBalancer never picks the most loaded of three", () => {
  const balancer = new RandomTwoBalancer({ random: seededRandom(3) });
  const candidates = candidatesOf([1, 1, 1], [1, 2, 3]);
  const counts = [0, 0, 0];
  for (let n = 0; n < 3000; n++) counts[balancer.pick(candidates, CLIENT)]!++;
  assert.equal(counts[2], 0);
  // Index 0 wins whenever it is sampled: 2 of the 3 unordered pairs.
  assert.ok(Math.abs(counts[0]! - 2000) < 150, `counts ${counts}`);
});

Deno.test("RandomTwoBalancer rejects a random source that is not a function", () => {
  assert.throws(
    () => new RandomTwoBalancer({ random: 0.5 as unknown as () => number }),
    new TypeError("Cannot create balancer as 'random' must be a function: current value is 0.5"),
  );
});
