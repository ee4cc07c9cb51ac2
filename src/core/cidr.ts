/**
 * CIDR blocks and lists: parse once at the edge (config), then test addresses per
 * connection without allocating.
 *
 * IPv4-mapped IPv6 is one address family with IPv4 here: `::ffff:10.0.0.1` is in
 * `10.0.0.0/8`, and a block inside `::ffff:0:0/96` (like `::ffff:10.0.0.0/104`) is stored as
 * the IPv4 block it names. A dual-stack socket reports IPv4 clients in the mapped form, so
 * an allowlist written in IPv4 must match them.
 *
 * @module
 */
import {
  formatIPv4,
  formatIPv6,
  type IpFamily,
  IPV6_BYTES,
  isIPv4Mapped,
  parseIPv4Into,
  parseIPv6Into,
} from "./ip.ts";

/** One parsed CIDR block, normalized (IPv4-mapped IPv6 blocks become IPv4). */
export interface CidrBlock {
  readonly family: IpFamily;
  /** The network address: 4 bytes for IPv4, 16 for IPv6; host bits are zero. */
  readonly network: Uint8Array;
  /** 0-32 for IPv4, 0-128 for IPv6. */
  readonly prefixLength: number;
}

/**
 * Parses `a.b.c.d/n` or `ipv6/n`; a bare address is a single-host block (`/32`, `/128`).
 *
 * Host bits must be zero: `10.0.0.1/8` is rejected (with the block it probably meant) rather
 * than silently widened, since in an allowlist that typo would trust a whole network.
 * @throws {SyntaxError} when the address or prefix is not valid text
 * @throws {RangeError} when the prefix is too long for the family or host bits are set
 */
export function parseCidr(text: string): CidrBlock {
  const slash = text.indexOf("/");
  const addressText = slash < 0 ? text : text.slice(0, slash);
  const isV6 = addressText.includes(":");
  const bytes = new Uint8Array(IPV6_BYTES);
  const isValid = isV6
    ? parseIPv6Into(addressText, bytes, 0)
    : parseIPv4Into(addressText, bytes, 0);
  if (!isValid) {
    throw new SyntaxError(
      `Cannot parse CIDR "${text}": "${addressText}" is not an ${isV6 ? "IPv6" : "IPv4"} address`,
    );
  }
  const maxPrefix = isV6 ? 128 : 32;
  let prefixLength = maxPrefix;
  if (slash >= 0) {
    const prefixText = text.slice(slash + 1);
    if (!/^(0|[1-9][0-9]{0,2})$/.test(prefixText)) {
      throw new SyntaxError(
        `Cannot parse CIDR "${text}": prefix length "${prefixText}" is not a decimal number`,
      );
    }
    prefixLength = Number(prefixText);
    if (prefixLength > maxPrefix) {
      throw new RangeError(
        `Cannot use CIDR "${text}": prefix length ${prefixLength} is out of range 0-${maxPrefix}`,
      );
    }
  }
  const network = bytes.subarray(0, isV6 ? 16 : 4);
  const masked = Uint8Array.from(network);
  applyMask(masked, prefixLength);
  if (!bytesEqual(masked, network)) {
    const suggestion = `${isV6 ? formatIPv6(masked) : formatIPv4(masked)}/${prefixLength}`;
    throw new RangeError(
      `Cannot use CIDR "${text}": host bits are set after the /${prefixLength} prefix, did you mean "${suggestion}"?`,
    );
  }
  if (isV6 && prefixLength >= 96 && isIPv4Mapped(masked)) {
    return { family: "ipv4", network: masked.slice(12), prefixLength: prefixLength - 96 };
  }
  return { family: isV6 ? "ipv6" : "ipv4", network: masked, prefixLength };
}

function applyMask(bytes: Uint8Array, prefixLength: number): void {
  for (let i = 0; i < bytes.length; i++) {
    const bitsHere = Math.max(0, Math.min(8, prefixLength - i * 8));
    bytes[i]! &= (0xff00 >> bitsHere) & 0xff;
  }
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** One rejected entry of a CIDR list. */
export interface CidrIssue {
  /** Position in the input list. */
  readonly index: number;
  readonly text: string;
  /** The parse error (a `SyntaxError` or `RangeError`). */
  readonly error: Error;
}

/**
 * Parses every entry of a CIDR list, collecting all errors instead of stopping at the first,
 * so config validation can report each bad entry with its position.
 */
export function parseCidrList(
  texts: readonly string[],
): { readonly list: CidrList; readonly issues: readonly CidrIssue[] } {
  const blocks: CidrBlock[] = [];
  const issues: CidrIssue[] = [];
  texts.forEach((text, index) => {
    try {
      blocks.push(parseCidr(text));
    } catch (error) {
      issues.push({ index, text, error: error as Error });
    }
  });
  return { list: new CidrList(blocks), issues };
}

/**
 * An immutable set of CIDR blocks answering "is this address inside?".
 *
 * {@linkcode contains} runs per connection: it parses the address into a reused scratch
 * buffer and binary-searches sorted, disjoint ranges, allocating nothing. Two CIDR blocks
 * either nest or do not touch, so after sorting by network address a block inside the one
 * before it can be dropped; what is left is disjoint. A list of 1,000 blocks costs about ten
 * comparisons per lookup instead of a thousand.
 */
export class CidrList {
  /** The blocks, in input order. */
  readonly blocks: readonly CidrBlock[];
  // IPv4: sorted disjoint [first, last] pairs as 32-bit numbers.
  readonly #v4First: Uint32Array;
  readonly #v4Last: Uint32Array;
  // IPv6: sorted disjoint ranges, 8 words each: first (4 big-endian words), then last.
  readonly #v6: Uint32Array;
  readonly #scratch = new Uint8Array(IPV6_BYTES);
  readonly #words = new Uint32Array(4);

  /** @param blocks parsed blocks, e.g. from {@linkcode parseCidr}; copied, never mutated */
  constructor(blocks: readonly CidrBlock[]) {
    this.blocks = [...blocks];
    const v4 = blocks
      .filter((b) => b.family === "ipv4")
      .map((b) => {
        const first = toUint32(b.network, 0);
        return [first, (first | ~maskOf(b.prefixLength)) >>> 0] as const;
      })
      .sort((a, b) => a[0] - b[0] || b[1] - a[1]);
    const kept4: (readonly [number, number])[] = [];
    for (const range of v4) {
      const last = kept4[kept4.length - 1];
      if (last === undefined || range[0] > last[1]) kept4.push(range);
    }
    this.#v4First = Uint32Array.from(kept4, (r) => r[0]);
    this.#v4Last = Uint32Array.from(kept4, (r) => r[1]);

    const v6 = blocks
      .filter((b) => b.family === "ipv6")
      .map((b) => v6Range(b))
      .sort((a, b) => compareWords(a, 0, b, 0) || compareWords(b, 4, a, 4));
    const kept6: Uint32Array[] = [];
    for (const range of v6) {
      const last = kept6[kept6.length - 1];
      if (last === undefined || compareWords(range, 0, last, 4) > 0) kept6.push(range);
    }
    this.#v6 = new Uint32Array(kept6.length * 8);
    kept6.forEach((r, i) => this.#v6.set(r, i * 8));
  }

  /**
   * Parses `texts` and throws on the first invalid entry; for reporting every entry use
   * {@linkcode parseCidrList}.
   * @throws {SyntaxError | RangeError} as {@linkcode parseCidr}
   */
  static from(texts: readonly string[]): CidrList {
    return new CidrList(texts.map(parseCidr));
  }

  /** Number of blocks. */
  get size(): number {
    return this.blocks.length;
  }

  /**
   * Whether `address` (IPv4 or IPv6 text, as a socket reports it) is inside any block.
   * An IPv4-mapped IPv6 address is tested as IPv4. Text that is not an address is inside
   * nothing.
   */
  contains(address: string): boolean {
    const bytes = this.#scratch;
    let v4Offset: number;
    if (address.includes(":")) {
      if (!parseIPv6Into(address, bytes, 0)) return false;
      if (!isIPv4Mapped(bytes, 0)) return this.#containsV6(bytes);
      v4Offset = 12;
    } else {
      if (!parseIPv4Into(address, bytes, 0)) return false;
      v4Offset = 0;
    }
    const value = toUint32(bytes, v4Offset);
    const first = this.#v4First;
    // The last range starting at or before `value`.
    let lo = 0;
    let hi = first.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (first[mid]! <= value) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found >= 0 && value <= this.#v4Last[found]!;
  }

  #containsV6(bytes: Uint8Array): boolean {
    const words = this.#words;
    for (let i = 0; i < 4; i++) words[i] = toUint32(bytes, i * 4);
    const ranges = this.#v6;
    let lo = 0;
    let hi = ranges.length / 8 - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (compareWords(ranges, mid * 8, words, 0) <= 0) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found >= 0 && compareWords(words, 0, ranges, found * 8 + 4) <= 0;
  }
}

/** First and last address of an IPv6 block as 8 big-endian 32-bit words. */
function v6Range(block: CidrBlock): Uint32Array {
  const range = new Uint32Array(8);
  for (let i = 0; i < 4; i++) {
    const word = toUint32(block.network, i * 4);
    const bitsHere = Math.max(0, Math.min(32, block.prefixLength - i * 32));
    range[i] = word;
    range[4 + i] = (word | ~maskOf(bitsHere)) >>> 0;
  }
  return range;
}

/** Compares 4 words of `a` at `i` with 4 words of `b` at `j`, as 128-bit numbers. */
function compareWords(a: Uint32Array, i: number, b: Uint32Array, j: number): number {
  for (let k = 0; k < 4; k++) {
    const x = a[i + k]!;
    const y = b[j + k]!;
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

function toUint32(bytes: Uint8Array, offset: number): number {
  return ((bytes[offset]! << 24) | (bytes[offset + 1]! << 16) | (bytes[offset + 2]! << 8) |
    bytes[offset + 3]!) >>> 0;
}

function maskOf(prefixLength: number): number {
  return prefixLength === 0 ? 0 : (0xffffffff << (32 - prefixLength)) >>> 0;
}
