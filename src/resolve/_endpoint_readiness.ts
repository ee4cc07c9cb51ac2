/**
 * Which EndpointSlice entries take new connections, as kube-proxy decides (KEP-1669): ready
 * endpoints; when a Service has none, endpoints that are serving while terminating. Also the
 * per-node verdict of `externalTrafficPolicy: Local`.
 *
 * @module
 */
import type { EndpointInfo, EndpointSliceInfo } from "../core/inventory.ts";

/** Whether an endpoint takes new connections in normal times: ready and not terminating. */
export function isReady(ep: EndpointInfo): boolean {
  return ep.ready !== false && ep.terminating !== true;
}

/**
 * Whether an endpoint may take new connections while its Service has no ready one: still
 * `serving` (absent counts as serving, as kube-proxy reads it) while `terminating`.
 */
export function isServingTerminating(ep: EndpointInfo): boolean {
  return ep.terminating === true && ep.serving !== false;
}

/** Where a Service's endpoints run, for `externalTrafficPolicy: Local`. */
export interface LocalEndpoints {
  /** Nodes with a ready endpoint. */
  readonly ready: ReadonlySet<string>;
  /** Nodes with a serving, terminating endpoint. */
  readonly servingTerminating: ReadonlySet<string>;
}

/** The nodes running a Service's ready and serving-terminating endpoints; unplaced ones skipped. */
export function localEndpoints(slices: readonly EndpointSliceInfo[]): LocalEndpoints {
  const ready = new Set<string>();
  const servingTerminating = new Set<string>();
  for (const slice of slices) {
    for (const ep of slice.endpoints) {
      if (ep.nodeName === undefined) continue;
      if (isReady(ep)) ready.add(ep.nodeName);
      else if (isServingTerminating(ep)) servingTerminating.add(ep.nodeName);
    }
  }
  return { ready, servingTerminating };
}

/**
 * Which nodes take traffic of an `externalTrafficPolicy: Local` Service, as kube-proxy decides
 * (KEP-1669): nodes with a ready local endpoint; when no node has one, nodes whose local
 * endpoints are serving but terminating, since kube-proxy still forwards new connections there
 * (its `healthCheckNodePort` answers 503 on them all the same).
 *
 * @returns `"ready"` or `"serving-terminating"` for a node that takes traffic, else why not
 */
export function localNodeVerdict(
  local: LocalEndpoints,
  nodeName: string,
): "ready" | "serving-terminating" | { readonly detail: string } {
  if (local.ready.has(nodeName)) return "ready";
  const hasTerminating = local.servingTerminating.has(nodeName);
  if (hasTerminating && local.ready.size === 0) return "serving-terminating";
  return {
    detail: hasTerminating
      ? "externalTrafficPolicy is Local and the endpoints on this node are terminating " +
        "while other nodes have ready ones"
      : "externalTrafficPolicy is Local and no ready endpoint runs on this node",
  };
}
