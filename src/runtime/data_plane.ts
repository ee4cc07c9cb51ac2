/**
 * The data plane: per listener, a socket, a pool with its balancer, and forwarding. It is
 * driven from outside with backends and health verdicts and reports connect outcomes back;
 * it holds no reference to discovery, health scheduling or admin, so the same code can run
 * in a worker with its inputs arriving as messages.
 *
 * @module
 */
import { createBalancer } from "../balancer/mod.ts";
import { type CidrList, parseCidrList } from "../core/cidr.ts";
import type { ConnectionCounter } from "../core/connection_counter.ts";
import { errorMessage } from "../core/error_message.ts";
import type { Backend, BackendHealth, BalancerKind, ListenerProtocol } from "../core/types.ts";
import { poolNamesOf, routePoolName, type TlsSpec } from "../core/tls_spec.ts";
import type { Logger } from "../log/mod.ts";
import {
  type HealthDetail,
  type OnRemoval,
  Pool,
  type PoolSnapshot,
  type WhenAllUnhealthy,
} from "../pool/mod.ts";
import {
  type ConnectionRouter,
  type ListenerStats,
  ProxyListener,
  TlsRouter,
} from "../proxy/mod.ts";

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
  /** Expect a PROXY protocol header (v1 or v2) on every client connection. @default {false} */
  readonly acceptProxyProtocol?: boolean;
  /** CIDR blocks allowed to connect while `acceptProxyProtocol` is on; validated by config. */
  readonly trustedProxies?: readonly string[];
  /** Time from accept to a complete PROXY header. @default {3000} */
  readonly proxyHeaderTimeoutMs?: number;
  /**
   * Connections each backend takes at most (a Service annotation may set its own); 0 = no
   * limit.
   * @default {0}
   */
  readonly maxConnectionsPerBackend?: number;
  /**
   * One access log line per closed client connection, to {@linkcode DataPlaneOptions.accessLogger}.
   * @default {false}
   */
  readonly accessLog?: boolean;
  /** What the listener speaks; `tls` routes by server name to its routes' pools. @default {"tcp"} */
  readonly protocol?: ListenerProtocol;
  /** With `protocol: tls`: the routes, each a pool named `listener/route`. */
  readonly tls?: TlsSpec;
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
  /** Gets the access log lines of listeners with `accessLog`; none are built without it. */
  readonly accessLogger?: Logger;
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

/** One pool of {@linkcode DataPlaneListenerSnapshot.pools}. */
export interface DataPlanePoolSnapshot {
  /** The pool's backends. */
  readonly pool: PoolSnapshot;
  /** True while no backend is healthy and the pool hands out any member. */
  readonly isFailOpen: boolean;
  /** The balancer's fingerprint (Maglev), if it has one. */
  readonly fingerprint?: string;
}

/**
 * One listener of {@linkcode DataPlane.snapshot}: `pool` is its pool, or for a `tls`
 * listener its first route's pool, with every route's pool in `pools`.
 */
export interface DataPlaneListenerSnapshot extends DataPlanePoolSnapshot {
  /** Listener (and pool) name. */
  readonly name: string;
  /** Bound address, `host:port`. */
  readonly address: string;
  /** The listener's live counters; read, never write. */
  readonly stats: ListenerStats;
  /** Every pool of a listener with several (a `tls` listener's routes); absent otherwise. */
  readonly pools?: readonly DataPlanePoolSnapshot[];
}

interface Unit {
  spec: DataPlaneListener;
  /** The listener's pools by pool name: its own, or one per `tls` route. */
  readonly pools: Map<string, Pool>;
  /** Pools of removed routes, draining until the listener goes. */
  readonly retired: Pool[];
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
  /** Every pool by name, for inputs that name a pool (a route's is `listener/route`). */
  readonly #pools = new Map<string, Pool>();

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
   * @throws {RangeError} when PROXY protocol is accepted without valid `trustedProxies`
   * @throws what `Deno.listen` throws (`AddrInUse`, …); nothing is kept then
   */
  add(spec: DataPlaneListener): Deno.NetAddr {
    if (this.#units.has(spec.name)) {
      throw new TypeError(`Cannot add listener ${spec.name}: a listener of that name exists`);
    }
    const acceptProxyProtocol = spec.acceptProxyProtocol === true
      ? { trustedProxies: trustedProxiesOf(spec), headerTimeoutMs: spec.proxyHeaderTimeoutMs }
      : undefined;
    const pools = new Map(poolNamesOf(spec).map((name) => [name, this.#createPool(name, spec)]));
    const counters = this.#options.counters;
    const listener = new ProxyListener({
      name: spec.name,
      hostname: spec.host === "" ? "0.0.0.0" : spec.host,
      port: spec.port,
      picker: pools.values().next().value!,
      router: routerOf(spec, pools),
      requestTimeoutMs: spec.requestTimeoutMs,
      connectTimeoutMs: spec.connectTimeoutMs,
      idleTimeoutMs: spec.idleTimeoutMs,
      maxConnections: spec.maxConnections,
      maxConnectAttempts: spec.maxConnectAttempts,
      logger: this.#options.logger,
      ...(spec.accessLog === true && { accessLogger: this.#options.accessLogger }),
      dial: this.#options.dial,
      ...(acceptProxyProtocol !== undefined && { acceptProxyProtocol }),
      reusePort: this.#options.reusePort,
      connectionCounter: counters?.listener(spec.name),
    });
    let addr: Deno.NetAddr;
    try {
      addr = listener.listen();
    } catch (error) {
      for (const pool of pools.values()) pool.close();
      throw error;
    }
    this.#units.set(spec.name, { spec, pools, retired: [], listener, serving: undefined });
    for (const [name, pool] of pools) this.#pools.set(name, pool);
    return addr;
  }

  #createPool(name: string, spec: DataPlaneListener): Pool {
    const report = this.#options.onConnectResult;
    const counters = this.#options.counters;
    return new Pool({
      name,
      balancer: createBalancer(spec.balancer, {
        maglevTableSize: spec.maglevTableSize,
        maglevSeed: spec.maglevSeed,
        roundRobinTicket: counters?.rotation?.(name),
      }),
      drainTimeoutMs: spec.drainTimeoutMs,
      onRemoval: spec.onRemoval,
      whenAllUnhealthy: spec.whenAllUnhealthy,
      counterOf: counters === undefined ? undefined : (key) => counters.backend(name, key),
      maxConnectionsPerBackend: spec.maxConnectionsPerBackend,
      onConnectResult: report === undefined
        ? undefined
        : (key, ok, error) =>
          report(name, key, ok, error === undefined ? undefined : errorMessage(error)),
    });
  }

  /** Starts accepting on every bound listener that does not accept yet. */
  start(): void {
    for (const unit of this.#units.values()) unit.serving ??= unit.listener.serve();
  }

  /** Replaces a pool's membership (see `Pool.update`); `name` is a pool's (`listener/route`). */
  setBackends(name: string, backends: readonly Backend[]): void {
    this.#pools.get(name)?.update(backends);
  }

  /**
   * Changes a running listener's settings for a config reload: timeouts, limits and
   * `maxConnectAttempts` apply to connections accepted from now on (open ones keep theirs);
   * `balancer` and the Maglev settings take a new balancer for the next pick;
   * `drainTimeoutMs` and `onRemoval` apply to later removals; `whenAllUnhealthy` at once.
   * The socket, pool members, their health and every open connection stay. Unknown names
   * are ignored.
   * @throws {TypeError} when `spec` names another address (`host`, `port`): that is a
   *   {@linkcode DataPlane.remove} and {@linkcode DataPlane.add}
   */
  update(name: string, spec: DataPlaneListener): void {
    const unit = this.#units.get(name);
    if (unit === undefined) return;
    if (spec.name !== name || spec.host !== unit.spec.host || spec.port !== unit.spec.port) {
      throw new TypeError(
        `Cannot update listener ${name} in place: its name or address changed (remove and add it)`,
      );
    }
    const before = unit.spec;
    unit.spec = spec;
    // Routes in place: new routes get pools, removed ones drain; the router is rebuilt.
    const names = poolNamesOf(spec);
    for (const [name, pool] of unit.pools) {
      if (names.includes(name)) continue;
      unit.pools.delete(name);
      this.#pools.delete(name);
      pool.update([]);
      unit.retired.push(pool);
    }
    for (const name of names) {
      if (unit.pools.has(name)) continue;
      const pool = this.#createPool(name, spec);
      unit.pools.set(name, pool);
      this.#pools.set(name, pool);
    }
    unit.listener.update({
      router: routerOf(spec, unit.pools),
      requestTimeoutMs: spec.requestTimeoutMs,
      connectTimeoutMs: spec.connectTimeoutMs,
      idleTimeoutMs: spec.idleTimeoutMs,
      maxConnections: spec.maxConnections,
      maxConnectAttempts: spec.maxConnectAttempts,
    });
    const isNewBalancer = spec.balancer !== before.balancer ||
      spec.maglevTableSize !== before.maglevTableSize || spec.maglevSeed !== before.maglevSeed;
    for (const [name, pool] of unit.pools) {
      pool.configure({
        balancer: isNewBalancer
          ? createBalancer(spec.balancer, {
            maglevTableSize: spec.maglevTableSize,
            maglevSeed: spec.maglevSeed,
            roundRobinTicket: this.#options.counters?.rotation?.(name),
          })
          : pool.balancer,
        drainTimeoutMs: spec.drainTimeoutMs,
        onRemoval: spec.onRemoval,
        whenAllUnhealthy: spec.whenAllUnhealthy,
      });
    }
  }

  /** Applies a health verdict to a pool member, with why and since when (see `Pool.setHealth`). */
  setHealth(name: string, key: string, health: BackendHealth, detail?: HealthDetail): void {
    this.#pools.get(name)?.setHealth(key, health, detail);
  }

  /** Client connections open now, across listeners. */
  get activeConnections(): number {
    let n = 0;
    for (const unit of this.#units.values()) n += unit.listener.stats.activeConnections;
    return n;
  }

  /** A point-in-time view of every listener and pool, in the order they were added. */
  snapshot(): DataPlaneListenerSnapshot[] {
    return [...this.#units.values()].map(({ listener, pools, spec }) => {
      const views = [...pools.values()].map((pool): DataPlanePoolSnapshot => {
        const fingerprint = pool.fingerprint();
        return {
          pool: pool.snapshot(),
          isFailOpen: pool.isFailOpen,
          ...(fingerprint !== undefined && { fingerprint }),
        };
      });
      return {
        name: listener.name,
        address: `${listener.addr.hostname}:${listener.addr.port}`,
        stats: listener.stats,
        ...views[0]!,
        ...(spec.protocol === "tls" && { pools: views }),
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
    for (const [name, pool] of unit.pools) {
      pool.close();
      if (this.#pools.get(name) === pool) this.#pools.delete(name);
    }
    for (const pool of unit.retired) pool.close();
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

/**
 * @throws {RangeError} when `trustedProxies` is empty or has an invalid entry (config
 *   rejects both first)
 */
function trustedProxiesOf(spec: DataPlaneListener): CidrList {
  const texts = spec.trustedProxies ?? [];
  const { list, issues } = parseCidrList(texts);
  if (texts.length === 0 || issues.length > 0) {
    throw new RangeError(
      `Cannot add listener ${spec.name} as 'trustedProxies' must be a non-empty list of CIDR blocks: ${
        issues.length > 0 ? issues[0]!.error.message : "current value is []"
      }`,
      { cause: issues[0]?.error },
    );
  }
  return list;
}

/** The listener's protocol as a router; `undefined` (the TCP identity route) for `tcp`. */
function routerOf(
  spec: DataPlaneListener,
  pools: ReadonlyMap<string, Pool>,
): ConnectionRouter | undefined {
  const tls = spec.tls;
  if (spec.protocol !== "tls" || tls === undefined) return undefined;
  return new TlsRouter({
    routes: tls.routes.map((route) => ({
      name: route.name,
      hosts: route.hosts,
      picker: pools.get(routePoolName(spec.name, route.name))!,
    })),
    defaultRoute: tls.defaultRoute,
    peekTimeoutMs: tls.peekTimeoutMs,
    maxClientHelloBytes: tls.maxClientHelloBytes,
  });
}
