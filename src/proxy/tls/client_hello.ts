/**
 * An incremental TLS ClientHello reader: fed the first bytes of a connection in whatever
 * pieces TCP delivers them, it reassembles the handshake message from one or more TLS
 * records and reads the server name (SNI, RFC 6066 §3) without terminating TLS.
 *
 * Pure: no I/O, no timers; it never throws and never looks at a byte past the record that
 * completes the ClientHello or past its bound. Every extension, GREASE values (RFC 8701)
 * and Encrypted Client Hello (`encrypted_client_hello`, 0xfe0d) included, is skipped as an
 * ordinary one, so with ECH the outer hello's `public_name` is the name read.
 *
 * @see https://www.rfc-editor.org/rfc/rfc8446#section-4.1.2 (ClientHello)
 * @see https://www.rfc-editor.org/rfc/rfc8446#section-5.1 (record layer)
 * @module
 */

/** Why a ClientHello was not read: malformed or not TLS at all (`bad`), or over the bound. */
export type ClientHelloProblem = "bad" | "too_large";

/** Where {@linkcode ClientHelloReader.push} stands. */
export type ClientHelloProgress =
  | { readonly kind: "more" }
  | { readonly kind: "done"; readonly hello: ClientHelloInfo }
  | { readonly kind: "error"; readonly problem: ClientHelloProblem; readonly message: string };

/** What routing needs of a complete ClientHello. */
export interface ClientHelloInfo {
  /**
   * The first `host_name` of the `server_name` extension, lower-cased with one trailing dot
   * dropped; absent when the hello carries none.
   */
  readonly serverName?: string;
  /** Protocols of the `application_layer_protocol_negotiation` extension, in order. */
  readonly alpn: readonly string[];
  /** Bytes of the records that carried the hello, headers included. */
  readonly recordBytes: number;
}

/** Default of {@linkcode ClientHelloReaderOptions.maxBytes}: the original's `maxClientHello`. */
export const DEFAULT_MAX_CLIENT_HELLO_BYTES = 16_384;

/** Options of {@linkcode ClientHelloReader}. */
export interface ClientHelloReaderOptions {
  /**
   * Most bytes the reader takes before it has the whole ClientHello, TLS record headers
   * included; past it the progress is `too_large`. This bounds what a listener holds per
   * connection before routing. @default {16384}
   */
  readonly maxBytes?: number;
}

const RECORD_HEADER_BYTES = 5;
const HANDSHAKE_HEADER_BYTES = 4;
const CONTENT_TYPE_HANDSHAKE = 0x16;
const HANDSHAKE_CLIENT_HELLO = 0x01;
/** RFC 8446 §5.1: a plaintext record fragment is at most 2^14 bytes. */
const MAX_RECORD_FRAGMENT = 16_384;
const EXTENSION_SERVER_NAME = 0x0000;
const EXTENSION_ALPN = 0x0010;
const NAME_TYPE_HOST_NAME = 0x00;
/** RFC 1035: a DNS name is at most 255 octets on the wire, 253 characters as text. */
const MAX_SERVER_NAME = 255;

/**
 * Reads a ClientHello from the first bytes of a connection, piece by piece.
 *
 * Feed every piece read from the socket, in order, to {@linkcode ClientHelloReader.push}
 * until it answers `done` or `error`; later calls repeat that answer. The reader copies
 * what it needs; the caller keeps (and replays) the bytes it read.
 *
 * @example
 * ```ts
 * const reader = new ClientHelloReader({ maxBytes: 16_384 });
 * let progress = reader.push(firstPiece);
 * while (progress.kind === "more") progress = reader.push(await nextPiece());
 * ```
 */
export class ClientHelloReader {
  readonly #maxBytes: number;
  /** Bytes taken so far (record headers and fragments of the hello's records). */
  #taken = 0;
  /** The partial record header, while fewer than 5 of its bytes arrived. */
  readonly #header = new Uint8Array(RECORD_HEADER_BYTES);
  #headerFilled = 0;
  /** Fragment bytes of the current record still to come; 0 between records. */
  #recordLeft = 0;
  /** The handshake message reassembled from record fragments. */
  #message: Uint8Array = new Uint8Array(0);
  #messageFilled = 0;
  /** Handshake message length (header included), once its 4-byte header is in. */
  #messageLength = -1;
  #result: ClientHelloProgress = { kind: "more" };

  /** Creates a reader; see {@linkcode ClientHelloReaderOptions}. */
  constructor(options: ClientHelloReaderOptions = {}) {
    const max = options.maxBytes ?? DEFAULT_MAX_CLIENT_HELLO_BYTES;
    this.#maxBytes = Number.isFinite(max) && max > 0 ? Math.floor(max) : 0;
  }

  /** Bytes of input the reader has examined so far; never more than `maxBytes`. */
  get bytesTaken(): number {
    return this.#taken;
  }

  /** The answer so far, as the last {@linkcode ClientHelloReader.push} returned it. */
  get progress(): ClientHelloProgress {
    return this.#result;
  }

  /**
   * Takes the next piece of the connection's bytes.
   * @param piece bytes as read; not kept, not mutated
   * @returns `more` until the hello is complete (`done`) or cannot be (`error`); once
   *   final, the same answer for every later call
   */
  push(piece: Uint8Array): ClientHelloProgress {
    let at = 0;
    while (this.#result.kind === "more" && at < piece.length) {
      if (this.#taken >= this.#maxBytes) {
        return this.#fail("too_large", `ClientHello exceeds ${this.#maxBytes} bytes`);
      }
      const room = this.#maxBytes - this.#taken;
      if (this.#recordLeft === 0) {
        // A record header, possibly split across pieces.
        const n = Math.min(RECORD_HEADER_BYTES - this.#headerFilled, piece.length - at, room);
        this.#header.set(piece.subarray(at, at + n), this.#headerFilled);
        this.#headerFilled += n;
        this.#taken += n;
        at += n;
        if (this.#isSslV2Start()) {
          return this.#fail("bad", "SSLv2-style ClientHello is not supported");
        }
        if (this.#headerFilled < RECORD_HEADER_BYTES) continue;
        this.#headerFilled = 0;
        const problem = this.#checkRecordHeader();
        if (problem !== undefined) return this.#fail("bad", problem);
        this.#recordLeft = (this.#header[3]! << 8) | this.#header[4]!;
        continue;
      }
      const n = Math.min(this.#recordLeft, piece.length - at, room);
      this.#append(piece.subarray(at, at + n));
      this.#recordLeft -= n;
      this.#taken += n;
      at += n;
      const done = this.#checkMessage();
      if (done !== undefined) return done;
    }
    if (this.#result.kind === "more" && this.#taken >= this.#maxBytes) {
      return this.#fail("too_large", `ClientHello exceeds ${this.#maxBytes} bytes`);
    }
    return this.#result;
  }

  /** An SSLv2 CLIENT-HELLO starts with a 2-byte length with the top bit set, then type 1. */
  #isSslV2Start(): boolean {
    return this.#messageFilled === 0 && this.#headerFilled >= 3 && this.#taken <= 5 &&
      (this.#header[0]! & 0x80) !== 0 && this.#header[2] === 0x01;
  }

  #checkRecordHeader(): string | undefined {
    const h = this.#header;
    if (h[0] !== CONTENT_TYPE_HANDSHAKE) {
      return this.#taken <= RECORD_HEADER_BYTES
        ? `not a TLS handshake: first byte is 0x${hex(h[0]!)}`
        : `record of type 0x${hex(h[0]!)} before the ClientHello ended`;
    }
    if (h[1] !== 0x03 || h[2]! > 0x04) {
      return `unknown TLS record version 0x${hex(h[1]!)}${hex(h[2]!)}`;
    }
    const length = (h[3]! << 8) | h[4]!;
    if (length === 0) return "empty handshake record";
    if (length > MAX_RECORD_FRAGMENT) return `record of ${length} bytes exceeds 16384`;
    return undefined;
  }

  #append(bytes: Uint8Array): void {
    const need = this.#messageFilled + bytes.length;
    if (need > this.#message.length) {
      const grown = new Uint8Array(Math.max(need, this.#message.length * 2, 512));
      grown.set(this.#message.subarray(0, this.#messageFilled));
      this.#message = grown;
    }
    this.#message.set(bytes, this.#messageFilled);
    this.#messageFilled = need;
  }

  #checkMessage(): ClientHelloProgress | undefined {
    const m = this.#message;
    if (this.#messageLength < 0) {
      if (this.#messageFilled < HANDSHAKE_HEADER_BYTES) return undefined;
      if (m[0] !== HANDSHAKE_CLIENT_HELLO) {
        return this.#fail("bad", `handshake message of type ${m[0]} is not a ClientHello`);
      }
      this.#messageLength = HANDSHAKE_HEADER_BYTES + ((m[1]! << 16) | (m[2]! << 8) | m[3]!);
      // Its records add at least one 5-byte header: known too large before it arrives.
      if (this.#messageLength + RECORD_HEADER_BYTES > this.#maxBytes) {
        return this.#fail(
          "too_large",
          `ClientHello of ${this.#messageLength} bytes exceeds ${this.#maxBytes} bytes`,
        );
      }
    }
    if (this.#messageFilled < this.#messageLength) return undefined;
    if (this.#messageFilled > this.#messageLength) {
      // The record went on with another handshake message: the client cannot send one
      // before the server answers.
      return this.#fail("bad", "handshake record continues past the ClientHello");
    }
    if (this.#recordLeft !== 0) {
      return this.#fail("bad", "handshake record continues past the ClientHello");
    }
    const parsed = parseClientHelloBody(
      m.subarray(HANDSHAKE_HEADER_BYTES, this.#messageLength),
      this.#taken,
    );
    if (typeof parsed === "string") return this.#fail("bad", parsed);
    this.#result = { kind: "done", hello: parsed };
    this.#message = new Uint8Array(0);
    return this.#result;
  }

  #fail(problem: ClientHelloProblem, message: string): ClientHelloProgress {
    this.#result = { kind: "error", problem, message };
    this.#message = new Uint8Array(0);
    return this.#result;
  }
}

/**
 * Reads a whole ClientHello at once: the same answer as one {@linkcode ClientHelloReader}
 * fed `bytes` in one piece.
 */
export function readClientHello(
  bytes: Uint8Array,
  options?: ClientHelloReaderOptions,
): ClientHelloProgress {
  return new ClientHelloReader(options).push(bytes);
}

/**
 * Parses the body of a ClientHello handshake message (after its 4-byte header).
 * @returns what routing needs, or why the body is malformed
 */
function parseClientHelloBody(body: Uint8Array, recordBytes: number): ClientHelloInfo | string {
  const r = new Cursor(body);
  if (!r.skip(2 + 32)) return "ClientHello is truncated before its random";
  const sessionId = r.u8();
  if (sessionId === undefined || sessionId > 32 || !r.skip(sessionId)) {
    return "ClientHello has a bad session id";
  }
  const suites = r.u16();
  if (suites === undefined || suites < 2 || suites % 2 !== 0 || !r.skip(suites)) {
    return "ClientHello has bad cipher suites";
  }
  const compressions = r.u8();
  if (compressions === undefined || compressions < 1 || !r.skip(compressions)) {
    return "ClientHello has bad compression methods";
  }
  if (r.left === 0) return { alpn: [], recordBytes };
  const extensionsLength = r.u16();
  if (extensionsLength === undefined || extensionsLength !== r.left) {
    return "ClientHello extensions do not fill the message";
  }
  let serverName: string | undefined;
  let alpn: string[] = [];
  let hasServerName = false;
  let hasAlpn = false;
  while (r.left > 0) {
    const type = r.u16();
    const length = r.u16();
    if (type === undefined || length === undefined || length > r.left) {
      return "ClientHello has a truncated extension";
    }
    const data = r.take(length)!;
    if (type === EXTENSION_SERVER_NAME) {
      if (hasServerName) return "ClientHello has two server_name extensions";
      hasServerName = true;
      const name = parseServerName(data);
      if (name !== undefined && name.startsWith("!")) return name.slice(1);
      serverName = name;
    } else if (type === EXTENSION_ALPN) {
      if (hasAlpn) return "ClientHello has two ALPN extensions";
      hasAlpn = true;
      const list = parseAlpn(data);
      if (list === undefined) return "ClientHello has a malformed ALPN extension";
      alpn = list;
    }
  }
  return { ...(serverName !== undefined && { serverName }), alpn, recordBytes };
}

/**
 * The first `host_name` of a `server_name` extension, normalised; `"!message"` when the
 * extension is malformed; `undefined` when it lists no host name (an empty extension, as
 * a server sends it, is also accepted).
 */
function parseServerName(data: Uint8Array): string | undefined {
  if (data.length === 0) return undefined;
  const r = new Cursor(data);
  const listLength = r.u16();
  if (listLength === undefined || listLength !== r.left || listLength === 0) {
    return "!ClientHello has a malformed server_name extension";
  }
  let first: string | undefined;
  while (r.left > 0) {
    const type = r.u8();
    const length = r.u16();
    if (type === undefined || length === undefined || length > r.left) {
      return "!ClientHello has a malformed server_name extension";
    }
    const name = r.take(length)!;
    if (type !== NAME_TYPE_HOST_NAME || first !== undefined) continue;
    if (length === 0 || length > MAX_SERVER_NAME) {
      return `!ClientHello server name has a bad length: ${length}`;
    }
    let text = "";
    for (const byte of name) {
      // RFC 6066: a host name is ASCII; no control characters, spaces or bytes above 0x7e.
      if (byte <= 0x20 || byte >= 0x7f) {
        return `!ClientHello server name has a byte outside printable ASCII: 0x${hex(byte)}`;
      }
      text += String.fromCharCode(byte >= 0x41 && byte <= 0x5a ? byte + 0x20 : byte);
    }
    first = text.endsWith(".") ? text.slice(0, -1) : text;
    if (first === "") return "!ClientHello server name is only a dot";
  }
  return first;
}

function parseAlpn(data: Uint8Array): string[] | undefined {
  const r = new Cursor(data);
  const listLength = r.u16();
  if (listLength === undefined || listLength !== r.left) return undefined;
  const out: string[] = [];
  while (r.left > 0) {
    const length = r.u8();
    if (length === undefined || length === 0 || length > r.left) return undefined;
    out.push(String.fromCharCode(...r.take(length)!));
  }
  return out;
}

/** Bounds-checked reads over one byte array; a read past the end returns `undefined`. */
class Cursor {
  #at = 0;
  readonly #bytes: Uint8Array;
  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
  }
  get left(): number {
    return this.#bytes.length - this.#at;
  }
  u8(): number | undefined {
    return this.left >= 1 ? this.#bytes[this.#at++] : undefined;
  }
  u16(): number | undefined {
    if (this.left < 2) return undefined;
    const value = (this.#bytes[this.#at]! << 8) | this.#bytes[this.#at + 1]!;
    this.#at += 2;
    return value;
  }
  skip(n: number): boolean {
    if (this.left < n) return false;
    this.#at += n;
    return true;
  }
  take(n: number): Uint8Array | undefined {
    if (this.left < n) return undefined;
    const out = this.#bytes.subarray(this.#at, this.#at + n);
    this.#at += n;
    return out;
  }
}

function hex(byte: number): string {
  return byte.toString(16).padStart(2, "0");
}
