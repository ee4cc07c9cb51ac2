/**
 * Builds TLS ClientHellos byte by byte for tests: a server name or none, GREASE values,
 * an ECH extension, padding, and the handshake message split across several records.
 * Hellos built here are well-formed TLS 1.3 ClientHellos (RFC 8446 §4.1.2) that real
 * servers answer, since the key share is a valid X25519 point.
 *
 * @module
 */

/** What {@linkcode buildClientHello} puts in a hello. */
export interface HelloSpec {
  /** `server_name` host name, bytes as given (no normalisation); no extension when absent. */
  readonly serverName?: string;
  /** ALPN protocols; no extension when absent. */
  readonly alpn?: readonly string[];
  /** Add GREASE cipher suite, extensions and group (RFC 8701). @default {false} */
  readonly grease?: boolean;
  /** Add an `encrypted_client_hello` (0xfe0d) outer extension with this many payload bytes. */
  readonly echPayloadBytes?: number;
  /** Pad the handshake message to about this many bytes with a `padding` extension (RFC 7685). */
  readonly padTo?: number;
  /**
   * Fragment sizes of the handshake message, one record each; the last size repeats until
   * the message is out. @default {[16384]}
   */
  readonly recordSizes?: readonly number[];
}

const u16 = (n: number) => [(n >> 8) & 0xff, n & 0xff];
const u24 = (n: number) => [(n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff];
const ascii = (s: string) => [...s].map((c) => c.charCodeAt(0) & 0xff);

function extension(type: number, data: number[]): number[] {
  return [...u16(type), ...u16(data.length), ...data];
}

/** The handshake message (type, length, body) of a ClientHello. */
export function buildHandshake(spec: HelloSpec): Uint8Array {
  const grease = spec.grease === true;
  const suites = [...(grease ? [0x0a, 0x0a] : []), 0x13, 0x01, 0x13, 0x02, 0x13, 0x03];
  const exts: number[][] = [];
  if (grease) exts.push(extension(0x1a1a, []));
  if (spec.serverName !== undefined) {
    const name = ascii(spec.serverName);
    const entry = [0, ...u16(name.length), ...name];
    exts.push(extension(0x0000, [...u16(entry.length), ...entry]));
  }
  // supported_versions: TLS 1.3 (and a GREASE version)
  exts.push(extension(0x002b, grease ? [4, 0x3a, 0x3a, 0x03, 0x04] : [2, 0x03, 0x04]));
  // supported_groups: x25519
  exts.push(extension(0x000a, grease ? [0, 4, 0x4a, 0x4a, 0x00, 0x1d] : [0, 2, 0x00, 0x1d]));
  // signature_algorithms: ecdsa_secp256r1_sha256, rsa_pss_rsae_sha256, ed25519
  exts.push(extension(0x000d, [0, 6, 0x04, 0x03, 0x08, 0x04, 0x08, 0x07]));
  // key_share: x25519 with the base point's multiple 9 (a valid public key)
  const key = new Array(32).fill(0);
  key[0] = 9;
  exts.push(extension(0x0033, [...u16(36), 0x00, 0x1d, ...u16(32), ...key]));
  if (spec.alpn !== undefined) {
    const list = spec.alpn.flatMap((p) => [p.length, ...ascii(p)]);
    exts.push(extension(0x0010, [...u16(list.length), ...list]));
  }
  if (spec.echPayloadBytes !== undefined) {
    // ECHClientHello outer: type 0, cipher suite, config id, enc, payload
    const payload = new Array(spec.echPayloadBytes).fill(0x5a);
    const enc = new Array(32).fill(0x11);
    exts.push(
      extension(0xfe0d, [
        0,
        ...u16(0x0001),
        ...u16(0x0001),
        7,
        ...u16(enc.length),
        ...enc,
        ...u16(payload.length),
        ...payload,
      ]),
    );
  }
  if (grease) exts.push(extension(0xdada, [0]));
  const head = [
    0x03,
    0x03,
    ...new Array(32).fill(0).map((_, i) => (i * 7 + 3) & 0xff),
    32,
    ...new Array(32).fill(0).map((_, i) => (i * 13 + 1) & 0xff),
    ...u16(suites.length),
    ...suites,
    1,
    0,
  ];
  let extBytes = exts.flat();
  if (spec.padTo !== undefined) {
    const size = 4 + head.length + 2 + extBytes.length;
    const pad = spec.padTo - size - 4;
    if (pad > 0) extBytes = [...extBytes, ...extension(0x0015, new Array(pad).fill(0))];
  }
  const body = [...head, ...u16(extBytes.length), ...extBytes];
  return new Uint8Array([0x01, ...u24(body.length), ...body]);
}

/** Wraps a handshake message in TLS records of the given fragment sizes. */
export function toRecords(message: Uint8Array, sizes: readonly number[] = [16_384]): Uint8Array {
  const out: number[] = [];
  let at = 0;
  let i = 0;
  while (at < message.length) {
    const size = Math.max(1, sizes[Math.min(i, sizes.length - 1)]!);
    const fragment = message.subarray(at, at + size);
    out.push(0x16, 0x03, 0x01, ...u16(fragment.length), ...fragment);
    at += fragment.length;
    i++;
  }
  return new Uint8Array(out);
}

/** A complete ClientHello as sent on the wire. */
export function buildClientHello(spec: HelloSpec = {}): Uint8Array {
  return toRecords(buildHandshake(spec), spec.recordSizes);
}
