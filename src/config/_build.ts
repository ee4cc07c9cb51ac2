/**
 * The schema's output to the frozen {@linkcode Config} callers see: durations named in
 * milliseconds, listen addresses split, optional keys absent rather than `undefined`.
 *
 * @module
 */
import { parseHostPort } from "../core/address.ts";
import type { Config, ListenerConfig } from "./types.ts";
import type { ConfigSchemaOutput } from "./schema.ts";

/** The config of a document the schema accepted, not yet frozen (see {@linkcode deepFreeze}). */
export function buildConfig(data: ConfigSchemaOutput): Config {
  return {
    settings: {
      kubeconfigPath: data.settings.kubeconfigPath,
      logLevel: data.settings.logLevel,
      logFormat: data.settings.logFormat,
      accessLog: data.settings.accessLog,
      adminAddress: data.settings.adminAddress,
      shutdownDelayMs: data.settings.shutdownDelay,
      workers: data.settings.workers,
    },
    configurations: data.configurations.map((l): ListenerConfig => {
      const { host, port } = parseHostPort(l.listenerAddress);
      const hc = l.healthCheck;
      return {
        name: l.name,
        listenerAddress: l.listenerAddress,
        host,
        port,
        protocol: l.protocol,
        ...(l.backendPortName === undefined ? {} : { backendPortName: l.backendPortName }),
        ...(l.namespace === undefined ? {} : { namespace: l.namespace }),
        ...(l.service === undefined ? {} : { service: l.service }),
        ...(l.serviceSelector === undefined ? {} : { serviceSelector: { ...l.serviceSelector } }),
        backendMode: l.backendMode,
        nodeAddressTypes: [...l.nodeAddressTypes],
        excludeCordonedNodes: l.excludeCordonedNodes,
        backends: l.backends,
        balancer: l.balancer,
        maglevTableSize: l.maglev.tableSize,
        maglevSeed: l.maglev.seed,
        requestTimeoutMs: l.requestTimeout,
        connectTimeoutMs: l.connectTimeout,
        idleTimeoutMs: l.idleTimeout,
        maxConnections: l.maxConnections,
        maxConnectAttempts: l.maxConnectAttempts,
        maxConnectionsPerBackend: l.maxConnectionsPerBackend,
        accessLog: l.accessLog ?? data.settings.accessLog,
        drainTimeoutMs: l.drainTimeout,
        onRemoval: l.onRemoval,
        whenAllUnhealthy: l.whenAllUnhealthy,
        ...(l.proxyProtocol === "off" ? {} : { proxyProtocol: l.proxyProtocol }),
        acceptProxyProtocol: l.acceptProxyProtocol,
        trustedProxies: l.acceptProxyProtocol ? [...(l.trustedProxies ?? [])] : [],
        proxyHeaderTimeoutMs: l.proxyHeaderTimeout,
        ...(l.protocol === "tls" && l.tls !== undefined && {
          tls: {
            routes: l.tls.routes.map((r) => ({
              name: r.name,
              hosts: r.hosts,
              ...(r.backendPortName !== undefined && { backendPortName: r.backendPortName }),
              backends: r.backends,
            })),
            ...(l.tls.defaultRoute !== undefined && { defaultRoute: l.tls.defaultRoute }),
            peekTimeoutMs: l.tls.peekTimeout,
            maxClientHelloBytes: l.tls.maxClientHello,
          },
        }),
        healthCheck: {
          enabled: hc.enabled,
          intervalMs: hc.interval,
          timeoutMs: hc.timeout,
          rise: hc.rise,
          fall: hc.fall,
          ...(hc.port === undefined ? {} : { port: hc.port }),
          ...(hc.send === undefined ? {} : { send: hc.send }),
          ...(hc.expect === undefined ? {} : { expect: hc.expect }),
          maxEjectionPercent: hc.maxEjectionPercent,
          ...(hc.tls ? { tls: true } : {}),
        },
      };
    }),
  };
}

/** Freezes `value` and everything reachable from it, in place. @returns `value` */
export function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
