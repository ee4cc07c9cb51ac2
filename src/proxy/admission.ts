/**
 * Admission of client connections: the source ACL, checked on the transport peer before a
 * byte is read, and the per-source connection limit. The listener asks in this order, after
 * which come its own `maxConnections` and the pool's per-backend limits:
 * ACL → listener limit → per source (as the original NautilusLB's admission order, with its
 * global limit folded into the listener's).
 *
 * @module
 */
import type { CidrList } from "../core/cidr.ts";
import { LocalSourceCounter, type SourceCounter } from "../core/connection_counter.ts";

/** Options of {@linkcode Admission}; every field off when absent. */
export interface AdmissionOptions {
  /** Peers that may connect; absent or empty: every peer not denied. */
  readonly allow?: CidrList;
  /** Peers refused whatever `allow` says (deny wins). */
  readonly deny?: CidrList;
  /** Concurrent connections per client address; 0 = unlimited. @default {0} */
  readonly maxConnectionsPerSource?: number;
  /**
   * Where per-source counts live. Give the same counter to the admission that replaces this
   * one on a reload, so open connections stay counted. A new {@linkcode LocalSourceCounter}
   * when absent.
   */
  readonly sourceCounter?: SourceCounter;
}

/** What {@linkcode Admission.acquire} hands back when it admits: call it once, on close. */
export type SourceRelease = () => void;

const NOTHING_TO_RELEASE: SourceRelease = () => {};

/**
 * One listener's admission rules. Immutable; a reload builds a new one (with the same
 * `sourceCounter`). Lookups allocate nothing on the ACL path.
 */
export class Admission {
  /** Concurrent connections per client address; 0 = unlimited. */
  readonly maxConnectionsPerSource: number;
  /** Where per-source counts live; pass it on to the admission of the next reload. */
  readonly sourceCounter: SourceCounter;
  readonly #allow: CidrList | undefined;
  readonly #deny: CidrList | undefined;

  /** @throws {RangeError} when `maxConnectionsPerSource` is not a non-negative integer */
  constructor(options: AdmissionOptions = {}) {
    const max = options.maxConnectionsPerSource ?? 0;
    if (!Number.isInteger(max) || max < 0) {
      throw new RangeError(
        `Cannot create admission as 'maxConnectionsPerSource' must be a non-negative integer: current value is ${max}`,
      );
    }
    this.maxConnectionsPerSource = max;
    this.sourceCounter = options.sourceCounter ?? new LocalSourceCounter();
    this.#allow = options.allow !== undefined && options.allow.size > 0 ? options.allow : undefined;
    this.#deny = options.deny !== undefined && options.deny.size > 0 ? options.deny : undefined;
  }

  /** True when there is an ACL to check at all. */
  get hasAcl(): boolean {
    return this.#allow !== undefined || this.#deny !== undefined;
  }

  /**
   * Whether the source ACL lets `address` (the transport peer, as the socket reports it)
   * connect: not in `deny`, and in `allow` when `allow` lists anything.
   */
  isAllowed(address: string): boolean {
    if (this.#deny?.contains(address)) return false;
    return this.#allow === undefined || this.#allow.contains(address);
  }

  /**
   * Counts a connection from `address` against `maxConnectionsPerSource`.
   * @returns a release to call exactly once when the connection closes, or `undefined` when
   *   the client is at its limit (nothing was counted)
   */
  acquire(address: string): SourceRelease | undefined {
    const limit = this.maxConnectionsPerSource;
    if (limit === 0) return NOTHING_TO_RELEASE;
    const key = sourceKey(address);
    const counter = this.sourceCounter;
    if (!counter.tryAcquire(key, limit)) return undefined;
    let isReleased = false;
    return () => {
      if (isReleased) return;
      isReleased = true;
      counter.release(key);
    };
  }
}

/**
 * The address a per-source count is kept under: IPv4-mapped IPv6 (`::ffff:192.0.2.1`, what a
 * dual-stack socket reports for IPv4 clients) as the IPv4 address, so one client is one key.
 */
export function sourceKey(address: string): string {
  return address.length > 7 && address.slice(0, 7).toLowerCase() === "::ffff:" &&
      address.includes(".")
    ? address.slice(7)
    : address;
}
