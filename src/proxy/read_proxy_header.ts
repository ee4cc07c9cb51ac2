/**
 * Reads a PROXY protocol header from an accepted connection: the socket side of
 * {@linkcode ProxyHeaderParser}.
 *
 * @module
 */
import {
  DEFAULT_PROXY_HEADER_MAX_BYTES,
  ProxyHeaderParser,
  type ProxyParseDone,
  type ProxyParseError,
} from "./proxy_protocol.ts";

/** What {@linkcode readProxyHeader} reads from: a `Deno.Conn` or anything like it. */
export interface ByteReader {
  /** Reads into `buffer`; resolves to the byte count, or `null` at end of stream. */
  read(buffer: Uint8Array): Promise<number | null>;
}

/** Options for {@linkcode readProxyHeader}. */
export interface ReadProxyHeaderOptions {
  /**
   * The largest header accepted, in bytes (see {@linkcode ProxyHeaderParser}).
   * @default {4096}
   */
  readonly maxHeaderBytes?: number;
  /**
   * Bytes per read. The header and the first client bytes arrive in one such buffer;
   * `rest` is a view into it.
   * @default {16384}
   */
  readonly readBufferBytes?: number;
  /**
   * Ends the wait, e.g. `AbortSignal.timeout(ms)` so a peer that connects and sends
   * nothing cannot hold the connection open.
   */
  readonly signal?: AbortSignal;
}

/** Default bytes per read in {@linkcode readProxyHeader}. */
export const DEFAULT_PROXY_READ_BUFFER_BYTES = 16 * 1024;

/**
 * Reads from `conn` until a complete PROXY header or a verdict against it.
 *
 * Ownership: the caller owns `conn` throughout and closes it on `error` or rejection.
 * On `done`, forward `rest` to the backend before anything else read from `conn`. If
 * `signal` aborts, the promise rejects with its reason while a read may still be pending;
 * closing `conn` ends that read (its error is swallowed here).
 * @returns `done` or `error`; end of stream before a full header is `error` (`truncated`)
 * @throws {RangeError} when `readBufferBytes` is not a positive integer or `maxHeaderBytes`
 * is outside what {@linkcode ProxyHeaderParser} accepts
 * @throws the signal's reason (as a rejection) when aborted, or the read error when the
 * socket fails
 */
export function readProxyHeader(
  conn: ByteReader,
  options: ReadProxyHeaderOptions = {},
): Promise<ProxyParseDone | ProxyParseError> {
  const parser = new ProxyHeaderParser({
    maxHeaderBytes: options.maxHeaderBytes ?? DEFAULT_PROXY_HEADER_MAX_BYTES,
  });
  const size = options.readBufferBytes ?? DEFAULT_PROXY_READ_BUFFER_BYTES;
  if (!Number.isInteger(size) || size < 1) {
    throw new RangeError(
      `Cannot read PROXY header as 'readBufferBytes' must be a positive integer: current value is ${size}`,
    );
  }
  const { signal } = options;
  if (signal?.aborted) return Promise.reject(signal.reason);
  const reading = (async (): Promise<ProxyParseDone | ProxyParseError> => {
    // One buffer: on `need-more` the parser has copied what it needs, so the next read may
    // overwrite it; the final read's bytes stay put for `rest`.
    const buffer = new Uint8Array(size);
    while (true) {
      const n = await conn.read(buffer);
      if (signal?.aborted) throw signal.reason;
      if (n === null) return parser.end();
      const result = parser.push(buffer.subarray(0, n));
      if (result.kind !== "need-more") return result;
    }
  })();
  if (!signal) return reading;
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      reading.catch(() => {}); // the pending read fails once the caller closes `conn`
      reject(signal.reason);
    };
    signal.addEventListener("abort", onAbort, { once: true });
    reading.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}
