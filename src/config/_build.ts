/**
 * The schema's output to the frozen {@linkcode Config} callers see: durations named in
 * milliseconds, listen addresses split, optional keys absent rather than `undefined`.
 *
 * @module
 */
import { parseHostPort } from "../core/address.ts";
import type { Config, ListenerConfig, UdpSpec } from "./types.ts";
import type { ConfigSchemaOutput } from "./schema.ts";
import * as D from "./defaults.ts";

/** The config of a document the schema accepted, not yet frozen (see {@linkcode deepFreeze}). */
export function buildConfig(data: ConfigSchemaOutput): Config {
  return {
    settings: {
      binding: data.settings.binding,
      access: {
        allow: [...(data.settings.access.allow ?? [])],
        deny: [...(data.settings.access.deny ?? [])],
      },
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
        ...(l.protocol === "udp" && { udp: udpConfig(l.udp) }),
        ...(l.backendPortName === undefined ? {} : { backendPortName: l.backendPortName }),
        ...namespacesOf(l.namespaces ?? (l.namespace === undefined ? undefined : [l.namespace])),
        binding: l.binding ?? data.settings.binding,
        ...(l.service === undefined ? {} : { service: l.service }),
        ...(l.serviceSelector === undefined ? {} : { serviceSelector: { ...l.serviceSelector } }),
        backendMode: l.backendMode,
        nodeAddressTypes: [...l.nodeAddressTypes],
        excludeCordonedNodes: l.excludeCordonedNodes,
        ...(l.nodeSelector === undefined ? {} : { nodeSelector: { ...l.nodeSelector } }),
        skipControlPlane: l.skipControlPlane,
        backends: l.backends,
        balancer: l.balancer ??
          (l.protocol === "udp" ? D.DEFAULT_UDP_BALANCER : D.DEFAULT_BALANCER),
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
        access: {
          allow: [...(l.access?.allow ?? data.settings.access.allow ?? [])],
          deny: [...new Set([...(data.settings.access.deny ?? []), ...(l.access?.deny ?? [])])],
        },
        maxConnectionsPerSource: l.maxConnectionsPerSource,
        slowStartMs: l.slowStart,
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
          ...(hc.dnsQuery === undefined ? {} : { dnsQuery: hc.dnsQuery }),
          maxEjectionPercent: hc.maxEjectionPercent,
          ...(hc.tls ? { tls: true } : {}),
          ...(hc.type === "http"
            ? {
              http: {
                path: hc.http.path,
                ...(hc.http.host === undefined ? {} : { host: hc.http.host }),
                expectStatus: hc.http.expectStatus,
              },
            }
            : {}),
        },
      };
    }),
  };
}

function udpConfig(udp: ConfigSchemaOutput["configurations"][number]["udp"]): UdpSpec {
  return {
    sessionIdleTimeoutMs: udp?.sessionIdleTimeout ?? D.DEFAULT_UDP_SESSION_IDLE_TIMEOUT_MS,
    maxSessions: udp?.maxSessions ?? D.DEFAULT_UDP_MAX_SESSIONS,
    maxSessionsPerSource: udp?.maxSessionsPerSource ?? D.DEFAULT_UDP_MAX_SESSIONS_PER_SOURCE,
    bufferSize: udp?.bufferSize ?? D.DEFAULT_UDP_BUFFER_SIZE,
    replyTimeoutMs: udp?.replyTimeout ?? D.DEFAULT_UDP_REPLY_TIMEOUT_MS,
  };
}

/** `namespaces` of a listener: absent for all (`["*"]` or none given), else sorted and unique. */
function namespacesOf(list: readonly string[] | undefined): { namespaces?: string[] } {
  if (list === undefined || list.includes("*")) return {};
  return { namespaces: [...new Set(list)].sort() };
}

/** Freezes `value` and everything reachable from it, in place. @returns `value` */
export function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
