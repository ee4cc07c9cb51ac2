import assert from "node:assert/strict";
import { type ListenerConfig, parseConfig } from "../config/mod.ts";
import type { Inventory, NodeInfo, ServiceInfo } from "../core/inventory.ts";
import type { PlannedBackend, PoolPlan } from "../core/plan.ts";
import type { HealthCheckSpec } from "../health/mod.ts";
import { baseCheck, healthPlan, overrideCheck } from "./_health.ts";
import { HEALTH_ANNOTATION_PREFIX } from "../resolve/mod.ts";

/** Listeners as the config loader builds them: defaults plus what the YAML sets. */
function listeners(): ListenerConfig[] {
  const result = parseConfig(
    `configurations:
  - name: web
    listenerAddress: ":8080"
    backendPortName: http
    healthCheck: {interval: 2s, timeout: 1s, rise: 2, fall: 3, maxEjectionPercent: 50}
  - name: db
    listenerAddress: ":5432"
    backendPortName: db
    healthCheck: {interval: 5s, timeout: 500ms, rise: 1, fall: 1, send: "ping", expect: "pong"}
`,
    "config.yaml",
  );
  if (!result.ok) throw new Error(JSON.stringify(result.issues));
  return [...result.config.configurations];
}

const WEB_CHECK: HealthCheckSpec = {
  enabled: true,
  intervalMs: 2000,
  timeoutMs: 1000,
  rise: 2,
  fall: 3,
  maxEjectionPercent: 50,
};

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

function node(name: string, address: string): NodeInfo {
  return {
    name,
    labels: {},
    ready: "True",
    unschedulable: false,
    addresses: [{ type: "InternalIP", address }],
  };
}

function inventory(services: ServiceInfo[], nodes: NodeInfo[] = []): Inventory {
  return {
    services: new Map(services.map((s) => [`${s.namespace}/${s.name}`, s])),
    nodes: new Map(nodes.map((n) => [n.name, n])),
    endpointSlices: new Map(),
    hasEndpointSlices: true,
  };
}

function backend(host: string, port: number, extra: Partial<PlannedBackend> = {}): PlannedBackend {
  return { address: `${host}:${port}`, host, port, weight: 1, ...extra };
}

function plan(name: string, backends: PlannedBackend[]): PoolPlan {
  return { name, listenerAddress: ":8080", backends, excluded: [], warnings: [] };
}

const annotation = (key: string) => HEALTH_ANNOTATION_PREFIX + key;

Deno.test("baseCheck is the listener's healthCheck settings", () => {
  const [web, db] = listeners();
  assert.deepEqual(baseCheck(web!), WEB_CHECK);
  assert.deepEqual(baseCheck(db!), {
    enabled: true,
    intervalMs: 5000,
    timeoutMs: 500,
    rise: 1,
    fall: 1,
    send: "ping",
    expect: "pong",
    maxEjectionPercent: 50,
  });
});

Deno.test("overrideCheck applies valid annotations over the listener's values", () => {
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

Deno.test("overrideCheck keeps the listener's value and warns on a bad annotation", () => {
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

Deno.test("overrideCheck applies the good annotations beside bad ones, warnings in key order", () => {
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

Deno.test("overrideCheck does not change the base check", () => {
  const base = { ...WEB_CHECK };
  overrideCheck(base, service("web", { [annotation("rise")]: "7" }), []);
  assert.deepEqual(base, WEB_CHECK);
});

Deno.test("healthPlan gives every backend its pool's check, overridden per Service", () => {
  const inv = inventory([
    service("tuned", { [annotation("interval")]: "100ms", [annotation("fall")]: "1" }),
    service("plain"),
  ]);
  const { targets, warnings } = healthPlan(
    [
      plan("web", [
        backend("10.0.0.1", 30080, { service: "ns/tuned", node: "n1" }),
        backend("10.0.0.2", 30080, { service: "ns/tuned", node: "n2" }),
        backend("10.0.0.1", 30081, { service: "ns/plain", node: "n1" }),
        backend("192.0.2.7", 8080),
        // Its Service is gone from the inventory: the listener's check.
        backend("10.0.0.3", 30082, { service: "ns/vanished" }),
      ]),
      plan("db", [backend("10.0.0.9", 5432, { service: "ns/tuned" })]),
      // No listener of that name: no targets.
      plan("orphan", [backend("10.0.0.8", 1)]),
    ],
    listeners(),
    inv,
  );
  const tuned = { ...WEB_CHECK, intervalMs: 100, fall: 1 };
  const db = baseCheck(listeners()[1]!);
  assert.deepEqual(targets, [
    { key: "10.0.0.1:30080", pool: "web", host: "10.0.0.1", port: 30080, check: tuned },
    { key: "10.0.0.2:30080", pool: "web", host: "10.0.0.2", port: 30080, check: tuned },
    { key: "10.0.0.1:30081", pool: "web", host: "10.0.0.1", port: 30081, check: WEB_CHECK },
    { key: "192.0.2.7:8080", pool: "web", host: "192.0.2.7", port: 8080, check: WEB_CHECK },
    { key: "10.0.0.3:30082", pool: "web", host: "10.0.0.3", port: 30082, check: WEB_CHECK },
    // Overrides apply over each listener's own check.
    {
      key: "10.0.0.9:5432",
      pool: "db",
      host: "10.0.0.9",
      port: 5432,
      check: { ...db, intervalMs: 100, fall: 1 },
    },
  ]);
  assert.deepEqual(warnings, new Map());
});

Deno.test("healthPlan reports a bad annotation once per pool and uses the default", () => {
  const inv = inventory([service("web", { [annotation("timeout")]: "soon" })]);
  const backends = [
    backend("10.0.0.1", 30080, { service: "ns/web", node: "n1" }),
    backend("10.0.0.2", 30080, { service: "ns/web", node: "n2" }),
  ];
  const { targets, warnings } = healthPlan(
    [plan("web", backends), plan("db", backends)],
    listeners(),
    inv,
  );
  assert.deepEqual(targets.map((t) => [t.pool, t.check.timeoutMs]), [
    ["web", 1000],
    ["web", 1000],
    ["db", 500],
    ["db", 500],
  ]);
  const warning = `Service ns/web: annotation ${
    annotation("timeout")
  } "soon" ignored: Cannot parse duration "soon": expected a number with a unit (ms, s, m, h), e.g. "5s" or "250ms"`;
  assert.deepEqual(warnings, new Map([["web", [warning]], ["db", [warning]]]));
});

Deno.test("healthPlan checks kube-proxy's healthCheckNodePort for Local NodePort backends", () => {
  const local = service("local", { [annotation("rise")]: "3", [annotation("port")]: "9000" }, {
    externalTrafficPolicy: "Local",
    healthCheckNodePort: 32456,
  });
  const cases: {
    name: string;
    service: ServiceInfo;
    backend: PlannedBackend;
    http?: { port: number; path: string };
  }[] = [
    {
      name: "Local NodePort backend",
      service: local,
      backend: backend("10.0.0.1", 30080, { service: "ns/local", node: "n1" }),
      http: { port: 32456, path: "/healthz" },
    },
    {
      name: "Cluster policy",
      service: { ...local, externalTrafficPolicy: "Cluster" },
      backend: backend("10.0.0.1", 30080, { service: "ns/local", node: "n1" }),
    },
    {
      name: "no healthCheckNodePort",
      service: { ...local, healthCheckNodePort: undefined },
      backend: backend("10.0.0.1", 30080, { service: "ns/local", node: "n1" }),
    },
    {
      name: "healthCheckNodePort 0",
      service: { ...local, healthCheckNodePort: 0 },
      backend: backend("10.0.0.1", 30080, { service: "ns/local", node: "n1" }),
    },
    {
      name: "cluster IP backend (no node)",
      service: local,
      backend: backend("10.96.0.10", 80, { service: "ns/local" }),
    },
    {
      // backendMode endpoints: a pod IP on its node; kube-proxy does not listen there.
      name: "endpoint backend with node and pod",
      service: local,
      backend: backend("10.244.1.5", 8080, { service: "ns/local", node: "n1", pod: "web-1" }),
    },
    {
      name: "endpoint backend with node, not a Pod",
      service: local,
      backend: backend("10.244.1.6", 8080, { service: "ns/local", node: "n1" }),
    },
  ];
  for (const c of cases) {
    const { targets, warnings } = healthPlan(
      [plan("web", [c.backend])],
      listeners(),
      inventory([c.service], [node("n1", "10.0.0.1")]),
    );
    const expected: HealthCheckSpec = { ...WEB_CHECK, rise: 3, port: 9000 };
    assert.deepEqual(
      targets.map((t) => t.check),
      [c.http === undefined ? expected : { ...expected, http: c.http }],
      c.name,
    );
    assert.deepEqual(warnings, new Map(), c.name);
  }
});

Deno.test("healthPlan without an inventory uses the listener's check", () => {
  const { targets } = healthPlan(
    [plan("web", [backend("10.0.0.1", 30080, { service: "ns/web", node: "n1" })])],
    listeners(),
    undefined,
  );
  assert.deepEqual(targets.map((t) => t.check), [WEB_CHECK]);
});
