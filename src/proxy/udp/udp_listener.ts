/**
 * A UDP listener: datagrams from one client address and port form a session, each session
 * talks to one backend over a socket of its own, replies go back from the listener's socket.
 *
 * Why a socket per session: the backend sees one source port per client, as with a
 * connection, and its replies are told apart by the socket they arrive on (no table of
 * ports to clients, no port reuse across clients). Deno has no `connect` for datagram
 * sockets (`node:dgram`'s `connect` is emulated in user space: the socket stays
 * unconnected), so the session filters out datagrams from anyone but its backend, as the
 * kernel would for a connected socket, and the kernel reports no ICMP port-unreachable to
 * it: a dead backend shows as a datagram without a reply within `replyTimeoutMs`.
 *
 * @module
 */
import { settledWithin } from "../../core/deadline.ts";
import { errorMessage } from "../../core/error_message.ts";
import { formatIp, parseIp } from "../../core/ip.ts";
import type { ConnectionCounter } from "../../core/connection_counter.ts";
import type { UdpSpec } from "../../core/listener_spec.ts";
import type { Admission } from "../admission.ts";
import { ACCESS_LOG_MESSAGE, type BaseListenerOptions } from "../listener.ts";
import { sessionKey, UdpSession } from "./session.ts";
import {
  createUdpListenerStats,
  type UdpDropCause,
  type UdpListenerStats,
  type UdpSessionOutcome,
} from "./stats.ts";

/** Default of {@linkcode UdpListenerOptions.sessionIdleTimeoutMs} (the original's 60 s). */
export const DEFAULT_UDP_SESSION_IDLE_TIMEOUT_MS = 60_000;
/** Default of {@linkcode UdpListenerOptions.maxSessions} (the original's 4096). */
export const DEFAULT_UDP_MAX_SESSIONS = 4_096;
/** Default of {@linkcode UdpListenerOptions.maxSessionsPerSource}: no limit. */
export const DEFAULT_UDP_MAX_SESSIONS_PER_SOURCE = 0;
/**
 * Default of {@linkcode UdpListenerOptions.bufferSize}: above the 4096-byte EDNS payloads DNS
 * servers offer and a 1500-byte MTU, while 4096 sessions hold 32 MiB of buffers at most.
 */
export const DEFAULT_UDP_BUFFER_SIZE = 8_192;
/** Largest {@linkcode UdpListenerOptions.bufferSize}: the largest UDP payload over IPv4. */
export const MAX_UDP_BUFFER_SIZE = 65_507;
/**
 * Default of {@linkcode UdpListenerOptions.replyTimeoutMs}: as long as `dig` waits for an
 * answer.
 */
export const DEFAULT_UDP_REPLY_TIMEOUT_MS = 5_000;
/** Sends to backends and clients waiting in the kernel before datagrams are dropped. */
const MAX_SENDS_IN_FLIGHT = 4_096;
const LOG_EVERY_MS = 1_000;

/**
 * Options of {@linkcode UdpListener}. The session settings are {@linkcode UdpSpec}'s, each
 * optional here with its `DEFAULT_UDP_*` default: `sessionIdleTimeoutMs` (60000),
 * `maxSessions` (4096, 0 = unlimited), `maxSessionsPerSource` (0 = unlimited), `bufferSize`
 * (8192, 1-65507) and `replyTimeoutMs` (5000, 0 = off).
 */
export interface UdpListenerOptions extends BaseListenerOptions, UdpListenerSettings {
  /**
   * Sets `SO_REUSEADDR` (what Deno offers for datagram sockets): a later process binding the
   * same address takes over every new datagram, which is how a handover moves. @default {false}
   */
  readonly reuseAddress?: boolean;
  /** Milliseconds on a monotonic clock (tests inject one). @default {performance.now} */
  readonly clock?: () => number;
  /** Aborting it stops the listener as {@linkcode UdpListener.shutdown} with no drain. */
  readonly signal?: AbortSignal;
  /**
   * Counts this listener's sessions against `maxSessions` together with listeners of the
   * same name in other workers; the listener's own count when absent.
   */
  readonly sessionCounter?: ConnectionCounter;
}

/**
 * What {@linkcode UdpListener.update} may change on a running listener: the session settings,
 * and the source ACL (`Admission`; only its ACL applies, `maxSessionsPerSource` is the UDP
 * per-source limit). No ACL when `admission` is absent.
 */
export type UdpListenerSettings = Partial<UdpSpec> & { readonly admission?: Admission };

/**
 * Relays datagrams between clients and backends, one session per client address and port.
 *
 * Lifecycle as {@linkcode ProxyListener}: `new` → {@linkcode UdpListener.listen} (binds) →
 * {@linkcode UdpListener.serve} (receives until stopped) → {@linkcode UdpListener.shutdown}
 * (no new sessions; open ones end once no datagram waits for a reply, or at the drain
 * deadline).
 */
export class UdpListener {
  /** Listener name, from {@linkcode UdpListenerOptions.name}. */
  readonly name: string;
  /** Live counters, mutated only by this listener; read them, never write. */
  readonly stats: UdpListenerStats = createUdpListenerStats();
  #options: UdpListenerOptions;
  readonly #clock: () => number;
  #bufferSize: number;
  #socket: Deno.DatagramConn | undefined;
  readonly #sessions = new Map<string, UdpSession>();
  readonly #perSource = new Map<string, number>();
  #sendsInFlight = 0;
  #isStopping = false;
  #sweeper: ReturnType<typeof setInterval> | undefined;
  #receiveLoop: Promise<void> | undefined;
  #drained: (() => void) | undefined;
  readonly #dropsSinceLog = new Map<UdpDropCause, number>();
  #lastDropLogAt = -Infinity;
  /** Resolves {@linkcode UdpListener.shutdown}'s wait for the last send to settle. */
  #sendsSettled: (() => void) | undefined;
  readonly #onSendToClientFailed = () => {
    this.#sendSettled();
    this.#drop("send_failed");
  };
  readonly #onSendSettled = () => this.#sendSettled();

  /** Only stores the options; {@linkcode UdpListener.listen} binds. */
  constructor(options: UdpListenerOptions) {
    this.name = options.name;
    this.#options = options;
    this.#bufferSize = checkBufferSize(options.name, options.bufferSize);
    this.#clock = options.clock ?? (() => performance.now());
    options.signal?.addEventListener("abort", () => void this.shutdown(0), { once: true });
  }

  /**
   * Changes limits, timeouts and the ACL, for a config reload; absent fields take their
   * defaults (no ACL), as in the constructor. They apply to every session from the next
   * datagram or sweep; a new `bufferSize` applies to the listener's next datagram and to new
   * sessions; open sessions stay.
   * @throws {RangeError} when `bufferSize` is not an integer 1-65507 (nothing changes then)
   */
  update(settings: UdpListenerSettings): void {
    this.#bufferSize = checkBufferSize(this.name, settings.bufferSize);
    const {
      sessionIdleTimeoutMs: _idle,
      maxSessions: _max,
      maxSessionsPerSource: _perSource,
      bufferSize: _buffer,
      replyTimeoutMs: _reply,
      admission: _admission,
      ...fixed
    } = this.#options;
    this.#options = { ...fixed, ...settings };
    if (this.#sweeper !== undefined) {
      clearInterval(this.#sweeper);
      this.#sweeper = undefined;
      this.#startSweeper();
    }
  }

  /** Sessions open now. */
  get sessionCount(): number {
    return this.#sessions.size;
  }

  /** The bound address. Throws before {@linkcode UdpListener.listen}. */
  get addr(): Deno.NetAddr {
    if (this.#socket === undefined) {
      throw new Deno.errors.NotConnected(`Listener ${this.name} is not bound`);
    }
    return this.#socket.addr as Deno.NetAddr;
  }

  /**
   * Binds the address. Throws `Deno.errors.AddrInUse`, `PermissionDenied`, … as Deno does.
   * @throws {TypeError} without `--unstable-net`, where Deno has no datagram sockets
   */
  listen(): Deno.NetAddr {
    if (typeof (Deno as { listenDatagram?: unknown }).listenDatagram !== "function") {
      throw new TypeError(
        `Cannot bind UDP listener ${this.name}: datagram sockets need Deno's --unstable-net flag`,
      );
    }
    const hostname = this.#options.hostname === "" ? "0.0.0.0" : this.#options.hostname;
    this.#socket = Deno.listenDatagram({
      hostname,
      port: this.#options.port,
      transport: "udp",
      reuseAddress: this.#options.reuseAddress ?? false,
    });
    return this.addr;
  }

  /** Receives until {@linkcode UdpListener.shutdown}; resolves when the receive loop ends. */
  serve(): Promise<void> {
    const socket = this.#socket;
    if (socket === undefined) {
      throw new Deno.errors.NotConnected(`Listener ${this.name} is not bound`);
    }
    if (this.#options.signal?.aborted) return Promise.resolve();
    this.#startSweeper();
    this.#receiveLoop ??= this.#receive(socket);
    return this.#receiveLoop;
  }

  async #receive(socket: Deno.DatagramConn): Promise<void> {
    let buffer = new Uint8Array(this.#bufferSize + 1);
    while (true) {
      if (buffer.length !== this.#bufferSize + 1) buffer = new Uint8Array(this.#bufferSize + 1);
      let data: Uint8Array;
      let from: Deno.Addr;
      try {
        [data, from] = await socket.receive(buffer);
      } catch (error) {
        if (this.#socket === undefined || error instanceof Deno.errors.BadResource) return;
        this.#options.logger?.error("Cannot receive on listener {listener}: {error}", {
          listener: this.name,
          error: errorMessage(error),
        });
        await new Promise((resolve) => setTimeout(resolve, 50));
        continue;
      }
      this.#fromClient(data, from as Deno.NetAddr);
    }
  }

  #fromClient(data: Uint8Array, from: Deno.NetAddr): void {
    const stats = this.stats;
    stats.datagramsFromClients++;
    if (data.length > this.#bufferSize) return this.#drop("too_large");
    let session = this.#sessions.get(sessionKey(from.hostname, from.port));
    if (session === undefined) {
      session = this.#open(from);
      if (session === undefined) return;
    }
    if (this.#sendsInFlight >= MAX_SENDS_IN_FLIGHT) return this.#drop("overload");
    const now = this.#clock();
    session.lastActivityAt = now;
    session.unansweredSince ??= now;
    session.datagramsFromClient++;
    session.bytesFromClient += data.length;
    stats.bytesFromClients += data.length;
    const counters = session.lease.counters;
    if (counters !== undefined) counters.bytesToBackend += data.length;
    const backend = session.lease.backend;
    this.#sendsInFlight++;
    const open = session;
    session.socket
      .send(data.slice(), { transport: "udp", hostname: backend.host, port: backend.port })
      .then(this.#onSendSettled, (error) => {
        this.#sendSettled();
        this.#drop("send_failed");
        this.#end(open, "error", error);
      });
  }

  /** Admits a new session: limits, a backend, a socket. `undefined` when dropped. */
  #open(from: Deno.NetAddr): UdpSession | undefined {
    const stats = this.stats;
    if (this.#isStopping) return this.#refuse("stopping");
    const admission = this.#options.admission;
    if (admission !== undefined && !admission.isAllowed(from.hostname)) return this.#refuse("acl");
    const perSource = this.#options.maxSessionsPerSource ?? DEFAULT_UDP_MAX_SESSIONS_PER_SOURCE;
    const fromSource = this.#perSource.get(from.hostname) ?? 0;
    if (perSource > 0 && fromSource >= perSource) return this.#refuse("source_limit");
    const max = this.#options.maxSessions ?? DEFAULT_UDP_MAX_SESSIONS;
    const counter = this.#options.sessionCounter;
    if (
      counter === undefined ? max > 0 && this.#sessions.size >= max : !counter.tryAcquire(max)
    ) {
      return this.#refuse("limit");
    }
    const client = { address: from.hostname, port: from.port };
    const lease = this.#options.picker.acquire(client, NOTHING_TRIED);
    if (typeof lease === "string") {
      counter?.release();
      stats.noBackend++;
      return this.#refuse("no_backend");
    }
    let socket: Deno.DatagramConn;
    try {
      socket = Deno.listenDatagram({
        hostname: lease.backend.host.includes(":") ? "::" : "0.0.0.0",
        port: 0,
        transport: "udp",
      });
    } catch (error) {
      lease.release();
      counter?.release();
      this.#options.logger?.warn("Cannot open a backend socket on listener {listener}: {error}", {
        listener: this.name,
        error: errorMessage(error),
      });
      return this.#refuse("socket");
    }
    const session = new UdpSession(from, lease, socket, this.#bufferSize, this.#clock());
    this.#sessions.set(session.key, session);
    this.#perSource.set(from.hostname, fromSource + 1);
    stats.accepted++;
    stats.activeConnections++;
    const counters = lease.counters;
    if (counters !== undefined) counters.connections++;
    session.relay = this.#relay(session);
    if (!lease.signal.aborted) {
      // The signal lives as long as the backend's pool entry: remove the listener at the end.
      session.onRemoved = () => this.#end(session, "removed");
      lease.signal.addEventListener("abort", session.onRemoved, { once: true });
    } else {
      queueMicrotask(() => this.#end(session, "removed"));
    }
    return session;
  }

  /** Backend → client for one session, until its socket closes. */
  async #relay(session: UdpSession): Promise<void> {
    const backend = session.lease.backend;
    const expected = normalizeHost(backend.host);
    const listener = this.#socket!;
    const stats = this.stats;
    while (session.outcome === undefined) {
      let data: Uint8Array;
      let from: Deno.NetAddr;
      try {
        const [received, addr] = await session.socket.receive(session.buffer);
        data = received;
        from = addr as Deno.NetAddr;
      } catch (error) {
        if (session.outcome !== undefined) return;
        // Deno 2.9.6 reports no ICMP port-unreachable here (see the module doc); should a
        // later version, a refused port is the backend's failure, as a refused TCP connect.
        if (error instanceof Deno.errors.ConnectionRefused) {
          this.stats.connectFailures++;
          session.lease.reportConnect(false, error);
        }
        this.#end(session, "error", error);
        return;
      }
      if (
        from.port !== backend.port ||
        (expected !== undefined && normalizeHost(from.hostname) !== expected)
      ) {
        this.#drop("foreign");
        continue;
      }
      if (data.length >= session.buffer.length) {
        this.#drop("too_large");
        continue;
      }
      const now = this.#clock();
      if (!session.hasReplied) {
        session.hasReplied = true;
        session.lease.reportConnect(true);
        stats.connectDuration.observe((now - session.startedAt) / 1000);
      }
      session.lastActivityAt = now;
      session.unansweredSince = undefined;
      if (this.#sendsInFlight >= MAX_SENDS_IN_FLIGHT) {
        this.#drop("overload");
        continue;
      }
      session.datagramsToClient++;
      session.bytesToClient += data.length;
      stats.datagramsToClients++;
      stats.bytesToClients += data.length;
      const counters = session.lease.counters;
      if (counters !== undefined) counters.bytesFromBackend += data.length;
      this.#sendsInFlight++;
      listener.send(data.slice(), session.clientAddr).then(
        this.#onSendSettled,
        this.#onSendToClientFailed,
      );
      // Draining: an exchange that is complete needs the session no more.
      if (this.#isStopping) this.#end(session, "stopped");
    }
  }

  /**
   * Ends sessions idle for `sessionIdleTimeoutMs` and those with a datagram unanswered for
   * `replyTimeoutMs` (reported to the picker as a failed connect), by the injected clock. The
   * listener calls it on a timer; tests with a fake clock call it directly.
   * @returns how many sessions it ended
   */
  sweep(): number {
    const now = this.#clock();
    const idleMs = this.#options.sessionIdleTimeoutMs ?? DEFAULT_UDP_SESSION_IDLE_TIMEOUT_MS;
    const replyMs = this.#options.replyTimeoutMs ?? DEFAULT_UDP_REPLY_TIMEOUT_MS;
    let ended = 0;
    for (const session of this.#sessions.values()) {
      if (
        replyMs > 0 && session.unansweredSince !== undefined &&
        now - session.unansweredSince >= replyMs
      ) {
        this.stats.connectFailures++;
        session.lease.reportConnect(
          false,
          new Deno.errors.TimedOut(`no reply within ${replyMs}ms`),
        );
        if (this.#end(session, "no_reply")) ended++;
      } else if (now - session.lastActivityAt >= idleMs) {
        this.stats.idleTimeouts++;
        if (this.#end(session, "idle")) ended++;
      }
    }
    return ended;
  }

  #startSweeper(): void {
    if (this.#sweeper !== undefined) return;
    const idleMs = this.#options.sessionIdleTimeoutMs ?? DEFAULT_UDP_SESSION_IDLE_TIMEOUT_MS;
    const replyMs = this.#options.replyTimeoutMs ?? DEFAULT_UDP_REPLY_TIMEOUT_MS;
    const shortest = replyMs > 0 ? Math.min(idleMs, replyMs) : idleMs;
    const everyMs = Math.min(1_000, Math.max(10, Math.floor(shortest / 4)));
    this.#sweeper = setInterval(() => this.sweep(), everyMs);
  }

  #sendSettled(): void {
    if (--this.#sendsInFlight === 0) this.#sendsSettled?.();
  }

  /** Ends a session once: counters, access log, the lease and socket. */
  #end(session: UdpSession, outcome: UdpSessionOutcome, error?: unknown): boolean {
    if (!session.end(outcome)) return false;
    if (session.onRemoved !== undefined) {
      session.lease.signal.removeEventListener("abort", session.onRemoved);
    }
    this.#sessions.delete(session.key);
    this.#options.sessionCounter?.release();
    const source = session.client.address;
    const left = (this.#perSource.get(source) ?? 1) - 1;
    if (left > 0) this.#perSource.set(source, left);
    else this.#perSource.delete(source);
    const stats = this.stats;
    stats.activeConnections--;
    const durationMs = this.#clock() - session.startedAt;
    stats.connectionDuration.observe(durationMs / 1000);
    if (error !== undefined) {
      this.#options.logger?.debug("Session of {client} on listener {listener} failed: {error}", {
        client: formatClient(session.client.address, session.client.port),
        listener: this.name,
        error: errorMessage(error),
      });
    }
    this.#options.accessLogger?.info(ACCESS_LOG_MESSAGE, {
      client: formatClient(session.client.address, session.client.port),
      listener: this.name,
      backend: session.lease.backend.key,
      outcome,
      bytesFromClient: session.bytesFromClient,
      bytesToClient: session.bytesToClient,
      durationMs: Math.round(durationMs),
      datagramsFromClient: session.datagramsFromClient,
      datagramsToClient: session.datagramsToClient,
    });
    if (this.#sessions.size === 0) this.#drained?.();
    return true;
  }

  #refuse(cause: UdpDropCause): undefined {
    const stats = this.stats;
    stats.refused++;
    if (
      cause === "limit" || cause === "source_limit" || cause === "acl" || cause === "no_backend"
    ) {
      stats.refusedByCause[cause]++;
    }
    this.#drop(cause);
    return undefined;
  }

  #drop(cause: UdpDropCause): void {
    this.stats.drops[cause]++;
    this.#dropsSinceLog.set(cause, (this.#dropsSinceLog.get(cause) ?? 0) + 1);
    const now = performance.now();
    if (now - this.#lastDropLogAt < LOG_EVERY_MS) return;
    this.#lastDropLogAt = now;
    const counts = [...this.#dropsSinceLog].map(([c, n]) => `${n} ${c}`).join(", ");
    this.#dropsSinceLog.clear();
    this.#options.logger?.warn("Dropped datagrams on listener {listener}: {counts}", {
      listener: this.name,
      counts,
    });
  }

  /**
   * Stops opening sessions at once. Open sessions end as soon as no client datagram waits
   * for a reply (at once for those, else after the backend's next datagram), or as they
   * would anyway (idle, no reply, backend removed), or at `drainTimeoutMs`, when the rest
   * are closed with the listener's socket. Resolves when everything is closed. Idempotent.
   * @returns how many sessions were closed at the deadline
   */
  async shutdown(drainTimeoutMs: number): Promise<number> {
    this.#isStopping = true;
    for (const session of [...this.#sessions.values()]) {
      if (session.unansweredSince === undefined) this.#end(session, "stopped");
    }
    if (this.#sessions.size > 0 && drainTimeoutMs > 0) {
      await settledWithin(new Promise<void>((resolve) => this.#drained = resolve), drainTimeoutMs);
    }
    clearInterval(this.#sweeper);
    this.#sweeper = undefined;
    const open = [...this.#sessions.values()];
    let forced = 0;
    for (const session of open) if (this.#end(session, "stopped")) forced++;
    await Promise.all(open.map((s) => s.relay));
    // Replies already handed to the socket go out before it closes (a close cancels them).
    if (this.#sendsInFlight > 0) {
      await settledWithin(
        new Promise<void>((resolve) => this.#sendsSettled = resolve),
        SEND_SETTLE_MS,
      );
    }
    const socket = this.#socket;
    this.#socket = undefined;
    try {
      socket?.close();
    } catch {
      // closed already
    }
    await this.#receiveLoop;
    return forced;
  }
}

const NOTHING_TRIED: ReadonlySet<string> = new Set();

/** How long {@linkcode UdpListener.shutdown} waits for sends in flight before closing. */
const SEND_SETTLE_MS = 1_000;

/** `bufferSize` or its default. @throws {RangeError} when out of range */
function checkBufferSize(name: string, size = DEFAULT_UDP_BUFFER_SIZE): number {
  if (!Number.isInteger(size) || size < 1 || size > MAX_UDP_BUFFER_SIZE) {
    throw new RangeError(
      `Cannot use UDP listener ${name} as 'bufferSize' must be an integer 1-${MAX_UDP_BUFFER_SIZE}: current value is ${size}`,
    );
  }
  return size;
}

/** An IP address in canonical text; `undefined` for a host name (not compared then). */
function normalizeHost(host: string): string | undefined {
  const bytes = parseIp(host);
  return bytes === undefined ? undefined : formatIp(bytes);
}

function formatClient(address: string, port: number): string {
  return address.includes(":") ? `[${address}]:${port}` : `${address}:${port}`;
}
