/**
 * The config file's shape as a zod schema: the one source of truth for validation, defaults
 * and the generated `config.schema.json`.
 *
 * The schema describes YAML as written (camelCase keys, `"5s"`-style durations). Its output
 * has defaults filled in, durations in milliseconds and backends parsed; `parse.ts` turns it
 * into a {@linkcode Config}. Checks that span several values (duplicate names, address
 * conflicts) live in `parse.ts`, because zod skips refinements of objects that have issues
 * and every problem should be reported at once.
 *
 * @module
 */
import { z } from "zod";
import {
  BALANCER_KINDS,
  type BalancerKind,
  LISTENER_PROTOCOLS,
  type ListenerProtocol,
} from "../core/types.ts";
import { parseHostPort } from "../core/address.ts";
import { parseCidr } from "../core/cidr.ts";
import type { StaticBackendSpec } from "../core/pool_spec.ts";
import { describeValue } from "./_messages.ts";
import { isPrime } from "../balancer/mod.ts";
import { tlsSchema } from "./_tls_schema.ts";
import * as D from "./defaults.ts";
import { errorMessage } from "../core/error_message.ts";
import {
  address,
  checkAddress,
  checkDns1123Label,
  checkPortName,
  DNS1035_LABEL,
  duration,
  intInRange,
  labelSelector,
  nextPrime,
  oneOf,
  refined,
} from "./_schema_values.ts";
export {
  checkAddress,
  checkDns1123Label,
  checkPortName,
  MAX_DURATION_MS,
} from "./_schema_values.ts";

// ---------------------------------------------------------------------------------------
// Sections

const staticBackend = z
  .union([
    address({ isHostRequired: true }).meta({
      description: 'Backend as `"host:port"` (IPv6 in brackets: `"[::1]:80"`), weight 1.',
    }),
    z.strictObject({
      address: address({ isHostRequired: true }).meta({
        description: 'Backend `"host:port"`; IPv6 in brackets: `"[::1]:80"`.',
      }),
      weight: intInRange(0, D.MAX_BACKEND_WEIGHT).default(D.DEFAULT_BACKEND_WEIGHT).meta({
        description: "Relative share of new connections; 0 takes none.",
      }),
    }),
  ], {
    error: (issue) =>
      issue.code === "invalid_union"
        ? `expected "host:port" or a map with \`address\` and \`weight\`, got ${
          describeValue(issue.input)
        }`
        : undefined,
  })
  .transform((entry): StaticBackendSpec => {
    const text = typeof entry === "string" ? entry : entry.address;
    const { host, port } = parseHostPort(text);
    return {
      host,
      port,
      weight: typeof entry === "string" ? D.DEFAULT_BACKEND_WEIGHT : entry.weight,
    };
  });

const httpCheckSchema = z
  .strictObject({
    path: z
      .string()
      .superRefine((text, ctx) => {
        if (!/^\/[\x21-\x7e]*$/.test(text)) {
          ctx.addIssue({
            code: "custom",
            input: text,
            message: `invalid path ${JSON.stringify(text)}: expected "/" first and no spaces`,
          });
        }
      })
      .default(D.DEFAULT_HEALTH_CHECK_HTTP_PATH)
      .meta({ description: "Request path of type http checks." }),
    host: z.string().regex(/^[\x21-\x7e]+$/, { error: "expected a host name without spaces" })
      .optional().meta({ description: "Host header; the backend's host:port when absent." }),
    expectStatus: z
      .union([z.int(), z.string()])
      .transform((value, ctx) => {
        try {
          return parseStatusRanges(String(value));
        } catch (error) {
          ctx.issues.push({ code: "custom", input: value, message: errorMessage(error) });
          return z.NEVER;
        }
      })
      .prefault(D.DEFAULT_HEALTH_CHECK_EXPECT_STATUS)
      .meta({
        description:
          'Statuses that pass: 200, "200-299" or "200,204,300-399". Redirects are not followed.',
      }),
  })
  .prefault({})
  .meta({ description: "Settings of healthCheck.type: http." });

/**
 * `"200,204-206"` as inclusive ranges.
 * @throws {SyntaxError} naming the first entry that is not a status or a range of statuses
 */
export function parseStatusRanges(text: string): [number, number][] {
  return text.split(",").map((part) => {
    const m = /^\s*([1-5]\d\d)\s*(?:-\s*([1-5]\d\d)\s*)?$/.exec(part);
    const low = Number(m?.[1]);
    const high = m?.[2] === undefined ? low : Number(m[2]);
    if (m === null || high < low) {
      throw new SyntaxError(
        `invalid status ${
          JSON.stringify(part.trim())
        }: expected a status 100-599 or a range like "200-399"`,
      );
    }
    return [low, high];
  });
}

const healthCheckSchema = z
  .strictObject({
    enabled: z.boolean().default(D.DEFAULT_HEALTH_CHECK_ENABLED).meta({
      description:
        "Health checking on or off; off means no probes and no passive ejection (every backend stays eligible).",
    }),
    interval: duration(D.DEFAULT_HEALTH_CHECK_INTERVAL_MS, { isZeroAllowed: false }).meta({
      description: 'Time between probes of one backend: "2s", "500ms", or seconds.',
    }),
    timeout: duration(D.DEFAULT_HEALTH_CHECK_TIMEOUT_MS, { isZeroAllowed: false }).meta({
      description: "How long one probe may take.",
    }),
    rise: intInRange(1, D.MAX_HEALTH_COUNT).default(D.DEFAULT_HEALTH_CHECK_RISE).meta({
      description: "Consecutive successful probes before a backend counts as healthy.",
    }),
    fall: intInRange(1, D.MAX_HEALTH_COUNT).default(D.DEFAULT_HEALTH_CHECK_FALL).meta({
      description: "Consecutive failed probes before a backend counts as unhealthy.",
    }),
    port: intInRange(1, 65535, "port").optional().meta({
      description: "Probe this port instead of the backend's own.",
    }),
    send: z.string().optional().meta({
      description: "Text (UTF-8) to send once connected; escapes like \\r\\n follow YAML.",
    }),
    expect: z.string().optional().meta({
      description: "Substring the response must contain; without it a connect is enough.",
    }),
    dnsQuery: z
      .string()
      .superRefine((text, ctx) => {
        const name = text.replace(/\.$/, "");
        const ok = text === "." ||
          (name.length > 0 && name.length <= 253 &&
            name.split(".").every((l) => l.length > 0 && l.length <= 63));
        if (!ok) {
          ctx.addIssue({
            code: "custom",
            input: text,
            message: `invalid DNS name ${
              JSON.stringify(text)
            }: expected "." or labels of 1-63 characters joined by dots`,
          });
        }
      })
      .optional()
      .meta({
        description:
          'Check with a DNS query for this name (type A, over UDP) instead of TCP: healthy on NOERROR or NXDOMAIN. For udp listeners of DNS servers, e.g. "." or "example.com".',
      }),
    maxEjectionPercent: intInRange(0, 100).default(D.DEFAULT_MAX_EJECTION_PERCENT).meta({
      description: "Most of the pool (percent) that passive ejection may mark down at once.",
    }),
    tls: z.boolean().default(D.DEFAULT_HEALTH_CHECK_TLS).meta({
      description:
        "Probe with a TLS handshake (certificate not verified) and a clean close_notify, for TLS passthrough pools; send/expect then run inside TLS, type http becomes HTTPS.",
    }),
    type: oneOf(["tcp", "http"]).default(D.DEFAULT_HEALTH_CHECK_TYPE).meta({
      description:
        "tcp: connect (and send/expect); http: GET http.path, pass on http.expectStatus.",
    }),
    http: httpCheckSchema,
  })
  .prefault({})
  .meta({ description: "Active health checks of this listener's backends." });

const maglevSchema = z
  .strictObject({
    tableSize: z
      .int({ error: intError })
      .min(2, { error: intError })
      .max(D.MAGLEV_MAX_TABLE_SIZE, { error: intError })
      .superRefine((n, ctx) => {
        if (!isPrime(n)) {
          ctx.addIssue({
            code: "custom",
            input: n,
            message: `table size ${n} is not a prime number: try ${nextPrime(n)}`,
          });
        }
      })
      .default(D.DEFAULT_MAGLEV_TABLE_SIZE)
      .meta({
        description:
          "Lookup table size, a prime well above 100 x the number of backends (Maglev paper, section 3.4).",
      }),
    seed: intInRange(0, 0xffff_ffff).default(D.DEFAULT_MAGLEV_SEED).meta({
      description: "Hash seed; replicas that must pick the same backend use the same seed.",
    }),
  })
  .prefault({})
  .meta({ description: 'Settings of `balancer: "maglev"`.' });

const udpSchema = z
  .strictObject({
    sessionIdleTimeout: duration(D.DEFAULT_UDP_SESSION_IDLE_TIMEOUT_MS, { isZeroAllowed: false })
      .meta({ description: "A session without a datagram either way for this long ends." }),
    maxSessions: intInRange(0, 10_000_000).default(D.DEFAULT_UDP_MAX_SESSIONS).meta({
      description:
        "Sessions (client address and port) open at once; datagrams that would open more are dropped. 0 = unlimited.",
    }),
    maxSessionsPerSource: intInRange(0, 10_000_000)
      .default(D.DEFAULT_UDP_MAX_SESSIONS_PER_SOURCE)
      .meta({ description: "Sessions open at once per client address. 0 = unlimited." }),
    bufferSize: intInRange(512, D.MAX_UDP_BUFFER_SIZE, "buffer size")
      .default(D.DEFAULT_UDP_BUFFER_SIZE)
      .meta({ description: "Largest datagram forwarded, in bytes; longer ones are dropped." }),
    replyTimeout: duration(D.DEFAULT_UDP_REPLY_TIMEOUT_MS, { isZeroAllowed: true }).meta({
      description:
        "A client datagram unanswered this long ends its session and counts against the backend (passive health); 0 turns it off, for one-way protocols such as syslog.",
    }),
  })
  .prefault({})
  .meta({ description: "Session settings of a `protocol: udp` listener." });

/** A listener or route name: 1-128 letters, digits, '_', '.' or '-' (no '/': pools join them). */
function resourceName(what: "listener" | "route") {
  return z.string().superRefine((text, ctx) => {
    if (!/^[A-Za-z0-9_.-]{1,128}$/.test(text)) {
      ctx.addIssue({
        code: "custom",
        input: text,
        message: text === ""
          ? `${what} name must not be empty`
          : `invalid ${what} name ${
            JSON.stringify(text)
          }: use 1-128 letters, digits, '_', '.' or '-'`,
      });
    }
  });
}

function intError(issue: { input?: unknown }): string | undefined {
  const got = issue.input;
  if (got === undefined) return undefined;
  if (typeof got !== "number") return `expected an integer, got ${describeValue(got)}`;
  if (!Number.isInteger(got)) return `expected an integer, got ${got}`;
  return `table size ${got} is out of range 2-${D.MAGLEV_MAX_TABLE_SIZE}`;
}

const accessSchema = z
  .strictObject({
    allow: z.array(refined(checkCidr, "CIDR")).optional().meta({
      description:
        "Client addresses (CIDR blocks) that may connect; absent or [] = any not denied.",
    }),
    deny: z.array(refined(checkCidr, "CIDR")).optional().meta({
      description: "Client addresses refused whatever allow says (deny wins).",
    }),
  })
  .meta({
    description:
      "Source ACL, checked on the connecting peer before a byte is read; refusals count with cause acl.",
  });

const listenerSchema = z
  .strictObject({
    name: resourceName("listener").meta({
      description: "Unique name of the listener, used in logs and metrics.",
    }),
    listenerAddress: address({ isHostRequired: false }).meta({
      description: 'Address to accept on: ":80" (all interfaces), "127.0.0.1:80", "[::]:80".',
    }),
    protocol: oneOf(LISTENER_PROTOCOLS as readonly [ListenerProtocol, ...ListenerProtocol[]])
      .default(D.DEFAULT_PROTOCOL)
      .meta({
        description:
          "tcp, tls (passthrough, routed by server name: see tls) or udp (sessions per client address and port; Service ports with protocol UDP). A tcp and a udp listener may share an address.",
      }),
    udp: udpSchema.optional(),
    backendPortName: refined(checkPortName, "port name").optional().meta({
      description:
        "Name of the Kubernetes Service port whose backends form this pool (annotated Services only).",
    }),
    namespace: refined(checkDns1123Label, "namespace").optional().meta({
      description: 'Only Services of this namespace; the same as `namespaces: ["NAME"]`.',
    }),
    namespaces: z
      .array(refined((t) => t === "*" ? undefined : checkDns1123Label(t), "namespace"))
      .min(1, { error: 'must list at least one namespace, or "*" for all' })
      .optional()
      .meta({
        description:
          'Namespaces whose Services may join this pool; ["*"] = all. Discovery watches only these.',
      }),
    binding: oneOf(["portName", "explicit"]).optional().meta({
      description:
        "How a Service binds to this pool; settings.binding when absent (see docs/access_control.md).",
    }),
    service: z
      .string()
      .superRefine((text, ctx) => {
        const parts = text.split("/");
        const ok = parts.length === 2 && checkDns1123Label(parts[0]!) === undefined &&
          parts[1]!.length <= 63 && DNS1035_LABEL.test(parts[1]!);
        if (!ok) {
          ctx.addIssue({
            code: "custom",
            input: text,
            message: `invalid service ${JSON.stringify(text)}: expected "NAMESPACE/NAME"`,
          });
        }
      })
      .optional()
      .meta({ description: 'Only this Service, as "NAMESPACE/NAME".' }),
    serviceSelector: labelSelector()
      .meta({ description: "Only Services carrying all these labels." }),
    backendMode: oneOf(["auto", "nodeport", "clusterip", "endpoints"])
      .default(D.DEFAULT_BACKEND_MODE)
      .meta({
        description:
          "Where backends come from: auto follows the Service type; nodeport = node:nodePort; clusterip = clusterIP:port; endpoints = ready pod endpoints.",
      }),
    nodeAddressTypes: z
      .array(oneOf(["InternalIP", "ExternalIP", "Hostname"]))
      .min(1, { error: "must list at least one node address type" })
      .superRefine((types, ctx) => {
        types.forEach((type, i) => {
          if (types.indexOf(type) !== i) {
            ctx.addIssue({
              code: "custom",
              input: type,
              path: [i],
              message: `duplicate ${JSON.stringify(type)}`,
            });
          }
        });
      })
      .default([...D.DEFAULT_NODE_ADDRESS_TYPES])
      .meta({
        description: "Node address preference for NodePort pools; the first one a node has wins.",
      }),
    excludeCordonedNodes: z.boolean().default(D.DEFAULT_EXCLUDE_CORDONED_NODES).meta({
      description: "Leave cordoned (unschedulable) nodes out of NodePort pools.",
    }),
    nodeSelector: labelSelector().meta({
      description: "NodePort pools: only nodes carrying all these labels.",
    }),
    skipControlPlane: z.boolean().default(D.DEFAULT_SKIP_CONTROL_PLANE).meta({
      description:
        "NodePort pools: leave out nodes labelled node-role.kubernetes.io/control-plane (or master).",
    }),
    backends: z.array(staticBackend).default([]).meta({
      description:
        'Static backends: "host:port" or {address, weight}; used beside Kubernetes discovery.',
    }),
    requestTimeout: duration(D.DEFAULT_REQUEST_TIMEOUT_MS, { isZeroAllowed: false }).meta({
      description:
        'Budget from accepting a client to a connected backend, across all attempts: "5s", or seconds as in the original format.',
    }),
    connectTimeout: duration(D.DEFAULT_CONNECT_TIMEOUT_MS, { isZeroAllowed: false }).meta({
      description: "Limit of one connect attempt; capped by what is left of requestTimeout.",
    }),
    idleTimeout: duration(D.DEFAULT_IDLE_TIMEOUT_MS, { isZeroAllowed: false }).meta({
      description: "Close a connection after this long without bytes either way.",
    }),
    maxConnections: intInRange(0, 10_000_000).default(D.DEFAULT_MAX_CONNECTIONS).meta({
      description: "Concurrent client connections; more are refused at once. 0 = unlimited.",
    }),
    maxConnectionsPerBackend: intInRange(0, 10_000_000)
      .default(D.DEFAULT_MAX_CONNECTIONS_PER_BACKEND)
      .meta({
        description:
          "Concurrent connections per backend; a full backend is skipped, and with every backend full clients are refused at once. 0 = unlimited.",
      }),
    accessLog: z.boolean().optional().meta({
      description:
        "One log line per closed client connection; overrides settings.accessLog for this listener.",
    }),
    maxConnectAttempts: intInRange(1, D.MAX_CONNECT_ATTEMPTS_LIMIT)
      .default(D.DEFAULT_MAX_CONNECT_ATTEMPTS)
      .meta({ description: "Distinct backends tried per client connection." }),
    drainTimeout: duration(D.DEFAULT_DRAIN_TIMEOUT_MS, { isZeroAllowed: true }).meta({
      description: "How long open connections may finish on shutdown or backend removal.",
    }),
    onRemoval: oneOf(["drain", "close"]).default(D.DEFAULT_ON_REMOVAL).meta({
      description: "What happens to open connections of a backend that leaves the pool.",
    }),
    balancer: oneOf(BALANCER_KINDS as readonly [BalancerKind, ...BalancerKind[]])
      .optional()
      .meta({
        description:
          "How a backend is picked for a new connection (udp: session); round_robin by default, maglev (by client address) for protocol udp.",
      }),
    maglev: maglevSchema,
    whenAllUnhealthy: oneOf(["reject", "any"]).default(D.DEFAULT_WHEN_ALL_UNHEALTHY).meta({
      description: "With no healthy backend: refuse connections, or try any backend.",
    }),
    healthCheck: healthCheckSchema,
    proxyProtocol: oneOf(["off", "v1", "v2"]).default(D.DEFAULT_PROXY_PROTOCOL).meta({
      description:
        "Send a PROXY protocol header (v1 text or v2 binary) with the client's address to every backend before any client byte; a Service's nautiluslb.cloudresty.io/proxy-protocol annotation overrides it.",
    }),
    acceptProxyProtocol: z.boolean().default(D.DEFAULT_ACCEPT_PROXY_PROTOCOL).meta({
      description:
        "Expect a PROXY protocol header (v1 or v2, detected) from an outer load balancer on every connection; its address becomes the client address. Requires trustedProxies.",
    }),
    trustedProxies: z
      .array(refined(checkCidr, "CIDR"))
      .optional()
      .meta({
        description:
          'Peers (CIDR blocks, e.g. "10.0.0.0/8", "2001:db8::/32") allowed to connect while acceptProxyProtocol is on; others are refused.',
      }),
    proxyHeaderTimeout: duration(D.DEFAULT_PROXY_HEADER_TIMEOUT_MS, { isZeroAllowed: false }).meta({
      description:
        "With acceptProxyProtocol: how long a connection may take to send its PROXY header before it is closed.",
    }),
    access: accessSchema.optional(),
    maxConnectionsPerSource: intInRange(0, 10_000_000)
      .default(D.DEFAULT_MAX_CONNECTIONS_PER_SOURCE)
      .meta({
        description:
          "Concurrent connections from one client address (the PROXY header's with acceptProxyProtocol), across workers; more are refused. 0 = unlimited.",
      }),
    slowStart: duration(D.DEFAULT_SLOW_START_MS, { isZeroAllowed: true }).meta({
      description:
        'A backend that joins or turns healthy ramps to its full weight over this long, e.g. "30s". 0 = off.',
    }),
    tls: tlsSchema({
      routeName: resourceName("route"),
      portName: refined(checkPortName, "port name"),
      staticBackend,
      peekTimeout: duration(D.DEFAULT_PEEK_TIMEOUT_MS, { isZeroAllowed: false }),
      maxClientHello: intInRange(D.MIN_MAX_CLIENT_HELLO, D.MAX_MAX_CLIENT_HELLO),
    }).optional(),
  })
  .meta({ description: "One listener: an address to accept on and the pool it forwards to." });

function checkCidr(text: string): string | undefined {
  try {
    parseCidr(text);
    return undefined;
  } catch (error) {
    // `Cannot parse CIDR "x": detail` → `detail`: the prefix repeats what the caller says.
    const message = errorMessage(error);
    return message.replace(/^Cannot (?:parse|use) CIDR "[^"]*": /, "");
  }
}

const settingsSchema = z
  .strictObject({
    binding: oneOf(["portName", "explicit"]).default(D.DEFAULT_BINDING).meta({
      description:
        "portName: a Service with the listener's port name joins (first NautilusLB); explicit: it must also name the pool in nautiluslb.cloudresty.io/configurations.",
    }),
    access: accessSchema.prefault({}).meta({
      description:
        "Source ACL of every listener: a listener's allow replaces this allow; deny lists add up.",
    }),
    kubeconfigPath: z.string().default(D.DEFAULT_KUBECONFIG_PATH).meta({
      description: 'Path of a kubeconfig file; "" = in-cluster service account or $KUBECONFIG.',
    }),
    logLevel: oneOf(["trace", "debug", "info", "warning", "error", "fatal"])
      .default(D.DEFAULT_LOG_LEVEL)
      .meta({ description: "Least severe level that is logged." }),
    logFormat: oneOf(["text", "json"]).default(D.DEFAULT_LOG_FORMAT).meta({
      description: "Log lines as text or as JSON objects.",
    }),
    accessLog: z.boolean().default(D.DEFAULT_ACCESS_LOG).meta({
      description:
        "One log line per closed client connection (client, listener, backend, bytes, duration, outcome) for every listener that does not set its own accessLog.",
    }),
    adminAddress: z
      .string()
      .superRefine((text, ctx) => {
        const message = text === "" ? undefined : checkAddress(text, { isHostRequired: false });
        if (message !== undefined) ctx.addIssue({ code: "custom", input: text, message });
      })
      .default(D.DEFAULT_ADMIN_ADDRESS)
      .meta({
        description: 'Admin HTTP address (/metrics, /healthz, /readyz, /pools); "" disables it.',
      }),
    shutdownDelay: duration(D.DEFAULT_SHUTDOWN_DELAY_MS, { isZeroAllowed: true }).meta({
      description:
        "On SIGTERM, fail /readyz but keep accepting this long (so load balancers and probes notice) before the drain starts.",
    }),
    workers: z
      .union([z.literal("auto"), z.number()], {
        error: (issue) =>
          issue.code === "invalid_union" || issue.code === "invalid_value"
            ? `expected "auto" or an integer 1-${D.MAX_WORKERS}, got ${describeValue(issue.input)}`
            : undefined,
      })
      .superRefine((value, ctx) => {
        if (value === "auto") return;
        const message = !Number.isInteger(value)
          ? `expected "auto" or an integer, got ${value}`
          : value < 1 || value > D.MAX_WORKERS
          ? `workers ${value} is out of range 1-${D.MAX_WORKERS}`
          : undefined;
        if (message !== undefined) ctx.addIssue({ code: "custom", input: value, message });
      })
      .default(D.DEFAULT_WORKERS)
      .meta({
        description:
          'Data-plane workers sharing each listener port (Linux): a count, or "auto" for the CPUs the process may use; 1 runs everything in one isolate.',
      }),
  })
  .prefault({})
  .meta({ description: "Process-wide settings." });

/** The whole config file. Parse with `safeParse`; its output still needs `parse.ts`'s checks. */
export const configSchema = z
  .strictObject({
    settings: settingsSchema,
    configurations: z
      .array(listenerSchema)
      .min(1, { error: "at least one listener is required" })
      .meta({ description: "Listeners, each with the pool of backends it forwards to." }),
  })
  .meta({
    title: "NautilusLB configuration",
    description:
      'Layer-4 TCP load balancer for Kubernetes. Durations: "250ms", "5s", "1m30s" or seconds.',
  });

/** What {@linkcode configSchema} produces: defaults filled in, durations in milliseconds. */
export type ConfigSchemaOutput = z.output<typeof configSchema>;
