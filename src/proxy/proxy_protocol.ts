/**
 * PROXY protocol v1 (text) and v2 (binary) headers: an encoder for the sending side and an
 * incremental parser for the accepting side.
 *
 * Reference: HAProxy's `doc/proxy-protocol.txt` ("The PROXY protocol, Versions 1 & 2").
 * Pure: no I/O, no timers. The caller owns the sockets, writes the encoded header before
 * any client byte, and on the accepting side forwards {@linkcode ProxyParseDone.rest} as
 * the first client data.
 *
 * @module
 */
import {
  formatIPv4,
  formatIPv6,
  IPV6_BYTES,
  isIPv4Mapped,
  parseIPv4Into,
  parseIPv6Into,
} from "../core/ip.ts";

import { PROXY_V2_SIGNATURE, proxyLocalHeader } from "../core/proxy_local_header.ts";
import type { ProxyProtocolVersion } from "../core/types.ts";

export type { ProxyProtocolVersion };

/** One side of a proxied connection. */
export interface ProxyEndpoint {
  /** IPv4 dotted quad or IPv6 text. */
  readonly address: string;
  /** 0-65535. */
  readonly port: number;
}

/**
 * What the sender tells the receiver.
 *
 * - `proxy`: a relayed TCP connection from `source` (the client) to `destination` (the
 *   address the client dialled). Addresses of different families are sent as TCP6, the
 *   IPv4 one as IPv4-mapped IPv6; two IPv4 (or IPv4-mapped IPv6) addresses are sent as TCP4.
 * - `local`: a connection the sender made itself (health checks); the receiver uses the
 *   connection's own addresses. v2 sends `LOCAL` with family `UNSPEC`; v1 sends `PROXY UNKNOWN`.
 */
export type ProxyHeaderInfo =
  | {
    readonly command: "proxy";
    readonly transport: "tcp";
    readonly source: ProxyEndpoint;
    readonly destination: ProxyEndpoint;
  }
  | { readonly command: "local" };

/** The v1 line limit including CRLF (`PROXY TCP6 <39> <39> 65535 65535\r\n` fits). */
export const PROXY_V1_MAX_BYTES = 107;
/** The largest v2 header the spec allows: 16 fixed bytes plus a 16-bit length. */
export const PROXY_V2_MAX_BYTES = 16 + 0xffff;
/** Default cap on a header the parser will buffer. */
export const DEFAULT_PROXY_HEADER_MAX_BYTES = 4096;

const V2_FIXED_BYTES = 16;
const V2_VERSION = 0x2;
const V2_CMD_LOCAL = 0x0;
const V2_CMD_PROXY = 0x1;
const V2_AF_UNSPEC = 0x0;
const V2_AF_INET = 0x1;
const V2_AF_INET6 = 0x2;
const V2_AF_UNIX = 0x3;
const V2_TRANSPORT_UNSPEC = 0x0;
const V2_TRANSPORT_STREAM = 0x1;
const V2_TRANSPORT_DGRAM = 0x2;
/** Address block sizes per v2 address family. */
const V2_ADDRESS_BYTES = [0, 12, 36, 216] as const;

const V1_PREFIX = "PROXY ";
const CR = 0x0d;
const LF = 0x0a;

// Scratch for the encoder and the v1 parser: both run synchronously, so one pair of buffers
// serves every call.
const scratchSource = new Uint8Array(IPV6_BYTES);
const scratchDestination = new Uint8Array(IPV6_BYTES);

/**
 * Parses `address` into `out` as 16 bytes (IPv4 as IPv4-mapped).
 * @returns whether the address is IPv4 or IPv4-mapped
 */
function readAddress(address: string, out: Uint8Array, role: string): boolean {
  if (address.includes(":")) {
    if (!parseIPv6Into(address, out, 0)) {
      throw new TypeError(`Cannot encode PROXY header: ${role} address "${address}" is not an IP`);
    }
    return isIPv4Mapped(out, 0);
  }
  out.fill(0, 0, 10);
  out[10] = 0xff;
  out[11] = 0xff;
  if (!parseIPv4Into(address, out, 12)) {
    throw new TypeError(`Cannot encode PROXY header: ${role} address "${address}" is not an IP`);
  }
  return true;
}

function checkPort(port: number, role: string): void {
  if (!Number.isInteger(port) || port < 0 || port > 0xffff) {
    throw new RangeError(
      `Cannot encode PROXY header: ${role} port must be an integer in 0-65535: current value is ${port}`,
    );
  }
}

/**
 * Encodes a PROXY protocol header, to be written before any client byte.
 *
 * Runs once per connection, so it allocates only the returned array (plus the v1 line
 * text); the caller owns that array.
 * @throws {TypeError} when an address is not an IPv4 or IPv6 literal
 * @throws {RangeError} when a port is outside 0-65535
 */
export function encodeProxyHeader(
  version: ProxyProtocolVersion,
  info: ProxyHeaderInfo,
): Uint8Array {
  if (info.command === "local") return proxyLocalHeader(version);
  const { source, destination } = info;
  checkPort(source.port, "source");
  checkPort(destination.port, "destination");
  const isSourceV4 = readAddress(source.address, scratchSource, "source");
  const isDestinationV4 = readAddress(destination.address, scratchDestination, "destination");
  const isV4 = isSourceV4 && isDestinationV4;
  if (version === "v1") {
    const line = isV4
      ? `PROXY TCP4 ${formatIPv4(scratchSource, 12)} ${formatIPv4(scratchDestination, 12)} `
      : `PROXY TCP6 ${formatIPv6(scratchSource)} ${formatIPv6(scratchDestination)} `;
    const text = `${line}${source.port} ${destination.port}\r\n`;
    const out = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
    return out;
  }
  const addressBytes = isV4 ? V2_ADDRESS_BYTES[V2_AF_INET] : V2_ADDRESS_BYTES[V2_AF_INET6];
  const out = new Uint8Array(V2_FIXED_BYTES + addressBytes);
  out.set(PROXY_V2_SIGNATURE, 0);
  out[12] = (V2_VERSION << 4) | V2_CMD_PROXY;
  out[13] = ((isV4 ? V2_AF_INET : V2_AF_INET6) << 4) | V2_TRANSPORT_STREAM;
  out[14] = addressBytes >> 8;
  out[15] = addressBytes & 0xff;
  let at = V2_FIXED_BYTES;
  // Byte loops rather than `set(subarray(...))`: no view objects per connection.
  const from = isV4 ? 12 : 0;
  const size = IPV6_BYTES - from;
  for (let i = 0; i < size; i++) {
    out[at + i] = scratchSource[from + i]!;
    out[at + size + i] = scratchDestination[from + i]!;
  }
  at += 2 * size;
  out[at] = source.port >> 8;
  out[at + 1] = source.port & 0xff;
  out[at + 2] = destination.port >> 8;
  out[at + 3] = destination.port & 0xff;
  return out;
}

/**
 * Address family and transport a parsed header declares. Only `tcp4` and `tcp6` carry
 * addresses the receiver uses; for the others the spec says to fall back to the
 * connection's own addresses.
 */
export type ProxyFamily =
  | "tcp4"
  | "tcp6"
  | "udp4"
  | "udp6"
  | "unix-stream"
  | "unix-dgram"
  | "unspec";

/** A parsed header. */
export interface ProxyHeader {
  readonly version: ProxyProtocolVersion;
  /** v2 `LOCAL` and v1 `UNKNOWN` are `local`: use the connection's own addresses. */
  readonly command: "proxy" | "local";
  readonly family: ProxyFamily;
  /** The original client; present only for `proxy` over `tcp4`/`tcp6`. */
  readonly source?: ProxyEndpoint;
  /** The address the client dialled; present exactly when `source` is. */
  readonly destination?: ProxyEndpoint;
}

/** Why a header was rejected. The connection should be closed. */
export type ProxyParseErrorReason =
  | "bad-signature"
  | "unsupported-version"
  | "unsupported-command"
  | "unsupported-family"
  | "bad-syntax"
  | "bad-address"
  | "bad-port"
  | "missing-crlf"
  | "too-long"
  | "bad-length"
  | "bad-tlv"
  | "truncated";

/** More bytes are needed; everything pushed so far is buffered (at most the cap). */
export interface ProxyParseNeedMore {
  readonly kind: "need-more";
}

/** A complete header. */
export interface ProxyParseDone {
  readonly kind: "done";
  readonly header: ProxyHeader;
  /** Bytes the header took on the wire. */
  readonly headerBytes: number;
  /**
   * Bytes after the header in the last pushed chunk: client data to forward. A view into
   * that chunk (no copy), possibly empty.
   */
  readonly rest: Uint8Array;
}

/** A rejected header. */
export interface ProxyParseError {
  readonly kind: "error";
  readonly reason: ProxyParseErrorReason;
  /** A sentence-case message for logs. */
  readonly message: string;
}

/** What {@linkcode ProxyHeaderParser.push} returns. */
export type ProxyParseResult = ProxyParseNeedMore | ProxyParseDone | ProxyParseError;

/** Options for {@linkcode ProxyHeaderParser}. */
export interface ProxyHeaderParserOptions {
  /**
   * The largest header accepted, in bytes. A v2 header declaring more is rejected as soon
   * as its length field arrives, so a peer can never make the parser buffer more. Must be
   * 107-65551 (the v1 limit up to the v2 limit).
   * @default {4096}
   */
  readonly maxHeaderBytes?: number;
}

const NEED_MORE: ProxyParseNeedMore = Object.freeze({ kind: "need-more" });
const EMPTY = new Uint8Array(0);

type Scan =
  | ProxyParseNeedMore
  | ProxyParseError
  | { readonly kind: "header"; readonly header: ProxyHeader; readonly headerBytes: number };

function fail(reason: ProxyParseErrorReason, detail: string): ProxyParseError {
  return { kind: "error", reason, message: `Cannot parse PROXY header: ${detail}` };
}

/**
 * An incremental PROXY protocol header parser for one accepted connection.
 *
 * Feed every chunk read from the socket to {@linkcode push} until it returns `done` or
 * `error`; call {@linkcode end} if the peer closes first. Detects v1 or v2 from the first
 * byte and rejects anything else at that byte. The parser copies bytes only while a header
 * is split across reads, and never holds more than `maxHeaderBytes`.
 */
export class ProxyHeaderParser {
  /** The cap in effect, in bytes. */
  readonly maxHeaderBytes: number;
  #buffer: Uint8Array = EMPTY;
  #length = 0;
  #isFinished = false;

  /** @throws {RangeError} when `maxHeaderBytes` is outside 107-65551 */
  constructor(options: ProxyHeaderParserOptions = {}) {
    const max = options.maxHeaderBytes ?? DEFAULT_PROXY_HEADER_MAX_BYTES;
    if (!Number.isInteger(max) || max < PROXY_V1_MAX_BYTES || max > PROXY_V2_MAX_BYTES) {
      throw new RangeError(
        `Cannot create PROXY header parser as 'maxHeaderBytes' must be an integer in ${PROXY_V1_MAX_BYTES}-${PROXY_V2_MAX_BYTES}: current value is ${max}`,
      );
    }
    this.maxHeaderBytes = max;
  }

  /** Bytes currently held while waiting for the rest of a header; never above the cap. */
  get bufferedBytes(): number {
    return this.#length;
  }

  /**
   * Consumes the next chunk read from the connection. `chunk` is not mutated; `rest` in a
   * `done` result is a view into it.
   * @throws {TypeError} when called after `done` or `error`
   */
  push(chunk: Uint8Array): ProxyParseResult {
    if (this.#isFinished) {
      throw new TypeError("Cannot push to a PROXY header parser that has already finished");
    }
    if (this.#length === 0) {
      // Common case: the whole header arrives in the first read; parse the chunk in place.
      const scan = scanHeader(chunk, chunk.length, this.maxHeaderBytes);
      if (scan.kind === "need-more") this.#hold(chunk, 0);
      return this.#finish(scan, chunk, 0);
    }
    const before = this.#length;
    this.#hold(chunk, before);
    const scan = scanHeader(this.#buffer, this.#length, this.maxHeaderBytes);
    return this.#finish(scan, chunk, before);
  }

  /**
   * Reports the end of the stream: `error` (`truncated`) when part of a header was buffered
   * or nothing arrived at all.
   * @throws {TypeError} when called after `done` or `error`
   */
  end(): ProxyParseError {
    if (this.#isFinished) {
      throw new TypeError("Cannot end a PROXY header parser that has already finished");
    }
    this.#isFinished = true;
    const held = this.#length;
    this.#release();
    return fail("truncated", `connection closed after ${held} of the header's bytes`);
  }

  #finish(scan: Scan, chunk: Uint8Array, before: number): ProxyParseResult {
    if (scan.kind === "need-more") return NEED_MORE;
    this.#isFinished = true;
    this.#release();
    if (scan.kind === "error") return scan;
    return {
      kind: "done",
      header: scan.header,
      headerBytes: scan.headerBytes,
      rest: chunk.subarray(scan.headerBytes - before),
    };
  }

  /**
   * Appends as much of `chunk` as can still belong to the header: up to the v1 line limit,
   * the v2 fixed part, or the v2 declared length, never above the cap.
   */
  #hold(chunk: Uint8Array, before: number): void {
    const limit = headerLimit(this.#buffer, before, chunk, this.maxHeaderBytes);
    const take = Math.min(chunk.length, limit - before);
    if (take <= 0) return;
    if (this.#buffer.length < before + take) {
      const grown = new Uint8Array(Math.min(limit, Math.max(before + take, 128)));
      grown.set(this.#buffer.subarray(0, before));
      this.#buffer = grown;
    }
    this.#buffer.set(chunk.subarray(0, take), before);
    this.#length = before + take;
  }

  #release(): void {
    this.#buffer = EMPTY;
    this.#length = 0;
  }
}

/** Byte `i` of the logical stream `held[0..heldLength) ++ chunk`. */
function byteAt(held: Uint8Array, heldLength: number, chunk: Uint8Array, i: number): number {
  return i < heldLength ? held[i]! : chunk[i - heldLength] ?? -1;
}

/** How many bytes of the stream can belong to the header, as far as is known yet. */
function headerLimit(
  held: Uint8Array,
  heldLength: number,
  chunk: Uint8Array,
  cap: number,
): number {
  const first = byteAt(held, heldLength, chunk, 0);
  if (first !== CR) return PROXY_V1_MAX_BYTES;
  if (heldLength + chunk.length < V2_FIXED_BYTES) return V2_FIXED_BYTES;
  const declared = (byteAt(held, heldLength, chunk, 14) << 8) |
    byteAt(held, heldLength, chunk, 15);
  // Over the cap the scan rejects the header at its fixed part: hold no more than that.
  return V2_FIXED_BYTES + declared > cap ? V2_FIXED_BYTES : V2_FIXED_BYTES + declared;
}

/** Parses `bytes[0..length)`: a header, `need-more`, or the first reason it is invalid. */
function scanHeader(bytes: Uint8Array, length: number, cap: number): Scan {
  if (length === 0) return NEED_MORE;
  const first = bytes[0];
  if (first === V1_PREFIX.charCodeAt(0)) return scanV1(bytes, length);
  if (first === CR) return scanV2(bytes, length, cap);
  return fail("bad-signature", `first byte 0x${hex(first!)} starts neither v1 nor v2`);
}

function hex(byte: number): string {
  return byte.toString(16).padStart(2, "0");
}

function scanV1(bytes: Uint8Array, length: number): Scan {
  const prefixLength = Math.min(length, V1_PREFIX.length);
  for (let i = 1; i < prefixLength; i++) {
    if (bytes[i] !== V1_PREFIX.charCodeAt(i)) {
      return fail("bad-signature", `byte ${i} is 0x${hex(bytes[i]!)}, not the v1 "PROXY " prefix`);
    }
  }
  // Find CRLF within the line limit (the CR at index 105 at the latest); reject control
  // bytes at once.
  const lastCr = PROXY_V1_MAX_BYTES - 2;
  const limit = Math.min(length, lastCr + 1);
  let cr = -1;
  for (let i = prefixLength; i < limit; i++) {
    const c = bytes[i]!;
    if (c === CR) {
      cr = i;
      break;
    }
    if (c < 0x20 || c > 0x7e) {
      return fail("bad-syntax", `v1 line has the non-printable byte 0x${hex(c)} at ${i}`);
    }
  }
  if (cr < 0) {
    return length > lastCr
      ? fail("missing-crlf", `v1 line has no CRLF within ${PROXY_V1_MAX_BYTES} bytes`)
      : NEED_MORE;
  }
  if (cr + 1 >= length) return NEED_MORE;
  if (bytes[cr + 1] !== LF) return fail("bad-syntax", `v1 line has CR without LF at ${cr}`);
  const headerBytes = cr + 2;
  const line = String.fromCharCode(...bytes.subarray(V1_PREFIX.length, cr));
  const fields = line.split(" ");
  const protocol = fields[0];
  if (protocol === "UNKNOWN") {
    // The spec: the receiver ignores anything after UNKNOWN up to the CRLF.
    return {
      kind: "header",
      header: { version: "v1", command: "local", family: "unspec" },
      headerBytes,
    };
  }
  if (protocol !== "TCP4" && protocol !== "TCP6") {
    return fail("unsupported-family", `v1 protocol "${protocol}" is not TCP4, TCP6 or UNKNOWN`);
  }
  if (fields.length !== 5) {
    return fail(
      "bad-syntax",
      `v1 ${protocol} line needs 4 fields separated by single spaces: got "${line}"`,
    );
  }
  const isV4 = protocol === "TCP4";
  const scratch = scratchSource;
  const addresses: string[] = [];
  for (const text of [fields[1]!, fields[2]!]) {
    const isValid = isV4 ? parseIPv4Into(text, scratch, 0) : parseIPv6Into(text, scratch, 0);
    if (!isValid) {
      return fail("bad-address", `v1 ${protocol} address "${text}" is not valid`);
    }
    // TCP4 text is canonical once valid; TCP6 text may use any case or compression.
    addresses.push(isV4 ? text : formatIPv6(scratch));
  }
  const [sourceText, destinationText] = addresses as [string, string];
  const sourcePort = parseV1Port(fields[3]!);
  const destinationPort = parseV1Port(fields[4]!);
  if (sourcePort < 0 || destinationPort < 0) {
    const text = sourcePort < 0 ? fields[3] : fields[4];
    return fail("bad-port", `v1 port "${text}" is not a decimal 0-65535 without leading zeros`);
  }
  return {
    kind: "header",
    header: {
      version: "v1",
      command: "proxy",
      family: isV4 ? "tcp4" : "tcp6",
      source: { address: sourceText, port: sourcePort },
      destination: { address: destinationText, port: destinationPort },
    },
    headerBytes,
  };
}

/** @returns the port, or -1 when the text is not a canonical decimal 0-65535 */
function parseV1Port(text: string): number {
  if (text.length === 0 || text.length > 5) return -1;
  if (text.length > 1 && text.charCodeAt(0) === 48) return -1;
  let port = 0;
  for (let i = 0; i < text.length; i++) {
    const d = text.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    port = port * 10 + d;
  }
  return port <= 0xffff ? port : -1;
}

function scanV2(bytes: Uint8Array, length: number, cap: number): Scan {
  const signatureLength = Math.min(length, PROXY_V2_SIGNATURE.length);
  for (let i = 1; i < signatureLength; i++) {
    if (bytes[i] !== PROXY_V2_SIGNATURE[i]) {
      return fail("bad-signature", `byte ${i} is 0x${hex(bytes[i]!)}, not the v2 signature`);
    }
  }
  if (length < 13) return NEED_MORE;
  const versionCommand = bytes[12]!;
  if (versionCommand >> 4 !== V2_VERSION) {
    return fail("unsupported-version", `v2 version nibble is ${versionCommand >> 4}, not 2`);
  }
  const command = versionCommand & 0x0f;
  if (command !== V2_CMD_LOCAL && command !== V2_CMD_PROXY) {
    return fail("unsupported-command", `v2 command ${command} is neither LOCAL (0) nor PROXY (1)`);
  }
  if (length < 14) return NEED_MORE;
  const familyTransport = bytes[13]!;
  const family = familyTransport >> 4;
  const transport = familyTransport & 0x0f;
  // Valid combinations: UNSPEC/UNSPEC, or INET/INET6/UNIX with STREAM/DGRAM.
  const isValidPair = family === V2_AF_UNSPEC
    ? transport === V2_TRANSPORT_UNSPEC
    : family <= V2_AF_UNIX &&
      (transport === V2_TRANSPORT_STREAM || transport === V2_TRANSPORT_DGRAM);
  if (!isValidPair) {
    return fail(
      "unsupported-family",
      `v2 family/transport byte 0x${hex(familyTransport)} is not a defined combination`,
    );
  }
  if (length < V2_FIXED_BYTES) return NEED_MORE;
  const declared = (bytes[14]! << 8) | bytes[15]!;
  const headerBytes = V2_FIXED_BYTES + declared;
  if (headerBytes > cap) {
    return fail("too-long", `v2 header declares ${headerBytes} bytes, more than the cap ${cap}`);
  }
  const addressBytes = V2_ADDRESS_BYTES[family as 0 | 1 | 2 | 3];
  if (command === V2_CMD_PROXY && declared < addressBytes) {
    return fail(
      "bad-length",
      `v2 length ${declared} is shorter than the ${addressBytes}-byte address block`,
    );
  }
  if (length < headerBytes) return NEED_MORE;
  if (command === V2_CMD_LOCAL) {
    // The spec: for LOCAL the receiver discards the whole block, family included.
    return {
      kind: "header",
      header: { version: "v2", command: "local", family: "unspec" },
      headerBytes,
    };
  }
  // TLVs fill the rest of the declared length exactly: type (1), length (2), value. With
  // family UNSPEC the spec has the receiver ignore the block, so it is not walked.
  let at = V2_FIXED_BYTES + addressBytes;
  while (family !== V2_AF_UNSPEC && at < headerBytes) {
    if (at + 3 > headerBytes) {
      return fail("bad-tlv", `v2 TLV header at byte ${at} overruns the declared length`);
    }
    const tlvLength = (bytes[at + 1]! << 8) | bytes[at + 2]!;
    at += 3 + tlvLength;
    if (at > headerBytes) {
      return fail("bad-tlv", `v2 TLV value ending at byte ${at} overruns the declared length`);
    }
  }
  const isStream = transport === V2_TRANSPORT_STREAM;
  const a = V2_FIXED_BYTES;
  if (family === V2_AF_INET || family === V2_AF_INET6) {
    const isV4 = family === V2_AF_INET;
    if (!isStream) {
      return {
        kind: "header",
        header: { version: "v2", command: "proxy", family: isV4 ? "udp4" : "udp6" },
        headerBytes,
      };
    }
    // Source address, destination address, source port, destination port (section 2.2).
    const size = isV4 ? 4 : 16;
    const format = isV4 ? formatIPv4 : formatIPv6;
    const ports = a + 2 * size;
    return {
      kind: "header",
      header: {
        version: "v2",
        command: "proxy",
        family: isV4 ? "tcp4" : "tcp6",
        source: { address: format(bytes, a), port: (bytes[ports]! << 8) | bytes[ports + 1]! },
        destination: {
          address: format(bytes, a + size),
          port: (bytes[ports + 2]! << 8) | bytes[ports + 3]!,
        },
      },
      headerBytes,
    };
  }
  const other: ProxyFamily = family === V2_AF_UNIX
    ? (isStream ? "unix-stream" : "unix-dgram")
    : "unspec";
  return {
    kind: "header",
    header: { version: "v2", command: "proxy", family: other },
    headerBytes,
  };
}
