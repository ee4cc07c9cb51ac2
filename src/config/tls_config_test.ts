import assert from "node:assert/strict";
import { formatIssue, parseConfig } from "./mod.ts";
import { parseOk } from "./_parse_test_helpers.ts";
import { poolSpecsOf } from "../core/tls_spec.ts";

const TLS = `configurations:
  - name: edge
    listenerAddress: ":8443"
    protocol: tls
    backendPortName: https
    tls:
      peekTimeout: 2s
      maxClientHello: 8192
      defaultRoute: fallback
      routes:
        - name: api
          hosts: ["api.example.com", "*.API.example.com."]
          backendPortName: api-tls
        - name: web
          hosts: ["**.example.com"]
        - name: fallback
          backends: ["10.0.0.9:443"]
settings:
  adminAddress: ""
`;

Deno.test("config: a tls listener with routes, defaults and overrides", () => {
  const result = parseOk(TLS);
  const listener = result.config.configurations[0]!;
  assert.equal(listener.protocol, "tls");
  assert.deepEqual(listener.tls, {
    routes: [
      {
        name: "api",
        hosts: ["api.example.com", "*.API.example.com."],
        backendPortName: "api-tls",
        backends: [],
      },
      { name: "web", hosts: ["**.example.com"], backends: [] },
      { name: "fallback", hosts: [], backends: [{ host: "10.0.0.9", port: 443, weight: 1 }] },
    ],
    defaultRoute: "fallback",
    peekTimeoutMs: 2000,
    maxClientHelloBytes: 8192,
  });
  const pools = poolSpecsOf(listener);
  assert.deepEqual(
    pools.map((p) => [p.name, p.backendPortName, p.backends.length]),
    [["edge/api", "api-tls", 0], ["edge/web", "https", 0], ["edge/fallback", "https", 1]],
  );
  assert.ok(pools.every((p) => !("tls" in p) && !("protocol" in p)));
  // TLS checks of a route's backends name its first exact host.
  assert.deepEqual(pools.map((p) => p.healthCheck?.serverName), [
    "api.example.com",
    undefined,
    undefined,
  ]);
});

Deno.test("config: tls defaults are 5s and 16384 bytes; tcp is the default protocol", () => {
  const result = parseOk(
    `configurations:
  - name: a
    listenerAddress: ":8443"
    protocol: tls
    tls:
      routes:
        - name: r
          hosts: [a.example]
          backends: ["127.0.0.1:1"]
  - name: b
    listenerAddress: ":8080"
    backends: ["127.0.0.1:2"]
settings:
  adminAddress: ""
`,
  );
  const [a, b] = result.config.configurations;
  assert.equal(a!.tls?.peekTimeoutMs, 5000);
  assert.equal(a!.tls?.maxClientHelloBytes, 16384);
  assert.equal(b!.protocol, "tcp");
  assert.equal(b!.tls, undefined);
  assert.deepEqual(poolSpecsOf(b!).map((p) => p.name), ["b"]);
});

Deno.test("config: tls mistakes each get a line:column error", () => {
  const text = `configurations:
  - name: edge
    listenerAddress: ":8443"
    protocol: tls
    backends: ["10.0.0.1:443"]
    tls:
      defaultRoute: fallbak
      maxClientHello: 100
      routes:
        - name: api
          hosts: ["api.example.com", "a.*.example.com"]
        - name: api
          hosts: ["API.example.com."]
          backendPortName: https
        - name: web
          hosts: []
          backends: ["10.0.0.2:443"]
  - name: plain
    listenerAddress: ":8080"
    backends: ["10.0.0.3:80"]
    tls:
      routes: []
  - name: bare
    listenerAddress: ":8081"
    protocol: tls
  - name: odd
    listenerAddress: ":8082"
    protocol: quic
    backends: ["10.0.0.3:80"]
settings:
  adminAddress: ""
`;
  const result = parseConfig(text, "config.yaml");
  assert.ok(!result.ok);
  const lines = result.issues.map(formatIssue);
  const expected = [
    /^config\.yaml:5:15: configurations\[0\]\.backends: a tls listener routes to its routes' pools: move static backends under `tls\.routes\[\]\.backends`$/,
    /^config\.yaml:7:21: configurations\[0\]\.tls\.defaultRoute: no route is named "fallbak"$/,
    /^config\.yaml:8:23: configurations\[0\]\.tls\.maxClientHello: maxClientHello 100 is out of range|100 is out of range 512-65536/,
    /^config\.yaml:11:38: configurations\[0\]\.tls\.routes\[0\]\.hosts\[1\]: invalid host "a\.\*\.example\.com": '\*' is allowed only as the whole first label$/,
    /configurations\[0\]\.tls\.routes\[0\]: a route needs `backendPortName` \(its own or the listener's\) or a non-empty `backends` list$/,
    /configurations\[0\]\.tls\.routes\[1\]\.name: duplicate route name "api": already used by configurations\[0\]\.tls\.routes\[0\]$/,
    /configurations\[0\]\.tls\.routes\[1\]\.hosts\[0\]: duplicate host "api\.example\.com": already routed by configurations\[0\]\.tls\.routes\[0\]\.hosts\[0\]$/,
    /configurations\[0\]\.tls\.routes\[2\]: a route needs `hosts` unless it is the listener's `defaultRoute`$/,
    /configurations\[1\]\.tls: `tls` applies only to `protocol` "tls": set it, or remove this block$/,
    /configurations\[2\]\.protocol: `protocol` "tls" needs a `tls` block with `routes`$/,
    /configurations\[3\]\.protocol: expected one of "tcp", "tls" or "udp", got a string \("quic"\)/,
  ];
  for (const pattern of expected) {
    assert.ok(lines.some((l) => pattern.test(l)), `${pattern}\nnot in:\n${lines.join("\n")}`);
  }
});
