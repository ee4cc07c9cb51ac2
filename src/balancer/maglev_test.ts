import assert from "node:assert/strict";
import type { Candidate, ClientInfo } from "../core/types.ts";
import {
  buildMaglevTable,
  DEFAULT_MAGLEV_TABLE_SIZE,
  MAGLEV_MAX_TABLE_SIZE,
  MaglevBalancer,
  maglevFingerprint,
} from "./maglev.ts";
import { candidatesOf, clientAddress, seededRandom } from "./_test_random.ts";

const CLIENTS = 10_000;

function clientOf(n: number): ClientInfo {
  return { address: clientAddress(n), port: 1024 + (n % 60000) };
}

/** The backend key each of `CLIENTS` clients is sent to. */
function assignments(balancer: MaglevBalancer, candidates: readonly Candidate[]): string[] {
  return Array.from({ length: CLIENTS }, (_, n) => {
    return candidates[balancer.pick(candidates, clientOf(n))]!.backend.key;
  });
}

function shuffled<T>(items: readonly T[], random: () => number): T[] {
  const copy = [...items];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [copy[i], copy[j]] = [copy[j]!, copy[i]!];
  }
  return copy;
}

Deno.test("MaglevBalancer defaults to a 65537-slot table and seed 0", () => {
  const balancer = new MaglevBalancer();
  assert.equal(DEFAULT_MAGLEV_TABLE_SIZE, 65537);
  assert.equal(balancer.tableSize, 65537);
  assert.equal(balancer.seed, 0);
  assert.equal(buildMaglevTable([{ key: "a:1" }]).length, 65537);
  assert.equal(buildMaglevTable([{ key: "a:1" }], { tableSize: 7 }).length, 7);
});

Deno.test("MaglevBalancer rejects a table size that is not a prime", async (t) => {
  for (const tableSize of [65536, 0, 1, -7, 4.5, NaN, Infinity, 16777259]) {
    await t.step(String(tableSize), () => {
      assert.throws(
        () => new MaglevBalancer({ tableSize }),
        new RangeError(
          `Cannot build Maglev table as 'tableSize' must be a prime number up to ${MAGLEV_MAX_TABLE_SIZE}: current value is ${tableSize}`,
        ),
      );
    });
  }
  assert.throws(() => new MaglevBalancer({ seed: 0.5 }), RangeError);
  assert.throws(() => maglevFingerprint(["a:1"], { tableSize: 100 }), RangeError);
  assert.equal(new MaglevBalancer({ tableSize: 2 }).tableSize, 2);
});

Deno.test("MaglevBalancer sends a client to the same backend on every call", () => {
  const balancer = new MaglevBalancer();
  const candidates = candidatesOf(Array(10).fill(1));
  const first = assignments(balancer, candidates);
  assert.deepEqual(assignments(balancer, candidates), first);
  // The source port does not matter; the address does.
  const address = "203.0.113.7";
  const index = balancer.pick(candidates, { address, port: 1 });
  for (let port = 2; port < 500; port++) {
    assert.equal(balancer.pick(candidates, { address, port }), index);
  }
});

Deno.test("MaglevBalancer agrees across replicas whatever the candidate order", () => {
  const random = seededRandom(11);
  const candidates = candidatesOf([1, 2, 1, 1, 3, 1, 0, 1]);
  const expected = assignments(new MaglevBalancer(), candidates);
  for (let replica = 0; replica < 3; replica++) {
    const balancer = new MaglevBalancer();
    assert.deepEqual(assignments(balancer, shuffled(candidates, random)), expected);
  }
});

Deno.test("MaglevBalancer normalizes client addresses", () => {
  const balancer = new MaglevBalancer();
  const candidates = candidatesOf(Array(50).fill(1));
  const pick = (address: string) => balancer.pick(candidates, { address, port: 1 });
  for (let n = 0; n < 200; n++) {
    const address = clientAddress(n);
    assert.equal(pick(`::ffff:${address}`), pick(address));
  }
  assert.equal(pick("2001:DB8::AB"), pick("2001:db8::ab"));
});

Deno.test("MaglevBalancer remaps about 1/N of clients when one of N backends goes", () => {
  const n = 10;
  const all = candidatesOf(Array(n).fill(1));
  const balancer = new MaglevBalancer();
  const before = assignments(balancer, all);
  for (const removed of [0, 4, 9]) {
    const removedKey = all[removed]!.backend.key;
    const after = assignments(balancer, all.filter((_, i) => i !== removed));
    let moved = 0;
    let survivorClients = 0;
    let survivorMoved = 0;
    for (let c = 0; c < CLIENTS; c++) {
      if (before[c] !== after[c]) moved++;
      if (before[c] !== removedKey) {
        survivorClients++;
        if (before[c] !== after[c]) survivorMoved++;
      }
      assert.notEqual(after[c], removedKey);
    }
    const fraction = moved / CLIENTS;
    assert.ok(fraction > 0.5 / n && fraction < 1.6 / n, `removed ${removed}: ${fraction} moved`);
    // The paper's Figure 12: a handful of survivors' slots shift; nearly all clients stay.
    assert.ok(survivorMoved / survivorClients < 0.01, `${survivorMoved} survivor clients moved`);
  }
});

Deno.test("MaglevBalancer spreads slots and clients near-evenly", () => {
  const n = 10;
  const table = buildMaglevTable(candidatesOf(Array(n).fill(1)).map((c) => c.backend));
  const slots = Array<number>(n).fill(0);
  for (const index of table) slots[index]!++;
  const idealSlots = 65537 / n;
  for (const count of slots) assert.ok(Math.abs(count - idealSlots) <= 1, `slots ${slots}`);

  const balancer = new MaglevBalancer();
  const candidates = candidatesOf(Array(n).fill(1));
  const clients = Array<number>(n).fill(0);
  for (let c = 0; c < CLIENTS; c++) clients[balancer.pick(candidates, clientOf(c))]!++;
  // Binomial noise on 10,000 clients is about ±3% per backend; allow ±10%.
  for (const count of clients) {
    assert.ok(Math.abs(count - CLIENTS / n) <= CLIENTS / n * 0.1, `clients ${clients}`);
  }
});

Deno.test("MaglevBalancer gives slots in proportion to weight", () => {
  const weights = [1, 2, 3, 4, 0];
  const table = buildMaglevTable(weights.map((weight, i) => ({ key: `k${i}`, weight })));
  const slots = Array<number>(weights.length).fill(0);
  for (const index of table) slots[index]!++;
  weights.forEach((weight, i) => {
    const ideal = (65537 * weight) / 10;
    assert.ok(Math.abs(slots[i]! - ideal) <= 2, `slots ${slots}`);
  });
});

Deno.test("MaglevBalancer seeds give unrelated tables", () => {
  const candidates = candidatesOf(Array(10).fill(1));
  const a = assignments(new MaglevBalancer({ seed: 0 }), candidates);
  const b = assignments(new MaglevBalancer({ seed: 1 }), candidates);
  const same = a.filter((key, c) => key === b[c]).length;
  // Unrelated tables agree on about 1/N of clients.
  assert.ok(same / CLIENTS < 0.2, `${same} clients agree`);
  assert.notEqual(
    maglevFingerprint(candidates.map((c) => c.backend.key), { seed: 0 }),
    maglevFingerprint(candidates.map((c) => c.backend.key), { seed: 1 }),
  );
});

Deno.test("MaglevBalancer fingerprints are equal exactly for equal tables", () => {
  const candidates = candidatesOf([1, 1, 2, 1]);
  const keys = candidates.map((c) => c.backend);
  const balancer = new MaglevBalancer();
  const fingerprint = balancer.fingerprint(candidates);
  assert.match(fingerprint, /^[0-9a-f]{16}$/);
  assert.equal(maglevFingerprint(keys), fingerprint);
  assert.equal(maglevFingerprint([...keys].reverse()), fingerprint);
  assert.equal(new MaglevBalancer().fingerprint([...candidates].reverse()), fingerprint);
  // A zero-weight member owns no slot, so it does not change the table.
  assert.equal(maglevFingerprint([...keys, { key: "10.9.9.9:80", weight: 0 }]), fingerprint);
  assert.notEqual(maglevFingerprint(keys.slice(1)), fingerprint);
  assert.notEqual(maglevFingerprint(keys.map((k) => ({ key: k.key, weight: 1 }))), fingerprint);
  assert.notEqual(maglevFingerprint(keys, { tableSize: 65521 }), fingerprint);
});

Deno.test("MaglevBalancer hashing is stable across releases", () => {
  // Replicas running different releases must agree: changing the hash or the table build
  // changes these values, and that is a breaking change for mixed-version deployments.
  assert.equal(maglevFingerprint(["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"]), GOLDEN);
  const candidates = candidatesOf(Array(10).fill(1));
  const balancer = new MaglevBalancer({ seed: 42 });
  const picks = GOLDEN_ADDRESSES.map(
    (address) => balancer.pick(candidates, { address, port: 1 }),
  );
  assert.deepEqual(picks, GOLDEN_PICKS);
});

const GOLDEN = "dd98d109e91ad654";
const GOLDEN_ADDRESSES = [
  "203.0.113.7",
  "198.51.100.1",
  "192.0.2.255",
  "10.20.30.40",
  "2001:db8::1",
  "2001:db8:85a3::8a2e:370:7334",
  "fe80::1",
  "::1",
];
const GOLDEN_PICKS = [6, 0, 4, 4, 1, 8, 3, 7];

Deno.test("MaglevBalancer caches the table per candidates array", () => {
  const balancer = new MaglevBalancer();
  const candidates = candidatesOf([1, 1]);
  balancer.pick(candidates, clientOf(0));
  // The same array is never changed by the pool; if it were, the cached table would stand.
  candidates.push(...candidatesOf([1, 1, 1, 1]).slice(2));
  for (let c = 0; c < 1000; c++) assert.ok(balancer.pick(candidates, clientOf(c)) < 2);
  assert.ok(balancer.pick([...candidates], clientOf(0)) < 4);
});

Deno.test("MaglevBalancer: a full backend's clients fall through to the next table entry and come back", () => {
  const balancer = new MaglevBalancer({ tableSize: 251 });
  const candidates = candidatesOf([1, 1, 1, 1]).map((c) => ({ ...c, maxConnections: 1000 }));
  const clients = Array.from({ length: 400 }, (_, n) => ({ address: clientAddress(n), port: 1 }));
  const home = clients.map((c) => balancer.pick(candidates, c));
  candidates[1]!.activeConnections = 1000;
  let moved = 0;
  const spread = new Set<number>();
  clients.forEach((client, n) => {
    const index = balancer.pick(candidates, client);
    if (home[n] !== 1) {
      assert.equal(index, home[n], "a client of a backend with room must not move");
      return;
    }
    moved++;
    assert.notEqual(index, 1);
    spread.add(index);
    assert.equal(balancer.pick(candidates, client), index, "the fallback is stable");
  });
  assert.ok(moved > 50, `only ${moved} clients lived on backend 1`);
  // Table neighbours differ, so the overflow spreads instead of landing on one backend.
  assert.ok(spread.size >= 2, `overflow went to ${[...spread]}`);
  candidates[1]!.activeConnections = 999;
  clients.forEach((client, n) => assert.equal(balancer.pick(candidates, client), home[n]));
});
