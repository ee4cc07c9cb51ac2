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
export {
  type BackoffOptions,
  DEFAULT_BACKOFF,
  DEFAULT_COALESCE_MS,
  DEFAULT_SERVICE_ACCOUNT_DIR,
  DEFAULT_WATCH_TIMEOUT_SECONDS,
  type DiscoveryState,
  type DiscoveryStatus,
  type EndpointsSource,
  type KubeConfigSource,
  KubeCredentials,
  KubernetesDiscovery,
  type KubernetesDiscoveryOptions,
  loadKubeConfig,
  type LoadKubeConfigOptions,
} from "./kubernetes.ts";
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
