import assert from "node:assert/strict";
import type { EndpointInfo, EndpointSliceInfo } from "../core/inventory.ts";
import {
  isReady,
  isServingTerminating,
  localEndpoints,
  localNodeVerdict,
} from "./_endpoint_readiness.ts";

Deno.test("isReady() and isServingTerminating() read conditions as kube-proxy does", () => {
  const cases: [Omit<EndpointInfo, "addresses">, boolean, boolean][] = [
    [{}, true, false],
    [{ ready: true }, true, false],
    [{ ready: false }, false, false],
    [{ ready: false, serving: true, terminating: true }, false, true],
    [{ ready: false, terminating: true }, false, true],
    [{ ready: false, serving: false, terminating: true }, false, false],
    [{ ready: true, terminating: true }, false, true],
  ];
  for (const [conditions, ready, servingTerminating] of cases) {
    const ep = { addresses: ["10.1.0.1"], ...conditions };
    assert.equal(isReady(ep), ready, JSON.stringify(conditions));
    assert.equal(isServingTerminating(ep), servingTerminating, JSON.stringify(conditions));
  }
});

function slice(endpoints: EndpointInfo[]): EndpointSliceInfo {
  return {
    namespace: "web",
    name: "app-1",
    serviceName: "app",
    addressType: "IPv4",
    ports: [{ name: "http", port: 8080, protocol: "TCP" }],
    endpoints,
  };
}

Deno.test("localNodeVerdict() falls back to serving terminating nodes only when none is ready", () => {
  const terminating = { ready: false, serving: true, terminating: true };
  const mixed = localEndpoints([
    slice([
      { addresses: ["10.1.0.1"], nodeName: "n1" },
      { addresses: ["10.1.0.2"], nodeName: "n2", ...terminating },
      { addresses: ["10.1.0.3"], nodeName: "n3", ready: false },
      { addresses: ["10.1.0.4"], ...terminating },
    ]),
  ]);
  assert.deepEqual([...mixed.ready], ["n1"]);
  assert.deepEqual([...mixed.servingTerminating], ["n2"]);
  assert.equal(localNodeVerdict(mixed, "n1"), "ready");
  assert.deepEqual(localNodeVerdict(mixed, "n2"), {
    detail: "externalTrafficPolicy is Local and the endpoints on this node are terminating " +
      "while other nodes have ready ones",
  });
  assert.deepEqual(localNodeVerdict(mixed, "n3"), {
    detail: "externalTrafficPolicy is Local and no ready endpoint runs on this node",
  });

  const draining = localEndpoints([
    slice([{ addresses: ["10.1.0.2"], nodeName: "n2", ...terminating }]),
  ]);
  assert.equal(localNodeVerdict(draining, "n2"), "serving-terminating");
  assert.deepEqual(localNodeVerdict(draining, "n1"), {
    detail: "externalTrafficPolicy is Local and no ready endpoint runs on this node",
  });
});
