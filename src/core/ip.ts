/**
 * IP address text ⇄ bytes, without allocation on the hot path.
 *
 * Parsing is strict: IPv4 is exactly four decimal octets without leading zeros (so `010`
 * can never be read as octal), IPv6 is RFC 4291 text (one `::` at most, an optional dotted
 * IPv4 tail, no zone index). Formatting follows RFC 5952: lowercase, no leading zeros,
 * the longest run of two or more zero groups compressed, IPv4-mapped addresses dotted.
 *
 * @module
 */

/** An address family, spelled as in config. */
export type IpFamily = "ipv4" | "ipv6";

/** Bytes of an IPv4 address. */
export const IPV4_BYTES = 4;
/** Bytes of an IPv6 address. */
export const IPV6_BYTES = 16;

const CHAR_0 = 48;
const CHAR_9 = 57;
const CHAR_DOT = 46;
const CHAR_COLON = 58;

/**
 * Writes the 4 bytes of a dotted-quad IPv4 address into `out` at `offset`.
 *
 * Reads `text` from `start` to `end` (exclusive), so callers can parse a slice without
 * copying it.
 * @returns `false` when the text is not a strict dotted quad; `out` may then be partly written
 */
export function parseIPv4Into(
  text: string,
  out: Uint8Array,
  offset: number,
  start = 0,
  end = text.length,
): boolean {
  let octet = 0;
  let digits = 0;
  let index = 0;
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c >= CHAR_0 && c <= CHAR_9) {
      if (digits === 1 && octet === 0) return false; // leading zero
      octet = octet * 10 + (c - CHAR_0);
      if (octet > 255) return false;
      digits++;
    } else if (c === CHAR_DOT) {
      if (digits === 0 || index === 3) return false;
      out[offset + index++] = octet;
      octet = 0;
      digits = 0;
    } else {
      return false;
    }
  }
  if (digits === 0 || index !== 3) return false;
  out[offset + 3] = octet;
  return true;
}

function hexValue(c: number): number {
  if (c >= CHAR_0 && c <= CHAR_9) return c - CHAR_0;
  const lower = c | 0x20;
  if (lower >= 97 && lower <= 102) return lower - 87;
  return -1;
}

/**
 * Writes the 16 bytes of a textual IPv6 address into `out` at `offset`.
 * @returns `false` when the text is not a valid IPv6 address; `out` may then be partly written
 */
export function parseIPv6Into(
  text: string,
  out: Uint8Array,
  offset: number,
  start = 0,
  end = text.length,
): boolean {
  if (end - start < 2) return false;
  // Groups before "::" go to the front, groups after it are collected and moved to the end.
  let groups = 0; // 16-bit groups written so far
  let gapAt = -1; // group index where "::" sits
  let i = start;
  if (text.charCodeAt(i) === CHAR_COLON) {
    if (text.charCodeAt(i + 1) !== CHAR_COLON) return false;
    gapAt = 0;
    i += 2;
    if (i === end) {
      out.fill(0, offset, offset + IPV6_BYTES);
      return true;
    }
  }
  while (i < end) {
    if (groups === 8) return false;
    // Read one group: hex digits up to ':' or the end, or a dotted IPv4 tail.
    let value = 0;
    let digits = 0;
    let j = i;
    let isDotted = false;
    for (; j < end; j++) {
      const c = text.charCodeAt(j);
      if (c === CHAR_COLON) break;
      if (c === CHAR_DOT) {
        isDotted = true;
        break;
      }
      const h = hexValue(c);
      if (h < 0 || digits === 4) return false;
      value = (value << 4) | h;
      digits++;
    }
    if (isDotted) {
      if (groups > 6) return false;
      if (!parseIPv4Into(text, out, offset + groups * 2, i, end)) return false;
      groups += 2;
      i = end;
      break;
    }
    if (digits === 0) return false;
    out[offset + groups * 2] = value >> 8;
    out[offset + groups * 2 + 1] = value & 0xff;
    groups++;
    i = j;
    if (i === end) break;
    // At a ':'; a second one marks the gap.
    i++;
    if (i === end) return false; // trailing single ':'
    if (text.charCodeAt(i) === CHAR_COLON) {
      if (gapAt >= 0) return false;
      gapAt = groups;
      i++;
    }
  }
  if (gapAt < 0) return groups === 8;
  if (groups > 7) return false;
  const zeroGroups = 8 - groups;
  out.copyWithin(offset + (gapAt + zeroGroups) * 2, offset + gapAt * 2, offset + groups * 2);
  out.fill(0, offset + gapAt * 2, offset + (gapAt + zeroGroups) * 2);
  return true;
}

/**
 * Parses IPv4 or IPv6 text into a new 4- or 16-byte array.
 * @returns the bytes, or `undefined` when `text` is neither
 */
export function parseIp(text: string): Uint8Array | undefined {
  if (text.includes(":")) {
    const bytes = new Uint8Array(IPV6_BYTES);
    return parseIPv6Into(text, bytes, 0) ? bytes : undefined;
  }
  const bytes = new Uint8Array(IPV4_BYTES);
  return parseIPv4Into(text, bytes, 0) ? bytes : undefined;
}

/** Whether the 16 bytes at `offset` are an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`). */
export function isIPv4Mapped(bytes: Uint8Array, offset = 0): boolean {
  for (let i = 0; i < 10; i++) if (bytes[offset + i] !== 0) return false;
  return bytes[offset + 10] === 0xff && bytes[offset + 11] === 0xff;
}

/** Formats the 4 bytes at `offset` as a dotted quad. */
export function formatIPv4(bytes: Uint8Array, offset = 0): string {
  return `${bytes[offset]}.${bytes[offset + 1]}.${bytes[offset + 2]}.${bytes[offset + 3]}`;
}

/** Formats the 16 bytes at `offset` per RFC 5952 (IPv4-mapped addresses as `::ffff:a.b.c.d`). */
export function formatIPv6(bytes: Uint8Array, offset = 0): string {
  if (isIPv4Mapped(bytes, offset)) return `::ffff:${formatIPv4(bytes, offset + 12)}`;
  // Longest run of zero groups (length ≥ 2, first on ties).
  let bestStart = -1;
  let bestLength = 1;
  let runStart = -1;
  for (let g = 0; g <= 8; g++) {
    const isZero = g < 8 && bytes[offset + g * 2] === 0 && bytes[offset + g * 2 + 1] === 0;
    if (isZero) {
      if (runStart < 0) runStart = g;
    } else if (runStart >= 0) {
      if (g - runStart > bestLength) {
        bestStart = runStart;
        bestLength = g - runStart;
      }
      runStart = -1;
    }
  }
  let text = "";
  for (let g = 0; g < 8; g++) {
    if (g === bestStart) {
      text += "::";
      g += bestLength - 1;
      continue;
    }
    if (text.length > 0 && !text.endsWith(":")) text += ":";
    text += ((bytes[offset + g * 2]! << 8) | bytes[offset + g * 2 + 1]!).toString(16);
  }
  return text;
}

/** Formats 4 or 16 address bytes as text. */
export function formatIp(bytes: Uint8Array): string {
  return bytes.length === IPV4_BYTES ? formatIPv4(bytes) : formatIPv6(bytes);
}
