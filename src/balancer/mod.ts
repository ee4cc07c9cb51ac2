/**
 * Pure pick policies: given a pool's eligible candidates and a client, choose one.
 *
 * Every {@linkcode Balancer} returns an index into `candidates`, or `-1` when `candidates`
 * is empty or every weight is 0. None does I/O or sets timers, none mutates its input, and
 * a pick allocates nothing; derived tables are cached per `candidates` array.
 *
 * ```ts
 * import { createBalancer } from "./mod.ts";
 *
 * const balancer = createBalancer("maglev", { maglevSeed: 7 });
 * const candidates = ["10.0.0.1", "10.0.0.2"].map((host) => ({
 *   backend: { key: `${host}:80`, host, port: 80, weight: 1 },
 *   activeConnections: 0,
 * }));
 * // The same array is passed again until the pool changes, so the table is built once.
 * const index = balancer.pick(candidates, { address: "203.0.113.7", port: 50000 });
 * // index is 0 or 1; candidates[index].backend is where to connect.
 * ```
 *
 * @module
 */

import { BALANCER_KINDS } from "../core/types.ts";
import type { Balancer, BalancerKind } from "../core/types.ts";
import { LeastConnectionsBalancer } from "./least_connections.ts";
import { MaglevBalancer } from "./maglev.ts";
import { RandomTwoBalancer } from "./random_two.ts";
import { RoundRobinBalancer } from "./round_robin.ts";

export type { Backend, Balancer, BalancerKind, Candidate, ClientInfo } from "../core/types.ts";
export { LeastConnectionsBalancer } from "./least_connections.ts";
export {
  buildMaglevTable,
  DEFAULT_MAGLEV_SEED,
  DEFAULT_MAGLEV_TABLE_SIZE,
  isPrime,
  MAGLEV_MAX_TABLE_SIZE,
  type MaglevBackend,
  MaglevBalancer,
  maglevFingerprint,
  type MaglevOptions,
} from "./maglev.ts";
export { RandomTwoBalancer, type RandomTwoOptions } from "./random_two.ts";
export { RoundRobinBalancer } from "./round_robin.ts";

/** Options for {@linkcode createBalancer}; each applies to one kind and is ignored by others. */
export interface BalancerOptions {
  /**
   * `random_two`: uniform random source in `[0, 1)`.
   * @default {Math.random}
   */
  random?: () => number;
  /**
   * `maglev`: lookup table size, a prime.
   * @default {65537}
   */
  maglevTableSize?: number;
  /**
   * `maglev`: hash seed; replicas that must agree need the same one.
   * @default {0}
   */
  maglevSeed?: number;
  /**
   * `round_robin`: a rotation counter shared across workers (see {@linkcode RoundRobinBalancer}).
   */
  roundRobinTicket?: () => number;
}

/**
 * Creates the balancer named by `kind`. Each call returns a fresh instance with its own
 * state (rotation position, cached tables); use one per pool.
 *
 * @throws {TypeError} when `kind` is not a {@linkcode BalancerKind}
 * @throws {RangeError} when a `maglev` option is invalid
 */
export function createBalancer(kind: BalancerKind, options: BalancerOptions = {}): Balancer {
  switch (kind) {
    case "round_robin":
      return new RoundRobinBalancer({ ticket: options.roundRobinTicket });
    case "least_connections":
      return new LeastConnectionsBalancer();
    case "random_two":
      return new RandomTwoBalancer({ random: options.random });
    case "maglev":
      return new MaglevBalancer({ tableSize: options.maglevTableSize, seed: options.maglevSeed });
    default:
      throw new TypeError(
        `Cannot create balancer as 'kind' must be one of ${
          BALANCER_KINDS.join(", ")
        }: current value is ${JSON.stringify(kind)}`,
      );
  }
}
