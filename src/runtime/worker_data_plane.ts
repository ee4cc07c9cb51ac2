/**
 * The data plane spread over worker isolates: every worker runs every listener (bound with
 * `reusePort`, so the kernel spreads new connections over them), its pools and forwarding.
 * This side, in the control plane, keeps the listener specs, memberships and health verdicts,
 * sends each worker the same versioned messages, turns their reports into passive health
 * input and one process-wide snapshot, and restarts a worker that dies.
 *
 * @module
 */
import { errorMessage } from "../core/error_message.ts";
import { listenerOfPool, poolNamesOf } from "../core/tls_spec.ts";
import type { Backend, BackendCounters, BackendHealth } from "../core/types.ts";
import { getLogger, type LogFormat, type LogLevel } from "../log/mod.ts";
import type { HealthDetail } from "../pool/mod.ts";
import { createListenerStats, type ListenerStats } from "../proxy/mod.ts";
import type { DataPlaneApi } from "./data_plane_api.ts";
import type {
  DataPlaneListener,
  DataPlaneListenerSnapshot,
  DataPlanePoolSnapshot,
} from "./data_plane.ts";
import type {
  BindResult,
  FromWorker,
  SlottedBackend,
  ToWorker,
  WorkerListener,
  WorkerStats,
} from "./messages.ts";
import { workersUnsupported } from "./cpus.ts";
import { SharedCounts } from "./shared_counts.ts";
import { NO_SLOT, SlotLayout } from "./slot_layout.ts";
import {
  addBackendCounters,
  addListenerStats,
  mergeBackendRows,
  sumListenerStats,
  zeroBackendCounters,
} from "./worker_stats.ts";

/** Default of {@linkcode WorkerDataPlaneOptions.statsIntervalMs}. */
export const DEFAULT_WORKER_STATS_INTERVAL_MS = 250;
/** Default of {@linkcode WorkerDataPlaneOptions.backendSlots}. */
export const DEFAULT_BACKEND_SLOTS = 65_536;
/** Default of {@linkcode WorkerDataPlaneOptions.listenerSlots}. */
export const DEFAULT_LISTENER_SLOTS = 1_024;
/** Default of {@linkcode WorkerDataPlaneOptions.restartDelayMs}. */
export const DEFAULT_WORKER_RESTART_DELAY_MS = 100;
/** Longest wait between restarts of a worker that keeps dying. */
const MAX_RESTART_DELAY_MS = 5_000;
/** A worker that lived this long before dying is restarted after the first delay again. */
const STABLE_AFTER_MS = 10_000;
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
}

/** One worker as the admin endpoints show it. */
export interface WorkerSnapshot {
  /** Index, 0-based; the `worker` label. */
  readonly worker: number;
  /** Times this worker died and was replaced. */
  readonly restarts: number;
  /** Client connections accepted by this worker (all listeners, across restarts). */
  readonly accepted: number;
  /** Client connections open in this worker, as last reported. */
  readonly activeConnections: number;
  /** Each pool's Maglev fingerprint in this worker, when it has one. */
  readonly pools: readonly { readonly name: string; readonly fingerprint?: string }[];
}

interface Member {
  readonly index: number;
  worker: Worker | undefined;
  stats: WorkerStats | undefined;
  startedAt: number;
  restarts: number;
  restartDelayMs: number;
  /** Counters of earlier incarnations, per listener. */
  readonly retired: Map<string, ListenerStats>;
  /** Backend totals of earlier incarnations, per pool and backend key. */
  readonly retiredBackends: Map<string, Map<string, BackendCounters>>;
}

/** A health verdict as sent, kept to bring a replacement worker up to date. */
interface Verdict {
  readonly health: BackendHealth;
  readonly detail?: HealthDetail;
}

interface Waiter {
  readonly version: number;
  readonly remaining: Set<number>;
  readonly results: BindResult[][];
  readonly forced: number[];
  readonly resolve: () => void;
}

const log = getLogger("worker");

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
  readonly #members: Member[];
  readonly #backendCounts: SharedCounts;
  readonly #listenerCounts: SharedCounts;
  readonly #backendLayout: SlotLayout;
  readonly #listenerLayout: SlotLayout;
  /** Shared `round_robin` rotations, one per listener; any start value is as good. */
  readonly #rotationCounts: SharedCounts;
  readonly #rotationLayout: SlotLayout;
  readonly #specs = new Map<string, WorkerListener>();
  readonly #backends = new Map<string, readonly SlottedBackend[]>();
  readonly #health = new Map<string, Map<string, Verdict>>();
  /** Port of each listener as given to `add` (0 when the workers' port was chosen here). */
  readonly #givenPorts = new Map<string, number>();
  readonly #waiters = new Set<Waiter>();
  readonly #timers = new Set<ReturnType<typeof setTimeout>>();
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
    this.#backendCounts = SharedCounts.create(
      options.backendSlots ?? DEFAULT_BACKEND_SLOTS,
      options.workers,
    );
    this.#listenerCounts = SharedCounts.create(
      options.listenerSlots ?? DEFAULT_LISTENER_SLOTS,
      options.workers,
    );
    this.#backendLayout = new SlotLayout(
      this.#backendCounts.slots,
      (slot) => this.#backendCounts.total(slot) === 0,
    );
    this.#listenerLayout = new SlotLayout(
      this.#listenerCounts.slots,
      (slot) => this.#listenerCounts.total(slot) === 0,
    );
    this.#rotationCounts = SharedCounts.create(this.#listenerCounts.slots, 1);
    this.#rotationLayout = new SlotLayout(this.#rotationCounts.slots, () => true);
    const delay = options.restartDelayMs ?? DEFAULT_WORKER_RESTART_DELAY_MS;
    this.#members = Array.from({ length: options.workers }, (_, index) => ({
      index,
      worker: undefined,
      stats: undefined,
      startedAt: 0,
      restarts: 0,
      restartDelayMs: delay,
      retired: new Map(),
      retiredBackends: new Map(),
    }));
    for (const member of this.#members) this.#spawn(member);
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
        ? this.#sumListener(spec.name).activeConnections
        : this.#listenerCounts.total(spec.counterSlot);
    }
    return n;
  }

  /**
   * Binds the listener in every worker, on one port: a port of 0 is chosen here first, so
   * all workers share it.
   * @throws {TypeError} when a listener of that name exists
   * @throws what `Deno.listen` throws here, or an `Error` with a worker's bind failure;
   *   nothing is kept then
   */
  async add(spec: DataPlaneListener): Promise<Deno.NetAddr> {
    if (this.#specs.has(spec.name)) {
      throw new TypeError(`Cannot add listener ${spec.name}: a listener of that name exists`);
    }
    const hostname = spec.host === "" ? "0.0.0.0" : spec.host;
    // Held (with reusePort, as the workers bind) until every worker is bound: it fails
    // early on a taken port and fixes the port that `port: 0` picks.
    const reservation = Deno.listen({ hostname, port: spec.port, reusePort: true });
    try {
      const addr = reservation.addr;
      this.#listenerLayout.recycle();
      const names = [...this.#specs.keys(), spec.name];
      const slots = this.#listenerLayout.set("listeners", names);
      this.#rotationLayout.recycle();
      const rotation = this.#rotationLayout.set("rotation", names);
      this.#specs.set(spec.name, {
        ...spec,
        port: addr.port,
        counterSlot: slots.get(spec.name) ?? NO_SLOT,
        rotationSlot: rotation.get(spec.name) ?? NO_SLOT,
      });
      this.#givenPorts.set(spec.name, spec.port);
      const results = await this.#sendListeners();
      const failed = results.find((r) => r.name === spec.name && r.error !== undefined);
      if (failed !== undefined) {
        this.#specs.delete(spec.name);
        this.#givenPorts.delete(spec.name);
        this.#listenerLayout.set("listeners", [...this.#specs.keys()]);
        this.#rotationLayout.set("rotation", [...this.#specs.keys()]);
        await this.#sendListeners();
        throw new Error(`Cannot bind listener ${spec.name} in a worker: ${failed.error}`);
      }
      return { transport: "tcp", hostname: addr.hostname, port: addr.port };
    } finally {
      reservation.close();
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
    this.#backendLayout.recycle();
    const slots = this.#backendLayout.set(name, backends.map((b) => b.key));
    const slotted = backends.map((b) => ({ ...b, slot: slots.get(b.key) ?? NO_SLOT }));
    this.#backends.set(name, slotted);
    const health = this.#health.get(name);
    if (health !== undefined) {
      for (const key of health.keys()) if (!slots.has(key)) health.delete(key);
    }
    const layoutVersion = this.#backendLayout.version;
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
      const stats = this.#sumListener(spec.name);
      if (spec.counterSlot !== NO_SLOT) {
        stats.activeConnections = this.#listenerCounts.total(spec.counterSlot);
      }
      const address = `${spec.host === "" ? "0.0.0.0" : spec.host}:${spec.port}`;
      const views = poolNamesOf(spec).map((pool) => this.#poolView(spec, pool));
      return {
        name: spec.name,
        address,
        stats,
        ...views[0]!,
        ...(spec.protocol === "tls" && { pools: views }),
      };
    });
  }

  /** One pool of a listener as the workers last reported it, or as sent before any report. */
  #poolView(spec: WorkerListener, name: string): DataPlanePoolSnapshot {
    // Only reports that include the latest change of this pool; until then, the pool as
    // sent, so a snapshot right after a change shows it.
    const changedAt = this.#changedAt.get(name) ?? 0;
    const reports = this.#members.flatMap((m) =>
      m.stats !== undefined && m.stats.version >= changedAt
        ? m.stats.pools.filter((p) => p.pool.name === name)
        : []
    );
    const first = reports[0];
    if (first === undefined) {
      const health = this.#health.get(name);
      const retired = this.#retiredBackends(name);
      const backends = (this.#backends.get(name) ?? []).map((b) => {
        const verdict = health?.get(b.key);
        const counters = zeroBackendCounters();
        const old = retired.get(b.key);
        if (old !== undefined) addBackendCounters(counters, old);
        return {
          key: b.key,
          host: b.host,
          port: b.port,
          weight: b.weight,
          health: verdict?.health ?? "unknown",
          activeConnections: b.slot === NO_SLOT ? 0 : this.#backendCounts.total(b.slot),
          isDraining: false,
          maxConnections: b.maxConnections || (spec.maxConnectionsPerBackend ?? 0),
          counters,
          ...(verdict?.detail !== undefined && { healthDetail: verdict.detail }),
        };
      }).sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
      return { pool: { name, backends }, isFailOpen: false };
    }
    const backends = mergeBackendRows(
      reports.flatMap((r) => r.pool.backends),
      this.#retiredBackends(name),
    );
    return {
      pool: { name, backends },
      isFailOpen: first.isFailOpen,
      ...(first.fingerprint !== undefined && { fingerprint: first.fingerprint }),
    };
  }

  /** Forgets a pool that is gone: its members, verdicts, slots and retired counters. */
  #forgetPool(pool: string): void {
    this.#backends.delete(pool);
    this.#health.delete(pool);
    this.#changedAt.delete(pool);
    this.#backendLayout.delete(pool);
    for (const m of this.#members) m.retiredBackends.delete(pool);
  }

  /** Each worker: accepted and open connections, and its pools' fingerprints. */
  workers(): WorkerSnapshot[] {
    return this.#members.map((m) => {
      let accepted = 0;
      for (const s of m.retired.values()) accepted += s.accepted;
      let active = 0;
      for (const l of m.stats?.listeners ?? []) {
        accepted += l.stats.accepted;
        active += l.stats.activeConnections;
      }
      return {
        worker: m.index,
        restarts: m.restarts,
        accepted,
        activeConnections: active,
        pools: (m.stats?.pools ?? []).map((p) => ({
          name: p.pool.name,
          ...(p.fingerprint !== undefined && { fingerprint: p.fingerprint }),
        })),
      };
    });
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
    this.#listenerLayout.set("listeners", [...this.#specs.keys()]);
    this.#rotationLayout.set("rotation", [...this.#specs.keys()]);
    this.#givenPorts.delete(name);
    for (const m of this.#members) m.retired.delete(name);
    const waiter = this.#broadcast((version) => ({
      type: "remove",
      version,
      name,
      ...(drainMs !== undefined && { drainMs }),
    }));
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      waiter.done,
      new Promise((resolve) => {
        timer = setTimeout(resolve, (drainMs ?? spec.drainTimeoutMs) + STOP_MARGIN_MS);
      }),
    ]);
    clearTimeout(timer);
    this.#waiters.delete(waiter);
    return waiter.forced.reduce((a, b) => a + b, 0);
  }

  /**
   * Stops every worker: no new clients, open connections get up to `drainMs` (each
   * listener's `drainTimeoutMs` by default), then the workers end.
   * @returns connections closed at the deadline, over all workers
   */
  async stop(drainMs?: number): Promise<number> {
    if (this.#isStopping) return 0;
    this.#isStopping = true;
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    const deadline = (drainMs ??
      Math.max(0, ...[...this.#specs.values()].map((s) => s.drainTimeoutMs))) +
      STOP_MARGIN_MS;
    const waiter = this.#broadcast((version) => ({
      type: "stop",
      version,
      ...(drainMs !== undefined && { drainMs }),
    }));
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      waiter.done,
      new Promise((resolve) => timer = setTimeout(resolve, deadline)),
    ]);
    clearTimeout(timer);
    for (const m of this.#members) {
      m.worker?.terminate();
      m.worker = undefined;
    }
    // Terminated workers answer nothing more: end every wait (a removal still draining).
    for (const w of this.#waiters) w.resolve();
    this.#waiters.clear();
    return waiter.forced.reduce((a, b) => a + b, 0);
  }

  /** Test hook: makes worker `index` throw an uncaught error, as a bug would. */
  crashWorkerForTesting(index: number): void {
    this.#members[index]?.worker?.postMessage({ type: "crash" } satisfies ToWorker);
  }

  #sumListener(name: string): ListenerStats {
    return sumListenerStats(this.#members.flatMap((m) => {
      const retired = m.retired.get(name);
      const live = m.stats?.listeners.find((l) => l.name === name);
      return [
        ...(retired !== undefined ? [[retired, false] as const] : []),
        ...(live !== undefined ? [[live.stats, true] as const] : []),
      ];
    }));
  }

  /** Backend totals of dead incarnations of every worker for one pool, by key. */
  #retiredBackends(pool: string): Map<string, BackendCounters> {
    const sum = new Map<string, BackendCounters>();
    for (const m of this.#members) {
      for (const [key, counters] of m.retiredBackends.get(pool) ?? []) {
        let into = sum.get(key);
        if (into === undefined) sum.set(key, into = zeroBackendCounters());
        addBackendCounters(into, counters);
      }
    }
    return sum;
  }

  async #sendListeners(): Promise<BindResult[]> {
    const listeners = [...this.#specs.values()];
    const waiter = this.#broadcast((version) => ({ type: "listeners", version, listeners }));
    let timer: ReturnType<typeof setTimeout> | undefined;
    const isDone = await Promise.race([
      waiter.done.then(() => true),
      new Promise<boolean>((resolve) => timer = setTimeout(() => resolve(false), BIND_TIMEOUT_MS)),
    ]);
    clearTimeout(timer);
    if (!isDone) {
      return listeners.map((l) => ({
        name: l.name,
        error: `no answer from ${waiter.remaining.size} worker(s) within ${BIND_TIMEOUT_MS}ms`,
      }));
    }
    return waiter.results.flat();
  }

  /** Posts one versioned message to every live worker; the waiter ends when all answered. */
  #broadcast(make: (version: number) => ToWorker): Waiter & { done: Promise<void> } {
    const message = make(++this.#version);
    let resolve!: () => void;
    const done = new Promise<void>((r) => resolve = r);
    const waiter = {
      version: this.#version,
      remaining: new Set<number>(),
      results: [] as BindResult[][],
      forced: [] as number[],
      resolve,
      done,
    };
    for (const m of this.#members) {
      if (m.worker === undefined) continue;
      m.worker.postMessage(message);
      waiter.remaining.add(m.index);
    }
    if (message.type === "listeners" || message.type === "remove" || message.type === "stop") {
      if (waiter.remaining.size === 0) resolve();
      else this.#waiters.add(waiter);
    } else {
      resolve();
    }
    return waiter;
  }

  #answered(member: Member, version: number, results?: BindResult[], forced?: number): void {
    for (const waiter of this.#waiters) {
      if (waiter.version !== version || !waiter.remaining.delete(member.index)) continue;
      if (results !== undefined) waiter.results.push(results);
      if (forced !== undefined) waiter.forced.push(forced);
      if (waiter.remaining.size === 0) {
        this.#waiters.delete(waiter);
        waiter.resolve();
      }
    }
  }

  #spawn(member: Member): void {
    const worker = new Worker(new URL("./worker_main.ts", import.meta.url), {
      type: "module",
      name: `nautiluslb-worker-${member.index}`,
    });
    member.worker = worker;
    member.stats = undefined;
    member.startedAt = performance.now();
    worker.addEventListener("message", (event: MessageEvent<FromWorker>) => {
      if (member.worker !== worker) return;
      this.#onMessage(member, event.data);
    });
    worker.addEventListener("error", (event) => {
      // Keep the process: a worker's failure is handled here, not propagated.
      event.preventDefault();
      this.#onDeath(member, worker, event.message);
    });
    worker.addEventListener("messageerror", () => {
      log.error("Worker {worker} sent a message that cannot be read", { worker: member.index });
    });
    const init: ToWorker = {
      type: "init",
      worker: member.index,
      backendCounts: this.#backendCounts.init,
      listenerCounts: this.#listenerCounts.init,
      rotationCounts: this.#rotationCounts.init,
      statsIntervalMs: this.#options.statsIntervalMs ?? DEFAULT_WORKER_STATS_INTERVAL_MS,
      logLevel: this.#logLevel,
      logFormat: this.#logFormat,
    };
    worker.postMessage(init);
    // A replacement catches up with everything the others have, in the same order.
    const send = (message: ToWorker) => worker.postMessage(message);
    if (this.#specs.size > 0) {
      send({ type: "listeners", version: ++this.#version, listeners: [...this.#specs.values()] });
    }
    for (const [pool, backends] of this.#backends) {
      send({
        type: "backends",
        version: ++this.#version,
        layoutVersion: this.#backendLayout.version,
        pool,
        backends,
      });
    }
    for (const [pool, verdicts] of this.#health) {
      for (const [key, { health, detail }] of verdicts) {
        send({
          type: "health",
          version: ++this.#version,
          pool,
          key,
          health,
          ...(detail !== undefined && { detail }),
        });
      }
    }
    if (this.#isStarted) send({ type: "start", version: ++this.#version });
  }

  #onMessage(member: Member, message: FromWorker): void {
    switch (message.type) {
      case "ready":
        break;
      case "bound":
        for (const r of message.results) {
          if (r.error !== undefined) {
            log.error("Worker {worker} cannot bind listener {listener}: {error}", {
              worker: member.index,
              listener: r.name,
              error: r.error,
            });
          }
        }
        this.#answered(member, message.version, [...message.results]);
        break;
      case "connect":
        this.#options.onConnectResult?.(message.pool, message.key, message.ok, message.error);
        break;
      case "stats":
        member.stats = message.stats;
        break;
      case "removed":
      case "stopped":
        this.#answered(member, message.version, undefined, message.forced);
        break;
    }
  }

  #onDeath(member: Member, worker: Worker, reason: string): void {
    if (member.worker !== worker) return;
    worker.terminate();
    member.worker = undefined;
    // Its connections are gone with it: keep its counters' history, release its counts.
    for (const l of member.stats?.listeners ?? []) {
      const sum = member.retired.get(l.name) ?? createListenerStats();
      addListenerStats(sum, l.stats, false);
      member.retired.set(l.name, sum);
    }
    for (const { pool } of member.stats?.pools ?? []) {
      let byKey = member.retiredBackends.get(pool.name);
      if (byKey === undefined) member.retiredBackends.set(pool.name, byKey = new Map());
      for (const row of pool.backends) {
        let into = byKey.get(row.key);
        if (into === undefined) byKey.set(row.key, into = zeroBackendCounters());
        addBackendCounters(into, row.counters);
      }
    }
    member.stats = undefined;
    const lost = this.#listenerCounts.reclaim(member.index);
    this.#backendCounts.reclaim(member.index);
    for (const waiter of [...this.#waiters]) this.#answered(member, waiter.version, [], 0);
    if (this.#isStopping) {
      log.error("Worker {worker} died while stopping: {error}", {
        worker: member.index,
        error: reason,
      });
      return;
    }
    const base = this.#options.restartDelayMs ?? DEFAULT_WORKER_RESTART_DELAY_MS;
    if (performance.now() - member.startedAt >= STABLE_AFTER_MS) member.restartDelayMs = base;
    const delayMs = member.restartDelayMs;
    member.restartDelayMs = Math.min(MAX_RESTART_DELAY_MS, delayMs * 2);
    log.error(
      "Worker {worker} died, {lost} client connection(s) lost; restarting it in {delayMs}ms: {error}",
      { worker: member.index, lost, delayMs, error: reason },
    );
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      if (this.#isStopping) return;
      member.restarts++;
      try {
        this.#spawn(member);
      } catch (error) {
        log.error("Cannot restart worker {worker}: {error}", {
          worker: member.index,
          error: errorMessage(error),
        });
      }
    }, delayMs);
    this.#timers.add(timer);
  }
}
