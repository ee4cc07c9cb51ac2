/**
 * Shared fixtures of the config parser tests: the original file, its expected defaults, and
 * helpers that parse and compact issues to `[line, column, path, message]`.
 *
 * @module
 */
import assert from "node:assert/strict";
import { type Config, type ConfigIssue, formatIssue, parseConfig } from "./mod.ts";

export const ORIGINAL = `settings:
  kubeconfigPath: ""
configurations:
  - name: http_traffic_configuration
    listenerAddress: ":80"
    requestTimeout: 5
    backendPortName: "http"
  - name: https_traffic_configuration
    listenerAddress: ":443"
    requestTimeout: 5
    backendPortName: "https"
  - name: mongodb_internal_service
    listenerAddress: ":27017"
    requestTimeout: 10
    backendPortName: "mongodb"
    namespace: "development"
  - name: rabbitmq_amqp_service
    listenerAddress: ":15672"
    requestTimeout: 10
    backendPortName: "amqp"
    namespace: "development"
`;

/** What every listener gets when it sets nothing but the original keys. */
export const LISTENER_DEFAULTS = {
  protocol: "tcp",
  backendMode: "auto",
  nodeAddressTypes: ["InternalIP", "ExternalIP"],
  excludeCordonedNodes: false,
  backends: [],
  balancer: "round_robin",
  maglevTableSize: 65537,
  maglevSeed: 0,
  connectTimeoutMs: 2000,
  idleTimeoutMs: 3_600_000,
  maxConnections: 10000,
  maxConnectAttempts: 3,
  maxConnectionsPerBackend: 0,
  accessLog: false,
  drainTimeoutMs: 30000,
  onRemoval: "drain",
  whenAllUnhealthy: "reject",
  acceptProxyProtocol: false,
  trustedProxies: [],
  proxyHeaderTimeoutMs: 3000,
  binding: "portName",
  skipControlPlane: false,
  access: { allow: [], deny: [] },
  maxConnectionsPerSource: 0,
  slowStartMs: 0,
  healthCheck: {
    enabled: true,
    intervalMs: 2000,
    timeoutMs: 1000,
    rise: 2,
    fall: 3,
    maxEjectionPercent: 50,
  },
} as const;

export const ORIGINAL_CONFIG: Config = {
  settings: {
    binding: "portName",
    access: { allow: [], deny: [] },
    kubeconfigPath: "",
    logLevel: "info",
    logFormat: "text",
    accessLog: false,
    adminAddress: "127.0.0.1:9090",
    shutdownDelayMs: 0,
    workers: 1,
  },
  configurations: [
    {
      ...LISTENER_DEFAULTS,
      name: "http_traffic_configuration",
      listenerAddress: ":80",
      host: "",
      port: 80,
      requestTimeoutMs: 5000,
      backendPortName: "http",
    },
    {
      ...LISTENER_DEFAULTS,
      name: "https_traffic_configuration",
      listenerAddress: ":443",
      host: "",
      port: 443,
      requestTimeoutMs: 5000,
      backendPortName: "https",
    },
    {
      ...LISTENER_DEFAULTS,
      name: "mongodb_internal_service",
      listenerAddress: ":27017",
      host: "",
      port: 27017,
      requestTimeoutMs: 10000,
      backendPortName: "mongodb",
      namespaces: ["development"],
    },
    {
      ...LISTENER_DEFAULTS,
      name: "rabbitmq_amqp_service",
      listenerAddress: ":15672",
      host: "",
      port: 15672,
      requestTimeoutMs: 10000,
      backendPortName: "amqp",
      namespaces: ["development"],
    },
  ],
};

export const OPEN_TO_ANY_NAMESPACE = [
  'listener "http_traffic_configuration" admits Services from any namespace by port name alone: list "namespaces" or set "binding: explicit"',
  'listener "https_traffic_configuration" admits Services from any namespace by port name alone: list "namespaces" or set "binding: explicit"',
];

export function parseOk(text: string): { config: Config; warnings: readonly ConfigIssue[] } {
  const result = parseConfig(text, "config.yaml");
  if (!result.ok) {
    assert.fail(`expected a valid config, got:\n${result.issues.map(formatIssue).join("\n")}`);
  }
  return result;
}

/** `[line, column, path, message]`, the compact form of a {@linkcode ConfigIssue}. */
export type Expected = readonly [number, number, string, string];

export function issuesOf(text: string): Expected[] {
  const result = parseConfig(text, "config.yaml");
  if (result.ok) assert.fail("expected issues, got a valid config");
  for (const issue of result.issues) assert.equal(issue.file, "config.yaml");
  return result.issues.map((i) => [i.line, i.column, i.path, i.message]);
}

/** One listener with `extra` lines (indented 4) appended. */
export function listener(...extra: string[]): string {
  return [
    "configurations:",
    "  - name: web",
    '    listenerAddress: ":80"',
    "    backendPortName: http",
    ...extra.map((line) => `    ${line}`),
    "",
  ].join("\n");
}
