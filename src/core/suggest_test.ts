import assert from "node:assert/strict";
import { editDistance, suggest } from "./suggest.ts";

Deno.test("editDistance() counts edits, a swap of neighbours as one", () => {
  const cases: readonly [string, string, number][] = [
    ["", "", 0],
    ["abc", "", 3],
    ["name", "name", 0],
    ["naem", "name", 1],
    ["listenerAdress", "listenerAddress", 1],
    ["kitten", "sitting", 3],
  ];
  for (const [a, b, expected] of cases) {
    assert.equal(editDistance(a, b), expected, `${a} -> ${b}`);
    assert.equal(editDistance(b, a), expected, `${b} -> ${a}`);
  }
});

Deno.test("suggest() picks a close candidate, or none", () => {
  const keys = ["name", "listenerAddress", "backendPortName", "requestTimeout", "namespace"];
  const cases: readonly [string, string | undefined][] = [
    ["listenAddress", "listenerAddress"],
    ["listener_address", "listenerAddress"],
    ["backend-port-name", "backendPortName"],
    ["RequestTimeout", "requestTimeout"],
    ["nmae", "name"],
    ["names", "name"],
    // "name" is as near in edits, but not near enough for a word this long: "namespace" is.
    ["namapce", "namespace"],
    ["request", "requestTimeout"],
    ["timeout", undefined],
    ["frobnicate", undefined],
    ["", undefined],
  ];
  for (const [word, expected] of cases) assert.equal(suggest(word, keys), expected, word);
  assert.equal(suggest("x", []), undefined);
});
