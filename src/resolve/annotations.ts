/**
 * Annotation and label names that steer resolution, with their parsers.
 *
 * @module
 */
import { parseDurationMs } from "../core/duration.ts";
import {
  type BackendMode,
  type HealthCheckSpec,
  MAX_BACKEND_WEIGHT,
  MAX_HEALTH_COUNT,
} from "../core/pool_spec.ts";
import type { ProxyProtocolVersion } from "../core/types.ts";
import { errorMessage } from "../core/error_message.ts";

/** A Service joins pools only when this annotation is `"true"`. */
export const ANNOTATION_ENABLED = "nautiluslb.cloudresty.io/enabled";
/**
 * Pools a Service binds to under `binding: explicit`, comma-separated: listener names, and
 * `listener/route` for a route's pool. The original NautilusLB's annotation.
 */
export const ANNOTATION_CONFIGURATIONS = "nautiluslb.cloudresty.io/configurations";
/** Overrides the listener's `backendMode` for one Service. */
export const ANNOTATION_BACKEND_MODE = "nautiluslb.cloudresty.io/backend-mode";
/** Weight (0-1000) of every backend a Service contributes. */
export const ANNOTATION_WEIGHT = "nautiluslb.cloudresty.io/weight";
/**
 * PROXY protocol toward a Service's backends: `v1` or `v2`, or `off` to send none; overrides
 * the listener's `proxyProtocol`.
 */
export const ANNOTATION_PROXY_PROTOCOL = "nautiluslb.cloudresty.io/proxy-protocol";

/**
 * Connections each backend of the Service takes at most (a decimal integer; 0 = the
 * listener's `maxConnectionsPerBackend`). A bad value is a pool warning and is ignored.
 */
export const ANNOTATION_MAX_CONNECTIONS = "nautiluslb.cloudresty.io/max-connections-per-backend";
/**
 * Nodes carrying this label (any value) never receive load-balancer traffic, as for
 * Kubernetes' own service controller.
 * @see https://kubernetes.io/docs/reference/labels-annotations-taints/#node-kubernetes-io-exclude-from-external-load-balancers
 */
export const LABEL_EXCLUDE_FROM_EXTERNAL_LB =
  "node.kubernetes.io/exclude-from-external-load-balancers";
/** EndpointSlice label naming the Service a slice belongs to. */
export const LABEL_SERVICE_NAME = "kubernetes.io/service-name";

/** Prefix of every NautilusLB annotation. */
export const ANNOTATION_PREFIX = "nautiluslb.cloudresty.io/";
/** Per-Service health-check overrides: `health-check-{interval,timeout,rise,fall,port}`. */
export const HEALTH_ANNOTATION_PREFIX = `${ANNOTATION_PREFIX}health-check-`;
/** The health-check settings a Service may override, as annotation suffixes, in check order. */
export const HEALTH_ANNOTATION_KEYS = ["interval", "timeout", "rise", "fall", "port"] as const;
/** One of {@linkcode HEALTH_ANNOTATION_KEYS}. */
export type HealthAnnotationKey = typeof HEALTH_ANNOTATION_KEYS[number];
/** Every annotation NautilusLB reads; others under its prefix are reported as unknown. */
export const KNOWN_ANNOTATIONS: readonly string[] = [
  ANNOTATION_ENABLED,
  ANNOTATION_CONFIGURATIONS,
  ANNOTATION_BACKEND_MODE,
  ANNOTATION_WEIGHT,
  ANNOTATION_PROXY_PROTOCOL,
  ANNOTATION_MAX_CONNECTIONS,
  ...HEALTH_ANNOTATION_KEYS.map((k) => HEALTH_ANNOTATION_PREFIX + k),
];

/** The pool names in a configurations annotation: split at commas, trimmed, empty ones dropped. */
export function parseConfigurations(text: string | undefined): string[] {
  if (text === undefined) return [];
  return text.split(",").map((name) => name.trim()).filter((name) => name !== "");
}

const BACKEND_MODES: readonly BackendMode[] = ["auto", "nodeport", "clusterip", "endpoints"];

/**
 * Parses the backend-mode annotation. Case is ignored, so `NodePort` (the Service type's
 * spelling) is accepted.
 * @returns the mode, or `undefined` when the text names none
 */
export function parseBackendMode(text: string): BackendMode | undefined {
  const mode = text.trim().toLowerCase();
  return BACKEND_MODES.find((m) => m === mode);
}

/**
 * Parses the weight annotation: a decimal integer from 0 to {@linkcode MAX_BACKEND_WEIGHT}.
 * @returns the weight, or `undefined` when the text is not one
 */
export function parseWeight(text: string): number | undefined {
  const trimmed = text.trim();
  if (!/^\d{1,4}$/.test(trimmed)) return undefined;
  const weight = Number(trimmed);
  return weight <= MAX_BACKEND_WEIGHT ? weight : undefined;
}

/** The accepted spellings of the proxy-protocol annotation, for messages. */
export const PROXY_PROTOCOL_NAMES: readonly string[] = ["v1", "v2", "off"];

/**
 * Parses the proxy-protocol annotation; case is ignored.
 * @returns the version, `"off"`, or `undefined` when the text names neither
 */
export function parseProxyProtocol(text: string): ProxyProtocolVersion | "off" | undefined {
  const value = text.trim().toLowerCase();
  return value === "v1" || value === "v2" || value === "off" ? value : undefined;
}

/** Largest value the max-connections-per-backend annotation accepts (as `maxConnections`). */
export const MAX_CONNECTIONS_ANNOTATION_LIMIT = 10_000_000;

/**
 * Parses the max-connections-per-backend annotation: a decimal integer from 0 to
 * {@linkcode MAX_CONNECTIONS_ANNOTATION_LIMIT}.
 * @returns the limit, or `undefined` when the text is not one
 */
export function parseMaxConnections(text: string): number | undefined {
  const trimmed = text.trim();
  if (!/^\d{1,8}$/.test(trimmed)) return undefined;
  const n = Number(trimmed);
  return n <= MAX_CONNECTIONS_ANNOTATION_LIMIT ? n : undefined;
}

export { MAX_BACKEND_WEIGHT, MAX_HEALTH_COUNT };

/** The accepted spellings of the backend-mode annotation, for messages. */
export const BACKEND_MODE_NAMES: readonly string[] = BACKEND_MODES;

/**
 * Applies a Service's `nautiluslb.cloudresty.io/health-check-{interval,timeout,rise,fall,port}`
 * annotations to the listener's check. A bad value keeps the listener's value and adds one
 * warning to `warnings`, in {@linkcode HEALTH_ANNOTATION_KEYS} order.
 *
 * @param base the listener's check; never mutated
 * @param annotations the Service's `metadata.annotations`
 * @param serviceKey `namespace/name`, for the warnings
 * @param warnings receives one message per ignored annotation
 * @returns a new check, or `base` itself when no annotation applies
 */
export function applyHealthAnnotations(
  base: HealthCheckSpec,
  annotations: Readonly<Record<string, string>>,
  serviceKey: string,
  warnings: string[],
): HealthCheckSpec {
  const out: { -readonly [K in keyof HealthCheckSpec]: HealthCheckSpec[K] } = { ...base };
  let changed = false;
  for (const key of HEALTH_ANNOTATION_KEYS) {
    const name = HEALTH_ANNOTATION_PREFIX + key;
    const raw = annotations[name];
    if (raw === undefined) continue;
    const bad = (why: string) =>
      warnings.push(`Service ${serviceKey}: annotation ${name} "${raw}" ignored: ${why}`);
    if (key === "interval" || key === "timeout") {
      let ms: number;
      try {
        ms = parseDurationMs(raw);
      } catch (error) {
        bad(errorMessage(error));
        continue;
      }
      if (ms < 1) {
        bad("must be at least 1ms");
        continue;
      }
      if (key === "interval") out.intervalMs = ms;
      else out.timeoutMs = ms;
      changed = true;
      continue;
    }
    const n = /^\d+$/.test(raw.trim()) ? Number(raw.trim()) : NaN;
    if (key === "port") {
      if (!(n >= 1 && n <= 65535)) {
        bad("port must be an integer in range 1-65535");
        continue;
      }
      out.port = n;
    } else {
      if (!(n >= 1 && n <= MAX_HEALTH_COUNT)) {
        bad(`${key} must be an integer in range 1-${MAX_HEALTH_COUNT}`);
        continue;
      }
      if (key === "rise") out.rise = n;
      else out.fall = n;
    }
    changed = true;
  }
  return changed ? out : base;
}
