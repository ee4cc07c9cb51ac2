/**
 * Listen addresses that cannot both be bound: the same port on the same host, or on a
 * wildcard address that covers the other.
 *
 * @module
 */
import { parseHostPort } from "../core/address.ts";
import type { Path } from "./_raw.ts";
import { checkAddress } from "./schema.ts";

/** A valid listen address, its host lower-cased, with where it was written. */
export interface Bound {
  readonly path: Path;
  readonly text: string;
  readonly host: string;
  readonly port: number;
}

/** `value` as a {@linkcode Bound} when it is a valid listen address, else `undefined`. */
export function boundAddress(path: Path, value: unknown): Bound | undefined {
  if (typeof value !== "string" || value === "") return undefined;
  if (checkAddress(value, { isHostRequired: false }) !== undefined) return undefined;
  const { host, port } = parseHostPort(value);
  return { path, text: value, host: host.toLowerCase(), port };
}

function isAnyV6(host: string): boolean {
  return host === "" || (host.includes(":") && /^[0:]+$/.test(host));
}

/**
 * Whether two listen addresses cannot both be bound. `""` and `::` take every address of the
 * port (dual-stack sockets); `0.0.0.0` every IPv4 address; host names may resolve to anything.
 */
export function overlaps(a: Bound, b: Bound): boolean {
  if (a.port !== b.port) return false;
  if (a.host === b.host || isAnyV6(a.host) || isAnyV6(b.host)) return true;
  return (a.host === "0.0.0.0" && !isV6(b.host)) || (b.host === "0.0.0.0" && !isV6(a.host));
}

const isV6 = (host: string) => host.includes(":");

interface PortBounds {
  /** In the order added, for messages; the earliest is reported first. */
  readonly first: Bound;
  firstAnyV6?: Bound;
  firstAnyV4?: Bound;
  firstV4?: Bound;
  readonly byHost: Map<string, Bound>;
}

/**
 * Listen addresses seen so far, indexed so that finding the first one a new address overlaps
 * with (see {@linkcode overlaps}) costs a few look-ups instead of a scan of all listeners.
 */
export class BoundAddresses {
  readonly all: Bound[] = [];
  readonly #order = new Map<Bound, number>();
  readonly #byPort = new Map<number, PortBounds>();

  add(address: Bound): void {
    this.#order.set(address, this.all.length);
    this.all.push(address);
    let port = this.#byPort.get(address.port);
    if (port === undefined) {
      port = { first: address, byHost: new Map() };
      this.#byPort.set(address.port, port);
    }
    if (!port.byHost.has(address.host)) port.byHost.set(address.host, address);
    if (isAnyV6(address.host)) port.firstAnyV6 ??= address;
    if (address.host === "0.0.0.0") port.firstAnyV4 ??= address;
    if (!isV6(address.host)) port.firstV4 ??= address;
  }

  /** The earliest address added that cannot be bound beside `address`. */
  firstOverlap(address: Bound): Bound | undefined {
    const port = this.#byPort.get(address.port);
    if (port === undefined) return undefined;
    const candidates = [port.byHost.get(address.host), port.firstAnyV6];
    if (isAnyV6(address.host)) candidates.push(port.first);
    if (address.host === "0.0.0.0") candidates.push(port.firstV4);
    if (!isV6(address.host)) candidates.push(port.firstAnyV4);
    let earliest: Bound | undefined;
    for (const c of candidates) {
      if (c === undefined) continue;
      if (earliest === undefined || this.#order.get(c)! < this.#order.get(earliest)!) {
        earliest = c;
      }
    }
    return earliest;
  }
}
