/**
 * Annotation and label names that steer resolution, with their parsers.
 *
 * @module
 */
import type { BackendMode } from "../core/pool_spec.ts";

/** A Service joins pools only when this annotation is `"true"`. */
export const ANNOTATION_ENABLED = "nautiluslb.cloudresty.io/enabled";
/** Overrides the listener's `backendMode` for one Service. */
export const ANNOTATION_BACKEND_MODE = "nautiluslb.cloudresty.io/backend-mode";
/** Weight (0-1000) of every backend a Service contributes. */
export const ANNOTATION_WEIGHT = "nautiluslb.cloudresty.io/weight";
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
/** Every annotation NautilusLB reads; others under its prefix are reported as unknown. */
export const KNOWN_ANNOTATIONS: readonly string[] = [
  ANNOTATION_ENABLED,
  ANNOTATION_BACKEND_MODE,
  ANNOTATION_WEIGHT,
  ...["interval", "timeout", "rise", "fall", "port"].map((k) => HEALTH_ANNOTATION_PREFIX + k),
];

/** Largest weight the weight annotation accepts. */
export const MAX_WEIGHT = 1000;

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
 * Parses the weight annotation: a decimal integer from 0 to {@linkcode MAX_WEIGHT}.
 * @returns the weight, or `undefined` when the text is not one
 */
export function parseWeight(text: string): number | undefined {
  const trimmed = text.trim();
  if (!/^\d{1,4}$/.test(trimmed)) return undefined;
  const weight = Number(trimmed);
  return weight <= MAX_WEIGHT ? weight : undefined;
}

/** The accepted spellings of the backend-mode annotation, for messages. */
export const BACKEND_MODE_NAMES: readonly string[] = BACKEND_MODES;
