import assert from "node:assert/strict";
import process from "node:process";
import { formatIssue, type ListenerConfig, parseConfig } from "./mod.ts";
import {
  issuesOf,
  listener,
  LISTENER_DEFAULTS,
  OPEN_TO_ANY_NAMESPACE,
  ORIGINAL,
  ORIGINAL_CONFIG,
  parseOk,
} from "./_parse_test_helpers.ts";

Deno.test("parseConfig() reports three mistakes as three issues", () => {
  const text = ORIGINAL
    .replace('listenerAddress: ":443"', 'listenerAddress: ":70000"')
    .replace(
      'requestTimeout: 10\n    backendPortName: "mongodb"',
      'requestTimeout: 10x\n    backendPortName: "mongodb"',
    )
    .replace('namespace: "development"\n', 'namespace: "development"\n    balancr: maglev\n');
  const result = parseConfig(text, "config.yaml");
  assert.ok(!result.ok);
  assert.deepEqual(result.issues.map(formatIssue), [
    "config.yaml:9:22: configurations[1].listenerAddress: port 70000 is out of range 1-65535",
    'config.yaml:14:21: configurations[2].requestTimeout: invalid duration "10x": expected a number of seconds or a number with a unit (ms, s, m, h), e.g. "5s", "250ms" or "1m30s"',
    "config.yaml:17:5: configurations[2].balancr: unknown key `balancr`: did you mean `balancer`?",
  ]);
});

Deno.test("parseConfig() warns about legal but doubtful settings", () => {
  const { warnings } = parseOk(listener(
    "requestTimeout: 1",
    "connectTimeout: 3s",
    "maglev: { seed: 1 }",
    "healthCheck: { interval: 1s, timeout: 2s }",
    "namespaces: [web]",
  ));
  assert.deepEqual(warnings.map(formatIssue), [
    "config.yaml:6:21: configurations[0].connectTimeout: connectTimeout 3s is longer than requestTimeout 1s: connect attempts end when requestTimeout runs out",
    'config.yaml:7:5: configurations[0].maglev: maglev settings have no effect with balancer "round_robin"',
    "config.yaml:8:43: configurations[0].healthCheck.timeout: timeout 2s is longer than interval 1s: a slow probe delays the next one",
  ]);
});

Deno.test("parseConfig() points the timeout warning at requestTimeout when connectTimeout is the default", () => {
  const { warnings } = parseOk(listener("requestTimeout: 500ms", "namespaces: [web]"));
  assert.deepEqual(warnings.map(formatIssue), [
    "config.yaml:5:21: configurations[0].requestTimeout: connectTimeout 2s is longer than requestTimeout 500ms: connect attempts end when requestTimeout runs out",
  ]);
});

Deno.test("parseConfig() accepts the repository's config.yaml, and its commented-out options", async () => {
  const text = await Deno.readTextFile(new URL("../../config.yaml", import.meta.url));
  const { config, warnings } = parseOk(text);
  assert.deepEqual(config, ORIGINAL_CONFIG);
  assert.deepEqual(warnings.map((w) => w.message), OPEN_TO_ANY_NAMESPACE);

  // Uncomment the documented options: they must be valid and state the defaults.
  const uncommented = text.replace(/^( *)# ( *(?:[a-zA-Z.\/]+:|- ).*)$/gm, "$1$2");
  const full = parseOk(uncommented);
  assert.deepEqual(full.warnings.map((w) => w.message), [
    ...OPEN_TO_ANY_NAMESPACE,
    'maglev settings have no effect with balancer "round_robin"',
  ]);
  const example = full.config.configurations.find((l) => l.name === "example");
  assert.ok(example, "config.yaml documents an example listener");
  const { settings } = full.config;
  assert.deepEqual(settings, ORIGINAL_CONFIG.settings);
  const pick = <K extends keyof ListenerConfig>(l: ListenerConfig, keys: readonly K[]) =>
    Object.fromEntries(keys.map((k) => [k, l[k]]));
  const defaults = Object.keys(LISTENER_DEFAULTS).filter((k) =>
    k !== "backends" && k !== "healthCheck"
  ) as (keyof ListenerConfig)[];
  assert.deepEqual(
    pick(example, defaults),
    pick({ ...ORIGINAL_CONFIG.configurations[0]!, ...LISTENER_DEFAULTS }, defaults),
  );
  assert.equal(example.requestTimeoutMs, 5000);
  const { port: _port, send: _send, expect: _expect, ...healthCheck } = example.healthCheck;
  assert.deepEqual(healthCheck, LISTENER_DEFAULTS.healthCheck);
});

Deno.test("parseConfig() maps positions through CRLF line ends and a leading BOM", () => {
  const text = "\ufeff" + listener("balancer: nope").replaceAll("\n", "\r\n");
  assert.deepEqual(issuesOf(text), [
    [
      5,
      15,
      "configurations[0].balancer",
      'expected one of "round_robin", "least_connections", "random_two" or "maglev", got a string ("nope")',
    ],
  ]);
});

Deno.test("parseConfig() requires trustedProxies with acceptProxyProtocol and locates bad CIDRs", () => {
  assert.deepEqual(issuesOf(listener("acceptProxyProtocol: true")), [
    [
      5,
      26,
      "configurations[0].acceptProxyProtocol",
      "`acceptProxyProtocol` needs a non-empty `trustedProxies` list: only those peers may state a client address",
    ],
  ]);
  assert.deepEqual(issuesOf(listener("acceptProxyProtocol: true", "trustedProxies: []")), [
    [
      6,
      21,
      "configurations[0].trustedProxies",
      "`acceptProxyProtocol` needs a non-empty `trustedProxies` list: only those peers may state a client address",
    ],
  ]);
  assert.deepEqual(
    issuesOf(listener(
      "acceptProxyProtocol: true",
      'trustedProxies: ["10.0.0.0/8", "10.0.0.1/8", "300.1.1.1/32"]',
      "proxyProtocol: v3",
    )),
    [
      [
        6,
        36,
        "configurations[0].trustedProxies[1]",
        'invalid CIDR "10.0.0.1/8": host bits are set after the /8 prefix, did you mean "10.0.0.0/8"?',
      ],
      [
        6,
        50,
        "configurations[0].trustedProxies[2]",
        'invalid CIDR "300.1.1.1/32": "300.1.1.1" is not an IPv4 address',
      ],
      [
        7,
        20,
        "configurations[0].proxyProtocol",
        'expected one of "off", "v1" or "v2", got a string ("v3"): did you mean "v1"?',
      ],
    ],
  );
});

Deno.test("parseConfig() keeps PROXY protocol off by default and ignores trustedProxies then", () => {
  const { config } = parseOk(listener('trustedProxies: ["10.0.0.0/8"]', "proxyProtocol: off"));
  const l = config.configurations[0]!;
  assert.equal(l.proxyProtocol, undefined);
  assert.equal(l.acceptProxyProtocol, false);
  assert.deepEqual(l.trustedProxies, []);
  assert.equal(l.proxyHeaderTimeoutMs, 3000);
});

Deno.test("parseConfig(): a listener's accessLog overrides settings.accessLog; limits are checked", () => {
  const { config } = parseOk(
    listener("accessLog: true").replace(
      "configurations",
      "settings: { accessLog: false }\nconfigurations",
    ),
  );
  assert.equal(config.configurations[0]!.accessLog, true);
  const inherited = parseOk(
    listener().replace("configurations", "settings: { accessLog: true }\nconfigurations"),
  );
  assert.equal(inherited.config.configurations[0]!.accessLog, true);
  assert.equal(inherited.config.configurations[0]!.maxConnectionsPerBackend, 0);
});

Deno.test("parseConfig() locates bad maxConnectionsPerBackend, accessLog and healthCheck.tls", () => {
  const text = listener(
    "maxConnectionsPerBackend: -1",
    "accessLog: yes",
    "healthCheck: { tls: 1 }",
  ).replace("configurations", "settings: { accessLog: 0 }\nconfigurations");
  assert.deepEqual(issuesOf(text), [
    [1, 24, "settings.accessLog", "expected a boolean, got a number (0)"],
    [6, 31, "configurations[0].maxConnectionsPerBackend", "-1 is out of range 0-10000000"],
    [7, 16, "configurations[0].accessLog", 'expected a boolean, got a string ("yes")'],
    [8, 25, "configurations[0].healthCheck.tls", "expected a boolean, got a number (1)"],
  ]);
});

Deno.test("parseConfig() resolves aliases to the last anchor of their name before them", () => {
  const { config } = parseOk(
    [
      "configurations:",
      '  - { name: a, listenerAddress: ":81", backendPortName: &port http }',
      '  - { name: b, listenerAddress: ":82", backendPortName: &port https }',
      '  - { name: c, listenerAddress: ":83", backendPortName: *port }',
      "",
    ].join("\n"),
  );
  assert.equal(config.configurations[2]!.backendPortName, "https");
});

/** Builds a listener with `count` unknown keys, as an operator's generated file might. */
function manyUnknownKeys(count: number): string {
  const lines = [listener()];
  for (let i = 0; i < count; i++) lines.push(`    unknownKey${i}: ${i}\n`);
  return lines.join("");
}

/**
 * CPU time of `fn` in ms. Unlike wall-clock time it barely grows when other processes share
 * the machine, so a bound on it catches a quadratic slip without flaking under load.
 */
function cpuMs<T>(fn: () => T): { result: T; elapsedMs: number } {
  const before = process.cpuUsage();
  const result = fn();
  const { user, system } = process.cpuUsage(before);
  return { result, elapsedMs: (user + system) / 1000 };
}

Deno.test("parseConfig() reports 20,000 unknown keys, each at its line, in bounded time", () => {
  const text = manyUnknownKeys(20_000);
  const { result: issues, elapsedMs } = cpuMs(() => issuesOf(text));
  assert.equal(issues.length, 20_000);
  assert.deepEqual(issues[19_999], [
    20_004,
    5,
    "configurations[0].unknownKey19999",
    "unknown key `unknownKey19999`",
  ]);
  // Took 15 s of CPU when each issue was located by scanning its map; now about 2 s.
  assert.ok(elapsedMs < 8_000, `took ${elapsedMs.toFixed(0)} ms of CPU time`);
});

Deno.test("parseConfig() resolves 10,000 aliases in bounded time", () => {
  const lines = [listener("namespace: &ns development", "backends:")];
  for (let i = 0; i < 10_000; i++) {
    lines.push(`      - { address: "10.0.${i >> 8}.${i & 255}:80", weight: *w }\n`);
  }
  const text = "w: &w 2\n" + lines.join("");
  const { result: issues, elapsedMs } = cpuMs(() => issuesOf(text));
  // Only the stray top-level key is wrong; every alias resolved.
  assert.deepEqual(issues, [[1, 1, "w", "unknown key `w`"]]);
  assert.ok(elapsedMs < 8_000, `took ${elapsedMs.toFixed(0)} ms of CPU time`);
});

Deno.test("parseConfig() reads binding, namespaces, access, per-source limit, node filters, slow start and HTTP checks", () => {
  const { config, warnings } = parseOk(`settings:
  binding: explicit
  access: { allow: ["10.0.0.0/8"], deny: ["10.9.0.0/16"] }
configurations:
  - name: web
    listenerAddress: ":80"
    backendPortName: http
    namespaces: [shop, payments, shop]
    skipControlPlane: true
    nodeSelector: { lb.example/edge: "true" }
    access: { deny: ["10.6.0.0/16", "10.9.0.0/16"] }
    maxConnectionsPerSource: 20
    slowStart: 30s
    healthCheck:
      type: http
      port: 8081
      http: { path: /ready, host: app.example, expectStatus: "200,204-206" }
  - name: open
    listenerAddress: ":81"
    backendPortName: http
    namespaces: ["*"]
    binding: portName
    access: { allow: ["192.0.2.0/24"] }
`);
  const [web, open] = config.configurations;
  assert.deepEqual(web!.namespaces, ["payments", "shop"]);
  assert.equal(web!.binding, "explicit");
  assert.equal(web!.skipControlPlane, true);
  assert.deepEqual(web!.nodeSelector, { "lb.example/edge": "true" });
  assert.deepEqual(web!.access, {
    allow: ["10.0.0.0/8"],
    deny: ["10.9.0.0/16", "10.6.0.0/16"],
  });
  assert.equal(web!.maxConnectionsPerSource, 20);
  assert.equal(web!.slowStartMs, 30_000);
  assert.deepEqual(web!.healthCheck.http, {
    path: "/ready",
    host: "app.example",
    expectStatus: [[200, 200], [204, 206]],
  });
  assert.equal(web!.healthCheck.port, 8081);
  assert.equal(open!.namespaces, undefined, '["*"] is every namespace');
  assert.equal(open!.binding, "portName");
  assert.deepEqual(open!.access, { allow: ["192.0.2.0/24"], deny: ["10.9.0.0/16"] });
  assert.deepEqual(warnings.map((w) => [w.line, w.path]), [[18, "configurations[1]"]]);
});

Deno.test("parseConfig() locates bad namespaces, access entries and HTTP check settings", () => {
  assert.deepEqual(
    issuesOf(listener(
      "namespace: shop",
      'namespaces: ["*", "Shop"]',
      'access: { allow: ["10.0.0.1/8"], deny: [nope] }',
      "binding: byName",
      "healthCheck: { type: http, http: { path: ready, expectStatus: 700 } }",
    )),
    [
      [
        5,
        16,
        "configurations[0].namespace",
        "`namespace` and `namespaces` cannot both be set: list it in `namespaces`",
      ],
      [
        6,
        17,
        "configurations[0].namespaces",
        '"*" already means every namespace: drop the other entries or the "*"',
      ],
      [
        6,
        23,
        "configurations[0].namespaces[1]",
        "invalid namespace \"Shop\": must be a DNS-1123 label: lowercase letters, digits and '-', starting and ending with a letter or digit",
      ],
      [
        7,
        23,
        "configurations[0].access.allow[0]",
        'invalid CIDR "10.0.0.1/8": host bits are set after the /8 prefix, did you mean "10.0.0.0/8"?',
      ],
      [
        7,
        45,
        "configurations[0].access.deny[0]",
        'invalid CIDR "nope": "nope" is not an IPv4 address',
      ],
      [
        8,
        14,
        "configurations[0].binding",
        'expected one of "portName" or "explicit", got a string ("byName")',
      ],
      [
        9,
        46,
        "configurations[0].healthCheck.http.path",
        'invalid path "ready": expected "/" first and no spaces',
      ],
      [
        9,
        67,
        "configurations[0].healthCheck.http.expectStatus",
        'invalid status "700": expected a status 100-599 or a range like "200-399"',
      ],
    ],
  );
});
