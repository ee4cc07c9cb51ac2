/**
 * Node eligibility for NodePort backends: each node's address of the preferred type and, when
 * it may not take traffic, the reason (not ready, excluded by label, control plane with
 * `skipControlPlane`, outside `nodeSelector`, cordoned, no address).
 *
 * @module
 */
import type { Inventory, NodeInfo } from "../core/inventory.ts";
import type { ExclusionReason } from "../core/plan.ts";
import type { PoolSpec } from "../core/pool_spec.ts";
import { LABEL_EXCLUDE_FROM_EXTERNAL_LB } from "./annotations.ts";

/** Node role labels of control-plane nodes: today's and the one before Kubernetes 1.24. */
export const CONTROL_PLANE_LABELS: readonly string[] = [
  "node-role.kubernetes.io/control-plane",
  "node-role.kubernetes.io/master",
];

/** A node with its address and, when it may not take traffic, why. */
export interface NodeCandidate {
  readonly name: string;
  readonly host?: string;
  readonly exclusion?: { readonly reason: ExclusionReason; readonly detail: string };
}

/**
 * Settles every node's address and eligibility once per pool.
 * @returns a new array sorted by node name
 */
export function prepareNodes(inventory: Inventory, spec: PoolSpec): NodeCandidate[] {
  const nodes = [...inventory.nodes.values()].sort((a, b) =>
    a.name < b.name ? -1 : a.name > b.name ? 1 : 0
  );
  return nodes.map((node) => {
    const host = nodeHost(node, spec);
    const exclusion = nodeExclusion(node, host, spec);
    return {
      name: node.name,
      ...(host === undefined ? {} : { host }),
      ...(exclusion === undefined ? {} : { exclusion }),
    };
  });
}

/** The first non-empty address of the first type in `spec.nodeAddressTypes` the node has. */
function nodeHost(node: NodeInfo, spec: PoolSpec): string | undefined {
  for (const type of spec.nodeAddressTypes) {
    const found = node.addresses.find((a) => a.type === type && a.address !== "");
    if (found) return found.address;
  }
  return undefined;
}

function nodeExclusion(
  node: NodeInfo,
  host: string | undefined,
  spec: PoolSpec,
): NodeCandidate["exclusion"] {
  if (node.ready === undefined) {
    return { reason: "node-not-ready", detail: "no Ready condition" };
  }
  if (node.ready !== "True") {
    return { reason: "node-not-ready", detail: `Ready condition is ${node.ready}` };
  }
  if (Object.hasOwn(node.labels, LABEL_EXCLUDE_FROM_EXTERNAL_LB)) {
    return { reason: "node-excluded", detail: `label ${LABEL_EXCLUDE_FROM_EXTERNAL_LB}` };
  }
  if (spec.skipControlPlane === true) {
    const role = CONTROL_PLANE_LABELS.find((label) => Object.hasOwn(node.labels, label));
    if (role !== undefined) {
      return { reason: "node-control-plane", detail: `label ${role}; skipControlPlane is on` };
    }
  }
  const selector = spec.nodeSelector;
  if (selector !== undefined) {
    for (const key in selector) {
      if (node.labels[key] !== selector[key]) {
        const has = node.labels[key];
        return {
          reason: "node-not-selected",
          detail: `nodeSelector wants ${key}=${selector[key]}, node has ${
            has === undefined ? "no such label" : `${key}=${has}`
          }`,
        };
      }
    }
  }
  if (node.unschedulable && spec.excludeCordonedNodes) {
    return { reason: "node-cordoned", detail: "node is unschedulable" };
  }
  if (host === undefined) {
    return {
      reason: "no-node-address",
      detail: `no address of type ${spec.nodeAddressTypes.join(", ") || "(none configured)"}`,
    };
  }
  return undefined;
}
