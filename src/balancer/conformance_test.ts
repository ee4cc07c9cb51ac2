import assert from "node:assert/strict";
import { BALANCER_KINDS } from "../core/types.ts";
import type { Balancer, BalancerKind, Candidate, ClientInfo } from "../core/types.ts";
import { createBalancer } from "./mod.ts";
import { candidatesOf, clientAddress, seededRandom } from "./_test_random.ts";

const CLIENT: ClientInfo = { address: "203.0.113.7", port: 40000 };

function create(kind: BalancerKind): Balancer {
  return createBalancer(kind, { random: seededRandom(42), maglevTableSize: 65537 });
}

function clientOf(n: number): ClientInfo {
  return { address: clientAddress(n), port: 1024 + (n % 60000) };
}

function deepFreeze(candidates: Candidate[]): readonly Candidate[] {
  for (const candidate of candidates) {
    Object.freeze(candidate.backend);
    Object.freeze(candidate);
  }
  return Object.freeze(candidates);
}

for (const kind of BALANCER_KINDS) {
  Deno.test(`${kind}: conformance`, async (t) => {
    await t.step("empty candidates -> -1", () => {
      assert.equal(create(kind).pick([], CLIENT), -1);
    });

    await t.step("single candidate -> 0", () => {
      const balancer = create(kind);
      const candidates = candidatesOf([3], [5]);
      for (let n = 0; n < 50; n++) assert.equal(balancer.pick(candidates, clientOf(n)), 0);
    });

    await t.step("every weight 0 -> -1", () => {
      const balancer = create(kind);
      const candidates = candidatesOf([0, 0, 0]);
      for (let n = 0; n < 20; n++) assert.equal(balancer.pick(candidates, clientOf(n)), -1);
    });

    await t.step("weight 0 is never picked", () => {
      const balancer = create(kind);
      const candidates = candidatesOf([0, 1, 0, 2, 0], [0, 9, 0, 18, 0]);
      const seen = new Set<number>();
      for (let n = 0; n < 2000; n++) {
        const index = balancer.pick(candidates, clientOf(n));
        assert.ok(index === 1 || index === 3, `picked ${index}`);
        seen.add(index);
      }
      assert.deepEqual([...seen].sort(), [1, 3]);
    });

    await t.step("only valid indices, under changing weights and loads", () => {
      const balancer = create(kind);
      const random = seededRandom(7);
      for (let round = 0; round < 200; round++) {
        const size = 1 + Math.floor(random() * 12);
        const weights = Array.from({ length: size }, () => Math.floor(random() * 4));
        const loads = Array.from({ length: size }, () => Math.floor(random() * 20));
        const candidates = candidatesOf(weights, loads);
        const hasWeight = weights.some((w) => w > 0);
        for (let n = 0; n < 20; n++) {
          const index = balancer.pick(candidates, clientOf(round * 20 + n));
          if (!hasWeight) {
            assert.equal(index, -1);
            continue;
          }
          assert.ok(Number.isInteger(index) && index >= 0 && index < size, `index ${index}`);
          assert.ok(weights[index]! > 0, `picked weight 0 at ${index}`);
        }
      }
    });

    await t.step("never mutates candidates", () => {
      const balancer = create(kind);
      const candidates = deepFreeze(candidatesOf([1, 0, 2, 3], [4, 0, 1, 7]));
      const before = JSON.stringify(candidates);
      for (let n = 0; n < 500; n++) balancer.pick(candidates, clientOf(n));
      assert.equal(JSON.stringify(candidates), before);
    });

    await t.step("distribution follows weights over long-lived connections", () => {
      // Every picked connection stays open, as the pool would count it.
      const balancer = create(kind);
      const weights = [1, 2, 3, 0, 4];
      const candidates = candidatesOf(weights);
      const picks = 40000;
      for (let n = 0; n < picks; n++) {
        candidates[balancer.pick(candidates, clientOf(n))]!.activeConnections++;
      }
      const total = weights.reduce((a, b) => a + b, 0);
      candidates.forEach((candidate, i) => {
        const ideal = (picks * weights[i]!) / total;
        const actual = candidate.activeConnections;
        assert.ok(
          Math.abs(actual - ideal) <= ideal * 0.08,
          `backend ${i} (weight ${weights[i]}): ${actual} picks, ideal ${ideal}`,
        );
      });
    });

    await t.step("a full candidate is never picked; all full -> -1", () => {
      // Connections stay open, as the pool counts them: every backend fills to its limit.
      const balancer = create(kind);
      const limits = [2, 5, 1, 3];
      const candidates = candidatesOf([1, 1, 1, 1]).map((c, i) => ({
        ...c,
        maxConnections: limits[i],
      }));
      const capacity = limits.reduce((a, b) => a + b, 0);
      for (let n = 0; n < capacity; n++) {
        const index = balancer.pick(candidates, clientOf(n));
        assert.ok(index >= 0, `pick ${n} found no backend with room left`);
        const chosen = candidates[index]!;
        assert.ok(chosen.activeConnections < limits[index]!, `picked full backend ${index}`);
        chosen.activeConnections++;
      }
      assert.deepEqual(candidates.map((c) => c.activeConnections), limits);
      for (let n = 0; n < 50; n++) assert.equal(balancer.pick(candidates, clientOf(n)), -1);
      // A connection closes: that backend is picked again, and only it.
      candidates[2]!.activeConnections--;
      for (let n = 0; n < 20; n++) assert.equal(balancer.pick(candidates, clientOf(n)), 2);
    });

    await t.step("weighted: full candidates skipped, the rest keep their shares", () => {
      const balancer = create(kind);
      const candidates = candidatesOf([1, 2, 3, 4]).map((c, i) => ({
        ...c,
        maxConnections: i === 3 ? 10 : 0,
      }));
      const picks = 6010;
      for (let n = 0; n < picks; n++) {
        const index = balancer.pick(candidates, clientOf(n));
        assert.ok(index >= 0);
        candidates[index]!.activeConnections++;
      }
      assert.equal(candidates[3]!.activeConnections, 10);
      // The others share the rest about 1:2:3. Maglev's overflow goes to table neighbours of
      // the full backend's slots, which follow weights only roughly.
      const rest = picks - 10;
      const tolerance = kind === "maglev" ? 0.2 : 0.1;
      [1, 2, 3].forEach((weight, i) => {
        const ideal = (rest * weight) / 6;
        const actual = candidates[i]!.activeConnections;
        assert.ok(
          Math.abs(actual - ideal) <= ideal * tolerance,
          `backend ${i}: ${actual}, ideal ${ideal}`,
        );
      });
    });

    await t.step("same array again keeps working after a pool change", () => {
      const balancer = create(kind);
      const first = candidatesOf([1, 1, 1]);
      const second = candidatesOf([1, 1]);
      for (let n = 0; n < 30; n++) {
        assert.ok(balancer.pick(first, clientOf(n)) < 3);
        assert.ok(balancer.pick(second, clientOf(n)) < 2);
      }
    });
  });
}

Deno.test("createBalancer() returns a balancer of each kind", () => {
  for (const kind of BALANCER_KINDS) assert.equal(createBalancer(kind).kind, kind);
});

Deno.test("createBalancer() rejects an unknown kind", () => {
  assert.throws(
    () => createBalancer("fastest" as BalancerKind),
    new TypeError(
      `Cannot create balancer as 'kind' must be one of round_robin, least_connections, random_two, maglev: current value is "fastest"`,
    ),
  );
});

Deno.test("createBalancer() validates maglev options eagerly", () => {
  assert.throws(() => createBalancer("maglev", { maglevTableSize: 65536 }), RangeError);
  assert.throws(() => createBalancer("maglev", { maglevSeed: 1.5 }), RangeError);
  assert.equal(createBalancer("round_robin", { maglevTableSize: 65536 }).kind, "round_robin");
});
