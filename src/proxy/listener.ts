/**
 * A TCP listener: accept loop, connection limit, graceful stop.
 *
 * @module
 */
import type { CidrList } from "../core/cidr.ts";
import type { ConnectionCounter } from "../core/connection_counter.ts";
import { AcceptBackoff } from "../core/accept_backoff.ts";
import { settledWithin } from "../core/deadline.ts";
import { closeQuietly } from "../core/io.ts";
import type { ListenerSpec } from "../core/listener_spec.ts";
import { sleep } from "../core/sleep.ts";
import { errorMessage } from "../core/error_message.ts";
import { fdExhaustionHint } from "../core/fd_limit.ts";
import {
  CONNECT_DURATION_BUCKETS,
  CONNECTION_DURATION_BUCKETS,
  Histogram,
} from "../core/histogram.ts";
import { type ClientInfo, type Picker, REFUSAL_CAUSES, type RefusalCause } from "../core/types.ts";
import type { Logger } from "../log/mod.ts";
import {
  type ConnectionRecord,
  forward,
  type ForwardFailure,
  type Forwarding,
  type ForwardOptions,
  type ForwardStats,
  IDLE_CHECKS_PER_PERIOD,
  type InboundProxy,
} from "./forward.ts";
import { readProxyHeader } from "./read_proxy_header.ts";
import { ListenerLog } from "./_listener_log.ts";
import { type ConnectionRouter, type RouteDecision, TcpRouter } from "./router.ts";
import type { Admission } from "./admission.ts";
import { bindHostname } from "../core/address.ts";

/**
 * Accepting PROXY protocol (v1 and v2, told apart by their first bytes) from an outer load
 * balancer: every connection must start with a header, and only peers inside
 * `trustedProxies` may connect at all.
 */
export interface AcceptProxyProtocolOptions {
  /**
   * Peers allowed to connect and to state a client address. A connection from elsewhere is
   * closed at once (refusal cause `untrusted`): a header from it would be a forged address, and
   * without one the protocol would be broken anyway.
   */
  readonly trustedProxies: CidrList;
  /**
   * Time from accept to a complete header; a connection still without one is closed
   * (refusal cause `proxy_header`). @default {3000}
   */
  readonly headerTimeoutMs?: number;
  /** Largest header accepted, in bytes (see `ProxyHeaderParser`). @default {4096} */
  readonly maxHeaderBytes?: number;
}

/** Default of {@linkcode AcceptProxyProtocolOptions.headerTimeoutMs}. */
export const DEFAULT_PROXY_HEADER_TIMEOUT_MS = 3_000;

/**
 * What {@linkcode ProxyListener.update} may change on a running listener: these fields of
 * the {@linkcode ListenerSpec}, each optional. Absent: {@linkcode DEFAULT_REQUEST_TIMEOUT_MS},
 * {@linkcode DEFAULT_CONNECT_TIMEOUT_MS}, {@linkcode DEFAULT_IDLE_TIMEOUT_MS},
 * {@linkcode DEFAULT_MAX_CONNECTIONS}, {@linkcode DEFAULT_MAX_CONNECT_ATTEMPTS}.
 */
export type ProxyListenerSettings =
  & Partial<
    Pick<
      ListenerSpec,
      | "requestTimeoutMs"
      | "connectTimeoutMs"
      | "idleTimeoutMs"
      | "maxConnections"
      | "maxConnectAttempts"
    >
  >
  & {
    /**
     * Source ACL (on the transport peer, before a byte is read; refusal cause `acl`) and
     * per-source limit (cause `source_limit`; with `acceptProxyProtocol` the header's client
     * address counts, since the peer is the outer load balancer). None when absent.
     */
    readonly admission?: Admission;
    /**
     * The listener's protocol: decides per connection which picker gets it and which bytes
     * are replayed, or refuses it (see `router.ts`). A {@linkcode TcpRouter} over `picker`
     * when absent.
     */
    readonly router?: ConnectionRouter;
  };

/**
 * What a proxy listener, TCP ({@linkcode ProxyListener}) or UDP (`UdpListener`), is named,
 * binds, picks backends from and logs to.
 */
export interface BaseListenerOptions {
  /** Listener name, for logs and metrics. */
  readonly name: string;
  /** Address to bind; `""` or `"0.0.0.0"` for all IPv4 interfaces, `"::"` for all. */
  readonly hostname: string;
  /** Port to bind; 0 picks a free one (tests). */
  readonly port: number;
  /**
   * Chooses a backend per connect attempt (TCP) or per new session (UDP), usually a pool;
   * not closed by the listener.
   */
  readonly picker: Picker;
  /**
   * Gets accept or receive errors and rate-limited failure or drop warnings; when absent
   * nothing is logged.
   */
  readonly logger?: Logger;
  /**
   * Gets one info line per closed client connection or ended session (see
   * {@linkcode ACCESS_LOG_MESSAGE}); when absent no access log record is built at all.
   */
  readonly accessLogger?: Logger;
}

/** Options of {@linkcode ProxyListener}: its settings, and what it binds and runs with. */
export interface ProxyListenerOptions extends BaseListenerOptions, ProxyListenerSettings {
  /** Replaces `Deno.connect` (tests). */
  readonly dial?: (options: Deno.ConnectOptions) => Promise<Deno.TcpConn>;
  /** Passed to `Deno.listen`. @default {false} */
  readonly reusePort?: boolean;
  /**
   * Counts this listener's connections against `maxConnections` together with listeners of
   * the same name in other workers (process-wide limit); the listener's own count when absent.
   */
  readonly connectionCounter?: ConnectionCounter;
  /**
   * Expect a PROXY protocol header on every connection; its source address becomes the
   * client address for balancing, logs and the header sent on to backends. Off when absent.
   */
  readonly acceptProxyProtocol?: AcceptProxyProtocolOptions;
}

/**
 * Counters of a listener, read by metrics. Monotonic except `activeConnections`.
 * `refusedByCause` (from {@linkcode ForwardStats}) is written by whoever refuses a client:
 * the listener (`limit`), forwarding (`limit`, `no_backend`) and PROXY protocol handling
 * (`proxy_header`, `untrusted`).
 */
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
/** How long shutdown waits for an accept that was already under way when the socket closed. */
const ACCEPT_LOOP_END_MS = 1000;

export { ACCESS_LOG_MESSAGE, TLS_ACCESS_LOG_MESSAGE } from "./_listener_log.ts";

const NOTHING_READ = new Uint8Array(0);

/** Creates the counters of a new listener, every one at 0. */
export function createListenerStats(): ListenerStats {
  return {
    accepted: 0,
    refused: 0,
    activeConnections: 0,
    bytesFromClients: 0,
    bytesToClients: 0,
    connectFailures: 0,
    noBackend: 0,
    idleTimeouts: 0,
    refusedByCause: Object.fromEntries(REFUSAL_CAUSES.map((cause) => [cause, 0])) as Record<
      RefusalCause,
      number
    >,
    connectionDuration: new Histogram(CONNECTION_DURATION_BUCKETS),
    connectDuration: new Histogram(CONNECT_DURATION_BUCKETS),
  };
}

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
  readonly stats: ListenerStats = createListenerStats();
  #options: ProxyListenerOptions;
  /** Settings of new connections; open ones keep the generation they were accepted in. */
  #generation: Generation;
  /** Generations with open connections, and the current one. */
  readonly #generations = new Set<Generation>();
  #isServing = false;
  #listener: Deno.TcpListener | undefined;
  #tasks = new Set<Promise<unknown>>();
  #isStopping = false;
  /** Settles when the accept loop of {@linkcode ProxyListener.serve} has ended. */
  #acceptLoop: Promise<void> | undefined;
  readonly #log: ListenerLog;
  #lastAcceptErrorLogAt = -Infinity;
  /** Aborted when shutdown closes what is left, so routers stop reading. */
  readonly #closing = new AbortController();
  #acceptErrorsSinceLog = 0;
  #drained: (() => void) | undefined;
  readonly #onFailure = (failure: ForwardFailure): void => this.#log.failure(failure);
  readonly #onClose = (record: ConnectionRecord): void => this.#log.access(record);

  /** Only stores the options; {@linkcode ProxyListener.listen} binds. */
  constructor(options: ProxyListenerOptions) {
    this.name = options.name;
    this.#options = options;
    this.#log = new ListenerLog(options.name, options.logger, options.accessLogger);
    this.#generation = this.#newGeneration(options);
  }

  /**
   * Changes settings for connections accepted from now on, for a config reload. Open
   * connections keep the timeouts they were accepted with; `maxConnections` counts them
   * all from the next accept on. Absent fields take their defaults, as in the constructor.
   */
  update(settings: ProxyListenerSettings): void {
    this.#options = { ...this.#options, ...settings };
    const previous = this.#generation;
    this.#generation = this.#newGeneration(this.#options);
    if (this.#isServing) this.#startSweeper(this.#generation);
    this.#retire(previous);
  }

  #newGeneration(options: ProxyListenerOptions): Generation {
    const generation: Generation = {
      router: options.router ?? new TcpRouter(options.picker),
      live: new Set<Forwarding>(),
      sweeper: undefined,
      options: {
        picker: options.picker,
        requestTimeoutMs: options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
        connectTimeoutMs: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
        idleTimeoutMs: options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS,
        maxConnectAttempts: options.maxConnectAttempts ?? DEFAULT_MAX_CONNECT_ATTEMPTS,
        dial: options.dial,
        stats: this.stats,
        // One closure per generation, shared by its connections: none allocated per accept.
        track: (handle, isLive) => {
          if (isLive) generation.live.add(handle);
          else {
            generation.live.delete(handle);
            this.#retire(generation);
          }
        },
        onFailure: this.#onFailure,
        ...(options.accessLogger !== undefined && { onClose: this.#onClose }),
      },
    };
    this.#generations.add(generation);
    return generation;
  }

  /** Stops the sweeper of a generation that is not current and has no connection left. */
  #retire(generation: Generation): void {
    if (generation === this.#generation || generation.live.size > 0) return;
    clearInterval(generation.sweeper);
    generation.sweeper = undefined;
    this.#generations.delete(generation);
  }

  #startSweeper(generation: Generation): void {
    const idleMs = generation.options.idleTimeoutMs;
    if (idleMs <= 0 || generation.sweeper !== undefined) return;
    generation.sweeper = setInterval(() => {
      for (const handle of generation.live) handle.sweepIdle();
    }, Math.max(1, Math.floor(idleMs / IDLE_CHECKS_PER_PERIOD)));
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
    const hostname = bindHostname(this.#options.hostname);
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
    let max = this.#options.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
    this.#isServing = true;
    this.#startSweeper(this.#generation);
    let loopEnded!: () => void;
    this.#acceptLoop = new Promise<void>((resolve) => loopEnded = resolve);
    try {
      const backoff = new AcceptBackoff();
      while (!this.#isStopping) {
        max = this.#options.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
        let conn: Deno.TcpConn;
        try {
          conn = await listener.accept();
        } catch (error) {
          if (this.#isStopping || error instanceof Deno.errors.BadResource) return;
          // EMFILE and friends: keep the listener, back off briefly, log at most once a second.
          const now = performance.now();
          this.#acceptErrorsSinceLog++;
          if (now - this.#lastAcceptErrorLogAt >= LOG_EVERY_MS) {
            this.#lastAcceptErrorLogAt = now;
            const suppressed = this.#acceptErrorsSinceLog - 1;
            this.#acceptErrorsSinceLog = 0;
            this.#options.logger?.error(
              "Cannot accept on listener {listener}: {error}{hint}" +
                (suppressed > 0 ? " ({suppressed} similar lines suppressed)" : ""),
              {
                listener: this.name,
                error: String(error),
                hint: fdExhaustionHint(error),
                suppressed,
              },
            );
          }
          await sleep(backoff.next());
          continue;
        }
        backoff.reset();
        // Accepted just as shutdown began is still accepted: the kernel handed it to us, so it is
        // forwarded and drained like the others (shutdown waits for this loop to end first).
        this.stats.accepted++;
        if (this.#options.admission?.isAllowed(conn.remoteAddr.hostname) === false) {
          this.#refuse(conn, conn.remoteAddr, "acl");
          continue;
        }
        const counter = this.#options.connectionCounter;
        if (
          counter === undefined
            ? max > 0 && this.stats.activeConnections >= max
            : !counter.tryAcquire(max)
        ) {
          this.stats.refused++;
          this.stats.refusedByCause.limit++;
          this.#log.refused(
            { address: conn.remoteAddr.hostname, port: conn.remoteAddr.port },
            "limit",
          );
          closeQuietly(conn);
          this.#log.limitReached(max);
          continue;
        }
        this.#start(conn);
      }
    } finally {
      loopEnded();
    }
  }

  #start(conn: Deno.TcpConn): void {
    const remote = conn.remoteAddr;
    const client = { address: remote.hostname, port: remote.port };
    const accept = this.#options.acceptProxyProtocol;
    if (accept !== undefined && !accept.trustedProxies.contains(client.address)) {
      this.stats.refusedByCause.untrusted++;
      this.#options.connectionCounter?.release();
      closeQuietly(conn);
      this.#log.refusal(client, "untrusted", "peer is not in trustedProxies");
      return;
    }
    // Without a PROXY header the peer is the client; with one, its address counts (below).
    const admission = this.#options.admission;
    const release = accept === undefined && admission !== undefined
      ? admission.acquire(client.address)
      : null;
    if (release === undefined) {
      this.#options.connectionCounter?.release();
      this.#refuse(conn, client, "source_limit");
      return;
    }
    this.stats.activeConnections++;
    const forwarding = accept === undefined
      ? this.#routeThenForward(conn, client, this.#generation)
      : this.#acceptThenForward(conn, client, accept);
    const task = forwarding.finally(() => {
      release?.();
      this.stats.activeConnections--;
      this.#options.connectionCounter?.release();
      this.#tasks.delete(task);
      if (this.#tasks.size === 0) this.#drained?.();
    });
    this.#tasks.add(task);
  }

  /**
   * Reads the PROXY header inside the connection's own task (the accept loop never waits
   * for it), then forwards with the client address it carries. A `LOCAL`/`UNKNOWN` header,
   * or one for a non-TCP family, keeps the socket's address. Any failure closes this
   * connection only.
   */
  async #acceptThenForward(
    conn: Deno.TcpConn,
    peer: ClientInfo,
    accept: AcceptProxyProtocolOptions,
  ): Promise<unknown> {
    // Until forward() takes over, shutdown must be able to close the connection.
    const pending: Forwarding = { close: () => closeQuietly(conn), sweepIdle: () => false };
    const generation = this.#generation;
    generation.live.add(pending);
    const timeoutMs = accept.headerTimeoutMs ?? DEFAULT_PROXY_HEADER_TIMEOUT_MS;
    const controller = new AbortController();
    const timer = setTimeout(
      () => controller.abort(new Deno.errors.TimedOut(`no PROXY header within ${timeoutMs}ms`)),
      timeoutMs,
    );
    let client = peer;
    let inbound: InboundProxy;
    try {
      const result = await readProxyHeader(conn, {
        maxHeaderBytes: accept.maxHeaderBytes,
        signal: controller.signal,
      });
      if (result.kind === "error") throw new Error(result.message);
      const { header, rest } = result;
      if (header.command === "proxy" && header.source !== undefined) {
        client = { address: header.source.address, port: header.source.port };
        inbound = { destination: header.destination, rest };
      } else {
        inbound = { rest };
      }
    } catch (error) {
      if (!this.#isStopping) {
        this.stats.refusedByCause.proxy_header++;
        this.#log.refusal(peer, "proxy_header", errorMessage(error));
      }
      closeQuietly(conn);
      return "closed";
    } finally {
      clearTimeout(timer);
      generation.live.delete(pending);
    }
    if (this.#isStopping) {
      closeQuietly(conn);
      return "closed";
    }
    const release = this.#options.admission?.acquire(client.address);
    if (release === undefined && this.#options.admission !== undefined) {
      this.#refuse(conn, client, "source_limit");
      return "closed";
    }
    return this.#routeThenForward(conn, client, generation, inbound).finally(release);
  }

  /**
   * Asks the generation's router where the connection goes, then forwards it there or
   * counts and closes a refusal. A router that reads (TLS) runs inside the connection's
   * own task; until `forward` takes over, shutdown can close the connection.
   */
  #routeThenForward(
    conn: Deno.TcpConn,
    client: ClientInfo,
    generation: Generation,
    inbound?: InboundProxy,
  ): Promise<unknown> {
    const received = inbound?.rest ?? NOTHING_READ;
    const decision = generation.router.route(conn, client, received, this.#closing.signal);
    if (!(decision instanceof Promise)) {
      return this.#follow(decision, conn, client, generation, inbound);
    }
    const pending: Forwarding = { close: () => closeQuietly(conn), sweepIdle: () => false };
    generation.live.add(pending);
    return decision.then(
      (decided) => {
        generation.live.delete(pending);
        if (this.#isStopping && this.#closing.signal.aborted) {
          closeQuietly(conn);
          return "closed";
        }
        return this.#follow(decided, conn, client, generation, inbound);
      },
      (error) => {
        // Routers do not throw; if one did, this connection alone pays.
        generation.live.delete(pending);
        closeQuietly(conn);
        this.#log.refusal(client, "tls_bad_hello", errorMessage(error));
        return "error";
      },
    );
  }

  #follow(
    decision: RouteDecision,
    conn: Deno.TcpConn,
    client: ClientInfo,
    generation: Generation,
    inbound: InboundProxy | undefined,
  ): Promise<unknown> {
    if (decision.kind === "refuse") {
      this.stats.refusedByCause[decision.cause]++;
      closeQuietly(conn);
      if (!this.#closing.signal.aborted) {
        this.#log.refusal(client, decision.cause, decision.message, decision.serverName);
      }
      this.#log.refused(client, decision.cause, decision.serverName);
      return Promise.resolve(decision.cause);
    }
    const replay = decision.replay;
    const carried = replay === inbound?.rest || (replay.length === 0 && inbound === undefined)
      ? inbound
      : {
        ...(inbound?.destination !== undefined && { destination: inbound.destination }),
        rest: replay,
      };
    return forward(conn, client, generation.options, carried, decision);
  }

  /**
   * Stops accepting at once, lets open connections finish for up to `drainTimeoutMs`, then
   * closes what is left. Resolves when every connection is closed.
   * @returns how many connections were closed by force
   */
  async shutdown(drainTimeoutMs: number): Promise<number> {
    this.#isStopping = true;
    if (this.#listener !== undefined) closeQuietly(this.#listener);
    // A connection the kernel handed over just before the close is forwarded by the accept
    // loop; wait for the loop to end so it is among the connections that drain.
    if (this.#acceptLoop !== undefined) await settledWithin(this.#acceptLoop, ACCEPT_LOOP_END_MS);
    if (this.#tasks.size > 0) {
      await settledWithin(new Promise<void>((resolve) => this.#drained = resolve), drainTimeoutMs);
    }
    this.#closing.abort();
    let forced = 0;
    for (const generation of this.#generations) {
      forced += generation.live.size;
      for (const handle of generation.live) handle.close();
    }
    await Promise.all(this.#tasks);
    for (const generation of this.#generations) {
      clearInterval(generation.sweeper);
      generation.sweeper = undefined;
    }
    return forced;
  }

  /** Closes a connection refused by admission (`acl`, `source_limit`): counted, logged. */
  #refuse(conn: Deno.Conn, client: ClientInfo | Deno.NetAddr, cause: "acl" | "source_limit"): void {
    const address = "address" in client ? client.address : client.hostname;
    this.stats.refused++;
    this.stats.refusedByCause[cause]++;
    closeQuietly(conn);
    this.#log.refused({ address, port: client.port }, cause);
    this.#log.refusal(
      { address, port: client.port },
      cause,
      cause === "acl"
        ? "source address refused by access rules"
        : `maxConnectionsPerSource ${this.#options.admission?.maxConnectionsPerSource} reached`,
    );
  }
}

/** Settings and live connections of the connections accepted between two updates. */
interface Generation {
  readonly router: ConnectionRouter;
  readonly options: ForwardOptions;
  readonly live: Set<Forwarding>;
  sweeper: ReturnType<typeof setInterval> | undefined;
}
