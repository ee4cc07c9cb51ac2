/**
 * What discovery knows about a cluster, reduced to the fields resolution needs.
 * Discovery (live API or manifests) produces it; resolve/ reads it. Plain data, no client types.
 *
 * @module
 */

/** A Service port. */
export interface ServicePortInfo {
  /** Port name; `""` when unnamed (allowed for single-port Services). */
  readonly name: string;
  /** `TCP`, `UDP` or `SCTP`; `TCP` when the spec leaves it out. */
  readonly protocol: string;
  /** The Service (ClusterIP) port. */
  readonly port: number;
  /** Port opened on every node (NodePort/LoadBalancer); absent when none is allocated. */
  readonly nodePort?: number;
  /** Number or named port, as in the Service spec. */
  readonly targetPort?: number | string;
}

/** A core/v1 Service. */
export interface ServiceInfo {
  /** Namespace; with `name`, the inventory key `namespace/name`. */
  readonly namespace: string;
  /** `metadata.name`, unique within `namespace`. */
  readonly name: string;
  /** `ClusterIP`, `NodePort`, `LoadBalancer` or `ExternalName`. */
  readonly type: string;
  /** `metadata.labels`; `{}` when none. */
  readonly labels: Readonly<Record<string, string>>;
  /** `metadata.annotations`, where the `nautiluslb.cloudresty.io/` opt-in lives; `{}` when none. */
  readonly annotations: Readonly<Record<string, string>>;
  /** `spec.clusterIPs` (or `[spec.clusterIP]`); `["None"]` for headless Services. */
  readonly clusterIPs: readonly string[];
  /** `Cluster` or `Local`. */
  readonly externalTrafficPolicy?: string;
  /** Node port kube-proxy answers health checks on (`externalTrafficPolicy: Local`). */
  readonly healthCheckNodePort?: number;
  /** `spec.ports`, minus entries without a port number. */
  readonly ports: readonly ServicePortInfo[];
}

/** A node address from `status.addresses`. */
export interface NodeAddressInfo {
  /** `InternalIP`, `ExternalIP`, `Hostname`, or another type the cluster reports. */
  readonly type: string;
  /** IP address or host name, as reported. */
  readonly address: string;
}

/** A core/v1 Node. */
export interface NodeInfo {
  /** Node name: its inventory key and what {@linkcode EndpointInfo.nodeName} refers to. */
  readonly name: string;
  /** `metadata.labels`, e.g. `node.kubernetes.io/exclude-from-external-load-balancers`. */
  readonly labels: Readonly<Record<string, string>>;
  /**
   * Status of the `Ready` condition: `True`, `False` or `Unknown`; absent when the node
   * reports no Ready condition (no `status` yet, e.g. a node object just registered or
   * hand-written).
   */
  readonly ready?: "True" | "False" | "Unknown";
  /** `spec.unschedulable` (cordoned). */
  readonly unschedulable: boolean;
  /** `status.addresses` in API order; NodePort pools take the first of a preferred type. */
  readonly addresses: readonly NodeAddressInfo[];
}

/** One endpoint of an EndpointSlice. */
export interface EndpointInfo {
  /** IPs (or FQDNs, per the slice's `addressType`); fungible, so only the first is used. */
  readonly addresses: readonly string[];
  /** `conditions.ready`; absent means ready (Kubernetes API semantics). */
  readonly ready?: boolean;
  /** `conditions.serving`: still accepts traffic while terminating; absent when unreported. */
  readonly serving?: boolean;
  /** `conditions.terminating`; absent means not terminating. */
  readonly terminating?: boolean;
  /** Node the endpoint runs on (`externalTrafficPolicy: Local` filtering); absent when unknown. */
  readonly nodeName?: string;
  /** `targetRef.name` when it is a Pod. */
  readonly podName?: string;
}

/** A discovery.k8s.io EndpointSlice. */
export interface EndpointSliceInfo {
  /** Namespace; with `name`, the inventory key `namespace/name`. */
  readonly namespace: string;
  /** `metadata.name`; from v1 Endpoints, that object's name (`-N` suffix when split by family). */
  readonly name: string;
  /** Label `kubernetes.io/service-name`. */
  readonly serviceName: string;
  /** `IPv4`, `IPv6` or `FQDN`. */
  readonly addressType: string;
  /** Ports the slice serves; entries without a number (meaning all ports) are left out. */
  readonly ports: readonly {
    readonly name: string;
    readonly port: number;
    readonly protocol: string;
  }[];
  /** The endpoints, in API order. */
  readonly endpoints: readonly EndpointInfo[];
}

/** A snapshot of the cluster objects discovery watches. Keys are `namespace/name` (nodes: name). */
export interface Inventory {
  /** Services by `namespace/name`. */
  readonly services: ReadonlyMap<string, ServiceInfo>;
  /** Nodes by name. */
  readonly nodes: ReadonlyMap<string, NodeInfo>;
  /** Slices by `namespace/name`; find a Service's slices by `serviceName`, not by key. */
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
