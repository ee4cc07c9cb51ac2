import assert from "node:assert/strict";
import { naturalKey, sortEntries } from "./_compare.ts";

Deno.test("naturalKey() orders digit runs as numbers", () => {
  const sorted = ["10.0.0.10:80", "9.0.0.1:80", "10.0.0.2:8080", "10.0.0.2:80", "[fd00::a]:1", "a1"]
    .sort((a, b) => (naturalKey(a) < naturalKey(b) ? -1 : 1));
  assert.deepEqual(sorted, [
    "9.0.0.1:80",
    "10.0.0.2:80",
    "10.0.0.2:8080",
    "10.0.0.10:80",
    "[fd00::a]:1",
    "a1",
  ]);
});

Deno.test("sortEntries() orders by address, then service, node, pod, reason; absent first", () => {
  const entries = [
    { address: "10.0.0.2:80", service: "b" },
    { address: "10.0.0.2:80", service: "a", node: "n2" },
    { address: "10.0.0.2:80", service: "a", node: "n1" },
    { address: "10.0.0.2:80" },
    { service: "z" },
    { address: "10.0.0.1:80", service: "a", reason: "terminating" },
    { address: "10.0.0.1:80", service: "a", reason: "not-ready" },
  ];
  assert.deepEqual(sortEntries([...entries], (e) => e), [
    { service: "z" },
    { address: "10.0.0.1:80", service: "a", reason: "not-ready" },
    { address: "10.0.0.1:80", service: "a", reason: "terminating" },
    { address: "10.0.0.2:80" },
    { address: "10.0.0.2:80", service: "a", node: "n1" },
    { address: "10.0.0.2:80", service: "a", node: "n2" },
    { address: "10.0.0.2:80", service: "b" },
  ]);
});
