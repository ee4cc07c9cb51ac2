/**
 * Maglev consistent hashing on the client IP address.
 *
 * Eisenbud et al., "Maglev: A Fast and Reliable Software Network Load Balancer", NSDI 2016,
 * section 3.4: each backend derives a permutation of the `M` table slots from two hashes of
 * its name (`offset`, `skip`), and backends take turns claiming their next preferred free
 * slot until the lookup table is full. Every backend ends up with `M / N` slots (±1), and
 * removing one backend moves little more than that backend's own share of clients.
 *
 * Weights use the weighted-turn extension Envoy's Maglev load balancer implements
 * (`source/extensions/load_balancing_policies/maglev/maglev_lb.cc`): a backend with the
 * largest weight takes a turn every round, one with a third of that weight every third
 * round, so slot shares follow weights.
 *
 * The table depends only on the backend keys (sorted by UTF-16 code unit), their weights, the
 * seed and the table size, never on the order candidates arrive in: replicas of the load
 * balancer that see the same backends send a given client to the same backend.
 *
 * @module
 */

import { fmix32 } from "../core/hash.ts";
import type { Balancer, BalancerKind, Candidate, ClientInfo } from "../core/types.ts";
import { isFull, isOpen, weightOf } from "./_weight.ts";

/** Default lookup table size: the prime the Maglev paper uses in its evaluation. */
export const DEFAULT_MAGLEV_TABLE_SIZE = 65537;
/** Default hash seed. */
export const DEFAULT_MAGLEV_SEED = 0;
/**
 * Largest accepted table size, Envoy's limit too: a 20 MB table that takes about a second
 * to build. Config validation uses the same bound.
 */
export const MAGLEV_MAX_TABLE_SIZE = 5_000_011;

/** Options for {@linkcode MaglevBalancer}, {@linkcode buildMaglevTable} and {@linkcode maglevFingerprint}. */
export interface MaglevOptions {
  /**
   * Lookup table size `M`: a prime, at most {@linkcode MAGLEV_MAX_TABLE_SIZE}. It should be
   * much larger than the number of backends (the paper uses `M > 100 N`); larger tables
   * spread load more evenly and disrupt less on changes but take longer to build.
   * @default {65537}
   */
  tableSize?: number;
  /**
   * Hash seed, a safe integer. Replicas that must agree need the same seed; a different
   * seed gives an unrelated table.
   * @default {0}
   */
  seed?: number;
}

/** A backend as the Maglev table sees it. */
export interface MaglevBackend {
  /** Backend key, e.g. `10.0.0.1:8080`. Should be unique. */
  readonly key: string;
  /**
   * Relative share of table slots; 0 takes none.
   * @default {1}
   */
  readonly weight?: number;
}

interface CachedTable {
  /** Slot → candidate index, or -1 when no candidate has a positive weight. */
  readonly slots: Int32Array;
  /** Backend keys, index-aligned with the input. */
  readonly keys: readonly string[];
  fingerprint?: string;
}

/**
 * Maglev consistent hashing on {@linkcode ClientInfo.address}; the source port is ignored, so
 * every connection of a client lands on the same backend while the pool is unchanged.
 * `activeConnections` is ignored, except that a full backend (at its `maxConnections`) is
 * passed over: the pick falls through to the next table entry whose backend is not full.
 *
 * The lookup table is built on the first pick for a `candidates` array and cached in a
 * `WeakMap` keyed on that array, so a pick is two string hashes and one array read. A
 * build for 100 backends at the default size takes a few milliseconds; it happens once per
 * pool change.
 *
 * Client addresses are hashed as written, except that ASCII letters are lower-cased and an
 * IPv4-mapped IPv6 prefix (`::ffff:`) is dropped, so dual-stack and IPv4-only listeners agree.
 *
 * @throws {RangeError} when `tableSize` is not a prime up to
 * {@linkcode MAGLEV_MAX_TABLE_SIZE} or `seed` is not a safe integer
 */
export class MaglevBalancer implements Balancer {
  /** Always `"maglev"`. */
  readonly kind: BalancerKind = "maglev";
  /** The lookup table size `M`. */
  readonly tableSize: number;
  /** The hash seed. */
  readonly seed: number;
  #tables = new WeakMap<readonly Candidate[], CachedTable>();
  #lastCandidates: readonly Candidate[] | undefined;
  #lastTable: CachedTable | undefined;

  /** Creates the balancer; see {@linkcode MaglevOptions}. */
  constructor(options: MaglevOptions = {}) {
    const { tableSize, seed } = validateOptions(options);
    this.tableSize = tableSize;
    this.seed = seed;
  }

  /** Picks the backend the client's address hashes to; see {@linkcode Balancer.pick}. */
  pick(candidates: readonly Candidate[], client: ClientInfo): number {
    if (candidates.length === 0) return -1;
    let table = this.#lastTable;
    if (table === undefined || this.#lastCandidates !== candidates) {
      table = this.#table(candidates);
      this.#lastCandidates = candidates;
      this.#lastTable = table;
    }
    const slots = table.slots;
    let slot = addressSlot(client.address, this.seed, this.tableSize);
    const index = slots[slot]!;
    if (index === -1 || !isFull(candidates[index]!)) return index;
    // The client's backend is full: fall through to the next table entries, which spreads
    // its overflow over the others in table proportions. Check first that one can take it,
    // so a pool where all are full costs one scan and not a walk of the whole table.
    if (!candidates.some(isOpen)) return -1;
    for (let step = 1; step < slots.length; step++) {
      slot = slot + 1 === slots.length ? 0 : slot + 1;
      const next = slots[slot]!;
      if (!isFull(candidates[next]!)) return next;
    }
    return -1;
  }

  /**
   * A 16-digit hex hash of the table built for `candidates`: which backend key owns each
   * slot. Candidate order and zero-weight members do not change it. Replicas with equal
   * fingerprints send every client to the same backend; compare them to verify replicas
   * agree (for example in logs or an admin endpoint).
   */
  fingerprint(candidates: readonly Candidate[]): string {
    const table = this.#table(candidates);
    table.fingerprint ??= fingerprintOf(table, this.seed, this.tableSize);
    return table.fingerprint;
  }

  #table(candidates: readonly Candidate[]): CachedTable {
    let table = this.#tables.get(candidates);
    if (table === undefined) {
      table = buildTable(
        candidates.map((c) => ({ key: c.backend.key, weight: weightOf(c) })),
        this.seed,
        this.tableSize,
      );
      this.#tables.set(candidates, table);
    }
    return table;
  }
}

/**
 * Builds a Maglev lookup table.
 *
 * @param backends the backends; order does not matter
 * @returns `tableSize` slots, each an index into `backends`, or all -1 when no backend has a
 * positive weight
 * @throws {RangeError} on invalid options, as {@linkcode MaglevBalancer}
 */
export function buildMaglevTable(
  backends: readonly MaglevBackend[],
  options: MaglevOptions = {},
): Int32Array {
  const { tableSize, seed } = validateOptions(options);
  return buildTable(backends, seed, tableSize).slots;
}

/**
 * The fingerprint {@linkcode MaglevBalancer.fingerprint} reports, computed from backend keys
 * (weight 1) or `{ key, weight }` pairs, so a replica's table can be checked against an
 * expected set without a balancer instance.
 *
 * @throws {RangeError} on invalid options, as {@linkcode MaglevBalancer}
 */
export function maglevFingerprint(
  backends: readonly (string | MaglevBackend)[],
  options: MaglevOptions = {},
): string {
  const { tableSize, seed } = validateOptions(options);
  const specs = backends.map((b) => typeof b === "string" ? { key: b } : b);
  return fingerprintOf(buildTable(specs, seed, tableSize), seed, tableSize);
}

function validateOptions(options: MaglevOptions): { tableSize: number; seed: number } {
  const tableSize = options.tableSize ?? DEFAULT_MAGLEV_TABLE_SIZE;
  const seed = options.seed ?? DEFAULT_MAGLEV_SEED;
  if (!isPrime(tableSize) || tableSize > MAGLEV_MAX_TABLE_SIZE) {
    throw new RangeError(
      `Cannot build Maglev table as 'tableSize' must be a prime number up to ${MAGLEV_MAX_TABLE_SIZE}: current value is ${tableSize}`,
    );
  }
  if (!Number.isSafeInteger(seed)) {
    throw new RangeError(
      `Cannot build Maglev table as 'seed' must be a safe integer: current value is ${seed}`,
    );
  }
  return { tableSize, seed };
}

/**
 * Whether `n` is a prime number (trial division; fast enough up to
 * {@linkcode MAGLEV_MAX_TABLE_SIZE}). False for anything but a safe integer above 1.
 */
export function isPrime(n: number): boolean {
  if (!Number.isSafeInteger(n) || n < 2) return false;
  if (n % 2 === 0) return n === 2;
  for (let d = 3; d * d <= n; d += 2) {
    if (n % d === 0) return false;
  }
  return true;
}

function buildTable(
  backends: readonly MaglevBackend[],
  seed: number,
  tableSize: number,
): CachedTable {
  const count = backends.length;
  const order = Array.from({ length: count }, (_, i) => i);
  order.sort((a, b) => compareKeys(backends[a]!, backends[b]!));
  const sorted = order.map((i) => ({ key: backends[i]!.key, weight: positive(backends[i]!) }));

  // Permutation state per sorted backend: next preferred slot and stride.
  const positions = new Uint32Array(count);
  const skips = new Uint32Array(count);
  const weights = new Float64Array(count);
  const targets = new Float64Array(count);
  let maxWeight = 0;
  for (let rank = 0; rank < count; rank++) {
    const { key, weight } = sorted[rank]!;
    positions[rank] = hashA(key, 0, seed) % tableSize;
    skips[rank] = (hashB(key, 0, seed) % (tableSize - 1)) + 1;
    weights[rank] = weight;
    if (weight > maxWeight) maxWeight = weight;
  }

  const slots = new Int32Array(tableSize).fill(-1);
  if (maxWeight > 0) {
    let filled = 0;
    for (let round = 1; filled < tableSize; round++) {
      for (let rank = 0; rank < count && filled < tableSize; rank++) {
        const weight = weights[rank]!;
        if (weight === 0 || round * weight < targets[rank]!) continue;
        targets[rank]! += maxWeight;
        let slot = positions[rank]!;
        const skip = skips[rank]!;
        while (slots[slot] !== -1) {
          slot += skip;
          if (slot >= tableSize) slot -= tableSize;
        }
        slots[slot] = rank;
        slot += skip;
        positions[rank] = slot >= tableSize ? slot - tableSize : slot;
        filled++;
      }
    }
    for (let slot = 0; slot < tableSize; slot++) slots[slot] = order[slots[slot]!]!;
  }
  return { slots, keys: backends.map((b) => b.key) };
}

function positive(backend: MaglevBackend): number {
  const weight = backend.weight ?? 1;
  return weight > 0 && weight < Infinity ? weight : 0;
}

/** Code-unit order, not locale order, so every replica sorts the same way. */
function compareKeys(a: MaglevBackend, b: MaglevBackend): number {
  if (a.key !== b.key) return a.key < b.key ? -1 : 1;
  return positive(a) - positive(b);
}

/**
 * Hashes the table as slot → backend key, so equal fingerprints mean every client maps to the
 * same backend key; candidate order and zero-weight members do not matter.
 */
function fingerprintOf(table: CachedTable, seed: number, tableSize: number): string {
  const { slots, keys } = table;
  const keyHashes = keys.map((key) => hashA(key, 0, seed));
  let high = hashA(`${tableSize}`, 0, seed);
  let low = hashB(`${tableSize}`, 0, seed);
  for (let slot = 0; slot < tableSize; slot++) {
    const index = slots[slot]!;
    const value = index === -1 ? 0 : keyHashes[index]!;
    high = mix(high, value);
    low = mix(low ^ slot, value);
  }
  return hex(fmix32(high)) + hex(fmix32(low));
}

function hex(n: number): string {
  return n.toString(16).padStart(8, "0");
}

function mix(h: number, value: number): number {
  return Math.imul(rotl(h ^ fmix32(value >>> 0), 13), 5) + 0xe6546b64;
}

/** `2^32 mod M` is needed for a 64-bit hash mod M without BigInt. */
function addressSlot(address: string, seed: number, tableSize: number): number {
  const start = address.startsWith("::ffff:") && address.includes(".", 7) ? 7 : 0;
  const high = hashA(address, start, seed) % tableSize;
  const low = hashB(address, start, seed);
  // (high * 2^32 + low) mod M; every intermediate stays below 2^53.
  return (high * (4294967296 % tableSize) + low) % tableSize;
}

/**
 * 32-bit FNV-1a (Fowler, Noll, Vo) over UTF-16 code units from `start`, ASCII letters
 * lower-cased, seeded through the offset basis and finished with MurmurHash3's `fmix32`
 * for avalanche. With {@linkcode hashB} it forms a 64-bit hash.
 */
function hashA(text: string, start: number, seed: number): number {
  let h = (0x811c9dc5 ^ (seed >>> 0)) >>> 0;
  for (let i = start; i < text.length; i++) {
    h ^= lower(text.charCodeAt(i));
    h = Math.imul(h, 0x01000193);
  }
  return fmix32(h ^ Math.floor(seed / 4294967296) ^ (text.length - start));
}

/** MurmurHash3 x86_32 (Appleby) over UTF-16 code units, seeded with the seed's halves swapped. */
function hashB(text: string, start: number, seed: number): number {
  let h = (Math.floor(seed / 4294967296) ^ 0x9e3779b9) >>> 0;
  for (let i = start; i < text.length; i++) {
    let k = Math.imul(lower(text.charCodeAt(i)), 0xcc9e2d51);
    k = Math.imul(rotl(k, 15), 0x1b873593);
    h = Math.imul(rotl(h ^ k, 13), 5) + 0xe6546b64;
  }
  return fmix32(h ^ (seed >>> 0) ^ (text.length - start));
}

function lower(code: number): number {
  return code >= 65 && code <= 90 ? code + 32 : code;
}

function rotl(x: number, r: number): number {
  return (x << r) | (x >>> (32 - r));
}
