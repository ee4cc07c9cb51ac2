import assert from "node:assert/strict";
import { diffConfig, formatIssue, parseConfig } from "./mod.ts";
import { parseOk } from "./_parse_test_helpers.ts";

function listeners(body: string): string {
  return `settings:\n  adminAddress: ""\nconfigurations:\n${body}`;
}

Deno.test("config udp: protocol udp gets the original's session defaults and Maglev", () => {
  const result = parseOk(
    listeners(`  - name: dns-tcp
    listenerAddress: ":53"
    backends: ["10.0.0.1:53"]
  - name: dns
    listenerAddress: ":53"
    protocol: udp
    backends: ["10.0.0.1:53"]
`),
  );
  const [tcp, udp] = result.config.configurations;
  assert.equal(tcp!.protocol, "tcp");
  assert.equal(tcp!.balancer, "round_robin");
  assert.equal(tcp!.udp, undefined);
  assert.equal(udp!.protocol, "udp");
  assert.equal(udp!.balancer, "maglev");
  assert.deepEqual(udp!.udp, {
    sessionIdleTimeoutMs: 60_000,
    maxSessions: 4_096,
    maxSessionsPerSource: 0,
    bufferSize: 8_192,
    replyTimeoutMs: 5_000,
  });
});

Deno.test("config udp: udp settings and an explicit balancer are taken as written", () => {
  const result = parseOk(
    listeners(`  - name: dns
    listenerAddress: "127.0.0.1:5353"
    protocol: udp
    balancer: round_robin
    backends: ["10.0.0.1:53"]
    udp:
      sessionIdleTimeout: 30s
      maxSessions: 100
      maxSessionsPerSource: 4
      bufferSize: 1232
      replyTimeout: 0
`),
  );
  const [udp] = result.config.configurations;
  assert.equal(udp!.balancer, "round_robin");
  assert.deepEqual(udp!.udp, {
    sessionIdleTimeoutMs: 30_000,
    maxSessions: 100,
    maxSessionsPerSource: 4,
    bufferSize: 1232,
    replyTimeoutMs: 0,
  });
});

Deno.test("config udp: bad values and misplaced settings are reported with line and column", () => {
  const result = parseConfig(
    listeners(`  - name: dns
    listenerAddress: ":53"
    protocol: udp
    backends: ["10.0.0.1:53"]
    acceptProxyProtocol: true
    trustedProxies: ["10.0.0.0/8"]
    udp:
      sessionIdleTimeout: 0s
      maxSessions: -1
      bufferSize: 70000
      sessionIdle: 5s
  - name: dns-again
    listenerAddress: "0.0.0.0:53"
    protocol: udp
    backends: ["10.0.0.1:53"]
  - name: web
    listenerAddress: ":80"
    protocol: UDP
    backends: ["10.0.0.1:80"]
  - name: tcp-with-udp
    listenerAddress: ":81"
    backends: ["10.0.0.1:80"]
    udp: {}
`),
    "config.yaml",
  );
  assert.ok(!result.ok);
  assert.deepEqual(result.issues.map(formatIssue), [
    'config.yaml:8:26: configurations[0].acceptProxyProtocol: `acceptProxyProtocol` is not supported with `protocol` "udp": PROXY headers are sent and read on TCP connections only',
    'config.yaml:11:27: configurations[0].udp.sessionIdleTimeout: invalid duration "0s": must be greater than 0',
    "config.yaml:12:20: configurations[0].udp.maxSessions: -1 is out of range 0-10000000",
    "config.yaml:13:19: configurations[0].udp.bufferSize: buffer size 70000 is out of range 512-65507",
    "config.yaml:14:7: configurations[0].udp.sessionIdle: unknown key `sessionIdle`: did you mean `sessionIdleTimeout`?",
    'config.yaml:16:22: configurations[1].listenerAddress: address "0.0.0.0:53" conflicts with configurations[0].listenerAddress ":53"',
    'config.yaml:21:15: configurations[2].protocol: expected one of "tcp", "tls" or "udp", got a string ("UDP"): did you mean "udp"?',
    'config.yaml:26:10: configurations[3].udp: `udp` settings need `protocol` "udp": this listener is "tcp"',
  ]);
});

Deno.test("config udp: udp settings change in place, a new protocol rebinds", () => {
  const parse = (protocol: string, idle: string) => {
    const result = parseConfig(
      listeners(`  - name: dns
    listenerAddress: ":53"
    protocol: ${protocol}
    backends: ["10.0.0.1:53"]
${protocol === "udp" ? `    udp:\n      sessionIdleTimeout: ${idle}\n` : ""}`),
      "config.yaml",
    );
    assert.ok(result.ok);
    return result.config;
  };
  const changed = diffConfig(parse("udp", "60s"), parse("udp", "30s"));
  assert.deepEqual(changed.changed.map((c) => c.fields), [["udp"]]);
  assert.equal(changed.rebound.length, 0);
  const rebound = diffConfig(parse("udp", "60s"), parse("tcp", ""));
  assert.equal(rebound.rebound.length, 1);
  assert.ok(rebound.rebound[0]!.fields.includes("protocol"));
});

Deno.test("config udp: connection settings on a udp listener are warned about", () => {
  const result = parseOk(
    listeners(`  - name: dns
    listenerAddress: ":53"
    protocol: udp
    backends: ["10.0.0.1:53"]
    idleTimeout: 30s
    maxConnections: 10
`),
  );
  assert.deepEqual(result.warnings.map(formatIssue), [
    'config.yaml:8:5: configurations[0].idleTimeout: idleTimeout has no effect with protocol "udp": sessions follow the udp settings',
    'config.yaml:9:5: configurations[0].maxConnections: maxConnections has no effect with protocol "udp": sessions follow the udp settings',
  ]);
});

Deno.test("config udp: a DNS check does not go with an HTTP check", () => {
  const result = parseConfig(
    listeners(`  - name: dns
    listenerAddress: ":53"
    protocol: udp
    backends: ["10.0.0.1:53"]
    healthCheck:
      type: http
      dnsQuery: example.com
`),
    "config.yaml",
  );
  assert.ok(!result.ok);
  assert.deepEqual(result.issues.map(formatIssue), [
    'config.yaml:10:17: configurations[0].healthCheck.dnsQuery: `dnsQuery` is a check of its own: it cannot go with `type` "http"',
  ]);
});
