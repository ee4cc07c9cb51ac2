/**
 * Reading a config file from disk: bounded in size, stoppable, UTF-8 only.
 *
 * @module
 */
import { fileErrorMessage } from "../core/error_message.ts";
import { closeQuietly } from "../core/io.ts";
import { sha256Hex } from "../core/sha256.ts";
import { ConfigError, type ConfigIssue } from "./issue.ts";
import { parseConfig } from "./parse.ts";
import type { Config } from "./types.ts";

/**
 * Largest config file read, in bytes (4 MiB). Real configs are a few kilobytes; the cap stops
 * an endless input (`/dev/urandom`, a pipe that never closes) before it fills memory.
 */
export const MAX_CONFIG_BYTES = 4 * 1024 * 1024;

const READ_CHUNK_BYTES = 64 * 1024;

/** Options of {@linkcode readConfigText} and {@linkcode loadConfigFile}. */
export interface ReadConfigOptions {
  /**
   * Stops waiting for the file (a FIFO without a writer blocks until one comes) and stops
   * reading; the promise then rejects with the signal's reason.
   */
  readonly signal?: AbortSignal;
  /**
   * Files larger than this are rejected without reading the rest.
   * @default {MAX_CONFIG_BYTES}
   */
  readonly maxBytes?: number;
}

/**
 * Reads a config file as text.
 *
 * @param path file to read (a FIFO or device works too); also the name used in messages
 * @returns the text, without a leading UTF-8 byte order mark
 * @throws {ConfigError} when the file is not UTF-8 text (a UTF-16 byte order mark, invalid
 *   bytes, or NUL bytes), located at the first offending byte
 * @throws {RangeError} `Cannot read config "PATH": the file is larger than ...` when it
 *   exceeds `maxBytes`
 * @throws the error of opening or reading the file (e.g. `Deno.errors.NotFound`), same
 *   class, re-thrown with the message `Cannot read config "PATH": ...` and the original as
 *   `cause`
 * @throws the signal's reason when `signal` aborts first
 */
export async function readConfigText(
  path: string,
  options: ReadConfigOptions = {},
): Promise<string> {
  return decodeConfig(await readConfigBytes(path, options), path);
}

/** The bytes of the file, bounded and stoppable; throws what {@linkcode readConfigText} does. */
async function readConfigBytes(path: string, options: ReadConfigOptions): Promise<Uint8Array> {
  const { signal, maxBytes = MAX_CONFIG_BYTES } = options;
  signal?.throwIfAborted();
  const file = await untilAborted(Deno.open(path, { read: true }), signal, (f) => f.close())
    .catch((error) => {
      throw signal?.aborted ? signal.reason : readError(path, error);
    });
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      const buffer = new Uint8Array(READ_CHUNK_BYTES);
      const n = await untilAborted(file.read(buffer), signal).catch((error) => {
        throw signal?.aborted ? signal.reason : readError(path, error);
      });
      if (n === null) break;
      total += n;
      if (total > maxBytes) {
        throw new RangeError(
          `Cannot read config ${JSON.stringify(path)}: the file is larger than ${
            formatBytes(maxBytes)
          }: a config is a few kilobytes`,
        );
      }
      chunks.push(buffer.subarray(0, n));
    }
  } finally {
    closeQuietly(file);
  }
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.length;
  }
  return bytes;
}

/** A config file as read once: what it says and which bytes said it. */
export interface LoadedConfig {
  /** The validated, defaulted config. */
  readonly config: Config;
  /** Lower-case hex SHA-256 of exactly the bytes parsed (for metrics and reload). */
  readonly sha256: string;
  /** What is valid but likely a mistake, as `validate` prints it. */
  readonly warnings: readonly ConfigIssue[];
}

/**
 * Reads and parses a config file: the one reader for start, reload and `validate`, so the
 * hash always describes the bytes the config came from. Every error names `path` already;
 * callers pass the message on without adding it again.
 *
 * @param path file to read; also the name used in issues
 * @throws {ConfigError} when the file is readable but not a valid config
 * @throws what {@linkcode readConfigText} throws when the file cannot be read
 */
export async function loadConfigFile(
  path: string,
  options: ReadConfigOptions = {},
): Promise<LoadedConfig> {
  const bytes = await readConfigBytes(path, options);
  const result = parseConfig(decodeConfig(bytes, path), path);
  if (!result.ok) throw new ConfigError(result.issues);
  return { config: result.config, sha256: await sha256Hex(bytes), warnings: result.warnings };
}

/**
 * Resolves like `promise`, or rejects with the signal's reason once it aborts. A result that
 * arrives after the abort goes to `dispose`.
 */
function untilAborted<T>(
  promise: Promise<T>,
  signal: AbortSignal | undefined,
  dispose?: (value: T) => void,
): Promise<T> {
  if (signal === undefined) return promise;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        if (signal.aborted) dispose?.(value);
        resolve(value);
      },
      (error) => {
        signal.removeEventListener("abort", onAbort);
        reject(error);
      },
    );
  });
}

function formatBytes(bytes: number): string {
  const mib = bytes / (1024 * 1024);
  return Number.isInteger(mib) ? `${mib} MiB` : `${bytes} bytes`;
}

/** UTF-8 bytes to text, or a {@linkcode ConfigError} at the first byte that is not UTF-8 text. */
function decodeConfig(bytes: Uint8Array, file: string): string {
  const at = (offset: number, message: string): ConfigError => {
    const before = new TextDecoder().decode(bytes.subarray(0, offset)).replace(/^\ufeff/, "");
    const lines = before.split("\n");
    const issue: ConfigIssue = {
      file,
      line: lines.length,
      column: lines[lines.length - 1]!.length + 1,
      path: "",
      message,
    };
    return new ConfigError([issue]);
  };
  if ((bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff)) {
    throw at(0, "the file is not UTF-8: it starts with a UTF-16 byte order mark: save it as UTF-8");
  }
  const invalid = firstInvalidUtf8(bytes);
  if (invalid !== undefined) {
    throw at(invalid, `the file is not UTF-8: byte 0x${bytes[invalid]!.toString(16)} is invalid`);
  }
  const nul = bytes.indexOf(0);
  if (nul !== -1) {
    throw at(
      nul,
      "the file is not UTF-8 text: it contains a NUL byte (UTF-16 without a byte order mark?)",
    );
  }
  return new TextDecoder().decode(bytes);
}

/** Offset of the first byte that does not start or continue a well-formed UTF-8 sequence. */
function firstInvalidUtf8(bytes: Uint8Array): number | undefined {
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i]!;
    if (b < 0x80) {
      i++;
      continue;
    }
    // Well-formed sequences, RFC 3629 section 4: the second byte's range depends on the first.
    let length: number;
    let low = 0x80;
    let high = 0xbf;
    if (b >= 0xc2 && b <= 0xdf) length = 2;
    else if (b >= 0xe0 && b <= 0xef) {
      length = 3;
      if (b === 0xe0) low = 0xa0;
      if (b === 0xed) high = 0x9f;
    } else if (b >= 0xf0 && b <= 0xf4) {
      length = 4;
      if (b === 0xf0) low = 0x90;
      if (b === 0xf4) high = 0x8f;
    } else return i;
    for (let k = 1; k < length; k++) {
      const c = bytes[i + k];
      if (c === undefined) return i;
      if (k === 1 ? c < low || c > high : c < 0x80 || c > 0xbf) return i;
    }
    i += length;
  }
  return undefined;
}

/**
 * The reason a file could not be read, in plain words for the errors a person meets most
 * (`there is no such file`), else the system's message without the path Deno appends.
 */
function readFailure(error: unknown): string {
  if (error instanceof Deno.errors.NotFound) return "there is no such file";
  if (error instanceof Deno.errors.PermissionDenied) return "permission denied";
  if (error instanceof Deno.errors.IsADirectory) return "it is a directory, not a file";
  return fileErrorMessage(error);
}

function readError(path: string, error: unknown): Error {
  const detail = readFailure(error);
  const message = `Cannot read config ${JSON.stringify(path)}: ${detail}`;
  if (error instanceof Error) {
    const Class = error.constructor as new (message: string, options?: ErrorOptions) => Error;
    try {
      const wrapped = new Class(message, { cause: error });
      if (wrapped instanceof Error) return wrapped;
    } catch {
      // Not constructible like Error; fall through to a plain Error.
    }
  }
  return new Error(message, { cause: error });
}
