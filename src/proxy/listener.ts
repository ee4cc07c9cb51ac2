/**
 * A TCP listener: accept loop, connection limit, graceful stop.
 *
 * @module
 */
import type { ConnectionCounter } from "../core/connection_counter.ts";
import type { Picker } from "../core/types.ts";
import type { Logger } from "../log/mod.ts";
import {
  forward,
  type ForwardFailure,
  type Forwarding,
  type ForwardOptions,
  type ForwardStats,
  IDLE_CHECKS_PER_PERIOD,
} from "./forward.ts";

/** Options of {@linkcode ProxyListener}. */
export interface ProxyListenerOptions {
  /** Listener name, for logs and metrics. */
  readonly name: string;
  /** Address to bind; `""` or `"0.0.0.0"` for all IPv4 interfaces, `"::"` for all. */
  readonly hostname: string;
  /** Port to bind; 0 picks a free one (tests). */
  readonly port: number;
  /** Chooses a backend per connect attempt (usually a pool); not closed by the listener. */
  readonly picker: Picker;
  /** Budget from accept to an established backend connection, across attempts. @default {5000} */
  readonly requestTimeoutMs?: number;
  /** Per connect attempt, capped by what is left of `requestTimeoutMs`. @default {2000} */
  readonly connectTimeoutMs?: number;
  /** 0 disables. @default {3600000} */
  readonly idleTimeoutMs?: number;
  /** Concurrent client connections; excess is closed at once. 0 = unlimited. @default {10000} */
  readonly maxConnections?: number;
  /** Distinct backends tried per client connection. @default {3} */
  readonly maxConnectAttempts?: number;
  /** Gets accept errors and rate-limited failure warnings; when absent nothing is logged. */
  readonly logger?: Logger;
  /** Replaces `Deno.connect` (tests). */
  readonly dial?: (options: Deno.ConnectOptions) => Promise<Deno.TcpConn>;
  /** Passed to `Deno.listen`. @default {false} */
  readonly reusePort?: boolean;
  /**
   * Counts this listener's connections against `maxConnections` together with listeners of
   * the same name in other workers (process-wide limit); the listener's own count when absent.
   */
  readonly connectionCounter?: ConnectionCounter;
}

/** Counters of a listener, read by metrics. Monotonic except `activeConnections`. */
export interface ListenerStats extends ForwardStats {
  /** Every accepted connection, including those then refused by `maxConnections`. */
  accepted: number;
  /** Connections closed at once: over `maxConnections` or while stopping. */
  refused: number;
  /** Client connections open now; the one non-monotonic field. */
  activeConnections: number;
}

/** Defaults of {@linkcode ProxyListenerOptions}. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 5_000;
/** Default per-attempt connect timeout. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 2_000;
/** Default idle timeout (Envoy's tcp_proxy default, too). */
export const DEFAULT_IDLE_TIMEOUT_MS = 3_600_000;
/** Default connection limit per listener. */
export const DEFAULT_MAX_CONNECTIONS = 10_000;
/** Default number of distinct backends tried per client. */
export const DEFAULT_MAX_CONNECT_ATTEMPTS = 3;

const LOG_EVERY_MS = 1000;

/**
 * Accepts client connections and forwards each to a backend its picker chooses.
 *
 * Lifecycle: `new` → {@linkcode ProxyListener.listen} (binds) → {@linkcode ProxyListener.serve}
 * (accepts until stopped) → {@linkcode ProxyListener.shutdown} (stop accepting, drain, close).
 */
export class ProxyListener {
  /** Listener name, from {@linkcode ProxyListenerOptions.name}. */
  readonly name: string;
  /** Live counters, mutated only by this listener; read them, never write. */
  readonly stats: ListenerStats = {
    accepted: 0,
    refused: 0,
    activeConnections: 0,
    bytesFromClients: 0,
    bytesToClients: 0,
    connectFailures: 0,
    noBackend: 0,
    idleTimeouts: 0,
  };
  #options: ProxyListenerOptions;
  #forwardOptions: ForwardOptions;
  #listener: Deno.TcpListener | undefined;
  #live = new Set<Forwarding>();
  #tasks = new Set<Promise<unknown>>();
  #isStopping = false;
  #lastRefusedLogAt = -Infinity;
  #refusedSinceLog = 0;
  #lastFailureLogAt = -Infinity;
  #failuresSinceLog = 0;
  #lastAcceptErrorLogAt = -Infinity;
  #drained: (() => void) | undefined;
  #idleSweeper: ReturnType<typeof setInterval> | undefined;
  /** Shared by every connection: no closures allocated per accept. */
  readonly #track = (handle: Forwarding, isLive: boolean): void => {
    if (isLive) this.#live.add(handle);
    else this.#live.delete(handle);
  };
  readonly #onFailure = (failure: ForwardFailure): void => this.#logFailure(failure);

  /** Only stores the options; {@linkcode ProxyListener.listen} binds. */
  constructor(options: ProxyListenerOptions) {
    this.name = options.name;
    this.#options = options;
    this.#forwardOptions = {
      picker: options.picker,
      requestTimeoutMs: options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
      connectTimeoutMs: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
      idleTimeoutMs: options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS,
      maxConnectAttempts: options.maxConnectAttempts ?? DEFAULT_MAX_CONNECT_ATTEMPTS,
      dial: options.dial,
      stats: this.stats,
      track: this.#track,
      onFailure: this.#onFailure,
    };
  }

  /** The bound address. Throws before {@linkcode ProxyListener.listen}. */
  get addr(): Deno.NetAddr {
    if (this.#listener === undefined) {
      throw new Deno.errors.NotConnected(`Listener ${this.name} is not bound`);
    }
    return this.#listener.addr;
  }

  /** Binds the address. Throws `Deno.errors.AddrInUse`, `PermissionDenied`, … as Deno does. */
  listen(): Deno.NetAddr {
    const hostname = this.#options.hostname === "" ? "0.0.0.0" : this.#options.hostname;
    this.#listener = Deno.listen({
      hostname,
      port: this.#options.port,
      transport: "tcp",
      reusePort: this.#options.reusePort ?? false,
    });
    return this.#listener.addr;
  }

  /** Accepts until {@linkcode ProxyListener.shutdown}; resolves when the accept loop ends. */
  async serve(): Promise<void> {
    const listener = this.#listener;
    if (listener === undefined) {
      throw new Deno.errors.NotConnected(`Listener ${this.name} is not bound`);
    }
    const max = this.#options.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
    const idleMs = this.#forwardOptions.idleTimeoutMs;
    if (idleMs > 0 && this.#idleSweeper === undefined) {
      this.#idleSweeper = setInterval(() => {
        for (const handle of this.#live) handle.sweepIdle();
      }, Math.max(1, Math.floor(idleMs / IDLE_CHECKS_PER_PERIOD)));
    }
    while (!this.#isStopping) {
      let conn: Deno.TcpConn;
      try {
        conn = await listener.accept();
      } catch (error) {
        if (this.#isStopping || error instanceof Deno.errors.BadResource) return;
        // EMFILE and friends: keep the listener, back off briefly, log at most once a second.
        const now = performance.now();
        if (now - this.#lastAcceptErrorLogAt >= LOG_EVERY_MS) {
          this.#lastAcceptErrorLogAt = now;
          this.#options.logger?.error("Cannot accept on listener {listener}: {error}", {
            listener: this.name,
            error: String(error),
          });
        }
        await new Promise((r) => setTimeout(r, 50));
        continue;
      }
      this.stats.accepted++;
      if (this.#isStopping) {
        // Accepted just as shutdown began: shutdown may already have stopped waiting.
        this.stats.refused++;
        closeQuietly(conn);
        return;
      }
      const counter = this.#options.connectionCounter;
      if (
        counter === undefined
          ? max > 0 && this.stats.activeConnections >= max
          : !counter.tryAcquire(max)
      ) {
        this.stats.refused++;
        closeQuietly(conn);
        this.#logRefused(max);
        continue;
      }
      this.#start(conn);
    }
  }

  #start(conn: Deno.TcpConn): void {
    this.stats.activeConnections++;
    const remote = conn.remoteAddr;
    const client = { address: remote.hostname, port: remote.port };
    const task = forward(conn, client, this.#forwardOptions).finally(() => {
      this.stats.activeConnections--;
      this.#options.connectionCounter?.release();
      this.#tasks.delete(task);
      if (this.#tasks.size === 0) this.#drained?.();
    });
    this.#tasks.add(task);
  }

  /**
   * Stops accepting at once, lets open connections finish for up to `drainTimeoutMs`, then
   * closes what is left. Resolves when every connection is closed.
   * @returns how many connections were closed by force
   */
  async shutdown(drainTimeoutMs: number): Promise<number> {
    this.#isStopping = true;
    try {
      this.#listener?.close();
    } catch {
      // already closed
    }
    if (this.#tasks.size > 0) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        new Promise<void>((resolve) => this.#drained = resolve),
        new Promise<void>((resolve) => timer = setTimeout(resolve, drainTimeoutMs)),
      ]);
      clearTimeout(timer);
    }
    const forced = this.#live.size;
    for (const handle of this.#live) handle.close();
    await Promise.all(this.#tasks);
    clearInterval(this.#idleSweeper);
    this.#idleSweeper = undefined;
    return forced;
  }

  #logRefused(max: number): void {
    this.#refusedSinceLog++;
    const now = performance.now();
    if (now - this.#lastRefusedLogAt < LOG_EVERY_MS) return;
    this.#options.logger?.warn(
      "Refused {count} connection(s) on listener {listener}: maxConnections {max} reached",
      { count: this.#refusedSinceLog, listener: this.name, max },
    );
    this.#refusedSinceLog = 0;
    this.#lastRefusedLogAt = now;
  }

  #logFailure(failure: ForwardFailure): void {
    this.#failuresSinceLog++;
    const now = performance.now();
    if (now - this.#lastFailureLogAt < LOG_EVERY_MS) return;
    this.#options.logger?.warn(
      "Cannot forward client {client} on listener {listener}: {message}",
      {
        client: `${failure.client.address}:${failure.client.port}`,
        listener: this.name,
        message: failure.message,
        outcome: failure.outcome,
        backends: failure.backends,
        suppressed: this.#failuresSinceLog - 1,
      },
    );
    this.#failuresSinceLog = 0;
    this.#lastFailureLogAt = now;
  }
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // gone already
  }
}
