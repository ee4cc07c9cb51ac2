/**
 * Pure resolution of a listener's pool: which backends an {@linkcode Inventory} yields for a
 * {@linkcode PoolSpec}, and why every other candidate was left out.
 *
 * No I/O, no clock, no randomness: the same inputs give the same plan, byte for byte.
 *
 * @module
 */
import { formatHostPort } from "../core/address.ts";
import type { Inventory } from "../core/inventory.ts";
import type { HealthTarget, PoolPlan } from "../core/plan.ts";
import type { PoolSpec } from "../core/pool_spec.ts";
import { resolveClusterIP, resolveEndpoints, resolveNodePort } from "./_backends.ts";
import { type NodeCandidate, prepareNodes } from "./_nodes.ts";
import { PlanBuilder } from "./_plan_builder.ts";
import { matchServices } from "./_service_match.ts";
import {
  serviceMaxConnections,
  serviceMode,
  serviceWeight,
  warnUnknownAnnotations,
} from "./_service_settings.ts";
import { type EndpointSliceIndex, indexEndpointSlices } from "./slice_index.ts";

/** Options of {@linkcode resolvePool}. */
export interface ResolveOptions {
  /**
   * EndpointSlices of `inventory` grouped by Service, from {@linkcode indexEndpointSlices}.
   * Built for the call when absent; pass one to resolve several pools of one snapshot.
   */
  readonly endpointSliceIndex?: EndpointSliceIndex;
}

/**
 * Resolves the pool of one listener.
 *
 * A Service feeds the pool when it is annotated `nautiluslb.cloudresty.io/enabled: "true"`,
 * lies in `spec.namespace` (any when absent), matches `spec.service` and
 * `spec.serviceSelector` when given, and has a port named `spec.backendPortName`. Several
 * such Services merge into one pool, with a warning. Static `spec.backends` come first.
 *
 * Backends and exclusions are sorted by address (numbers compared as numbers), then
 * Service; an address contributed twice is kept once. With `spec.healthCheck`, every backend
 * gets a health target (see {@linkcode PoolPlan.healthTargets}); a bad health annotation is a
 * warning of the pool and keeps the listener's value.
 *
 * Endpoints follow kube-proxy (KEP-1669): ready endpoints take new connections; when a
 * Service has none for the port, endpoints that are `serving` and `terminating` do, marked
 * `terminating`. Likewise for `externalTrafficPolicy: Local` nodes.
 *
 * @param inventory the cluster snapshot; never mutated
 * @param spec what decides the pool's membership
 * @returns a new plan that shares no mutable state with the inputs
 */
export function resolvePool(
  inventory: Inventory,
  spec: PoolSpec,
  options: ResolveOptions = {},
): PoolPlan {
  const plan = new PlanBuilder(spec);
  for (const b of spec.backends) {
    plan.include({
      address: formatHostPort(b.host, b.port),
      host: b.host,
      port: b.port,
      weight: b.weight,
    });
  }
  const portName = spec.backendPortName;
  if (portName === undefined) return plan.build();

  const matched = matchServices(inventory, spec, portName, plan);
  if (matched.length === 0) return plan.build();

  const sliceIndex = options.endpointSliceIndex ?? indexEndpointSlices(inventory);
  let nodes: readonly NodeCandidate[] | undefined;
  for (const m of matched) {
    warnUnknownAnnotations(m, plan);
    const weight = serviceWeight(m, plan);
    const limit = serviceMaxConnections(m, plan);
    if (limit !== undefined) plan.limitService(m.key, limit);
    const mode = serviceMode(m, spec.backendMode, plan);
    switch (mode) {
      case "nodeport":
        nodes ??= prepareNodes(inventory, spec);
        resolveNodePort(m, weight, nodes, sliceIndex, inventory.hasEndpointSlices, plan);
        break;
      case "clusterip":
        resolveClusterIP(m, weight, plan);
        break;
      case "endpoints":
        resolveEndpoints(m, weight, sliceIndex, inventory.hasEndpointSlices, portName, plan);
        break;
    }
  }
  return plan.build();
}

/**
 * Resolves the pools of several listeners against one snapshot, indexing its
 * EndpointSlices once.
 * @returns one plan per spec, in the order of `specs`
 */
export function resolvePools(inventory: Inventory, specs: readonly PoolSpec[]): PoolPlan[] {
  const endpointSliceIndex = indexEndpointSlices(inventory);
  return specs.map((spec) => resolvePool(inventory, spec, { endpointSliceIndex }));
}

/**
 * The health targets of several plans, for one health scheduler or one `check` round.
 * @returns a new array, plans in order, each plan's targets in backend order
 */
export function healthTargetsOf(plans: readonly PoolPlan[]): HealthTarget[] {
  return plans.flatMap((p) => p.healthTargets);
}
