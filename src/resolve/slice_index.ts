/**
 * EndpointSlices grouped by the Service they belong to, so resolution looks a Service's
 * slices up in O(1) instead of scanning every slice for every Service.
 *
 * @module
 */
import type { EndpointSliceInfo, Inventory } from "../core/inventory.ts";

/** Slices keyed by `namespace/serviceName`, each group sorted by slice name. Read-only. */
export type EndpointSliceIndex = ReadonlyMap<string, readonly EndpointSliceInfo[]>;

/**
 * Groups an inventory's EndpointSlices by Service. Build it once per inventory snapshot and
 * pass it to every {@linkcode resolvePool} call of that snapshot.
 *
 * Slices without a service name are left out: no Service can claim them.
 */
export function indexEndpointSlices(inventory: Inventory): EndpointSliceIndex {
  // Discovery reuses the slice map of the previous snapshot when no slice changed (a node
  // flip, say), so the index of that map can be reused too.
  const cached = CACHE.get(inventory.endpointSlices);
  if (cached !== undefined) return cached;
  const index = buildIndex(inventory);
  CACHE.set(inventory.endpointSlices, index);
  return index;
}

const CACHE = new WeakMap<Inventory["endpointSlices"], EndpointSliceIndex>();

function buildIndex(inventory: Inventory): EndpointSliceIndex {
  const index = new Map<string, EndpointSliceInfo[]>();
  for (const slice of inventory.endpointSlices.values()) {
    if (slice.serviceName === "") continue;
    const key = `${slice.namespace}/${slice.serviceName}`;
    const group = index.get(key);
    if (group) group.push(slice);
    else index.set(key, [slice]);
  }
  for (const group of index.values()) {
    // Watch and list deliver slices in different orders; sorting keeps plans stable.
    if (group.length > 1) group.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }
  return index;
}
