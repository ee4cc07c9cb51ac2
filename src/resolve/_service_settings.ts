/**
 * A matched Service's own settings read from its annotations: weight, per-backend connection
 * limit, backend mode (with `auto` and headless Services settled), and a warning for every
 * unknown annotation name. A bad value is a warning of the pool and falls back to the
 * listener's value.
 *
 * @module
 */
import type { ServiceInfo } from "../core/inventory.ts";
import type { BackendMode } from "../core/pool_spec.ts";
import { suggest } from "../core/suggest.ts";
import {
  ANNOTATION_BACKEND_MODE,
  ANNOTATION_MAX_CONNECTIONS,
  ANNOTATION_PREFIX,
  ANNOTATION_WEIGHT,
  BACKEND_MODE_NAMES,
  KNOWN_ANNOTATIONS,
  MAX_BACKEND_WEIGHT,
  MAX_CONNECTIONS_ANNOTATION_LIMIT,
  parseBackendMode,
  parseMaxConnections,
  parseWeight,
} from "./annotations.ts";
import type { PlanBuilder } from "./_plan_builder.ts";
import type { MatchedService } from "./_service_match.ts";

/** A mode after `auto` and headless Services were settled. */
export type ConcreteMode = Exclude<BackendMode, "auto">;

const KNOWN_SUFFIXES = KNOWN_ANNOTATIONS.map((a) => a.slice(ANNOTATION_PREFIX.length));

/** A typo in an annotation name must not pass silently: name it and suggest the known one. */
export function warnUnknownAnnotations(m: MatchedService, plan: PlanBuilder): void {
  for (const name in m.service.annotations) {
    if (!name.startsWith(ANNOTATION_PREFIX) || KNOWN_ANNOTATIONS.includes(name)) continue;
    // Compare what follows the prefix, or the shared prefix makes everything look close.
    const guess = suggest(name.slice(ANNOTATION_PREFIX.length), KNOWN_SUFFIXES);
    plan.warn(
      `Ignoring unknown annotation ${name} of Service ${m.key}` +
        (guess === undefined ? "" : `: did you mean ${ANNOTATION_PREFIX}${guess}?`),
    );
  }
}

/** The Service's weight annotation; 1 when absent or invalid (with a warning). */
export function serviceWeight(m: MatchedService, plan: PlanBuilder): number {
  const text = m.service.annotations[ANNOTATION_WEIGHT];
  if (text === undefined) return 1;
  const weight = parseWeight(text);
  if (weight !== undefined) return weight;
  plan.warn(
    `Ignoring annotation ${ANNOTATION_WEIGHT} of Service ${m.key}: "${text}" is not an ` +
      `integer 0-${MAX_BACKEND_WEIGHT}; using 1`,
  );
  return 1;
}

/**
 * The Service's per-backend connection limit; `undefined` (the listener's
 * `maxConnectionsPerBackend`) when absent, 0 or invalid (with a warning).
 */
export function serviceMaxConnections(m: MatchedService, plan: PlanBuilder): number | undefined {
  const text = m.service.annotations[ANNOTATION_MAX_CONNECTIONS];
  if (text === undefined) return undefined;
  const limit = parseMaxConnections(text);
  if (limit === undefined) {
    plan.warn(
      `Ignoring annotation ${ANNOTATION_MAX_CONNECTIONS} of Service ${m.key}: "${text}" is not ` +
        `an integer 0-${MAX_CONNECTIONS_ANNOTATION_LIMIT}; using the listener's maxConnectionsPerBackend`,
    );
    return undefined;
  }
  return limit === 0 ? undefined : limit;
}

/**
 * How the Service's backends are found: its annotation, else `listenerMode`; `auto` becomes
 * `nodeport` for NodePort and LoadBalancer Services, else `clusterip`; a headless Service
 * has no cluster IP, so `auto` and `clusterip` become `endpoints` for it.
 */
export function serviceMode(
  m: MatchedService,
  listenerMode: BackendMode,
  plan: PlanBuilder,
): ConcreteMode {
  let mode = listenerMode;
  const text = m.service.annotations[ANNOTATION_BACKEND_MODE];
  if (text !== undefined) {
    const parsed = parseBackendMode(text);
    if (parsed === undefined) {
      plan.warn(
        `Ignoring annotation ${ANNOTATION_BACKEND_MODE} of Service ${m.key}: "${text}" is not ` +
          `one of ${BACKEND_MODE_NAMES.join(", ")}; using ${listenerMode}`,
      );
    } else {
      mode = parsed;
    }
  }
  // A headless Service has no virtual IP: its pods are the only way in.
  if ((mode === "auto" || mode === "clusterip") && isHeadless(m.service)) return "endpoints";
  if (mode !== "auto") return mode;
  return m.service.type === "NodePort" || m.service.type === "LoadBalancer"
    ? "nodeport"
    : "clusterip";
}

function isHeadless(service: ServiceInfo): boolean {
  return service.clusterIPs.includes("None");
}
