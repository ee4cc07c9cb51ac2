import assert from "node:assert/strict";
import type { BackendHealth } from "../core/types.ts";
import { HealthTracker, type Transition } from "./tracker.ts";

interface Case {
  name: string;
  rise: number;
  fall: number;
  initial?: BackendHealth;
  /** `+` success, `-` failure; result i is recorded at clock i * 1000. */
  results: string;
  /** State after each result. */
  states: string;
  /** Transitions, as `index:from>to`. */
  transitions: string[];
}

const STATE: Record<string, BackendHealth> = { H: "healthy", U: "unhealthy", "?": "unknown" };

const CASES: Case[] = [
  {
    name: "unknown becomes healthy on the first success",
    rise: 2,
    fall: 3,
    results: "+",
    states: "H",
    transitions: ["0:unknown>healthy"],
  },
  {
    name: "unknown becomes unhealthy on the first failure (HAProxy init-state up)",
    rise: 2,
    fall: 3,
    results: "-",
    states: "U",
    transitions: ["0:unknown>unhealthy"],
  },
  {
    name: "after an early failure it takes rise successes to come back",
    rise: 2,
    fall: 3,
    results: "-++",
    states: "UUH",
    transitions: ["0:unknown>unhealthy", "2:unhealthy>healthy"],
  },
  {
    name: "healthy needs fall consecutive failures; a success resets the count",
    rise: 2,
    fall: 3,
    results: "+--+---",
    states: "HHHHHHU",
    transitions: ["0:unknown>healthy", "6:healthy>unhealthy"],
  },
  {
    name: "unhealthy needs rise consecutive successes; a failure resets the count",
    rise: 3,
    fall: 1,
    initial: "unhealthy",
    results: "++-+++",
    states: "UUUUUH",
    transitions: ["5:unhealthy>healthy"],
  },
  {
    name: "initial healthy is HAProxy fully-up: fall failures to go down",
    rise: 2,
    fall: 3,
    initial: "healthy",
    results: "---",
    states: "HHU",
    transitions: ["2:healthy>unhealthy"],
  },
  {
    name: "initial unhealthy is HAProxy fully-down: rise successes to go up",
    rise: 2,
    fall: 3,
    initial: "unhealthy",
    results: "+-++",
    states: "UUUH",
    transitions: ["3:unhealthy>healthy"],
  },
  {
    name: "rise 1 fall 1 follows every result",
    rise: 1,
    fall: 1,
    initial: "healthy",
    results: "-+-+",
    states: "UHUH",
    transitions: [
      "0:healthy>unhealthy",
      "1:unhealthy>healthy",
      "2:healthy>unhealthy",
      "3:unhealthy>healthy",
    ],
  },
  {
    name: "a flapping backend with fall 2 stays healthy",
    rise: 2,
    fall: 2,
    results: "+-+-+-",
    states: "HHHHHH",
    transitions: ["0:unknown>healthy"],
  },
];

for (const c of CASES) {
  Deno.test(`HealthTracker: ${c.name}`, () => {
    const tracker = new HealthTracker({ rise: c.rise, fall: c.fall, initial: c.initial });
    const states: string[] = [];
    const transitions: string[] = [];
    [...c.results].forEach((r, i) => {
      const at = i * 1000;
      const t: Transition | undefined = tracker.record(r === "+", at, r === "-" ? "boom" : "");
      if (t !== undefined) {
        assert.equal(t.at, at);
        transitions.push(`${i}:${t.from}>${t.to}`);
      }
      states.push(tracker.state);
    });
    assert.deepEqual(states, [...c.states].map((s) => STATE[s]));
    assert.deepEqual(transitions, c.transitions);
  });
}

Deno.test("HealthTracker: counters, clock values and last error", () => {
  const tracker = new HealthTracker({ rise: 2, fall: 2 });
  assert.equal(tracker.state, "unknown");
  assert.equal(tracker.lastChange, undefined);
  assert.equal(tracker.lastCheck, undefined);
  assert.equal(tracker.lastError, undefined);

  tracker.record(true, 100);
  tracker.record(false, 200, "connection refused");
  assert.equal(tracker.consecutiveFailures, 1);
  assert.equal(tracker.consecutiveSuccesses, 0);
  tracker.record(false, 300);
  assert.equal(tracker.state, "unhealthy");
  assert.equal(tracker.lastChange, 300);
  assert.equal(tracker.lastError, "check failed");
  tracker.record(true, 400);
  assert.equal(tracker.consecutiveSuccesses, 1);
  assert.equal(tracker.consecutiveFailures, 0);
  assert.equal(tracker.lastError, "check failed", "kept after a success");
  assert.equal(tracker.lastCheck, 400);
  assert.equal(tracker.lastChange, 300);
  assert.equal(tracker.checks, 4);
  assert.equal(tracker.failedChecks, 2);
});

Deno.test("HealthTracker: peek predicts record without changing anything", () => {
  const tracker = new HealthTracker({ rise: 2, fall: 2, initial: "healthy" });
  tracker.record(false, 1);
  assert.equal(tracker.peek(true), "healthy");
  assert.equal(tracker.peek(false), "unhealthy");
  assert.equal(tracker.consecutiveFailures, 1);
  assert.equal(tracker.checks, 1);
  assert.equal(tracker.record(false, 2)?.to, "unhealthy");
});

Deno.test("HealthTracker: reconfigure keeps state and counters", () => {
  const tracker = new HealthTracker({ rise: 5, fall: 1, initial: "unhealthy" });
  tracker.record(true, 1);
  tracker.record(true, 2);
  tracker.reconfigure({ rise: 3, fall: 1 });
  assert.equal(tracker.state, "unhealthy");
  assert.equal(tracker.rise, 3);
  assert.deepEqual(tracker.record(true, 3), { from: "unhealthy", to: "healthy", at: 3 });
});

Deno.test("HealthTracker: rejects thresholds that are not positive integers", () => {
  for (const [rise, fall] of [[0, 1], [1, 0], [1.5, 1], [1, Number.NaN], [-1, 2]]) {
    assert.throws(() => new HealthTracker({ rise: rise!, fall: fall! }), RangeError);
  }
  assert.throws(
    () => new HealthTracker({ rise: 0, fall: 1 }),
    {
      name: "RangeError",
      message: "Cannot track health as 'rise' must be a positive integer: current value is 0",
    },
  );
  const tracker = new HealthTracker({ rise: 1, fall: 1 });
  assert.throws(() => tracker.reconfigure({ rise: 1, fall: 0 }), RangeError);
  assert.equal(tracker.fall, 1);
});
