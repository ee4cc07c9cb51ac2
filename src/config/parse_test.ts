import assert from "node:assert/strict";
import type { ListenerConfig } from "./mod.ts";
import {
  type Expected,
  issuesOf,
  listener,
  OPEN_TO_ANY_NAMESPACE,
  ORIGINAL,
  ORIGINAL_CONFIG,
  parseOk,
} from "./_parse_test_helpers.ts";

Deno.test("parseConfig() accepts the original format and fills in every default", () => {
  const { config, warnings } = parseOk(ORIGINAL);
  assert.deepEqual(config, ORIGINAL_CONFIG);
  // The seed's own listeners without `namespace` take any tenant's Service: kept, but warned.
  assert.deepEqual(warnings.map((w) => w.message), OPEN_TO_ANY_NAMESPACE);
});

Deno.test("parseConfig() returns a deeply frozen config", () => {
  const { config } = parseOk(ORIGINAL);
  const first = config.configurations[0]!;
  assert.ok(Object.isFrozen(config));
  assert.ok(Object.isFrozen(config.settings));
  assert.ok(Object.isFrozen(first));
  assert.ok(Object.isFrozen(first.healthCheck));
  assert.ok(Object.isFrozen(first.nodeAddressTypes));
});

Deno.test("parseConfig() reads every optional key", () => {
  const { config, warnings } = parseOk(`
settings:
  kubeconfigPath: /etc/kube/config
  logLevel: debug
  logFormat: json
  accessLog: true
  adminAddress: ""
  shutdownDelay: 5s
  workers: auto
configurations:
  - name: db
    listenerAddress: "127.0.0.1:5432"
    backendPortName: postgres
    namespace: data
    service: data/postgres
    serviceSelector:
      app.kubernetes.io/name: postgres
      tier: ""
    backendMode: endpoints
    nodeAddressTypes: [ExternalIP, Hostname]
    excludeCordonedNodes: true
    backends:
      - "10.0.0.1:5432"
      - address: "[fd00::2]:5432"
        weight: 0
    requestTimeout: 1m30s
    connectTimeout: 250ms
    idleTimeout: 2h
    maxConnections: 0
    maxConnectAttempts: 10
    maxConnectionsPerBackend: 100
    accessLog: false
    drainTimeout: 0
    onRemoval: close
    whenAllUnhealthy: any
    balancer: maglev
    maglev: { tableSize: 251, seed: 42 }
    proxyProtocol: v2
    acceptProxyProtocol: true
    trustedProxies: ["10.0.0.0/8", "fd00::/8", "192.0.2.7"]
    proxyHeaderTimeout: 500ms
    healthCheck:
      enabled: false
      interval: 0.5
      timeout: "100ms"
      rise: 1
      fall: 5
      port: 8008
      send: "PING\\r\\n"
      expect: PONG
      maxEjectionPercent: 0
      tls: true
`);
  assert.deepEqual(warnings, []);
  assert.deepEqual(config.settings, {
    binding: "portName",
    access: { allow: [], deny: [] },
    kubeconfigPath: "/etc/kube/config",
    logLevel: "debug",
    logFormat: "json",
    accessLog: true,
    adminAddress: "",
    shutdownDelayMs: 5000,
    workers: "auto",
  });
  const expected: ListenerConfig = {
    name: "db",
    listenerAddress: "127.0.0.1:5432",
    host: "127.0.0.1",
    port: 5432,
    protocol: "tcp",
    backendPortName: "postgres",
    namespaces: ["data"],
    binding: "portName",
    service: "data/postgres",
    serviceSelector: { "app.kubernetes.io/name": "postgres", tier: "" },
    backendMode: "endpoints",
    nodeAddressTypes: ["ExternalIP", "Hostname"],
    excludeCordonedNodes: true,
    skipControlPlane: false,
    backends: [
      { host: "10.0.0.1", port: 5432, weight: 1 },
      { host: "fd00::2", port: 5432, weight: 0 },
    ],
    balancer: "maglev",
    maglevTableSize: 251,
    maglevSeed: 42,
    requestTimeoutMs: 90_000,
    connectTimeoutMs: 250,
    idleTimeoutMs: 7_200_000,
    maxConnections: 0,
    maxConnectAttempts: 10,
    maxConnectionsPerBackend: 100,
    accessLog: false,
    drainTimeoutMs: 0,
    onRemoval: "close",
    whenAllUnhealthy: "any",
    proxyProtocol: "v2",
    acceptProxyProtocol: true,
    trustedProxies: ["10.0.0.0/8", "fd00::/8", "192.0.2.7"],
    proxyHeaderTimeoutMs: 500,
    access: { allow: [], deny: [] },
    maxConnectionsPerSource: 0,
    slowStartMs: 0,
    healthCheck: {
      enabled: false,
      intervalMs: 500,
      timeoutMs: 100,
      rise: 1,
      fall: 5,
      port: 8008,
      send: "PING\r\n",
      expect: "PONG",
      maxEjectionPercent: 0,
      tls: true,
    },
  };
  assert.deepEqual(config.configurations, [expected]);
});

Deno.test("parseConfig() treats keys written without a value as absent", () => {
  const { config } = parseOk(
    listener("namespace:", "healthCheck:").replace("configurations", "settings:\nconfigurations"),
  );
  assert.equal(config.configurations[0]!.namespaces, undefined);
  assert.equal(config.configurations[0]!.healthCheck.intervalMs, 2000);
  assert.equal(config.settings.adminAddress, "127.0.0.1:9090");
});

Deno.test("parseConfig() accepts static backends without Kubernetes", () => {
  const { config } = parseOk(`configurations:
  - name: static
    listenerAddress: "[::1]:8080"
    backends: ["127.0.0.1:9001", "localhost:9002"]
`);
  const l = config.configurations[0]!;
  assert.equal(l.host, "::1");
  assert.equal(l.port, 8080);
  assert.equal(l.backendPortName, undefined);
  assert.deepEqual(l.backends, [
    { host: "127.0.0.1", port: 9001, weight: 1 },
    { host: "localhost", port: 9002, weight: 1 },
  ]);
});

// deno-fmt-ignore
const ERROR_CASES: readonly { name: string; text: string; issues: readonly Expected[] }[] = [
  {
    name: "YAML syntax error",
    text: 'configurations:\n  - name: "web\n',
    issues: [[3, 1, "", "invalid YAML: deficient indentation"]],
  },
  {
    name: "tab indentation",
    text: "configurations:\n\t- name: web\n",
    issues: [[2, 1, "", "invalid YAML: tab characters must not be used in indentation"]],
  },
  {
    name: "more than one document",
    text: listener() + "---\n" + listener(),
    issues: [[5, 1, "", "invalid YAML: expected one document, found more: remove the extra `---`"]],
  },
  {
    name: "unknown alias",
    text: listener("namespace: *ns"),
    issues: [[5, 16, "", "invalid YAML: unknown alias `*ns`: its anchor `&ns` must come first"]],
  },
  {
    name: "alias that refers to the value containing it",
    text: "x: &loop [1, *loop]\n" + listener(),
    issues: [[1, 14, "", "invalid YAML: alias `*loop` refers to a value that contains it: a config cannot be recursive"]],
  },
  {
    name: "map alias inside its own anchor",
    text: listener("healthCheck: &hc { port: *hc }"),
    issues: [[5, 30, "", "invalid YAML: alias `*hc` refers to a value that contains it: a config cannot be recursive"]],
  },
  {
    name: "alias bomb (billion laughs)",
    text: [
      'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]',
      "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]",
      "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]",
      "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]",
      "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]",
      "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]",
      "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]",
      "h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]",
      "i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h, *h]",
      "",
    ].join("\n") + listener(),
    issues: [[5, 36, "", "invalid YAML: aliases expand to more than 100000 values: reduce the use of `*d`"]],
  },
  {
    name: "nesting deeper than any config needs",
    text: "x: " + "[".repeat(150) + "]".repeat(150) + "\n" + listener(),
    // The top-level map is level 1: the 100th list, at column 103, is level 101.
    issues: [[1, 103, "", "invalid YAML: nesting is deeper than 100 levels"]],
  },
  {
    name: "a number beyond every range, once",
    text: listener("backends:", '  - { address: "10.0.0.1:80", weight: 1e308 }'),
    issues: [[6, 43, "configurations[0].backends[0].weight", "1e+308 is out of range 0-1000"]],
  },
  {
    name: "duplicate key in a flow map",
    text: listener("healthCheck: { rise: 2, rise: 3 }"),
    issues: [[5, 29, "", "duplicate key `rise`"]],
  },
  {
    name: "duplicate key is reported beside schema problems",
    text: listener("namespace: a", "namespace: b", "balancer: nope"),
    issues: [
      [6, 5, "", "duplicate key `namespace`"],
      [7, 15, "configurations[0].balancer", 'expected one of "round_robin", "least_connections", "random_two" or "maglev", got a string ("nope")'],
    ],
  },
  {
    name: "empty file",
    text: "# nothing here\n",
    issues: [[1, 1, "", "the file has no content: expected a map with `configurations`"]],
  },
  {
    name: "document is not a map",
    text: "- a\n- b\n",
    issues: [[1, 1, "", "expected a map, got a list"]],
  },
  {
    name: "no listeners",
    text: "configurations: []\n",
    issues: [[1, 17, "configurations", "at least one listener is required"]],
  },
  {
    name: "unknown keys with suggestions",
    text: `setings:
  logLevel: info
configurations:
  - name: web
    listenerAdress: ":80"
    backendPortName: http
    backend_mode: auto
    kubeconfigPath: ""
    interval: 2s
    frobnicate: true
    healthCheck: { intervl: 1s }
`,
    issues: [
      [1, 1, "setings", "unknown key `setings`: did you mean `settings`?"],
      [4, 5, "configurations[0]", "missing required key `listenerAddress`"],
      [5, 5, "configurations[0].listenerAdress", "unknown key `listenerAdress`: did you mean `listenerAddress`?"],
      [7, 5, "configurations[0].backend_mode", "unknown key `backend_mode`: did you mean `backendMode`?"],
      [8, 5, "configurations[0].kubeconfigPath", "unknown key `kubeconfigPath`: it belongs under `settings`"],
      [9, 5, "configurations[0].interval", "unknown key `interval`: it belongs under `healthCheck`"],
      [10, 5, "configurations[0].frobnicate", "unknown key `frobnicate`"],
      [11, 20, "configurations[0].healthCheck.intervl", "unknown key `intervl`: did you mean `interval`?"],
    ],
  },
  {
    name: "missing required keys and empty values",
    text:
      "configurations:\n  - backendPortName: http\n  - name:\n    listenerAddress: ':81'\n    backendPortName: http\n",
    issues: [
      [2, 5, "configurations[0]", "missing required key `name`"],
      [2, 5, "configurations[0]", "missing required key `listenerAddress`"],
      [3, 5, "configurations[1].name", "missing value for `name`"],
    ],
  },
  {
    name: "wrong types",
    text: listener(
      "namespace: 7",
      "excludeCordonedNodes: yes",
      "maxConnections: many",
      "backends: web:80",
      "serviceSelector: [app]",
      "healthCheck: true",
    ),
    issues: [
      [5, 16, "configurations[0].namespace", "expected a string, got a number (7)"],
      [6, 27, "configurations[0].excludeCordonedNodes", 'expected a boolean, got a string ("yes")'],
      [7, 21, "configurations[0].maxConnections", 'expected an integer, got a string ("many")'],
      [8, 15, "configurations[0].backends", 'expected a list, got a string ("web:80")'],
      [9, 22, "configurations[0].serviceSelector", "expected a map, got a list"],
      [10, 18, "configurations[0].healthCheck", "expected a map, got a boolean (true)"],
    ],
  },
  {
    name: "duplicate listener names point at the second",
    text: `configurations:
  - name: web
    listenerAddress: ":80"
    backendPortName: http
  - name: web
    listenerAddress: ":81"
    backendPortName: http
`,
    issues: [[5, 11, "configurations[1].name", 'duplicate listener name "web": already used by configurations[0]']],
  },
  {
    name: "listeners on the same address and port",
    text: `configurations:
  - { name: a, listenerAddress: ":80", backendPortName: http }
  - { name: b, listenerAddress: "0.0.0.0:80", backendPortName: http }
  - { name: c, listenerAddress: "127.0.0.1:80", backendPortName: http }
  - { name: d, listenerAddress: "[::]:443", backendPortName: http }
  - { name: e, listenerAddress: "10.0.0.1:443", backendPortName: http }
  - { name: f, listenerAddress: "10.0.0.1:8080", backendPortName: http }
  - { name: g, listenerAddress: "10.0.0.2:8080", backendPortName: http }
  - { name: h, listenerAddress: "0.0.0.0:8443", backendPortName: http }
  - { name: i, listenerAddress: "[::1]:8443", backendPortName: http }
  - { name: j, listenerAddress: "[::]:8443", backendPortName: http }
`,
    issues: [
      [3, 33, "configurations[1].listenerAddress", 'address "0.0.0.0:80" conflicts with configurations[0].listenerAddress ":80"'],
      [4, 33, "configurations[2].listenerAddress", 'address "127.0.0.1:80" conflicts with configurations[0].listenerAddress ":80"'],
      [6, 33, "configurations[4].listenerAddress", 'address "10.0.0.1:443" conflicts with configurations[3].listenerAddress "[::]:443"'],
      [11, 33, "configurations[9].listenerAddress", 'address "[::]:8443" conflicts with configurations[7].listenerAddress "0.0.0.0:8443"'],
    ],
  },
  {
    name: "listener on the default admin address",
    text: listener().replace('":80"', '":9090"'),
    issues: [
      [3, 22, "configurations[0].listenerAddress", 'address ":9090" conflicts with the default settings.adminAddress "127.0.0.1:9090": set another one, or "" to disable it'],
    ],
  },
  {
    name: "admin address on a listener's",
    text: listener() + "settings:\n  adminAddress: '0.0.0.0:80'\n",
    issues: [
      [6, 17, "settings.adminAddress", 'address "0.0.0.0:80" conflicts with configurations[0].listenerAddress ":80"'],
    ],
  },
  {
    name: "ports and addresses",
    text: `settings:
  adminAddress: "localhost"
configurations:
  - name: a
    listenerAddress: ":70000"
    backendPortName: http
    healthCheck: { port: 0 }
  - name: b
    listenerAddress: "80"
    backends: ["10.0.0.1", ":80", "::1:80", "bad host:80", "10.0.0.1:80", "10.0.0.1:80"]
`,
    issues: [
      [2, 17, "settings.adminAddress", 'invalid address "localhost": expected "host:port" or ":port"'],
      [5, 22, "configurations[0].listenerAddress", "port 70000 is out of range 1-65535"],
      [7, 26, "configurations[0].healthCheck.port", "port 0 is out of range 1-65535"],
      [9, 22, "configurations[1].listenerAddress", 'invalid address "80": expected "host:port" or ":port"'],
      [10, 16, "configurations[1].backends[0]", 'invalid address "10.0.0.1": expected "host:port" or ":port"'],
      [10, 28, "configurations[1].backends[1]", 'invalid address ":80": a host is required, e.g. "10.0.0.1:80"'],
      [10, 35, "configurations[1].backends[2]", 'invalid address "::1:80": IPv6 hosts must be in brackets, e.g. "[::1]:80"'],
      [10, 45, "configurations[1].backends[3]", 'invalid address "bad host:80": "bad host" is not an IP address or host name'],
      [10, 75, "configurations[1].backends[5]", 'duplicate backend "10.0.0.1:80": already listed as backends[4]'],
    ],
  },
  {
    name: "durations",
    text: listener(
      'requestTimeout: "5 seconds"',
      "connectTimeout: -1",
      "idleTimeout: 0s",
      "drainTimeout: 1000h",
      "healthCheck: { interval: true }",
    ),
    issues: [
      [5, 21, "configurations[0].requestTimeout", 'invalid duration "5 seconds": expected a number of seconds or a number with a unit (ms, s, m, h), e.g. "5s", "250ms" or "1m30s"'],
      [6, 21, "configurations[0].connectTimeout", "invalid duration -1: must not be negative"],
      [7, 18, "configurations[0].idleTimeout", 'invalid duration "0s": must be greater than 0'],
      [8, 19, "configurations[0].drainTimeout", 'invalid duration "1000h": must be at most 596h'],
      [9, 30, "configurations[0].healthCheck.interval", 'expected a duration such as "5s" or a number of seconds, got a boolean (true)'],
    ],
  },
  {
    name: "Kubernetes names",
    text: listener(
      "namespace: Development",
      "service: default/My_Service",
      "serviceSelector: { 'example.com/app': 'a b', '-bad': x }",
    ).replace("backendPortName: http", "backendPortName: http-traffic-port"),
    issues: [
      [4, 22, "configurations[0].backendPortName", 'invalid port name "http-traffic-port": must be at most 15 characters, got 17'],
      [5, 16, "configurations[0].namespace", "invalid namespace \"Development\": must be a DNS-1123 label: lowercase letters, digits and '-', starting and ending with a letter or digit"],
      [6, 14, "configurations[0].service", 'invalid service "default/My_Service": expected "NAMESPACE/NAME"'],
      [7, 43, 'configurations[0].serviceSelector["example.com/app"]', "invalid label value \"a b\": must be at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"],
      [7, 50, 'configurations[0].serviceSelector["-bad"]', "invalid label key \"-bad\": the name must be 1-63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"],
    ],
  },
  {
    name: "port names follow IANA_SVC_NAME",
    text: ["HTTP", "123", "a--b", "-http", "http-", "h_t"].map((portName, i) =>
      `  - { name: l${i}, listenerAddress: ":${8000 + i}", backendPortName: "${portName}" }`
    ).join("\n").replace(/^/, "configurations:\n"),
    issues: [
      [2, 60, "configurations[0].backendPortName", "invalid port name \"HTTP\": must contain only lowercase letters, digits and '-'"],
      [3, 60, "configurations[1].backendPortName", 'invalid port name "123": must contain at least one letter'],
      [4, 60, "configurations[2].backendPortName", "invalid port name \"a--b\": must not contain '--'"],
      [5, 60, "configurations[3].backendPortName", "invalid port name \"-http\": must not begin or end with '-'"],
      [6, 60, "configurations[4].backendPortName", "invalid port name \"http-\": must not begin or end with '-'"],
      [7, 60, "configurations[5].backendPortName", "invalid port name \"h_t\": must contain only lowercase letters, digits and '-'"],
    ],
  },
  {
    name: "service outside the namespace",
    text: listener("namespace: prod", "service: dev/web"),
    issues: [[6, 14, "configurations[0].service", 'service "dev/web" is outside namespace "prod"']],
  },
  {
    name: "a listener needs backendPortName or backends",
    text: `configurations:
  - name: a
    listenerAddress: ":80"
  - name: b
    listenerAddress: ":81"
    backends: []
`,
    issues: [
      [2, 5, "configurations[0]", "a listener needs `backendPortName` or a non-empty `backends` list"],
      [4, 5, "configurations[1]", "a listener needs `backendPortName` or a non-empty `backends` list"],
    ],
  },
  {
    name: "enums, with a suggestion for near misses",
    text: listener(
      "balancer: least_connection",
      "backendMode: NodePort",
      "onRemoval: kill",
      "whenAllUnhealthy: 1",
      "nodeAddressTypes: [InternalIP, internalip]",
    ).replace("configurations", "settings: { logLevel: warn, logFormat: yaml }\nconfigurations"),
    issues: [
      [1, 23, "settings.logLevel", 'expected one of "trace", "debug", "info", "warning", "error" or "fatal", got a string ("warn"): did you mean "warning"?'],
      [1, 40, "settings.logFormat", 'expected one of "text" or "json", got a string ("yaml")'],
      [6, 15, "configurations[0].balancer", 'expected one of "round_robin", "least_connections", "random_two" or "maglev", got a string ("least_connection"): did you mean "least_connections"?'],
      [7, 18, "configurations[0].backendMode", 'expected one of "auto", "nodeport", "clusterip" or "endpoints", got a string ("NodePort"): did you mean "nodeport"?'],
      [8, 16, "configurations[0].onRemoval", 'expected one of "drain" or "close", got a string ("kill")'],
      [9, 23, "configurations[0].whenAllUnhealthy", 'expected one of "reject" or "any", got a number (1)'],
      [10, 36, "configurations[0].nodeAddressTypes[1]", 'expected one of "InternalIP", "ExternalIP" or "Hostname", got a string ("internalip"): did you mean "InternalIP"?'],
    ],
  },
  {
    name: "settings.workers: auto or a count in range",
    text: listener().replace("configurations", "settings: { workers: 0 }\nconfigurations"),
    issues: [
      [1, 22, "settings.workers", "workers 0 is out of range 1-256"],
    ],
  },
  {
    name: "settings.workers: not a count",
    text: listener().replace("configurations", 'settings:\n  workers: "two"\nconfigurations'),
    issues: [
      [2, 12, "settings.workers", 'expected one of "auto", got a string ("two")'],
    ],
  },
  {
    name: "numbers out of range",
    text: listener(
      "maxConnections: -1",
      "maxConnectAttempts: 11",
      "maglev: { tableSize: 65536, seed: 1.5 }",
      "backends: [{ address: '10.0.0.1:80', weight: 1001 }]",
      "healthCheck: { rise: 0, fall: 101, maxEjectionPercent: 150 }",
      "nodeAddressTypes: []",
    ),
    issues: [
      [5, 21, "configurations[0].maxConnections", "-1 is out of range 0-10000000"],
      [6, 25, "configurations[0].maxConnectAttempts", "11 is out of range 1-10"],
      [7, 26, "configurations[0].maglev.tableSize", "table size 65536 is not a prime number: try 65537"],
      [7, 39, "configurations[0].maglev.seed", "expected an integer, got 1.5"],
      [8, 50, "configurations[0].backends[0].weight", "1001 is out of range 0-1000"],
      [9, 26, "configurations[0].healthCheck.rise", "0 is out of range 1-100"],
      [9, 35, "configurations[0].healthCheck.fall", "101 is out of range 1-100"],
      [9, 60, "configurations[0].healthCheck.maxEjectionPercent", "150 is out of range 0-100"],
      [10, 23, "configurations[0].nodeAddressTypes", "must list at least one node address type"],
    ],
  },
];

for (const { name, text, issues } of ERROR_CASES) {
  Deno.test(`parseConfig() reports: ${name}`, () => {
    assert.deepEqual(issuesOf(text), issues);
  });
}
