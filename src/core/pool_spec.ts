/**
 * The part of a listener's configuration that decides its pool's membership. Config's
 * `ListenerConfig` extends it; resolve/ reads only this.
 *
 * @module
 */

/** Where backends of a Kubernetes pool come from. `auto` follows the Service type. */
export type BackendMode = "auto" | "nodeport" | "clusterip" | "endpoints";
/** Node address types, as the Kubernetes API names them. */
export type NodeAddressType = "InternalIP" | "ExternalIP" | "Hostname";

/** A static backend as written under `backends:`. */
export interface StaticBackendSpec {
  readonly host: string;
  readonly port: number;
  /** @default {1} */
  readonly weight: number;
}

/** What decides one pool's membership. */
export interface PoolSpec {
  readonly name: string;
  /** As written, e.g. `":80"`. */
  readonly listenerAddress: string;
  /** Kubernetes Service port name; absent for static-only pools. */
  readonly backendPortName?: string;
  /** Namespace; all namespaces when absent. */
  readonly namespace?: string;
  /** Only this Service, `NAMESPACE/NAME`. */
  readonly service?: string;
  /** Only Services carrying all these labels. */
  readonly serviceSelector?: Readonly<Record<string, string>>;
  /** @default {"auto"} */
  readonly backendMode: BackendMode;
  /** @default {["InternalIP", "ExternalIP"]} */
  readonly nodeAddressTypes: readonly NodeAddressType[];
  /** @default {false} */
  readonly excludeCordonedNodes: boolean;
  readonly backends: readonly StaticBackendSpec[];
}
