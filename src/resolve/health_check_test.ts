/**
 * Health targets as resolution settles them: the listener's check, per-Service annotations,
 * and kube-proxy's `healthCheckNodePort` for NodePort backends of Local Services.
 */
import assert from "node:assert/strict";
import type { EndpointSliceInfo, Inventory, NodeInfo, ServiceInfo } from "../core/inventory.ts";
import type { HealthCheckSpec, PoolSpec } from "../core/pool_spec.ts";
import { applyHealthAnnotations, HEALTH_ANNOTATION_PREFIX } from "./annotations.ts";
import { healthTargetsOf, resolvePools } from "./resolve.ts";
import { CHECK, inventory as fixtureInventory, node, slice } from "./_resolve_test_fixtures.ts";

const WEB_CHECK = CHECK;

const DB_CHECK: HealthCheckSpec = {
  enabled: true,
  intervalMs: 5000,
  timeoutMs: 500,
  rise: 1,
  fall: 1,
  send: "ping",
  expect: "pong",
  maxEjectionPercent: 50,
};

/** The two listeners: `web` on port name `http`, `db` on `db`, each with its own check. */
function listeners(overrides: Partial<PoolSpec> = {}): PoolSpec[] {
  const common = {
    backendMode: "auto",
    nodeAddressTypes: ["InternalIP"],
    excludeCordonedNodes: false,
    backends: [],
  } as const;
  return [
    {
      ...common,
      name: "web",
      listenerAddress: ":8080",
      backendPortName: "http",
      healthCheck: WEB_CHECK,
      ...overrides,
    },
    {
      ...common,
      name: "db",
      listenerAddress: ":5432",
      backendPortName: "db",
      healthCheck: DB_CHECK,
      ...overrides,
    },
  ];
}

function service(
  name: string,
  annotations: Record<string, string> = {},
  extra: Partial<ServiceInfo> = {},
): ServiceInfo {
  return {
    namespace: "ns",
    name,
    type: "NodePort",
    labels: {},
    annotations: { "nautiluslb.cloudresty.io/enabled": "true", ...annotations },
    clusterIPs: ["10.96.0.10"],
    ports: [{ name: "http", protocol: "TCP", port: 80, nodePort: 30080 }],
    ...extra,
  };
}

function inventory(
  services: ServiceInfo[],
  nodes: NodeInfo[] = [],
  slices: EndpointSliceInfo[] = [],
): Inventory {
  return fixtureInventory({ services, nodes, slices });
}

const annotation = (key: string) => HEALTH_ANNOTATION_PREFIX + key;

/** `applyHealthAnnotations` with the warnings it collects. */
function overrideCheck(
  base: HealthCheckSpec,
  svc: ServiceInfo,
  warnings: string[],
): HealthCheckSpec {
  return applyHealthAnnotations(base, svc.annotations, `${svc.namespace}/${svc.name}`, warnings);
}

Deno.test("static backends get the listener's own check", () => {
  const specs = listeners().map((l, i) => ({
    ...l,
    backendPortName: undefined,
    backends: [{ host: "192.0.2.7", port: 8080 + i, weight: 1 }],
  }));
  const plans = resolvePools(inventory([]), specs);
  assert.deepEqual(healthTargetsOf(plans), [
    { key: "192.0.2.7:8080", pool: "web", host: "192.0.2.7", port: 8080, check: WEB_CHECK },
    { key: "192.0.2.7:8081", pool: "db", host: "192.0.2.7", port: 8081, check: DB_CHECK },
  ]);
});

Deno.test("a spec without a health check gives no targets", () => {
  const [web] = listeners();
  const { healthCheck: _, ...spec } = web!;
  const [plan] = resolvePools(inventory([service("web")], [node("n1", "10.0.0.1")]), [spec]);
  assert.equal(plan!.backends.length, 1);
  assert.deepEqual(plan!.healthTargets, []);
});

Deno.test("applyHealthAnnotations applies valid annotations over the listener's values", () => {
  const cases: {
    name: string;
    annotations: Record<string, string>;
    expected: Partial<HealthCheckSpec>;
  }[] = [
    { name: "no annotation", annotations: {}, expected: {} },
    { name: "interval 500ms", annotations: { interval: "500ms" }, expected: { intervalMs: 500 } },
    { name: "interval in seconds", annotations: { interval: "5" }, expected: { intervalMs: 5000 } },
    {
      name: "interval 1m30s",
      annotations: { interval: "1m30s" },
      expected: { intervalMs: 90_000 },
    },
    { name: "timeout 250ms", annotations: { timeout: "250ms" }, expected: { timeoutMs: 250 } },
    { name: "timeout 1.5s", annotations: { timeout: "1.5s" }, expected: { timeoutMs: 1500 } },
    { name: "rise 5", annotations: { rise: "5" }, expected: { rise: 5 } },
    { name: "rise 1 (lowest)", annotations: { rise: "1" }, expected: { rise: 1 } },
    { name: "fall 100 (highest)", annotations: { fall: "100" }, expected: { fall: 100 } },
    { name: "fall with spaces", annotations: { fall: " 4 " }, expected: { fall: 4 } },
    { name: "port 8081", annotations: { port: "8081" }, expected: { port: 8081 } },
    { name: "port 65535", annotations: { port: "65535" }, expected: { port: 65535 } },
    {
      name: "all five",
      annotations: { interval: "10s", timeout: "3s", rise: "4", fall: "6", port: "9000" },
      expected: { intervalMs: 10_000, timeoutMs: 3000, rise: 4, fall: 6, port: 9000 },
    },
  ];
  for (const c of cases) {
    const annotations = Object.fromEntries(
      Object.entries(c.annotations).map(([k, v]) => [annotation(k), v]),
    );
    const warnings: string[] = [];
    const check = overrideCheck(WEB_CHECK, service("web", annotations), warnings);
    assert.deepEqual(check, { ...WEB_CHECK, ...c.expected }, c.name);
    assert.deepEqual(warnings, [], c.name);
  }
});

Deno.test("applyHealthAnnotations keeps the listener's value and warns on a bad annotation", () => {
  const durationSyntax = 'expected a number with a unit (ms, s, m, h), e.g. "5s" or "250ms"';
  const cases: { key: string; value: string; why: string }[] = [
    { key: "interval", value: "fast", why: `Cannot parse duration "fast": ${durationSyntax}` },
    { key: "interval", value: "5 s", why: `Cannot parse duration "5 s": ${durationSyntax}` },
    { key: "interval", value: "-1s", why: `Cannot parse duration "-1s": ${durationSyntax}` },
    { key: "interval", value: "0s", why: "must be at least 1ms" },
    { key: "interval", value: "0", why: "must be at least 1ms" },
    { key: "timeout", value: "", why: "Cannot parse duration: empty string" },
    { key: "timeout", value: "0.1ms", why: "must be at least 1ms" },
    { key: "rise", value: "0", why: "rise must be an integer in range 1-100" },
    { key: "rise", value: "two", why: "rise must be an integer in range 1-100" },
    { key: "rise", value: "", why: "rise must be an integer in range 1-100" },
    { key: "fall", value: "101", why: "fall must be an integer in range 1-100" },
    { key: "fall", value: "2.5", why: "fall must be an integer in range 1-100" },
    { key: "fall", value: "-1", why: "fall must be an integer in range 1-100" },
    { key: "fall", value: "+3", why: "fall must be an integer in range 1-100" },
    { key: "fall", value: "1e2", why: "fall must be an integer in range 1-100" },
    { key: "port", value: "0", why: "port must be an integer in range 1-65535" },
    { key: "port", value: "65536", why: "port must be an integer in range 1-65535" },
    { key: "port", value: "http", why: "port must be an integer in range 1-65535" },
    { key: "port", value: "0x50", why: "port must be an integer in range 1-65535" },
  ];
  for (const c of cases) {
    const name = annotation(c.key);
    const warnings: string[] = [];
    const check = overrideCheck(WEB_CHECK, service("web", { [name]: c.value }), warnings);
    const label = `${c.key}=${JSON.stringify(c.value)}`;
    assert.deepEqual(check, WEB_CHECK, label);
    assert.deepEqual(
      warnings,
      [`Service ns/web: annotation ${name} "${c.value}" ignored: ${c.why}`],
      label,
    );
  }
});

Deno.test("applyHealthAnnotations applies the good annotations beside bad ones, warnings in key order", () => {
  const warnings: string[] = ["earlier warning"];
  const check = overrideCheck(
    WEB_CHECK,
    service("web", {
      [annotation("port")]: "99999",
      [annotation("fall")]: "5",
      [annotation("rise")]: "many",
      [annotation("interval")]: "750ms",
      // Not one of the five keys: not read, no warning.
      [annotation("enabled")]: "false",
    }),
    warnings,
  );
  assert.deepEqual(check, { ...WEB_CHECK, intervalMs: 750, fall: 5 });
  assert.deepEqual(warnings, [
    "earlier warning",
    `Service ns/web: annotation ${
      annotation("rise")
    } "many" ignored: rise must be an integer in range 1-100`,
    `Service ns/web: annotation ${
      annotation("port")
    } "99999" ignored: port must be an integer in range 1-65535`,
  ]);
});

Deno.test("applyHealthAnnotations does not change the base check", () => {
  const base = { ...WEB_CHECK };
  overrideCheck(base, service("web", { [annotation("rise")]: "7" }), []);
  assert.deepEqual(base, WEB_CHECK);
});

Deno.test("resolution gives every backend its pool's check, overridden per Service", () => {
  const tuned = service("tuned", { [annotation("interval")]: "100ms", [annotation("fall")]: "1" }, {
    ports: [
      { name: "http", protocol: "TCP", port: 80, nodePort: 30080 },
      { name: "db", protocol: "TCP", port: 5432, nodePort: 30432 },
    ],
  });
  const plain = service("plain", {}, {
    ports: [{ name: "http", protocol: "TCP", port: 80, nodePort: 30081 }],
  });
  const [web, db] = listeners();
  const plans = resolvePools(
    inventory([tuned, plain], [node("n1", "10.0.0.1"), node("n2", "10.0.0.2")]),
    [{ ...web!, backends: [{ host: "192.0.2.7", port: 8080, weight: 1 }] }, db!],
  );
  const tunedCheck = { ...WEB_CHECK, intervalMs: 100, fall: 1 };
  assert.deepEqual(healthTargetsOf(plans), [
    { key: "10.0.0.1:30080", pool: "web", host: "10.0.0.1", port: 30080, check: tunedCheck },
    { key: "10.0.0.1:30081", pool: "web", host: "10.0.0.1", port: 30081, check: WEB_CHECK },
    { key: "10.0.0.2:30080", pool: "web", host: "10.0.0.2", port: 30080, check: tunedCheck },
    { key: "10.0.0.2:30081", pool: "web", host: "10.0.0.2", port: 30081, check: WEB_CHECK },
    { key: "192.0.2.7:8080", pool: "web", host: "192.0.2.7", port: 8080, check: WEB_CHECK },
    // Overrides apply over each listener's own check.
    {
      key: "10.0.0.1:30432",
      pool: "db",
      host: "10.0.0.1",
      port: 30432,
      check: { ...DB_CHECK, intervalMs: 100, fall: 1 },
    },
    {
      key: "10.0.0.2:30432",
      pool: "db",
      host: "10.0.0.2",
      port: 30432,
      check: { ...DB_CHECK, intervalMs: 100, fall: 1 },
    },
  ]);
  // Targets follow the backends, one each, in order.
  for (const plan of plans) {
    assert.deepEqual(plan.healthTargets.map((t) => t.key), plan.backends.map((b) => b.address));
  }
  assert.deepEqual(plans.map((p) => p.warnings), [
    [
      'Services ns/plain, ns/tuned all have a port named "http" and are merged into one pool; ' +
      'set "service" or "serviceSelector" to narrow it',
    ],
    [],
  ]);
});

Deno.test("resolution reports a bad annotation once per pool and uses the listener's value", () => {
  const svc = service("web", { [annotation("timeout")]: "soon" }, {
    ports: [
      { name: "http", protocol: "TCP", port: 80, nodePort: 30080 },
      { name: "db", protocol: "TCP", port: 5432, nodePort: 30432 },
    ],
  });
  const plans = resolvePools(
    inventory([svc], [node("n1", "10.0.0.1"), node("n2", "10.0.0.2")]),
    listeners(),
  );
  assert.deepEqual(healthTargetsOf(plans).map((t) => [t.pool, t.check.timeoutMs]), [
    ["web", 1000],
    ["web", 1000],
    ["db", 500],
    ["db", 500],
  ]);
  const warning = `Service ns/web: annotation ${
    annotation("timeout")
  } "soon" ignored: Cannot parse duration "soon": expected a number with a unit (ms, s, m, h), e.g. "5s" or "250ms"`;
  assert.deepEqual(plans.map((p) => [p.name, p.warnings]), [["web", [warning]], ["db", [
    warning,
  ]]]);
});

Deno.test("a Service whose backends are all left out gets no health warning", () => {
  const svc = service("web", { [annotation("rise")]: "many" });
  const [plan] = resolvePools(inventory([svc], []), listeners().slice(0, 1));
  assert.deepEqual(plan!.warnings, ["Service ns/web: the inventory has no nodes"]);
});

Deno.test("kube-proxy's healthCheckNodePort is checked for Local NodePort backends only", () => {
  const local = service("local", { [annotation("rise")]: "3", [annotation("port")]: "9000" }, {
    externalTrafficPolicy: "Local",
    healthCheckNodePort: 32456,
  });
  const localSlice = slice("ns/local", "local-abc", [
    { addresses: ["10.244.1.5"], nodeName: "n1", podName: "web-1" },
  ]);
  const cases: {
    name: string;
    service: ServiceInfo;
    spec?: Partial<PoolSpec>;
    key: string;
    http?: { port: number; path: string };
  }[] = [
    {
      name: "Local NodePort backend",
      service: local,
      key: "10.0.0.1:30080",
      http: { port: 32456, path: "/healthz" },
    },
    {
      name: "Cluster policy",
      service: { ...local, externalTrafficPolicy: "Cluster" },
      key: "10.0.0.1:30080",
    },
    {
      name: "no healthCheckNodePort",
      service: { ...local, healthCheckNodePort: undefined },
      key: "10.0.0.1:30080",
    },
    {
      name: "healthCheckNodePort 0",
      service: { ...local, healthCheckNodePort: 0 },
      key: "10.0.0.1:30080",
    },
    {
      name: "cluster IP backend (no node)",
      service: local,
      spec: { backendMode: "clusterip" },
      key: "10.96.0.10:80",
    },
    {
      // backendMode endpoints: a pod IP on its node; kube-proxy does not listen there.
      name: "endpoint backend with node and pod",
      service: local,
      spec: { backendMode: "endpoints" },
      key: "10.244.1.5:8080",
    },
  ];
  for (const c of cases) {
    const plans = resolvePools(
      inventory([c.service], [node("n1", "10.0.0.1")], [localSlice]),
      listeners(c.spec).slice(0, 1),
    );
    const expected: HealthCheckSpec = { ...WEB_CHECK, rise: 3, port: 9000 };
    assert.deepEqual(
      healthTargetsOf(plans).map((t) => [t.key, t.check]),
      [[c.key, c.http === undefined ? expected : { ...expected, http: c.http }]],
      c.name,
    );
    assert.deepEqual(plans[0]!.warnings, [], c.name);
  }
});
