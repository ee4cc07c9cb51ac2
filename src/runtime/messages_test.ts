import assert from "node:assert/strict";
import fc from "fast-check";
import { VersionGate } from "./messages.ts";

Deno.test("VersionGate: an older or repeated version after a newer one is dropped", () => {
  const gate = new VersionGate();
  assert.equal(gate.accept(1), true);
  assert.equal(gate.accept(3), true);
  assert.equal(gate.accept(2), false);
  assert.equal(gate.accept(3), false);
  assert.equal(gate.accept(Number.NaN), false);
  assert.equal(gate.last, 3);
  assert.equal(gate.accept(4), true);
});

Deno.test("VersionGate: what it accepts from any order is strictly increasing", () => {
  fc.assert(fc.property(fc.array(fc.integer({ min: 0, max: 50 })), (versions) => {
    const gate = new VersionGate();
    const accepted = versions.filter((v) => gate.accept(v));
    for (let i = 1; i < accepted.length; i++) assert.ok(accepted[i]! > accepted[i - 1]!);
    assert.equal(accepted.at(-1), versions.length === 0 ? undefined : Math.max(...versions));
  }));
});
