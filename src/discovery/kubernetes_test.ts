import assert from "node:assert/strict";
import { KubernetesDiscovery } from "./kubernetes.ts";

Deno.test("KubernetesDiscovery rejects options it cannot work with", () => {
  const signal = new AbortController().signal;
  assert.throws(
    () => new KubernetesDiscovery({ namespaces: [], signal, onChange() {} }),
    RangeError,
  );
  assert.throws(
    () =>
      new KubernetesDiscovery({
        namespaces: "all",
        signal,
        onChange() {},
        backoff: { initialMs: 100, maxMs: 10 },
      }),
    /Cannot back off as 'backoff' must have 0 < initialMs <= maxMs/,
  );
});
