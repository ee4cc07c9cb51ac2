/**
 * The contract of {@linkcode KubernetesDiscovery}: its options and the status it reports.
 *
 * @module
 */
import type { DiscoveryState } from "../core/discovery_state.ts";
import type { Inventory } from "../core/inventory.ts";
import type { ApiFailure } from "./api_client.ts";
import type { KubeCredentials } from "./kubeconfig.ts";
import type { BackoffOptions } from "./reflector.ts";

/** Which API feeds `Inventory.endpointSlices`. */
export type EndpointsSource =
  | "discovery.k8s.io/v1"
  | "discovery.k8s.io/v1beta1"
  | "v1/endpoints"
  | "none";

/** A status change of the discovery loop. */
export interface KubernetesSyncStatus {
  /** `disconnected` while any loop has an error, else `synced` once all have listed. */
  readonly state: DiscoveryState;
  /** The latest error while `disconnected` (or `syncing` after an error). */
  readonly error?: string;
  /**
   * Why requests fail while `disconnected`: `unreachable`, `unauthorized` (401), `forbidden`
   * (403), `invalid-response` (a body that is not a list or watch event), `server-error`,
   * `timeout` (a request or a silent watch).
   */
  readonly failure?: ApiFailure;
  /** The API the endpoint data comes from, once known. */
  readonly endpointsSource?: EndpointsSource;
}

/** Options of {@linkcode KubernetesDiscovery}. */
export interface KubernetesDiscoveryOptions {
  /** Credentials from {@linkcode loadKubeConfig}; when absent they are loaded from the next two fields. */
  readonly credentials?: KubeCredentials;
  /** Explicit kubeconfig path (flag, then settings). */
  readonly kubeconfigPath?: string;
  /** kubeconfig context to use. */
  readonly context?: string;
  /** Namespaces whose Services and EndpointSlices are watched; Nodes are cluster-scoped. */
  readonly namespaces: readonly string[] | "all";
  /** Stops every request and timer; {@linkcode KubernetesDiscovery.finished} settles afterwards. */
  readonly signal: AbortSignal;
  /**
   * Called with a fresh immutable snapshot after changes that follow the initial sync, at most
   * once per {@linkcode KubernetesDiscoveryOptions.coalesceMs}. Never called with an emptied
   * inventory because of errors: while the API server is unreachable the last one stays.
   */
  onChange(inventory: Inventory): void;
  /** Called when the aggregate state or its error changes. */
  onStatus?(status: KubernetesSyncStatus): void;
  /** Retry delays after a failed list or watch. @default {{ initialMs: 500, maxMs: 30000 }} */
  readonly backoff?: BackoffOptions;
  /** Jitter source in [0, 1). @default {Math.random} */
  readonly random?: () => number;
  /** Window in which bursts of events become one `onChange`. @default {5} */
  readonly coalesceMs?: number;
  /** Fall back to core/v1 Endpoints when no EndpointSlice API is served. @default {true} */
  readonly endpointsFallback?: boolean;
  /** Server-side watch timeout; the watch is re-opened from the last resourceVersion. @default {300} */
  readonly watchTimeoutSeconds?: number;
  /**
   * A watch that sends no byte (event, bookmark) for this long is dropped and re-opened.
   * @default {watchTimeoutSeconds * 1000 + 30000}
   */
  readonly watchIdleTimeoutMs?: number;
  /** Budget of one list page or discovery request, body included. @default {30000} */
  readonly requestTimeoutMs?: number;
  /** Page size of list requests. @default {500} */
  readonly pageSize?: number;
  /**
   * Rejects {@linkcode KubernetesDiscovery.start} when the initial list has not completed in time
   * (the loop keeps retrying until the signal aborts). @default {undefined} (wait until aborted)
   */
  readonly initialSyncTimeoutMs?: number;
}
