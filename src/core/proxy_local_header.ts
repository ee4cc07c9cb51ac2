/**
 * The PROXY protocol header for a connection the load balancer opens itself (a health
 * check): v2 `LOCAL` with family `UNSPEC`, or v1 `PROXY UNKNOWN`. The receiver then uses the
 * connection's own addresses and, above all, does not log a protocol error. Kept here, below
 * both health/ and proxy/, so the prober and the encoder send the same bytes.
 *
 * Reference: HAProxy's `doc/proxy-protocol.txt`, sections 2.1 (`UNKNOWN`) and 2.2 (`LOCAL`).
 *
 * @module
 */
import type { ProxyProtocolVersion } from "./types.ts";

/** `PROXY UNKNOWN\r\n`. */
const V1_UNKNOWN = Uint8Array.from("PROXY UNKNOWN\r\n", (c) => c.charCodeAt(0));
/** The 12-byte PROXY protocol v2 signature (`\r\n\r\n\0\r\nQUIT\n`). */
export const PROXY_V2_SIGNATURE: Uint8Array = Uint8Array.of(
  0x0d,
  0x0a,
  0x0d,
  0x0a,
  0x00,
  0x0d,
  0x0a,
  0x51,
  0x55,
  0x49,
  0x54,
  0x0a,
);
/** The v2 signature, version 2 with command `LOCAL`, family `UNSPEC`, length 0. */
const V2_LOCAL = Uint8Array.of(...PROXY_V2_SIGNATURE, 0x20, 0x00, 0x00, 0x00);

/**
 * The header a self-made connection sends first.
 * @returns a new array the caller owns
 */
export function proxyLocalHeader(version: ProxyProtocolVersion): Uint8Array {
  return (version === "v1" ? V1_UNKNOWN : V2_LOCAL).slice();
}
