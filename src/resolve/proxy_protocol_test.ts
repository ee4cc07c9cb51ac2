/**
 * PROXY protocol toward backends as resolution settles it: the listener's `proxyProtocol`,
 * the Service annotation over it, and the health target's check that follows the backend.
 */
import assert from "node:assert/strict";
import type { ServiceInfo } from "../core/inventory.ts";
import type { PoolSpec } from "../core/pool_spec.ts";
import type { ProxyProtocolVersion } from "../core/types.ts";
import { ANNOTATION_PROXY_PROTOCOL, parseProxyProtocol } from "./annotations.ts";
import { resolvePool } from "./resolve.ts";
import { CHECK, inventory, node, slice } from "./_resolve_test_fixtures.ts";

function spec(proxyProtocol?: ProxyProtocolVersion): PoolSpec {
  return {
    name: "web",
    listenerAddress: ":80",
    backendPortName: "http",
    backendMode: "clusterip",
    nodeAddressTypes: ["InternalIP"],
    excludeCordonedNodes: false,
    backends: [{ host: "192.0.2.9", port: 80, weight: 1 }],
    healthCheck: CHECK,
    ...(proxyProtocol && { proxyProtocol }),
  };
}

function service(name: string, clusterIP: string, annotation?: string): ServiceInfo {
  return {
    namespace: "ns",
    name,
    type: "ClusterIP",
    labels: {},
    annotations: {
      "nautiluslb.cloudresty.io/enabled": "true",
      ...(annotation !== undefined && { [ANNOTATION_PROXY_PROTOCOL]: annotation }),
    },
    clusterIPs: [clusterIP],
    ports: [{ name: "http", protocol: "TCP", port: 80 }],
  };
}

Deno.test("parseProxyProtocol accepts v1, v2 and off in any case, nothing else", () => {
  const cases: [string, ProxyProtocolVersion | "off" | undefined][] = [
    ["v1", "v1"],
    [" V2 ", "v2"],
    ["off", "off"],
    ["v3", undefined],
    ["true", undefined],
    ["", undefined],
  ];
  for (const [text, expected] of cases) assert.equal(parseProxyProtocol(text), expected, text);
});

Deno.test("the annotation sets PROXY protocol per Service over the listener's; bad is a warning", () => {
  const services = [
    service("plain", "10.96.0.1"),
    service("two", "10.96.0.2", "v2"),
    service("off", "10.96.0.3", "off"),
    service("bad", "10.96.0.4", "v3"),
  ];
  const cases: {
    listener?: ProxyProtocolVersion;
    expected: Record<string, ProxyProtocolVersion | undefined>;
    warning: string;
  }[] = [
    {
      expected: {
        "192.0.2.9:80": undefined,
        "10.96.0.1:80": undefined,
        "10.96.0.2:80": "v2",
        "10.96.0.3:80": undefined,
        "10.96.0.4:80": undefined,
      },
      warning:
        'Ignoring annotation nautiluslb.cloudresty.io/proxy-protocol of Service ns/bad: "v3" is not one of v1, v2, off; using off',
    },
    {
      listener: "v1",
      expected: {
        "192.0.2.9:80": "v1",
        "10.96.0.1:80": "v1",
        "10.96.0.2:80": "v2",
        "10.96.0.3:80": undefined,
        "10.96.0.4:80": "v1",
      },
      warning:
        'Ignoring annotation nautiluslb.cloudresty.io/proxy-protocol of Service ns/bad: "v3" is not one of v1, v2, off; using v1',
    },
  ];
  for (const { listener, expected, warning } of cases) {
    const plan = resolvePool(inventory({ services }), spec(listener));
    const got = Object.fromEntries(plan.backends.map((b) => [b.address, b.proxyProtocol]));
    assert.deepEqual(got, expected, `listener ${listener}`);
    const checks = Object.fromEntries(
      plan.healthTargets.map((t) => [t.key, t.check.proxyProtocol]),
    );
    assert.deepEqual(checks, expected, `checks, listener ${listener}`);
    assert.ok(plan.warnings.includes(warning), plan.warnings.join("\n"));
    assert.equal(plan.warnings.filter((w) => w.includes("proxy-protocol")).length, 1);
  }
});

Deno.test("a kube-proxy HTTP check of a PROXY protocol backend sends no header", () => {
  const svc: ServiceInfo = {
    ...service("local", "10.96.0.5", "v2"),
    type: "NodePort",
    externalTrafficPolicy: "Local",
    healthCheckNodePort: 31000,
    ports: [{ name: "http", protocol: "TCP", port: 80, nodePort: 30080 }],
  };
  const inv = inventory({
    services: [svc],
    nodes: [node("n1", "10.0.0.1")],
    slices: [
      slice("ns/local", "local-abc", [{
        addresses: ["10.244.1.5"],
        nodeName: "n1",
        podName: "web-1",
      }]),
    ],
  });
  const plan = resolvePool(inv, { ...spec(), backendMode: "nodeport", backends: [] });
  assert.equal(plan.backends.length, 1, JSON.stringify(plan.excluded));
  assert.equal(plan.backends[0]!.proxyProtocol, "v2");
  assert.deepEqual(plan.healthTargets[0]!.check.http, { port: 31000, path: "/healthz" });
  assert.equal(plan.healthTargets[0]!.check.proxyProtocol, undefined);
});
