/**
 * The data plane: per listener, a socket, a pool with its balancer, and forwarding. It is
 * driven from outside with backends and health verdicts and reports connect outcomes back;
 * it holds no reference to discovery, health scheduling or admin, so the same code can run
 * in a worker with its inputs arriving as messages.
 *
 * @module
 */
import { createBalancer } from "../balancer/mod.ts";
import { CidrList, parseCidrList } from "../core/cidr.ts";
import {
  type ConnectionCounter,
  LocalSourceCounter,
  type SourceCounter,
} from "../core/connection_counter.ts";
import { errorMessage } from "../core/error_message.ts";
import type { Backend, BackendHealth } from "../core/types.ts";
import type { Logger } from "../log/mod.ts";
import { type HealthDetail, Pool, type PoolSnapshot } from "../pool/mod.ts";
import {
  Admission,
  type ConnectionRouter,
  type ListenerStats,
  ProxyListener,
  TlsRouter,
  UdpListener,
} from "../proxy/mod.ts";
import { poolNamesOf, routePoolName } from "../core/tls_spec.ts";
import { bindHostname } from "../core/address.ts";
import type { ListenerSpec } from "../core/listener_spec.ts";
import type { PoolSpec } from "../core/pool_spec.ts";

/**
 * Settings a data-plane listener may leave out: absent means no PROXY protocol expected,
 * no trusted proxies, the proxy listener's default header timeout, no per-backend limit,
 * no access log, no source ACL, no per-source limit and no slow start.
 */
type OptionalListenerSettings =
  | "acceptProxyProtocol"
  | "trustedProxies"
  | "proxyHeaderTimeoutMs"
  | "maxConnectionsPerBackend"
  | "accessLog"
  | "access"
  | "maxConnectionsPerSource"
  | "slowStartMs"
  | "protocol";

/**
 * What the data plane needs to know of one listener: its {@linkcode ListenerSpec}, with the
 * admission and logging extras optional. Plain data (structured-clone safe); config's
 * `ListenerConfig` satisfies it.
 */
export type DataPlaneListener =
  & Omit<ListenerSpec, OptionalListenerSettings>
  & Partial<Pick<ListenerSpec, OptionalListenerSettings>>
  // `udp` runs a UdpListener (sessions, `udp` settings) instead of accepting TCP.
  & Pick<PoolSpec, "protocol">;

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
  /** The listener's per-source counts for `maxConnectionsPerSource`, shared by workers. */
  source?(name: string): SourceCounter | undefined;
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
  /** Kept across reloads so open connections stay counted per source. */
  readonly sourceCounter: SourceCounter;
  /** The listener's pools by pool name: its own, or one per `tls` route. */
  readonly pools: Map<string, Pool>;
  /** Pools of removed routes, draining until the listener goes. */
  readonly retired: Pool[];
  readonly listener: ProxyListener | UdpListener;
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
    const counters = this.#options.counters;
    const sourceCounter = counters?.source?.(spec.name) ?? new LocalSourceCounter();
    const admission = admissionOf(spec, sourceCounter);
    const pools = new Map(poolNamesOf(spec).map((name) => [name, this.#createPool(name, spec)]));
    const listener = spec.protocol === "udp"
      ? udpListenerOf(spec, pools.values().next().value!, this.#options, admission)
      : new ProxyListener({
        name: spec.name,
        hostname: bindHostname(spec.host),
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
        admission,
      });
    let addr: Deno.NetAddr;
    try {
      addr = listener.listen();
    } catch (error) {
      for (const pool of pools.values()) pool.close();
      throw error;
    }
    this.#units.set(spec.name, {
      spec,
      sourceCounter,
      pools,
      retired: [],
      listener,
      serving: undefined,
    });
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
      slowStartMs: spec.slowStartMs,
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
   * `drainTimeoutMs` and `onRemoval` apply to later removals; `whenAllUnhealthy`, the source
   * ACL and `maxConnectionsPerSource` at once (for new connections; per-source counts stay);
   * `slowStartMs` to later joins.
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
    if (unit.listener instanceof UdpListener) {
      unit.listener.update({ ...spec.udp, admission: admissionOf(spec, unit.sourceCounter) });
    } else {unit.listener.update({
        router: routerOf(spec, unit.pools),
        requestTimeoutMs: spec.requestTimeoutMs,
        connectTimeoutMs: spec.connectTimeoutMs,
        idleTimeoutMs: spec.idleTimeoutMs,
        maxConnections: spec.maxConnections,
        maxConnectAttempts: spec.maxConnectAttempts,
        admission: admissionOf(spec, unit.sourceCounter),
      });}
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
        slowStartMs: spec.slowStartMs,
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
 * The listener of a `protocol: udp` spec. Deno offers `SO_REUSEADDR`, not `SO_REUSEPORT`, for
 * datagram sockets: with workers the socket bound last takes every datagram, so one worker
 * serves all UDP sessions (and a handover's new process takes them over).
 */
function udpListenerOf(
  spec: DataPlaneListener,
  pool: Pool,
  options: DataPlaneOptions,
  admission: Admission | undefined,
) {
  return new UdpListener({
    name: spec.name,
    hostname: bindHostname(spec.host),
    port: spec.port,
    picker: pool,
    ...spec.udp,
    logger: options.logger,
    ...(spec.accessLog === true && { accessLogger: options.accessLogger }),
    reuseAddress: options.reusePort,
    sessionCounter: options.counters?.listener(spec.name),
    ...(admission !== undefined && { admission }),
  });
}

/**
 * The listener's admission rules, or `undefined` when it has neither ACL nor per-source limit.
 * @throws {RangeError} when an ACL entry is not a CIDR block (config rejects that first)
 */
function admissionOf(spec: DataPlaneListener, sourceCounter: SourceCounter): Admission | undefined {
  const allow = spec.access?.allow ?? [];
  const deny = spec.access?.deny ?? [];
  const max = spec.maxConnectionsPerSource ?? 0;
  if (allow.length === 0 && deny.length === 0 && max === 0) return undefined;
  return new Admission({
    allow: CidrList.from(allow),
    deny: CidrList.from(deny),
    maxConnectionsPerSource: max,
    sourceCounter,
  });
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
