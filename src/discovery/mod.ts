/**
 * Discovery: where the {@linkcode Inventory} comes from. A live Kubernetes API (list+watch),
 * Kubernetes manifests on disk, or raw API objects converted by the pure converters.
 *
 * @module
 */
export type {
  EndpointInfo,
  EndpointSliceInfo,
  Inventory,
  NodeAddressInfo,
  NodeInfo,
  ServiceInfo,
  ServicePortInfo,
} from "../core/inventory.ts";
export type { DiscoveryState } from "../core/discovery_state.ts";
export {
  DEFAULT_COALESCE_MS,
  type EndpointsSource,
  KubernetesDiscovery,
  type KubernetesDiscoveryOptions,
  type KubernetesSyncStatus,
} from "./kubernetes.ts";
export {
  DEFAULT_SERVICE_ACCOUNT_DIR,
  type KubeConfigSource,
  KubeCredentials,
  loadKubeConfig,
  type LoadKubeConfigOptions,
} from "./kubeconfig.ts";
export { type ApiFailure, DEFAULT_API_REQUEST_TIMEOUT_MS } from "./api_client.ts";
export {
  type BackoffOptions,
  DEFAULT_BACKOFF,
  DEFAULT_WATCH_IDLE_GRACE_MS,
  DEFAULT_WATCH_TIMEOUT_SECONDS,
} from "./reflector.ts";
export { redactSecrets } from "./redact.ts";
export {
  type ConvertedObject,
  convertObject,
  type ConvertOptions,
  DEFAULT_NAMESPACE,
  endpointSliceFromObject,
  endpointSlicesFromEndpoints,
  nodeFromObject,
  serviceFromObject,
} from "./convert.ts";
export {
  type LoadedManifests,
  loadManifests,
  type ManifestSource,
  parseManifests,
} from "./manifests.ts";
