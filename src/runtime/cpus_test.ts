import assert from "node:assert/strict";
import { availableCpus, parseCpuList } from "./cpus.ts";

Deno.test("parseCpuList counts ranges and single CPUs", () => {
  const cases: [string, number | undefined][] = [
    ["0", 1],
    ["0-1", 2],
    ["0-3,8,10-11\n", 7],
    [" 4-4 ", 1],
    ["", undefined],
    ["3-1", undefined],
    ["0-1,x", undefined],
    ["ff", undefined],
  ];
  for (const [text, expected] of cases) assert.equal(parseCpuList(text), expected, text);
});

Deno.test("availableCpus is a positive integer no larger than the machine", () => {
  const n = availableCpus();
  assert.ok(Number.isInteger(n) && n >= 1, String(n));
  assert.ok(n <= Math.max(1, navigator.hardwareConcurrency), String(n));
});
