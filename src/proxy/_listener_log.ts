/**
 * What a listener logs: one access log line per closed client connection, and warnings
 * about refused and failed connections at most once a second per kind, with how many were
 * held back.
 *
 * @module
 */
import type { ClientInfo, RefusalCause } from "../core/types.ts";
import type { Logger } from "../log/mod.ts";
import type { ConnectionRecord, ForwardFailure } from "./forward.ts";
import { LogLimiter } from "./_log_limiter.ts";

/**
 * The access log line's message template; its properties are `client` (`address:port`),
 * `listener`, `backend` (`host:port`, or `-` when none was connected), `bytesFromClient`,
 * `bytesToClient`, `durationMs` (accept to close, integer) and `outcome` (a
 * `ForwardOutcome`).
 */
export const ACCESS_LOG_MESSAGE =
  "{client} {listener} {backend} {outcome} {bytesFromClient} {bytesToClient} {durationMs}ms";

/**
 * The access log template of a connection routed by TLS server name: as
 * {@linkcode ACCESS_LOG_MESSAGE}, then `sni=` and the property `serverName`.
 */
export const TLS_ACCESS_LOG_MESSAGE = `${ACCESS_LOG_MESSAGE} sni={serverName}`;

const LOG_EVERY_MS = 1000;

/** The log lines of one listener; nothing is written to a logger that is absent. */
export class ListenerLog {
  readonly #name: string;
  readonly #logger: Logger | undefined;
  readonly #accessLogger: Logger | undefined;
  readonly #limit = new LogLimiter(LOG_EVERY_MS);
  readonly #refusals = new LogLimiter(LOG_EVERY_MS);
  readonly #failures = new LogLimiter(LOG_EVERY_MS);

  /**
   * @param name the listener's name, in every line
   * @param logger gets the warnings
   * @param accessLogger gets the access log; when absent no record is even built
   */
  constructor(name: string, logger?: Logger, accessLogger?: Logger) {
    this.#name = name;
    this.#logger = logger;
    this.#accessLogger = accessLogger;
  }

  /** Whether access log records are wanted (so callers build none otherwise). */
  get hasAccessLog(): boolean {
    return this.#accessLogger !== undefined;
  }

  /** One access log line (see {@linkcode ACCESS_LOG_MESSAGE}). */
  access(record: ConnectionRecord): void {
    const { address, port } = record.client;
    const isTls = record.serverName !== undefined;
    this.#accessLogger?.info(isTls ? TLS_ACCESS_LOG_MESSAGE : ACCESS_LOG_MESSAGE, {
      client: address.includes(":") ? `[${address}]:${port}` : `${address}:${port}`,
      listener: this.#name,
      backend: record.backend ?? "-",
      outcome: record.outcome,
      bytesFromClient: record.bytesFromClient,
      bytesToClient: record.bytesToClient,
      durationMs: Math.round(record.durationMs),
      ...(isTls && { serverName: record.serverName }),
    });
  }

  /** The access log line of a connection refused before forwarding: no bytes, no backend. */
  refused(
    client: ClientInfo,
    cause: Exclude<RefusalCause, "proxy_header" | "untrusted">,
    serverName?: string,
  ): void {
    if (this.#accessLogger === undefined) return;
    this.access({
      client,
      bytesFromClient: 0,
      bytesToClient: 0,
      durationMs: 0,
      outcome: cause,
      ...(serverName !== undefined && { serverName }),
    });
  }

  /** Warns that `maxConnections` refused connections (one line a second, with the count). */
  limitReached(max: number): void {
    const held = this.#limit.take();
    if (held === undefined) return;
    this.#logger?.warn(
      "Refused {count} connection(s) on listener {listener}: maxConnections {max} reached",
      { count: held + 1, listener: this.#name, max },
    );
  }

  /** Warns about one refused connection and why (one line a second, the others counted). */
  refusal(peer: ClientInfo, cause: RefusalCause, message: string, serverName?: string): void {
    const suppressed = this.#refusals.take();
    if (suppressed === undefined) return;
    this.#logger?.warn("Refused connection from {peer} on listener {listener}: {message}", {
      peer: `${peer.address}:${peer.port}`,
      listener: this.#name,
      message,
      cause,
      suppressed,
      ...(serverName !== undefined && { serverName }),
    });
  }

  /** Warns about a connection that failed before or while forwarding (one line a second). */
  failure(failure: ForwardFailure): void {
    const suppressed = this.#failures.take();
    if (suppressed === undefined) return;
    this.#logger?.warn(
      "Cannot forward client {client} on listener {listener}: {message}" +
        (suppressed > 0 ? " ({suppressed} similar lines suppressed)" : ""),
      {
        client: `${failure.client.address}:${failure.client.port}`,
        listener: this.#name,
        message: failure.message,
        outcome: failure.outcome,
        backends: failure.backends,
        suppressed,
      },
    );
  }
}
