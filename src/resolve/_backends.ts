/**
 * The backends of one matched Service, per backend mode: node ports of eligible nodes, cluster
 * IPs, or endpoints, each left-out candidate with its reason.
 *
 * @module
 */
import { formatHostPort } from "../core/address.ts";
import type { EndpointSliceInfo } from "../core/inventory.ts";
import {
  isReady,
  isServingTerminating,
  type LocalEndpoints,
  localEndpoints,
  localNodeVerdict,
} from "./_endpoint_readiness.ts";
import type { NodeCandidate } from "./_nodes.ts";
import type { PlanBuilder } from "./_plan_builder.ts";
import { type MatchedService, tcpTwinOf } from "./_service_match.ts";
import type { EndpointSliceIndex } from "./slice_index.ts";

/**
 * A NodePort Service's backends: every eligible node at the port's `nodePort`; with
 * `externalTrafficPolicy: Local`, only the nodes kube-proxy forwards to (see
 * {@linkcode localNodeVerdict}).
 */
export function resolveNodePort(
  m: MatchedService,
  weight: number,
  nodes: readonly NodeCandidate[],
  sliceIndex: EndpointSliceIndex,
  hasEndpointSlices: boolean,
  plan: PlanBuilder,
): void {
  const nodePort = m.port.nodePort;
  if (nodePort === undefined || nodePort === 0) {
    plan.exclude({
      service: m.key,
      reason: "no-node-port",
      detail: `port "${m.port.name}" has no nodePort (Service type ${m.service.type})`,
    });
    return;
  }
  let local: LocalEndpoints | undefined;
  /** Local policy, but nothing says where the pods run: every node is left out for that. */
  let noEndpointData = false;
  if (m.service.externalTrafficPolicy === "Local") {
    const slices = sliceIndex.get(m.key);
    if (!hasEndpointSlices) {
      plan.warn(
        `Cannot honour externalTrafficPolicy Local of Service ${m.key}: the cluster serves ` +
          `no EndpointSlice API; using every eligible node`,
      );
    } else if (slices === undefined) {
      noEndpointData = true;
      plan.warnInput(
        `Service ${m.key} has externalTrafficPolicy Local but the input has no EndpointSlice ` +
          `or Endpoints for it, so the nodes running its pods are unknown`,
      );
    } else {
      local = localEndpoints(slices);
    }
  }
  if (nodes.length === 0) plan.warn(`Service ${m.key}: the inventory has no nodes`);
  const twin = tcpTwinOf(m.service, m.port)?.nodePort;
  const via = {
    key: m.key,
    service: m.service,
    isNodePort: true,
    ...(twin !== undefined && twin > 0 && { tcpHealthPort: twin }),
  };
  let fallbackNodes = 0;
  for (const node of nodes) {
    if (node.exclusion !== undefined || node.host === undefined) {
      plan.exclude({
        ...(node.host === undefined ? {} : { address: formatHostPort(node.host, nodePort) }),
        service: m.key,
        node: node.name,
        reason: node.exclusion?.reason ?? "no-node-address",
        ...(node.exclusion === undefined ? {} : { detail: node.exclusion.detail }),
      });
      continue;
    }
    const address = formatHostPort(node.host, nodePort);
    if (noEndpointData) {
      plan.exclude({
        address,
        service: m.key,
        node: node.name,
        reason: "endpoints-unavailable",
        detail: "externalTrafficPolicy is Local and the input has no endpoint data",
      });
      continue;
    }
    const verdict = local === undefined ? "ready" : localNodeVerdict(local, node.name);
    if (typeof verdict === "object") {
      plan.exclude({
        address,
        service: m.key,
        node: node.name,
        reason: "no-local-endpoint",
        detail: verdict.detail,
      });
      continue;
    }
    if (verdict === "serving-terminating") fallbackNodes++;
    plan.include({
      address,
      host: node.host,
      port: nodePort,
      weight,
      service: m.key,
      node: node.name,
      ...(verdict === "serving-terminating" ? { terminating: true } : {}),
    }, via);
  }
  if (fallbackNodes > 0) {
    plan.warn(
      `Service ${m.key} has no ready endpoint; ${fallbackNodes} node(s) whose endpoints are ` +
        `terminating but still serving take new connections, as kube-proxy falls back`,
    );
  }
}

/** A Service's cluster IPs at the Service port, one backend per IP family. */
export function resolveClusterIP(m: MatchedService, weight: number, plan: PlanBuilder): void {
  const ips = m.service.clusterIPs.filter((ip) => ip !== "" && ip !== "None");
  if (ips.length === 0) {
    plan.exclude({
      service: m.key,
      reason: "no-cluster-ip",
      detail: m.service.type === "ExternalName"
        ? "ExternalName Services have no cluster IP"
        : "Service has no cluster IP",
    });
    return;
  }
  // `port`, not `targetPort`: the cluster IP listens on the Service port, kube-proxy maps it.
  const twin = tcpTwinOf(m.service, m.port);
  for (const ip of ips) {
    plan.include({
      address: formatHostPort(ip, m.port.port),
      host: ip,
      port: m.port.port,
      weight,
      service: m.key,
    }, {
      key: m.key,
      service: m.service,
      isNodePort: false,
      ...(twin !== undefined && { tcpHealthPort: twin.port }),
    });
  }
}

/**
 * A Service's endpoints at the EndpointSlice port named `portName`: ready ones, or when there
 * is none, serving terminating ones (kube-proxy's fallback), marked `terminating`.
 */
export function resolveEndpoints(
  m: MatchedService,
  weight: number,
  sliceIndex: EndpointSliceIndex,
  hasEndpointSlices: boolean,
  portName: string,
  plan: PlanBuilder,
): void {
  if (!hasEndpointSlices) {
    plan.exclude({
      service: m.key,
      reason: "endpoints-unavailable",
      detail: "the cluster serves no EndpointSlice API",
    });
    plan.warn(
      `Cannot resolve endpoints of Service ${m.key}: the cluster serves no EndpointSlice API`,
    );
    return;
  }
  const slices: {
    slice: EndpointSliceInfo;
    port: number;
    isIp: boolean;
    tcpHealthPort?: number;
  }[] = [];
  const twinName = tcpTwinOf(m.service, m.port)?.name;
  let candidates = 0;
  // kube-proxy (KEP-1669): with no ready endpoint for the port, serving terminating ones
  // still take new connections rather than dropping them.
  let hasReady = false;
  for (const slice of sliceIndex.get(m.key) ?? []) {
    const slicePort = slice.ports.find((p) => p.name === portName);
    if (slicePort === undefined) continue;
    const isIp = slice.addressType === "IPv4" || slice.addressType === "IPv6";
    const twinPort = twinName === undefined
      ? undefined
      : slice.ports.find((p) => p.name === twinName)?.port;
    slices.push({
      slice,
      port: slicePort.port,
      isIp,
      ...(twinPort !== undefined && { tcpHealthPort: twinPort }),
    });
    for (const ep of slice.endpoints) {
      // Kubernetes: addresses are fungible and consumers may use only the first.
      const host = ep.addresses[0];
      if (host === undefined || host === "") continue;
      candidates++;
      if (isIp && isReady(ep)) hasReady = true;
    }
  }
  if (candidates === 0) {
    plan.warn(`Service ${m.key} has no endpoints for port "${portName}"`);
    return;
  }
  let fallback = 0;
  for (const { slice, port, isIp, tcpHealthPort } of slices) {
    const via = {
      key: m.key,
      service: m.service,
      isNodePort: false,
      ...(tcpHealthPort !== undefined && { tcpHealthPort }),
    };
    for (const ep of slice.endpoints) {
      const host = ep.addresses[0];
      if (host === undefined || host === "") continue;
      const address = formatHostPort(host, port);
      const who = {
        address,
        service: m.key,
        ...(ep.nodeName === undefined ? {} : { node: ep.nodeName }),
        ...(ep.podName === undefined ? {} : { pod: ep.podName }),
      };
      if (!isIp) {
        plan.exclude({
          ...who,
          reason: "unsupported-address-type",
          detail: `address type ${slice.addressType} is not supported`,
        });
      } else if (ep.terminating === true) {
        if (!hasReady && isServingTerminating(ep)) {
          fallback++;
          plan.include({ ...who, host, port, weight, terminating: true }, via);
          continue;
        }
        // New connections must not go to a pod on its way out; the pool drains the old ones.
        plan.exclude({
          ...who,
          reason: "terminating",
          detail: ep.serving === false
            ? "endpoint is terminating"
            : "endpoint is terminating, still serving",
        });
      } else if (ep.ready === false) {
        plan.exclude({ ...who, reason: "not-ready", detail: "endpoint is not ready" });
      } else {
        plan.include({ ...who, host, port, weight }, via);
      }
    }
  }
  if (fallback > 0) {
    plan.warn(
      `Service ${m.key} has no ready endpoint for port "${portName}"; ${fallback} terminating ` +
        `endpoint(s) that still serve take new connections, as kube-proxy falls back`,
    );
  }
}
