/**
 * HTTP/1.1 request heads for the admin server (RFC 9112): finding the end of a head in the
 * bytes read so far, and parsing it into request line and header fields.
 *
 * @module
 */

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const REQUEST_LINE = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+) (\/[^ ]*) HTTP\/1\.([01])$/;

/** A request the server answers with `status` and closes the connection on. */
export class Http1Error extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

/** A request head: request line, header fields in order, and what framing they ask for. */
export interface ParsedHead {
  readonly method: string;
  readonly target: string;
  readonly headers: [string, string][];
  /** HTTP/1.1 without `Connection: close`. */
  readonly keepAlive: boolean;
  /** `Content-Length`, 0 when absent. */
  readonly bodyLength: number;
}

/** Index of the CRLFCRLF that ends a request head, or -1. */
export function indexOfHeadEnd(bytes: Uint8Array, from: number): number {
  for (let i = from; i + 3 < bytes.length; i++) {
    if (bytes[i] === 13 && bytes[i + 1] === 10 && bytes[i + 2] === 13 && bytes[i + 3] === 10) {
      return i;
    }
  }
  return -1;
}

/**
 * Parses a request head (without its final CRLFCRLF), strictly: origin-form targets only,
 * token field names, no control characters in values, one `Content-Length`, no
 * `Transfer-Encoding`.
 *
 * @throws {Http1Error} 400 when malformed, 431 with more than `maxHeaders` fields, 501 with
 *   `Transfer-Encoding`
 */
export function parseHead(bytes: Uint8Array, maxHeaders: number): ParsedHead {
  // latin1: every byte maps to one char, so nothing a client sends breaks decoding.
  let text = "";
  for (let i = 0; i < bytes.length; i += 8192) {
    text += String.fromCharCode(...bytes.subarray(i, i + 8192));
  }
  // RFC 9112 §2.2: ignore empty lines before the request line.
  const lines = text.replace(/^(?:\r\n)+/, "").split("\r\n");
  const match = REQUEST_LINE.exec(lines[0] ?? "");
  if (match === null) throw new Http1Error(400, "bad request line");
  if (lines.length - 1 > maxHeaders) throw new Http1Error(431, "too many header fields");
  const headers: [string, string][] = [];
  let connection = "";
  let contentLength: string | undefined;
  let hasTransferEncoding = false;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const colon = line.indexOf(":");
    if (colon <= 0) throw new Http1Error(400, "bad header field");
    const name = line.slice(0, colon);
    if (!TOKEN.test(name)) throw new Http1Error(400, "bad header field");
    const value = line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, "");
    if (hasControl(value)) throw new Http1Error(400, "bad header field");
    const lower = name.toLowerCase();
    if (lower === "connection") connection += `,${value.toLowerCase()}`;
    if (lower === "transfer-encoding") hasTransferEncoding = true;
    if (lower === "content-length") {
      if (contentLength !== undefined && contentLength !== value) {
        throw new Http1Error(400, "conflicting content-length");
      }
      contentLength = value;
    }
    headers.push([name, value]);
  }
  if (hasTransferEncoding) throw new Http1Error(501, "transfer-encoding not supported");
  let bodyLength = 0;
  if (contentLength !== undefined) {
    if (!/^\d{1,15}$/.test(contentLength)) throw new Http1Error(400, "bad content-length");
    bodyLength = Number(contentLength);
  }
  const tokens = connection.split(",").map((t) => t.trim());
  const keepAlive = match[3] === "1" ? !tokens.includes("close") : false;
  return { method: match[1]!, target: match[2]!, headers, keepAlive, bodyLength };
}

/** Whether `text` holds a control character other than tab (RFC 9110 §5.5). */
function hasControl(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09) || c === 0x7f) return true;
  }
  return false;
}
