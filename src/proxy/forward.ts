/**
 * One client connection: pick a backend, dial it (bounded retries), then copy bytes both
 * ways with half-close until both directions end.
 *
 * Socket ownership: {@linkcode forward} takes ownership of the client connection and closes
 * it (and the backend connection) before its promise settles. It never throws.
 *
 * @module
 */
import { errorMessage } from "../core/error_message.ts";
import { closeQuietly, writeAll } from "../core/io.ts";
import type { ForwardSpec } from "../core/listener_spec.ts";
import type { Histogram } from "../core/histogram.ts";
import type {
  BackendCounters,
  ClientInfo,
  Lease,
  Picker,
  RefusalCause,
  RoutingRefusalCause,
} from "../core/types.ts";
import { encodeProxyHeader, type ProxyEndpoint } from "./proxy_protocol.ts";
import { giveBuffer, grownBuffer, INITIAL_BUFFER_BYTES } from "./_buffers.ts";
import type { Routed } from "./router.ts";

/**
 * The knobs and sinks of {@linkcode forward}; one object shared by every connection of a
 * listener, so nothing is allocated per connection for them.
 */
export interface ForwardOptions extends ForwardSpec {
  /** Chooses a backend per connect attempt. */
  readonly picker: Picker;
  /** Dials a backend; `Deno.connect` unless replaced (tests). */
  readonly dial?: (options: Deno.ConnectOptions) => Promise<Deno.TcpConn>;
  /** Counters to add to; written by every connection of the listener. */
  readonly stats: ForwardStats;
  /**
   * Called with a handle to close the connection early (`isLive` true), and with the same
   * handle and `isLive` false when it ended.
   */
  readonly track: (handle: Forwarding, isLive: boolean) => void;
  /** Called once when a connection fails before or during forwarding. */
  readonly onFailure: (failure: ForwardFailure) => void;
  /**
   * Called once per connection after it closed, with a new record (the access log). When
   * absent no record is built, so nothing is allocated for it.
   */
  readonly onClose?: (record: ConnectionRecord) => void;
}

/** One closed client connection, for the access log. */
export interface ConnectionRecord {
  /** The client's address and port. */
  readonly client: ClientInfo;
  /** Key of the backend the bytes went to; absent when no connection was established. */
  readonly backend?: string;
  /** Bytes read from the client and written to the backend. */
  readonly bytesFromClient: number;
  /** Bytes read from the backend and written to the client. */
  readonly bytesToClient: number;
  /** Accept to close, in milliseconds. */
  readonly durationMs: number;
  /** How it ended. */
  readonly outcome: ForwardOutcome;
  /** The TLS server name the connection was routed by; absent for TCP or without SNI. */
  readonly serverName?: string;
}

/**
 * How a connection ended, for counters and logs: both sides finished (`done`), the idle
 * sweeper closed it, no eligible backend, every eligible backend (or the listener) at its
 * connection `limit`, no backend could be connected, an error, or closed by the listener
 * (shutdown, drain deadline) or the pool; refused by the source ACL (`acl`) or the
 * per-source limit (`source_limit`), both before any byte, or by the listener's router (a
 * {@linkcode RoutingRefusalCause}).
 */
export type ForwardOutcome =
  | RoutingRefusalCause
  | "acl"
  | "source_limit"
  | "done"
  | "idle_timeout"
  | "no_backend"
  | "limit"
  | "connect_failed"
  | "error"
  | "closed";

/**
 * Counters a listener keeps. Bytes are added as they flow (so long connections show up in
 * rates), connect failures per attempt, the rest once per connection.
 */
export interface ForwardStats {
  /** Bytes read from clients and written to backends. */
  bytesFromClients: number;
  /** Bytes read from backends and written to clients. */
  bytesToClients: number;
  /** Failed backend connect attempts; one client connection may add several. */
  connectFailures: number;
  /** Client connections closed because the picker had no backend at all. */
  noBackend: number;
  /** Connections closed by the idle sweeper. */
  idleTimeouts: number;
  /**
   * Client connections refused before forwarding, by cause. Whoever refuses adds one, e.g.
   * `stats.refusedByCause.limit++`; the keys are fixed, so no lookup allocates.
   */
  readonly refusedByCause: Record<RefusalCause, number>;
  /** Seconds from start of forwarding to close, one observation per client connection. */
  readonly connectionDuration: Histogram;
  /** Seconds to establish a backend connection, one observation per successful connect. */
  readonly connectDuration: Histogram;
}

/** Details of a failed connection, for a log line. */
export interface ForwardFailure {
  /** `no_backend`, `limit`, `connect_failed` or `error`; never `done` or `closed`. */
  readonly outcome: ForwardOutcome;
  /** Human cause, e.g. `connect timed out after 2000ms` or `pool has no backends`. */
  readonly message: string;
  /** The client's address and port, for the log line. */
  readonly client: ClientInfo;
  /** Backend keys tried, in order; `[]` when none was picked. */
  readonly backends: readonly string[];
}

/**
 * A live proxied connection, so a listener can close it on shutdown and sweep it for
 * idleness. `close()` is idempotent and safe from any state.
 */
export interface Forwarding {
  close(): void;
  /**
   * Called by the listener's idle sweeper every `idleTimeoutMs / IDLE_CHECKS_PER_PERIOD`.
   * After {@linkcode IDLE_CHECKS_PER_PERIOD} sweeps in a row without a byte either way, the
   * connection closes: between 1 and 1.25 idle periods after its last byte.
   * @returns true when the connection was closed for idleness
   */
  sweepIdle(): boolean;
}

/**
 * What an accepted PROXY protocol header said about a connection (see
 * {@linkcode forward}'s `inbound`).
 */
export interface InboundProxy {
  /**
   * The address the client dialled, as the header carried it; sent on in the header to a
   * backend. Absent: the accepted socket's local address.
   */
  readonly destination?: ProxyEndpoint;
  /** Client bytes that arrived after the header; written to the backend before the rest. */
  readonly rest: Uint8Array;
}

/** Idle sweeps per `idleTimeoutMs`; one sweeper per listener instead of a timer per connection. */
export const IDLE_CHECKS_PER_PERIOD = 4;

const defaultDial = (options: Deno.ConnectOptions) => Deno.connect(options);

/** Where bytes go when the picker keeps no per-backend counters: one shared scratch object. */
const NO_COUNTERS: BackendCounters = {
  connections: 0,
  connectFailures: 0,
  bytesToBackend: 0,
  bytesFromBackend: 0,
};

/**
 * Forwards one accepted client connection.
 *
 * When the chosen backend has `proxyProtocol` set, a PROXY protocol header goes out on the
 * backend connection right after connect, before any client byte: source `clientInfo`,
 * destination `inbound.destination` or the client socket's local address (the address the
 * client connected to).
 *
 * @param client the accepted connection; owned by this function from now on
 * @param clientInfo the client's address (from an accepted PROXY header, if any); the
 *   balancer and the outgoing PROXY header use it
 * @param options listener-wide options, counters and callbacks
 * @param inbound what an accepted PROXY header carried, and the client bytes read before
 *   forwarding (after the header, or a peeked TLS ClientHello); absent when none were read
 * @param routed the picker a listener's router chose and the TLS server name it read;
 *   `options.picker` when absent
 */
export async function forward(
  client: Deno.TcpConn,
  clientInfo: ClientInfo,
  options: ForwardOptions,
  inbound?: InboundProxy,
  routed?: Routed,
): Promise<ForwardOutcome> {
  const { stats, track, onFailure } = options;
  const startedAt = performance.now();
  const session = new Session(client);
  track(session, true);
  let outcome: ForwardOutcome = "error";
  try {
    const dialed = await connectBackend(
      session,
      clientInfo,
      options,
      routed?.picker ?? options.picker,
    );
    if (dialed === undefined) return outcome = session.isClosed ? "closed" : session.outcome;
    const [backend, lease] = dialed;
    try {
      const version = lease.backend.proxyProtocol;
      const header = version === undefined ? undefined : encodeProxyHeader(version, {
        command: "proxy",
        transport: "tcp",
        source: clientInfo,
        destination: inbound?.destination ?? localEndpoint(client),
      });
      return outcome = await session.pipe(backend, lease, stats, header, inbound?.rest);
    } finally {
      lease.release();
    }
  } catch (error) {
    onFailure({
      outcome: "error",
      message: errorMessage(error),
      client: clientInfo,
      backends: [],
    });
    return outcome = "error";
  } finally {
    session.close();
    track(session, false);
    const durationMs = performance.now() - startedAt;
    stats.connectionDuration.observe(durationMs / 1000);
    options.onClose?.({
      client: clientInfo,
      ...(session.backendKey !== undefined && { backend: session.backendKey }),
      bytesFromClient: session.bytesFromClient,
      bytesToClient: session.bytesToClient,
      durationMs,
      outcome,
      ...(routed?.serverName !== undefined && { serverName: routed.serverName }),
    });
  }
}

async function connectBackend(
  session: Session,
  clientInfo: ClientInfo,
  options: ForwardOptions,
  picker: Picker,
): Promise<[Deno.TcpConn, Lease] | undefined> {
  const { stats, onFailure } = options;
  const dial = options.dial ?? defaultDial;
  const deadline = performance.now() + options.requestTimeoutMs;
  const tried = new Set<string>();
  let previous: string | undefined;
  let lastError = "";
  while (tried.size < options.maxConnectAttempts) {
    const lease = picker.acquire(clientInfo, tried, previous);
    if (typeof lease === "string") {
      if (tried.size === 0 && lease === "full") {
        stats.refusedByCause.limit++;
        session.outcome = "limit";
        onFailure({
          outcome: "limit",
          message: "every backend is at its connection limit",
          client: clientInfo,
          backends: [],
        });
        return undefined;
      }
      if (tried.size === 0) {
        stats.noBackend++;
        stats.refusedByCause.no_backend++;
        session.outcome = "no_backend";
        onFailure({
          outcome: "no_backend",
          message: lease === "empty" ? "pool has no backends" : "no healthy backend in pool",
          client: clientInfo,
          backends: [],
        });
        return undefined;
      }
      break;
    }
    const left = deadline - performance.now();
    if (tried.size > 0 && left < MIN_ATTEMPT_MS) {
      // Too little budget for a fair try: a timeout now would say nothing about the backend.
      lease.release();
      lastError += ` (requestTimeout ${options.requestTimeoutMs}ms exhausted)`;
      break;
    }
    tried.add(lease.backend.key);
    previous = lease.backend.key;
    const timeoutMs = Math.ceil(Math.max(1, Math.min(options.connectTimeoutMs, left)));
    const isFullBudget = timeoutMs >= options.connectTimeoutMs;
    const abort = session.connectAbort(timeoutMs);
    const counters = lease.counters ?? NO_COUNTERS;
    const dialedAt = performance.now();
    try {
      const conn = await dial({
        hostname: lease.backend.host,
        port: lease.backend.port,
        signal: abort.signal,
      });
      abort.done();
      if (session.isClosed) {
        conn.close();
        lease.release();
        return undefined;
      }
      stats.connectDuration.observe((performance.now() - dialedAt) / 1000);
      counters.connections++;
      session.backendKey = lease.backend.key;
      lease.reportConnect(true);
      return [conn, lease];
    } catch (error) {
      abort.done();
      lease.release();
      if (session.isClosed) return undefined;
      stats.connectFailures++;
      counters.connectFailures++;
      lastError = abort.timedOut ? `connect timed out after ${timeoutMs}ms` : errorMessage(error);
      // Passive health hears only what is the backend's fault: a refusal, a reset, an
      // unreachable host, or a timeout that had the whole connectTimeout. Our own trouble
      // (no ephemeral ports, no file descriptors, permissions) or a cut-short attempt is not.
      if (abort.timedOut ? isFullBudget : isBackendFault(error)) lease.reportConnect(false, error);
    }
    if (deadline - performance.now() <= 0) {
      lastError += ` (requestTimeout ${options.requestTimeoutMs}ms exhausted)`;
      break;
    }
  }
  session.outcome = "connect_failed";
  onFailure({
    outcome: "connect_failed",
    message: lastError || "no backend left to try",
    client: clientInfo,
    backends: [...tried],
  });
  return undefined;
}

/** Abort handle for one connect attempt: timeout or listener-forced close. */
interface ConnectAbort {
  readonly signal: AbortSignal;
  readonly timedOut: boolean;
  done(): void;
}

class Session implements Forwarding {
  outcome: ForwardOutcome = "done";
  isClosed = false;
  backendKey: string | undefined;
  bytesFromClient = 0;
  bytesToClient = 0;
  #client: Deno.TcpConn;
  #backend: Deno.TcpConn | undefined;
  #connecting: AbortController | undefined;
  #bytes = 0;
  #seenBytes = -1;
  #quietSweeps = 0;
  #isPiping = false;

  constructor(client: Deno.TcpConn) {
    this.#client = client;
  }

  connectAbort(timeoutMs: number): ConnectAbort {
    const controller = new AbortController();
    this.#connecting = controller;
    const state = { signal: controller.signal, timedOut: false, done: () => {} };
    const timer = setTimeout(() => {
      state.timedOut = true;
      controller.abort(new Deno.errors.TimedOut(`connect timed out after ${timeoutMs}ms`));
    }, timeoutMs);
    state.done = () => {
      clearTimeout(timer);
      this.#connecting = undefined;
    };
    return state;
  }

  /**
   * Writes `header` then `rest` to the backend, then copies both ways until both directions
   * reached EOF, an error, idle timeout or close.
   */
  async pipe(
    backend: Deno.TcpConn,
    lease: Lease,
    stats: ForwardStats,
    header?: Uint8Array,
    rest?: Uint8Array,
  ): Promise<ForwardOutcome> {
    this.#backend = backend;
    const client = this.#client;
    try {
      client.setNoDelay(true);
      backend.setNoDelay(true);
    } catch {
      // A socket that is already gone fails below with a clearer error.
    }
    const onAbort = () => this.close();
    lease.signal.addEventListener("abort", onAbort, { once: true });
    if (lease.signal.aborted) this.close();
    this.#isPiping = true;
    const counters = lease.counters ?? NO_COUNTERS;
    try {
      let prefix = header;
      if (rest !== undefined && rest.length > 0) {
        // Bytes that came with an accepted header: one write with the outgoing header.
        try {
          await writeAll(backend, prefix === undefined ? rest : concat(prefix, rest));
        } catch (error) {
          if (!this.isClosed) {
            if (!isPeerGone(error)) this.outcome = "error";
            this.close();
          }
          return this.outcome;
        }
        prefix = undefined;
        this.#bytes += rest.length;
        stats.bytesFromClients += rest.length;
        counters.bytesToBackend += rest.length;
      }
      // close() makes both pending reads fail at once, so this settles promptly.
      const [fromClient, toClient] = await Promise.all([
        this.#copy(client, backend, stats, "bytesFromClients", counters, "bytesToBackend", prefix),
        this.#copy(backend, client, stats, "bytesToClients", counters, "bytesFromBackend"),
      ]);
      // Bytes read before forwarding (after a PROXY header, a peeked ClientHello) count too.
      this.bytesFromClient = (rest?.length ?? 0) + fromClient;
      this.bytesToClient = toClient;
    } finally {
      lease.signal.removeEventListener("abort", onAbort);
      if (this.outcome === "idle_timeout") stats.idleTimeouts++;
    }
    return this.outcome;
  }

  /**
   * One direction. On EOF the write side of `dst` is shut down (half-close), so the peer
   * still gets to answer. On an error both sockets close. Counts bytes into `stats[counter]`
   * and the backend's `counters[backendCounter]`.
   */
  async #copy(
    src: Deno.TcpConn,
    dst: Deno.TcpConn,
    stats: ForwardStats,
    counter: "bytesFromClients" | "bytesToClients",
    counters: BackendCounters,
    backendCounter: "bytesToBackend" | "bytesFromBackend",
    prefix?: Uint8Array,
  ): Promise<number> {
    let buffer = new Uint8Array(INITIAL_BUFFER_BYTES);
    let total = 0;
    try {
      // With a prefix, the first read happened already (see #sendPrefix).
      let first: number | null | undefined;
      if (prefix !== undefined) {
        const sent = await this.#sendPrefix(src, dst, prefix, buffer);
        if (sent.isWritten) {
          total += sent.n;
          this.#bytes += sent.n;
          stats[counter] += sent.n;
          counters[backendCounter] += sent.n;
        } else {
          first = sent.n;
        }
      }
      while (true) {
        const n = first !== undefined ? first : await src.read(buffer);
        first = undefined;
        if (n === null) break;
        total += n;
        this.#bytes += n;
        stats[counter] += n;
        counters[backendCounter] += n;
        let written = await dst.write(n === buffer.length ? buffer : buffer.subarray(0, n));
        while (written < n) written += await dst.write(buffer.subarray(written, n));
        // A full read: this direction carries more than a small request (see _buffers.ts).
        if (n === buffer.length) buffer = grownBuffer(buffer);
      }
    } catch (error) {
      if (!this.isClosed) {
        if (!isPeerGone(error)) this.outcome = "error";
        this.close();
      }
      giveBuffer(buffer);
      return total;
    }
    // No read is pending on the buffer any more: it can serve another connection.
    giveBuffer(buffer);
    try {
      await dst.closeWrite();
    } catch {
      // The peer already closed: nothing left to tell it.
    }
    return total;
  }

  /**
   * Sends `prefix` (a PROXY header) at once, in one segment with the client's first bytes
   * when they are already there: for client-first protocols (HTTP, TLS) the request has
   * usually arrived while the backend was dialled, and one write instead of two saves a
   * loopback segment and a syscall per connection. The backend may speak first (SMTP, MySQL)
   * and wait for the header, so the header never waits for the client beyond one turn of
   * the event loop.
   * @returns the first read into `buffer` (`null` at EOF), and whether it went out with
   *   the prefix; if not, the caller forwards it
   */
  async #sendPrefix(
    src: Deno.TcpConn,
    dst: Deno.TcpConn,
    prefix: Uint8Array,
    buffer: Uint8Array,
  ): Promise<{ n: number; isWritten: true } | { n: number | null; isWritten: false }> {
    const reading = src.read(buffer);
    const first = await Promise.race([reading, nextTurn()]);
    if (first === "turn" || first === null) {
      await writeAll(dst, prefix);
      return { n: first === null ? null : await reading, isWritten: false };
    }
    await writeAll(dst, concat(prefix, buffer.subarray(0, first)));
    return { n: first, isWritten: true };
  }

  sweepIdle(): boolean {
    // Connect time is bounded by requestTimeout; only established connections go idle.
    if (!this.#isPiping || this.isClosed) return false;
    if (this.#bytes !== this.#seenBytes) {
      this.#seenBytes = this.#bytes;
      this.#quietSweeps = 0;
      return false;
    }
    if (++this.#quietSweeps < IDLE_CHECKS_PER_PERIOD) return false;
    this.outcome = "idle_timeout";
    this.close();
    return true;
  }

  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.#connecting?.abort(new Deno.errors.Interrupted("connection closed"));
    closeQuietly(this.#client);
    if (this.#backend !== undefined) closeQuietly(this.#backend);
  }
}

let turn: Promise<"turn"> | undefined;

/**
 * Resolves on the next timer phase of the event loop. One timer serves every connection
 * that asks within the same turn, so a burst of new connections does not arm a timer each.
 */
function nextTurn(): Promise<"turn"> {
  return turn ??= new Promise((resolve) =>
    setTimeout(() => {
      turn = undefined;
      resolve("turn");
    }, 0)
  );
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** The address a client connected to, as a PROXY header destination. */
function localEndpoint(conn: Deno.TcpConn): ProxyEndpoint {
  const local = conn.localAddr;
  return { address: local.hostname, port: local.port };
}

/** Least time worth a retry attempt within the requestTimeout budget. */
const MIN_ATTEMPT_MS = 100;

function isBackendFault(error: unknown): boolean {
  return error instanceof Deno.errors.ConnectionRefused ||
    error instanceof Deno.errors.ConnectionReset ||
    error instanceof Deno.errors.ConnectionAborted ||
    error instanceof Deno.errors.TimedOut ||
    error instanceof Deno.errors.NetworkUnreachable ||
    // EHOSTUNREACH has no class of its own in Deno.
    (error instanceof Error && /no route to host|host is unreachable/i.test(error.message));
}

function isPeerGone(error: unknown): boolean {
  return error instanceof Deno.errors.ConnectionReset ||
    error instanceof Deno.errors.BrokenPipe ||
    error instanceof Deno.errors.BadResource ||
    error instanceof Deno.errors.Interrupted;
}
