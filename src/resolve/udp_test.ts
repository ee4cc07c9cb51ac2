/**
 * UDP pools: Service ports with `protocol: UDP` for `protocol: udp` listeners, TCP ports for
 * the others, and the TCP twin (`dns-tcp`) as the UDP backends' health check port.
 */
import assert from "node:assert/strict";
import type { EndpointSliceInfo, Inventory, ServiceInfo } from "../core/inventory.ts";
import type { PoolSpec } from "../core/pool_spec.ts";
import { resolvePools } from "./resolve.ts";
import { CHECK, inventory as fixtureInventory, node } from "./_resolve_test_fixtures.ts";

function spec(overrides: Partial<PoolSpec>): PoolSpec {
  return {
    name: "dns",
    listenerAddress: ":53",
    backendPortName: "dns",
    backendMode: "auto",
    nodeAddressTypes: ["InternalIP"],
    excludeCordonedNodes: false,
    backends: [],
    healthCheck: CHECK,
    ...overrides,
  };
}

/** kube-dns as clusters ship it: `dns` UDP 53 and `dns-tcp` TCP 53. */
function kubeDns(extra: Partial<ServiceInfo> = {}): ServiceInfo {
  return {
    namespace: "kube-system",
    name: "kube-dns",
    type: "NodePort",
    labels: {},
    annotations: { "nautiluslb.cloudresty.io/enabled": "true" },
    clusterIPs: ["10.96.0.10"],
    ports: [
      { name: "dns", protocol: "UDP", port: 53, nodePort: 30053 },
      { name: "dns-tcp", protocol: "TCP", port: 53, nodePort: 30054 },
    ],
    ...extra,
  };
}

function inventory(services: ServiceInfo[], slices: EndpointSliceInfo[] = []): Inventory {
  return fixtureInventory({ services, nodes: [node("n1", "10.0.0.1")], slices });
}

Deno.test("resolve udp: a udp listener takes the UDP port; its check goes to the TCP twin", () => {
  const [plan] = resolvePools(inventory([kubeDns()]), [spec({ protocol: "udp" })]);
  assert.deepEqual(plan!.backends.map((b) => b.address), ["10.0.0.1:30053"]);
  assert.deepEqual(plan!.excluded, []);
  assert.deepEqual(plan!.healthTargets.map((t) => [t.key, t.port, t.check.port]), [
    ["10.0.0.1:30053", 30053, 30054],
  ]);
});

Deno.test("resolve udp: clusterip and endpoints modes check the twin's port too", () => {
  const slice: EndpointSliceInfo = {
    namespace: "kube-system",
    name: "kube-dns-abc",
    serviceName: "kube-dns",
    addressType: "IPv4",
    ports: [
      { name: "dns", port: 5353, protocol: "UDP" },
      { name: "dns-tcp", port: 5354, protocol: "TCP" },
    ],
    endpoints: [{ addresses: ["10.244.0.5"], ready: true }],
  };
  const [clusterIp, endpoints] = resolvePools(inventory([kubeDns()], [slice]), [
    spec({ protocol: "udp", backendMode: "clusterip" }),
    spec({ name: "dns-pods", protocol: "udp", backendMode: "endpoints" }),
  ]);
  assert.deepEqual(clusterIp!.healthTargets.map((t) => [t.key, t.check.port]), [
    ["10.96.0.10:53", 53],
  ]);
  assert.deepEqual(endpoints!.healthTargets.map((t) => [t.key, t.check.port]), [
    ["10.244.0.5:5353", 5354],
  ]);
});

Deno.test("resolve udp: a check with a port or a dnsQuery keeps it", () => {
  const [withPort, withDns] = resolvePools(inventory([kubeDns()]), [
    spec({ protocol: "udp", healthCheck: { ...CHECK, port: 8053 } }),
    spec({ name: "dns2", protocol: "udp", healthCheck: { ...CHECK, dnsQuery: "." } }),
  ]);
  assert.equal(withPort!.healthTargets[0]!.check.port, 8053);
  assert.equal(withDns!.healthTargets[0]!.check.port, undefined);
  assert.equal(withDns!.healthTargets[0]!.check.dnsQuery, ".");
});

Deno.test("resolve udp: a TCP port named for a udp listener is excluded with the twin named", () => {
  const [plan] = resolvePools(inventory([kubeDns()]), [
    spec({ protocol: "udp", backendPortName: "dns-tcp" }),
  ]);
  assert.deepEqual(plan!.backends, []);
  assert.deepEqual(plan!.excluded, [{
    service: "kube-system/kube-dns",
    reason: "unsupported-protocol",
    detail:
      'port "dns-tcp" is TCP; a udp listener takes UDP ports; port "dns" is UDP on the same number',
  }]);
});

Deno.test("resolve udp: tcp and udp listeners on :53 share one Service", () => {
  const [tcp, udp] = resolvePools(inventory([kubeDns()]), [
    spec({ name: "dns-tcp", backendPortName: "dns-tcp" }),
    spec({ protocol: "udp" }),
  ]);
  assert.deepEqual(tcp!.backends.map((b) => b.address), ["10.0.0.1:30054"]);
  assert.deepEqual(udp!.backends.map((b) => b.address), ["10.0.0.1:30053"]);
  // A TCP pool's check stays on its own port.
  assert.equal(tcp!.healthTargets[0]!.check.port, undefined);
});
