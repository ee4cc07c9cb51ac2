/**
 * The data plane: per listener, a socket, a pool with its balancer, and forwarding. It is
 * driven from outside with backends and health verdicts and reports connect outcomes back;
 * it holds no reference to discovery, health scheduling or admin, so the same code can run
 * in a worker with its inputs arriving as messages.
 *
 * @module
 */
import { createBalancer } from "../balancer/mod.ts";
import type { ConnectionCounter } from "../core/connection_counter.ts";
import { errorMessage } from "../core/error_message.ts";
import type { Backend, BackendHealth, BalancerKind } from "../core/types.ts";
import type { Logger } from "../log/mod.ts";
import { type OnRemoval, Pool, type PoolSnapshot, type WhenAllUnhealthy } from "../pool/mod.ts";
import { type ListenerStats, ProxyListener } from "../proxy/mod.ts";

/**
 * What the data plane needs to know of one listener. Plain data (structured-clone safe);
 * config's `ListenerConfig` satisfies it.
 */
export interface DataPlaneListener {
  /** Listener and pool name; the key of all per-listener state. */
  readonly name: string;
  /** Address to bind; `""` binds all IPv4 interfaces. */
  readonly host: string;
  /** Port to bind; 0 picks a free one (tests). */
  readonly port: number;
  /** Pick policy of the pool. */
  readonly balancer: BalancerKind;
  /** Maglev lookup table size, a prime. */
  readonly maglevTableSize: number;
  /** Maglev hash seed. */
  readonly maglevSeed: number;
  /** Budget from accept to an established backend connection, across attempts. */
  readonly requestTimeoutMs: number;
  /** Per connect attempt. */
  readonly connectTimeoutMs: number;
  /** Close a proxied connection after this long without bytes; 0 disables. */
  readonly idleTimeoutMs: number;
  /** Concurrent client connections; 0 = unlimited. */
  readonly maxConnections: number;
  /** Distinct backends tried per client connection. */
  readonly maxConnectAttempts: number;
  /** How long connections may finish on shutdown or backend removal. */
  readonly drainTimeoutMs: number;
  /** What open connections of a removed backend get. */
  readonly onRemoval: OnRemoval;
  /** With no healthy backend: reject, or fail open. */
  readonly whenAllUnhealthy: WhenAllUnhealthy;
}

/** Options of {@linkcode DataPlane}. */
export interface DataPlaneOptions {
  /**
   * Told of every backend connect outcome, for passive health checking. Arguments are
   * plain data so a worker can post them; must not throw.
   */
  readonly onConnectResult?: (pool: string, key: string, ok: boolean, error?: string) => void;
  /** Gets listener errors and rate-limited forwarding failures. */
  readonly logger?: Logger;
  /** Replaces `Deno.connect` for backend connections (tests). */
  readonly dial?: (options: Deno.ConnectOptions) => Promise<Deno.TcpConn>;
  /**
   * Binds with `SO_REUSEPORT`, so several workers share each port (needs `--unstable-net`).
   * @default {false}
   */
  readonly reusePort?: boolean;
  /**
   * Process-wide connection counts shared with other workers; each listener and pool counts
   * for itself only when absent (or when a function returns `undefined`).
   */
  readonly counters?: DataPlaneCounters;
}

/** Where a worker's data plane counts connections so every worker sees the process total. */
export interface DataPlaneCounters {
  /** The listener's counter for its `maxConnections`. */
  listener(name: string): ConnectionCounter | undefined;
  /** A backend's active connection counter, asked on every membership change. */
  backend(pool: string, key: string): ConnectionCounter | undefined;
  /** The pool's shared `round_robin` rotation: each call returns the next ticket. */
  rotation?(pool: string): (() => number) | undefined;
}

/** One listener of {@linkcode DataPlane.snapshot}. */
export interface DataPlaneListenerSnapshot {
  /** Listener (and pool) name. */
  readonly name: string;
  /** Bound address, `host:port`. */
  readonly address: string;
  /** The listener's live counters; read, never write. */
  readonly stats: ListenerStats;
  /** The pool's backends. */
  readonly pool: PoolSnapshot;
  /** True while no backend is healthy and the pool hands out any member. */
  readonly isFailOpen: boolean;
  /** The balancer's fingerprint (Maglev), if it has one. */
  readonly fingerprint?: string;
}

interface Unit {
  readonly spec: DataPlaneListener;
  readonly pool: Pool;
  readonly listener: ProxyListener;
  serving: Promise<void> | undefined;
}

/**
 * Listeners with their pools, keyed by listener name. Lifecycle per listener:
 * {@linkcode DataPlane.add} (binds) → {@linkcode DataPlane.start} (accepts) →
 * {@linkcode DataPlane.remove} or {@linkcode DataPlane.stop} (drain, close). Inputs:
 * {@linkcode DataPlane.setBackends} and {@linkcode DataPlane.setHealth}; unknown names are
 * ignored, so a late input for a removed listener is harmless.
 */
export class DataPlane {
  readonly #options: DataPlaneOptions;
  readonly #units = new Map<string, Unit>();

  /** Creates an empty data plane. */
  constructor(options: DataPlaneOptions = {}) {
    this.#options = options;
  }

  /** Names of the listeners, in the order they were added. */
  get names(): string[] {
    return [...this.#units.keys()];
  }

  /**
   * Creates a listener's pool and binds its socket; it accepts after
   * {@linkcode DataPlane.start}.
   * @throws {TypeError} when a listener of that name exists
   * @throws what `Deno.listen` throws (`AddrInUse`, …); nothing is kept then
   */
  add(spec: DataPlaneListener): Deno.NetAddr {
    if (this.#units.has(spec.name)) {
      throw new TypeError(`Cannot add listener ${spec.name}: a listener of that name exists`);
    }
    const report = this.#options.onConnectResult;
    const counters = this.#options.counters;
    const pool = new Pool({
      name: spec.name,
      balancer: createBalancer(spec.balancer, {
        maglevTableSize: spec.maglevTableSize,
        maglevSeed: spec.maglevSeed,
        roundRobinTicket: counters?.rotation?.(spec.name),
      }),
      drainTimeoutMs: spec.drainTimeoutMs,
      onRemoval: spec.onRemoval,
      whenAllUnhealthy: spec.whenAllUnhealthy,
      counterOf: counters === undefined ? undefined : (key) => counters.backend(spec.name, key),
      onConnectResult: report === undefined
        ? undefined
        : (key, ok, error) =>
          report(spec.name, key, ok, error === undefined ? undefined : errorMessage(error)),
    });
    const listener = new ProxyListener({
      name: spec.name,
      hostname: spec.host === "" ? "0.0.0.0" : spec.host,
      port: spec.port,
      picker: pool,
      requestTimeoutMs: spec.requestTimeoutMs,
      connectTimeoutMs: spec.connectTimeoutMs,
      idleTimeoutMs: spec.idleTimeoutMs,
      maxConnections: spec.maxConnections,
      maxConnectAttempts: spec.maxConnectAttempts,
      logger: this.#options.logger,
      dial: this.#options.dial,
      reusePort: this.#options.reusePort,
      connectionCounter: counters?.listener(spec.name),
    });
    let addr: Deno.NetAddr;
    try {
      addr = listener.listen();
    } catch (error) {
      pool.close();
      throw error;
    }
    this.#units.set(spec.name, { spec, pool, listener, serving: undefined });
    return addr;
  }

  /** Starts accepting on every bound listener that does not accept yet. */
  start(): void {
    for (const unit of this.#units.values()) unit.serving ??= unit.listener.serve();
  }

  /** Replaces a pool's membership (see `Pool.update`). */
  setBackends(name: string, backends: readonly Backend[]): void {
    this.#units.get(name)?.pool.update(backends);
  }

  /** Applies a health verdict to a pool member. */
  setHealth(name: string, key: string, health: BackendHealth): void {
    this.#units.get(name)?.pool.setHealth(key, health);
  }

  /** Client connections open now, across listeners. */
  get activeConnections(): number {
    let n = 0;
    for (const unit of this.#units.values()) n += unit.listener.stats.activeConnections;
    return n;
  }

  /** A point-in-time view of every listener and pool, in the order they were added. */
  snapshot(): DataPlaneListenerSnapshot[] {
    return [...this.#units.values()].map(({ listener, pool }) => {
      const fingerprint = pool.fingerprint();
      return {
        name: listener.name,
        address: `${listener.addr.hostname}:${listener.addr.port}`,
        stats: listener.stats,
        pool: pool.snapshot(),
        isFailOpen: pool.isFailOpen,
        ...(fingerprint !== undefined && { fingerprint }),
      };
    });
  }

  /**
   * Stops one listener: no new clients, open connections get up to `drainMs` (its own
   * `drainTimeoutMs` by default), then are closed, and the pool is closed.
   * @returns connections closed at the deadline; 0 for an unknown name
   */
  async remove(name: string, drainMs?: number): Promise<number> {
    const unit = this.#units.get(name);
    if (unit === undefined) return 0;
    this.#units.delete(name);
    const forced = await unit.listener.shutdown(drainMs ?? unit.spec.drainTimeoutMs);
    await unit.serving;
    unit.pool.close();
    return forced;
  }

  /**
   * Stops every listener at once, as {@linkcode DataPlane.remove} does.
   * @returns connections closed at the deadline, in total
   */
  async stop(drainMs?: number): Promise<number> {
    const forced = await Promise.all(this.names.map((name) => this.remove(name, drainMs)));
    return forced.reduce((a, b) => a + b, 0);
  }
}
