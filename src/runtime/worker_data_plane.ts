/**
 * The data plane spread over worker isolates: every worker runs every listener (bound with
 * `reusePort`, so the kernel spreads new connections over them), its pools and forwarding.
 * This side, in the control plane, is the fan-out: it keeps the listener specs, memberships
 * and health verdicts, the shared-count slot layouts, sends every worker the same versioned
 * messages and merges their reports into one process-wide snapshot. Each worker's life
 * (spawn, restart, acknowledgements) is its {@linkcode WorkerHandle}.
 *
 * @module
 */
import { bindHostname } from "../core/address.ts";
import type { Backend, BackendHealth } from "../core/types.ts";
import type { LogFormat, LogLevel } from "../log/mod.ts";
import type { HealthDetail } from "../pool/mod.ts";
import type { DataPlaneApi } from "./data_plane_api.ts";
import type { DataPlaneListener, DataPlaneListenerSnapshot } from "./data_plane.ts";
import { listenerOfPool, poolNamesOf } from "../core/tls_spec.ts";
import type { BindResult, SlottedBackend, ToWorker, WorkerListener } from "./messages.ts";
import { workersUnsupported } from "./cpus.ts";
import { NO_SLOT } from "./slot_layout.ts";
import { DEFAULT_BACKEND_SLOTS, DEFAULT_LISTENER_SLOTS, WorkerSlots } from "./worker_slots.ts";
import {
  DEFAULT_WORKER_RESTART_DELAY_MS,
  forcedOf,
  sumListener,
  sumRetiredBackends,
  type WorkerAnswer,
  WorkerHandle,
  type WorkerSnapshot,
} from "./worker_handle.ts";
import { mergePoolReports, rowsAsSent, type Verdict } from "./worker_stats.ts";

/** Default of {@linkcode WorkerDataPlaneOptions.statsIntervalMs}. */
export const DEFAULT_WORKER_STATS_INTERVAL_MS = 250;
/** How long a worker may take to answer a `listeners` message (binding, draining removals). */
const BIND_TIMEOUT_MS = 30_000;
/** Extra time over a drain deadline for workers to report they stopped or removed a listener. */
const STOP_MARGIN_MS = 2_000;

/** Options of {@linkcode WorkerDataPlane}. */
export interface WorkerDataPlaneOptions {
  /** Number of workers, 2 or more (1 runs the in-process {@linkcode DataPlane}). */
  readonly workers: number;
  /** Told of connect outcomes the workers report, for passive health checking. */
  readonly onConnectResult?: (pool: string, key: string, ok: boolean, error?: string) => void;
  /** Log level of the workers. @default {"info"} */
  readonly logLevel?: LogLevel;
  /** Log format of the workers. @default {"text"} */
  readonly logFormat?: LogFormat;
  /** How often each worker posts its counters. @default {DEFAULT_WORKER_STATS_INTERVAL_MS} */
  readonly statsIntervalMs?: number;
  /** Backends with a process-wide connection count, over all pools. @default {DEFAULT_BACKEND_SLOTS} */
  readonly backendSlots?: number;
  /** Listeners with a process-wide connection limit. @default {DEFAULT_LISTENER_SLOTS} */
  readonly listenerSlots?: number;
  /** First delay before a dead worker is replaced; doubles while it keeps dying. @default {DEFAULT_WORKER_RESTART_DELAY_MS} */
  readonly restartDelayMs?: number;
  /**
   * The module each worker runs (tests wrap it to inject faults).
   * @default {new URL("./worker_main.ts", import.meta.url)}
   */
  readonly workerModule?: URL;
}

/**
 * A {@linkcode DataPlaneApi} whose listeners run in `workers` Web Workers. Linux only: it
 * relies on `SO_REUSEPORT` spreading connections over sockets bound to one port, and on
 * `--unstable-net` for `Deno.listen({ reusePort })`.
 *
 * Snapshots are assembled from what workers last reported (at most `statsIntervalMs` old,
 * sooner after a change); connection counts that limits and balancers need are shared
 * memory and always current.
 */
export class WorkerDataPlane implements DataPlaneApi {
  readonly #options: WorkerDataPlaneOptions;
  readonly #handles: WorkerHandle[];
  readonly #slots: WorkerSlots;
  readonly #specs = new Map<string, WorkerListener>();
  readonly #backends = new Map<string, readonly SlottedBackend[]>();
  readonly #health = new Map<string, Map<string, Verdict>>();
  /** Port of each listener as given to `add` (0 when the workers' port was chosen here). */
  readonly #givenPorts = new Map<string, number>();
  #version = 0;
  /** Version of the last membership or health message, per pool. */
  readonly #changedAt = new Map<string, number>();
  #isStarted = false;
  #isStopping = false;
  #logLevel: LogLevel;
  #logFormat: LogFormat;

  /**
   * Starts the workers; they bind nothing until {@linkcode WorkerDataPlane.add}.
   * @throws {RangeError} when `workers` is not an integer of at least 2
   * @throws {Error} when workers cannot run here (not Linux, no `--unstable-net`): without
   *   the flag, `Deno.listen({ reusePort })` in a worker would end the whole process
   */
  constructor(options: WorkerDataPlaneOptions) {
    if (!Number.isInteger(options.workers) || options.workers < 2) {
      throw new RangeError(
        `Cannot start worker data plane as 'workers' must be an integer of at least 2: current value is ${options.workers}`,
      );
    }
    const problem = workersUnsupported();
    if (problem !== undefined) {
      throw new Error(`Cannot run ${options.workers} workers: ${problem}`);
    }
    this.#options = options;
    this.#logLevel = options.logLevel ?? "info";
    this.#logFormat = options.logFormat ?? "text";
    this.#slots = new WorkerSlots(
      options.workers,
      options.backendSlots ?? DEFAULT_BACKEND_SLOTS,
      options.listenerSlots ?? DEFAULT_LISTENER_SLOTS,
    );
    const module = options.workerModule ?? new URL("./worker_main.ts", import.meta.url);
    this.#handles = Array.from({ length: options.workers }, (_, index) =>
      new WorkerHandle({
        index,
        module,
        greeting: () => this.#greeting(index),
        onConnectResult: options.onConnectResult,
        onDeath: (dead) => this.#slots.reclaim(dead),
        restartDelayMs: options.restartDelayMs ?? DEFAULT_WORKER_RESTART_DELAY_MS,
      }));
  }

  /** Names of the listeners, in the order they were added. */
  get names(): string[] {
    return [...this.#specs.keys()];
  }

  /** Client connections open now, across listeners and workers (shared counts). */
  get activeConnections(): number {
    let n = 0;
    for (const spec of this.#specs.values()) {
      n += spec.counterSlot === NO_SLOT
        ? sumListener(this.#handles, spec.name).activeConnections
        : this.#slots.listenerActive(spec.counterSlot);
    }
    return n;
  }

  /**
   * Binds the listener in every worker, on one port: a port of 0 is chosen here first, so
   * all workers share it.
   * @throws {TypeError} when a listener of that name exists
   * @throws what `Deno.listen` throws here (port 0), or an `Error` with a worker's bind
   *   failure (its message is Deno's); nothing is kept then
   */
  async add(spec: DataPlaneListener): Promise<Deno.NetAddr> {
    if (this.#specs.has(spec.name)) {
      throw new TypeError(`Cannot add listener ${spec.name}: a listener of that name exists`);
    }
    const hostname = bindHostname(spec.host);
    // Port 0: a socket here picks the port, held (bound as the workers bind) until they are.
    // Never for a given port: next to a handover's old process a socket never read takes
    // traffic (TCP: a hash share of new connections, reset at close; UDP: every datagram
    // while it is the socket bound last, the one that gets them).
    const reservation = spec.port !== 0
      ? undefined
      : spec.protocol === "udp"
      ? Deno.listenDatagram({ hostname, port: 0, transport: "udp", reuseAddress: true })
      : Deno.listen({ hostname, port: 0, reusePort: true });
    try {
      const addr = reservation?.addr as Deno.NetAddr | undefined ??
        { transport: spec.protocol === "udp" ? "udp" : "tcp", hostname, port: spec.port };
      const slots = this.#slots.setListeners([...this.#specs.keys(), spec.name]);
      this.#specs.set(spec.name, { ...spec, port: addr.port, ...slots.get(spec.name)! });
      this.#givenPorts.set(spec.name, spec.port);
      const results = await this.#sendListeners();
      const failed = results.find((r) => r.name === spec.name && r.error !== undefined);
      if (failed !== undefined) {
        this.#specs.delete(spec.name);
        this.#givenPorts.delete(spec.name);
        this.#slots.setListeners([...this.#specs.keys()]);
        await this.#sendListeners();
        throw new Error(failed.error);
      }
      return { transport: addr.transport, hostname: addr.hostname, port: addr.port };
    } finally {
      reservation?.close();
    }
  }

  /** Sets up every worker's logging anew, and that of workers started later. */
  setLogging(level: LogLevel, format: LogFormat): void {
    this.#logLevel = level;
    this.#logFormat = format;
    this.#broadcast((version) => ({
      type: "logging",
      version,
      logLevel: level,
      logFormat: format,
    }));
  }

  /** Starts accepting in every worker. */
  start(): void {
    this.#isStarted = true;
    this.#broadcast((version) => ({ type: "start", version }));
  }

  /**
   * Sends a pool's membership to every worker, with each backend's shared counter slot
   * (stable for backends that stay). Unknown names are ignored.
   */
  setBackends(name: string, backends: readonly Backend[]): void {
    if (!this.#specs.has(listenerOfPool(name))) return;
    const slotted = this.#slots.setBackends(name, backends);
    const keys = new Set(backends.map((b) => b.key));
    this.#backends.set(name, slotted);
    const health = this.#health.get(name);
    if (health !== undefined) {
      for (const key of health.keys()) if (!keys.has(key)) health.delete(key);
    }
    const layoutVersion = this.#slots.backendLayoutVersion;
    this.#changedAt.set(name, this.#version + 1);
    this.#broadcast((version) => ({
      type: "backends",
      version,
      layoutVersion,
      pool: name,
      backends: slotted,
    }));
  }

  /**
   * Sends a running listener's new settings to every worker, where `DataPlane.update`
   * applies them (see there for what changes when); a worker started later gets them too.
   * Unknown names are ignored.
   * @throws {TypeError} when `spec` names another listener or address (`host`, `port`)
   */
  update(name: string, spec: DataPlaneListener): void {
    const current = this.#specs.get(name);
    if (current === undefined) return;
    if (
      spec.name !== name || spec.host !== current.host || spec.port !== this.#givenPorts.get(name)
    ) {
      throw new TypeError(
        `Cannot update listener ${name} in place: its name or address changed (remove and add it)`,
      );
    }
    const listener: WorkerListener = {
      ...spec,
      port: current.port,
      counterSlot: current.counterSlot,
      rotationSlot: current.rotationSlot,
    };
    this.#specs.set(name, listener);
    // A tls listener's routes are its pools: removed routes are forgotten, all are changed.
    const pools = poolNamesOf(spec);
    for (const pool of poolNamesOf(current)) if (!pools.includes(pool)) this.#forgetPool(pool);
    for (const pool of pools) this.#changedAt.set(pool, this.#version + 1);
    this.#broadcast((version) => ({ type: "update", version, listener }));
  }

  /** Sends a health verdict, with why and since when, to every worker; unknown names are ignored. */
  setHealth(name: string, key: string, health: BackendHealth, detail?: HealthDetail): void {
    if (!this.#specs.has(listenerOfPool(name))) return;
    let pool = this.#health.get(name);
    if (pool === undefined) this.#health.set(name, pool = new Map());
    pool.set(key, { health, ...(detail !== undefined && { detail }) });
    this.#changedAt.set(name, this.#version + 1);
    this.#broadcast((version) => ({
      type: "health",
      version,
      pool: name,
      key,
      health,
      ...(detail !== undefined && { detail }),
    }));
  }

  /**
   * The whole process: listener counters summed over workers, pools as the workers last
   * reported them (health and fingerprint from the first reporting worker, connections
   * summed); before any report, the pool as sent.
   */
  snapshot(): DataPlaneListenerSnapshot[] {
    return [...this.#specs.values()].map((spec) => {
      const stats = sumListener(this.#handles, spec.name);
      if (spec.counterSlot !== NO_SLOT) {
        stats.activeConnections = this.#slots.listenerActive(spec.counterSlot);
      }
      const views = poolNamesOf(spec).map((pool) => this.#poolView(spec, pool));
      return {
        name: spec.name,
        address: `${bindHostname(spec.host)}:${spec.port}`,
        stats,
        ...views[0]!,
        ...(spec.protocol === "tls" && { pools: views }),
      };
    });
  }

  /** One pool as the workers last reported it, counting only reports with its last change. */
  #poolView(spec: WorkerListener, name: string) {
    const changedAt = this.#changedAt.get(name) ?? 0;
    const reports = this.#handles.flatMap(({ stats }) =>
      stats !== undefined && stats.version >= changedAt
        ? stats.pools.filter((p) => p.pool.name === name)
        : []
    );
    const retired = sumRetiredBackends(this.#handles, name);
    return mergePoolReports(
      name,
      reports,
      retired,
      () =>
        rowsAsSent(this.#backends.get(name) ?? [], this.#health.get(name), retired, (b) => ({
          activeConnections: this.#slots.backendActive(b.slot),
          maxConnections: b.maxConnections || (spec.maxConnectionsPerBackend ?? 0),
        })),
    );
  }

  /** Forgets a pool that is gone: its members, verdicts, slots and retired counters. */
  #forgetPool(pool: string): void {
    this.#backends.delete(pool);
    this.#health.delete(pool);
    this.#changedAt.delete(pool);
    this.#slots.deletePool(pool);
    for (const h of this.#handles) h.retired.forget(pool);
  }

  /** Each worker: accepted and open connections, and its pools' fingerprints. */
  workers(): WorkerSnapshot[] {
    return this.#handles.map((h) => h.snapshot());
  }

  /**
   * Stops one listener in every worker, as `DataPlane.remove` does: no new clients, open
   * connections get up to `drainMs` (the listener's `drainTimeoutMs` by default), then are
   * closed. The name is free at once; resolves once every worker has drained (or died, or
   * not answered within the drain time and a margin).
   * @returns connections closed at the deadline, over all workers; 0 for an unknown name
   */
  async remove(name: string, drainMs?: number): Promise<number> {
    const spec = this.#specs.get(name);
    if (spec === undefined) return 0;
    this.#specs.delete(name);
    for (const pool of poolNamesOf(spec)) this.#forgetPool(pool);
    this.#slots.setListeners([...this.#specs.keys()]);
    this.#givenPorts.delete(name);
    for (const h of this.#handles) h.retired.forget(name);
    const answers = await this.#request(
      (version) => ({ type: "remove", version, name, ...(drainMs !== undefined && { drainMs }) }),
      (drainMs ?? spec.drainTimeoutMs) + STOP_MARGIN_MS,
    );
    return forcedOf(answers);
  }

  /**
   * Stops every worker: no new clients, open connections get up to `drainMs` (each
   * listener's `drainTimeoutMs` by default), then the workers end.
   * @returns connections closed at the deadline, over all workers
   */
  async stop(drainMs?: number): Promise<number> {
    if (this.#isStopping) return 0;
    this.#isStopping = true;
    for (const h of this.#handles) h.beginStop();
    const timeoutMs = (drainMs ??
      Math.max(0, ...[...this.#specs.values()].map((s) => s.drainTimeoutMs))) +
      STOP_MARGIN_MS;
    const answers = await this.#request(
      (version) => ({ type: "stop", version, ...(drainMs !== undefined && { drainMs }) }),
      timeoutMs,
    );
    // Terminated workers answer nothing more: every wait (a removal still draining) ends.
    for (const h of this.#handles) h.terminate();
    return forcedOf(answers);
  }

  async #sendListeners(): Promise<BindResult[]> {
    const listeners = [...this.#specs.values()];
    const answers = await this.#request(
      (version) => ({ type: "listeners", version, listeners }),
      BIND_TIMEOUT_MS,
    );
    const silent = answers.filter((a) => a === undefined).length;
    if (silent > 0) {
      return listeners.map((l) => ({
        name: l.name,
        error: `no answer from ${silent} worker(s) within ${BIND_TIMEOUT_MS}ms`,
      }));
    }
    return answers.flatMap((a) => a?.results ?? []);
  }

  /** Posts one versioned message to every running worker. */
  #broadcast(make: (version: number) => ToWorker): void {
    const message = make(++this.#version);
    for (const h of this.#handles) h.post(message);
  }

  /**
   * Posts one versioned message that workers answer to every worker and waits for each
   * answer, at most `timeoutMs`; `undefined` for a worker that did not answer in time.
   */
  #request(
    make: (version: number) => Extract<ToWorker, { type: "listeners" | "remove" | "stop" }>,
    timeoutMs: number,
  ): Promise<(WorkerAnswer | undefined)[]> {
    const message = make(++this.#version);
    return Promise.all(this.#handles.map((h) => h.request(message, timeoutMs)));
  }

  /** What a new incarnation of worker `index` gets: `init`, then everything the others have. */
  #greeting(index: number): ToWorker[] {
    const messages: ToWorker[] = [{
      type: "init",
      worker: index,
      ...this.#slots.init,
      statsIntervalMs: this.#options.statsIntervalMs ?? DEFAULT_WORKER_STATS_INTERVAL_MS,
      logLevel: this.#logLevel,
      logFormat: this.#logFormat,
    }];
    if (this.#specs.size > 0) {
      messages.push({
        type: "listeners",
        version: ++this.#version,
        listeners: [...this.#specs.values()],
      });
    }
    for (const [pool, backends] of this.#backends) {
      messages.push({
        type: "backends",
        version: ++this.#version,
        layoutVersion: this.#slots.backendLayoutVersion,
        pool,
        backends,
      });
    }
    for (const [pool, verdicts] of this.#health) {
      for (const [key, { health, detail }] of verdicts) {
        messages.push({
          type: "health",
          version: ++this.#version,
          pool,
          key,
          health,
          ...(detail !== undefined && { detail }),
        });
      }
    }
    if (this.#isStarted) messages.push({ type: "start", version: ++this.#version });
    return messages;
  }
}
