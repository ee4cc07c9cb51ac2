/**
 * Kubernetes list and watch bodies, checked and converted into stored objects: what a list
 * must look like, what a watch event must look like, and each object's store key and
 * inventory entries. Private to the reflector.
 *
 * @module
 */
import type { EndpointSliceInfo, NodeInfo, ServiceInfo } from "../core/inventory.ts";
import { excerpt, InvalidResponseError } from "./api_client.ts";
import {
  endpointSliceFromObject,
  endpointSlicesFromEndpoints,
  nodeFromObject,
  serviceFromObject,
} from "./convert.ts";

/** API object kinds a reflector converts. */
export type ObjectKind = "Service" | "Node" | "EndpointSlice" | "Endpoints";

/** An API object as stored: its resourceVersion and its inventory entries (key, info). */
export interface StoredObject {
  readonly resourceVersion: string;
  readonly entries: readonly (readonly [string, ServiceInfo | NodeInfo | EndpointSliceInfo])[];
}

/** An API object as received. */
export interface RawObject {
  readonly metadata?: {
    readonly name?: string;
    readonly namespace?: string;
    readonly resourceVersion?: string;
  };
  readonly [field: string]: unknown;
}

type EventType = "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";
const EVENT_TYPES: ReadonlySet<string> = new Set<EventType>([
  "ADDED",
  "MODIFIED",
  "DELETED",
  "BOOKMARK",
  "ERROR",
]);

/** One line of a watch stream. */
export interface WatchEvent {
  readonly type: EventType;
  readonly object: RawObject & {
    readonly code?: number;
    readonly message?: string;
    readonly reason?: string;
  };
}

/** Parses one watch line; anything but a JSON event with a known type and an object is an error. */
export function parseEvent(line: string, path: string): WatchEvent {
  let event: unknown;
  try {
    event = JSON.parse(line);
  } catch (cause) {
    throw new InvalidResponseError(
      `Watch of ${path} sent a line that is not JSON: ${excerpt(line)}`,
      { cause },
    );
  }
  if (
    event === null || typeof event !== "object" || !("type" in event) ||
    typeof event.type !== "string" || !EVENT_TYPES.has(event.type) || !("object" in event) ||
    event.object === null || typeof event.object !== "object"
  ) {
    throw new InvalidResponseError(
      `Watch of ${path} sent a line that is not a watch event: ${excerpt(line)}`,
    );
  }
  return event as WatchEvent;
}

/**
 * The list in a `200` body, or `undefined` when it is not one. A list has an `items` array;
 * `items: null` is accepted only from a body that says it is a `…List`.
 */
export function asList(
  body: unknown,
):
  | { items: readonly RawObject[]; metadata?: { resourceVersion?: string; continue?: string } }
  | undefined {
  if (body === null || typeof body !== "object" || Array.isArray(body)) return undefined;
  const { items, kind, metadata } = body as { items?: unknown; kind?: unknown; metadata?: unknown };
  const meta = metadata !== null && typeof metadata === "object"
    ? metadata as { resourceVersion?: string; continue?: string }
    : undefined;
  if (Array.isArray(items)) {
    return { items: items as RawObject[], ...(meta ? { metadata: meta } : {}) };
  }
  if (items === null && typeof kind === "string" && kind.endsWith("List")) {
    return { items: [], ...(meta ? { metadata: meta } : {}) };
  }
  return undefined;
}

/** The store key of an API object: `namespace/name`, or `name` for Nodes. */
export function objectKey(kind: ObjectKind, object: RawObject): string | undefined {
  const name = object.metadata?.name;
  if (!name) return undefined;
  return kind === "Node" ? name : `${object.metadata?.namespace ?? ""}/${name}`;
}

/** Converts one API object into its inventory entries (Endpoints may give several slices). */
export function convertObject(
  kind: ObjectKind,
  object: RawObject,
): { key: string; stored: StoredObject } | undefined {
  const key = objectKey(kind, object);
  if (key === undefined) return undefined;
  let entries: StoredObject["entries"];
  try {
    switch (kind) {
      case "Service":
        entries = [[key, serviceFromObject(object)]];
        break;
      case "Node":
        entries = [[key, nodeFromObject(object)]];
        break;
      case "EndpointSlice":
        entries = [[key, endpointSliceFromObject(object)]];
        break;
      case "Endpoints":
        entries = endpointSlicesFromEndpoints(object).map((slice) => [
          `${slice.namespace}/${slice.name}`,
          slice,
        ]);
        break;
    }
  } catch {
    // A malformed object is left out rather than stopping the watch of the rest.
    return undefined;
  }
  return { key, stored: { resourceVersion: object.metadata?.resourceVersion ?? "", entries } };
}

/** Whether two stores hold the same objects at the same resourceVersions. */
export function sameStore(a: Map<string, StoredObject>, b: Map<string, StoredObject>): boolean {
  if (a.size !== b.size) return false;
  for (const [key, value] of b) {
    if (a.get(key)?.resourceVersion !== value.resourceVersion) return false;
  }
  return true;
}
