/**
 * What discovery knows about a cluster, reduced to the fields resolution needs.
 * Discovery (live API or manifests) produces it; resolve/ reads it. Plain data, no client types.
 *
 * @module
 */

/** A Service port. */
export interface ServicePortInfo {
  readonly name: string;
  readonly protocol: string;
  readonly port: number;
  readonly nodePort?: number;
  /** Number or named port, as in the Service spec. */
  readonly targetPort?: number | string;
}

/** A core/v1 Service. */
export interface ServiceInfo {
  readonly namespace: string;
  readonly name: string;
  /** `ClusterIP`, `NodePort`, `LoadBalancer` or `ExternalName`. */
  readonly type: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
  /** `spec.clusterIPs` (or `[spec.clusterIP]`); `["None"]` for headless Services. */
  readonly clusterIPs: readonly string[];
  /** `Cluster` or `Local`. */
  readonly externalTrafficPolicy?: string;
  readonly healthCheckNodePort?: number;
  readonly ports: readonly ServicePortInfo[];
}

/** A node address from `status.addresses`. */
export interface NodeAddressInfo {
  readonly type: string;
  readonly address: string;
}

/** A core/v1 Node. */
export interface NodeInfo {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  /** Status of the `Ready` condition: `True`, `False` or `Unknown` (also when missing). */
  readonly ready: "True" | "False" | "Unknown";
  /** `spec.unschedulable` (cordoned). */
  readonly unschedulable: boolean;
  readonly addresses: readonly NodeAddressInfo[];
}

/** One endpoint of an EndpointSlice. */
export interface EndpointInfo {
  readonly addresses: readonly string[];
  /** `conditions.ready`; absent means ready (Kubernetes API semantics). */
  readonly ready?: boolean;
  readonly serving?: boolean;
  readonly terminating?: boolean;
  readonly nodeName?: string;
  /** `targetRef.name` when it is a Pod. */
  readonly podName?: string;
}

/** A discovery.k8s.io EndpointSlice. */
export interface EndpointSliceInfo {
  readonly namespace: string;
  readonly name: string;
  /** Label `kubernetes.io/service-name`. */
  readonly serviceName: string;
  /** `IPv4`, `IPv6` or `FQDN`. */
  readonly addressType: string;
  readonly ports: readonly {
    readonly name: string;
    readonly port: number;
    readonly protocol: string;
  }[];
  readonly endpoints: readonly EndpointInfo[];
}

/** A snapshot of the cluster objects discovery watches. Keys are `namespace/name` (nodes: name). */
export interface Inventory {
  readonly services: ReadonlyMap<string, ServiceInfo>;
  readonly nodes: ReadonlyMap<string, NodeInfo>;
  readonly endpointSlices: ReadonlyMap<string, EndpointSliceInfo>;
  /** False when the cluster serves no EndpointSlice API; features needing it are unavailable. */
  readonly hasEndpointSlices: boolean;
}

/** An inventory with nothing in it, for static-only configs. */
export const EMPTY_INVENTORY: Inventory = {
  services: new Map(),
  nodes: new Map(),
  endpointSlices: new Map(),
  hasEndpointSlices: true,
};
