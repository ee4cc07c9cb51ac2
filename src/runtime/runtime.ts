/**
 * The running load balancer: the control plane (health scheduling, admin, readiness) around
 * a {@linkcode DataPlane}. `serve` opens a plan source and hands plans to
 * {@linkcode Runtime.apply}; everything that runs is owned here.
 *
 * @module
 */
import type {
  AdminConfigStatus,
  AdminDiscoveryStatus,
  AdminServer,
  AdminSnapshot,
} from "../admin/mod.ts";
import { startAdminServer } from "../admin/mod.ts";
import { bindHostname, formatHostPort } from "../core/address.ts";
import { settledWithin } from "../core/deadline.ts";
import { errorMessage } from "../core/error_message.ts";
import { backendsOf, type HealthCheckSpec, type PoolPlan } from "../core/plan.ts";
import { listenerOfPool } from "../core/tls_spec.ts";
import {
  DEFAULT_PASSIVE_COOLDOWN_MS,
  HealthScheduler,
  type HealthTarget,
  type HealthTransition,
  type ProbeFunction,
} from "../health/mod.ts";
import { getLogger, type LogFormat, type LogLevel } from "../log/mod.ts";
import { bindFailure } from "./bind_failure.ts";
import { DataPlane, type DataPlaneListener } from "./data_plane.ts";
import type { DataPlaneApi } from "./data_plane_api.ts";
import { WorkerDataPlane } from "./worker_data_plane.ts";
import type { WorkerSnapshot } from "./worker_handle.ts";

const NO_ACCESS_RULES = { allow: [], deny: [] } as const;

/** A listener as the runtime runs it: the data-plane part plus what the control plane needs. */
export interface RuntimeListener extends DataPlaneListener {
  /** Its health checks; the longest `timeoutMs` bounds the check round before accepting. */
  readonly healthCheck: { readonly timeoutMs: number };
}

/** Options of {@linkcode Runtime.start}. */
export interface RuntimeOptions {
  /** Listeners to run, each with its own pool; names are unique. */
  readonly listeners: readonly RuntimeListener[];
  /**
   * Health targets of the backends of `plans` (per-Service overrides, kube-proxy checks);
   * called on every {@linkcode Runtime.apply}.
   */
  readonly healthTargets: (plans: readonly PoolPlan[]) => readonly HealthTarget[];
  /** Where discovery stands now, for `/readyz` and metrics. */
  readonly discovery: () => AdminDiscoveryStatus;
  /** Where the admin server listens; no admin server when absent. */
  readonly admin?: RuntimeAdmin;
  /**
   * Re-admit delay of a backend ejected passively while its active checks are off.
   * @default {DEFAULT_PASSIVE_COOLDOWN_MS}
   */
  readonly passiveCooldownMs?: number;
  /** Runs one active check (tests); the TCP/HTTP probe by default. */
  readonly probe?: ProbeFunction;
  /** Cuts the first check round short when aborted; does not stop the runtime. */
  readonly signal?: AbortSignal;
  /**
   * Data-plane workers: 1 runs listeners in this isolate; more run every listener in each of
   * that many Web Workers, bound with `reusePort` (Linux, `--unstable-net`).
   * @default {1}
   */
  readonly workers?: number;
  /**
   * Log setup of the workers: the effective one of this isolate (command-line flags over
   * the config's settings). @default {{ level: "info", format: "text" }}
   */
  readonly logging?: { readonly level: LogLevel; readonly format: LogFormat };
  /** How often workers post their counters (tests). @default {DEFAULT_WORKER_STATS_INTERVAL_MS} */
  readonly workerStatsIntervalMs?: number;
  /** The module each data-plane worker runs (tests wrap it to inject faults). @default worker_main.ts */
  readonly workerModule?: URL;
  /**
   * Binds listeners with `SO_REUSEPORT` (Linux; needs `--unstable-net`), so a second
   * process can bind the same addresses for a handover while this one still runs. With
   * `workers` above 1 listeners bind with `SO_REUSEPORT` whatever this says.
   * @default {false}
   */
  readonly reusePort?: boolean;
  /** Config reload counters and the running file's hash, for metrics; none when absent. */
  readonly config?: () => AdminConfigStatus;
}

/** Where the admin server listens ({@linkcode RuntimeOptions.admin}). */
export interface RuntimeAdmin {
  /** Interface to bind, e.g. `127.0.0.1`. */
  readonly hostname: string;
  /** Port to bind; 0 picks a free one (tests). */
  readonly port: number;
  /** The address as written in config, for messages. */
  readonly address: string;
}

/**
 * A change of listeners (and of the admin server's address) for
 * {@linkcode Runtime.reconfigure}, e.g. from a config diff. Names not running are ignored in
 * `remove` and `update`.
 */
export interface ListenerChanges {
  /** New listeners; every one binds before anything else changes. */
  readonly add: readonly RuntimeListener[];
  /** Names of listeners to stop: they stop accepting and drain for their `drainTimeoutMs`. */
  readonly remove: readonly string[];
  /** Running listeners with a new address: the old socket drains, the new one binds. */
  readonly rebind: readonly RuntimeListener[];
  /** Running listeners with new settings for new connections (`DataPlane.update`). */
  readonly update: readonly RuntimeListener[];
  /**
   * Where the admin server listens from now on: `null` stops it, absent keeps it as it is.
   * A new address binds with the new listeners (all or nothing); the old server closes once
   * the change is through. The same `hostname` and `port` keep the running server.
   */
  readonly admin?: RuntimeAdmin | null;
}

/** What {@linkcode Runtime.stop} did. */
export interface StopResult {
  /** Connections still open at the drain deadline, closed by force. */
  readonly forced: number;
}

/** Margin over the longest check timeout for the check round before accepting. */
const FIRST_ROUND_MARGIN_MS = 100;

const log = getLogger("serve");
const healthLog = getLogger("health");

/** A started admin server and what stops it. */
interface RunningAdmin {
  readonly spec: RuntimeAdmin;
  readonly server: AdminServer;
  readonly stop: AbortController;
}

/**
 * The running load balancer. Owns the data plane (listeners, pools), the health scheduler
 * and the admin server; nothing else writes to them.
 *
 * Lifecycle: {@linkcode Runtime.start} (bind, first check round, admin, accept) →
 * {@linkcode Runtime.apply} on every plan change → {@linkcode Runtime.beginShutdown}
 * (readiness fails, still accepting) → {@linkcode Runtime.stop} (drain, close everything).
 * Per-listener state is keyed by listener name, so a config diff can later add, keep or
 * remove listeners one by one.
 */
export class Runtime {
  readonly #options: RuntimeOptions;
  readonly #listeners: Map<string, RuntimeListener>;
  /**
   * Listeners removed by a reconfigure, still draining, and admin servers replaced by one,
   * still finishing their requests; `stop` waits for them.
   */
  readonly #removals = new Set<Promise<unknown>>();
  readonly #data: DataPlaneApi;
  readonly #workers: WorkerDataPlane | undefined;
  readonly #health: HealthScheduler;
  #admin: RunningAdmin | undefined;
  /** The latest plan of each pool, for what the status page shows beyond the live pool. */
  #plans = new Map<string, PoolPlan>();
  /** The latest health targets' checks, by pool and backend key, for the status page. */
  #checks = new Map<string, HealthCheckSpec>();
  #transitions = 0;
  #isStopping = false;
  #isStopped = false;

  private constructor(options: RuntimeOptions) {
    this.#options = options;
    this.#listeners = new Map(options.listeners.map((l) => [l.name, l]));
    this.#health = new HealthScheduler({
      passiveCooldownMs: options.passiveCooldownMs ?? DEFAULT_PASSIVE_COOLDOWN_MS,
      probe: options.probe,
      onTransition: (t) => this.#onTransition(t),
    });
    const onConnectResult = (pool: string, key: string, ok: boolean, error?: string) => {
      this.#health.reportPassive(pool, key, ok, error);
    };
    if ((options.workers ?? 1) > 1) {
      this.#workers = new WorkerDataPlane({
        workers: options.workers ?? 1,
        onConnectResult,
        logLevel: options.logging?.level,
        logFormat: options.logging?.format,
        statsIntervalMs: options.workerStatsIntervalMs,
        workerModule: options.workerModule,
      });
      this.#data = this.#workers;
    } else {
      this.#data = new DataPlane({
        reusePort: options.reusePort,
        logger: getLogger("proxy"),
        accessLogger: getLogger("access"),
        onConnectResult,
      });
    }
  }

  /**
   * Binds every listener, applies `plans`, runs one round of checks (bounded by the longest
   * check timeout) so the first client does not meet a dead backend, starts the admin
   * server and accepts.
   * @throws {Error} `Cannot start listeners: …` or `Cannot start admin server on …: …`
   *   (with the bind error as `cause`) after closing whatever had started
   */
  static async start(options: RuntimeOptions, plans: readonly PoolPlan[]): Promise<Runtime> {
    const runtime = new Runtime(options);
    await runtime.#start(plans);
    return runtime;
  }

  /** Bound address of each listener, by name. */
  get addresses(): ReadonlyMap<string, string> {
    return new Map(this.#data.snapshot().map((l) => [l.name, l.address]));
  }

  /** The admin server's bound address, when it runs. */
  get adminAddr(): Deno.NetAddr | undefined {
    return this.#admin?.server.addr;
  }

  /**
   * Applies new plans: pool membership (unchanged backends keep health and connections)
   * and health targets. Plans of unknown listeners are ignored; so is any call after
   * {@linkcode Runtime.stop}.
   * @throws {RangeError} when a health target's settings are out of range; pools are
   *   updated already, health targets are not
   */
  apply(plans: readonly PoolPlan[]): void {
    if (this.#isStopped) return;
    for (const plan of plans) {
      if (!this.#listeners.has(listenerOfPool(plan.name))) continue;
      this.#data.setBackends(plan.name, backendsOf(plan));
      this.#plans.set(plan.name, plan);
    }
    const targets = this.#options.healthTargets(plans);
    this.#health.update(targets);
    this.#checks = new Map(targets.map((t) => [checkKey(t.pool, t.key), t.check]));
  }

  /**
   * Changes the running listeners for a config reload, then applies `plans` (which cover
   * the new set of listeners). All or nothing for binding: new listeners bind and new
   * addresses of rebound listeners are tried first; when any cannot bind, whatever was
   * bound is closed and nothing changes. Then listeners with new settings are updated in
   * place, rebound ones move (the old socket drains), removed ones stop accepting and drain
   * in the background (`stop` waits for them), and new ones accept once their pools are set.
   * Listeners not named keep their sockets, pools, health and connections. A new admin
   * address is bound with the new listeners, before anything changes; once the change is
   * through, the old admin server stops accepting and finishes its requests.
   * @throws {Error} `Cannot bind N listener(s): …` and/or `Cannot start admin server on …: …`
   *   (nothing changed, the running admin server serves on), or after `stop`
   */
  async reconfigure(changes: ListenerChanges, plans: readonly PoolPlan[]): Promise<void> {
    if (this.#isStopped) throw new Error("Cannot reconfigure: the runtime is stopped");
    const problems: string[] = [];
    for (const spec of changes.rebind) {
      try {
        Deno.listen({
          hostname: bindHostname(spec.host),
          port: spec.port,
          reusePort: this.#options.reusePort === true || this.#workers !== undefined
            ? true
            : undefined,
        }).close();
      } catch (error) {
        problems.push(
          `${spec.name} on ${formatHostPort(spec.host, spec.port)}: ${errorMessage(error)}`,
        );
      }
    }
    const bound: string[] = [];
    for (const spec of changes.add) {
      if (this.#listeners.has(spec.name)) {
        problems.push(`${spec.name}: a listener of that name runs already`);
        continue;
      }
      try {
        await this.#data.add(spec);
        bound.push(spec.name);
      } catch (error) {
        problems.push(
          `${spec.name} on ${formatHostPort(spec.host, spec.port)}: ${errorMessage(error)}`,
        );
      }
    }
    let admin: RunningAdmin | undefined;
    let adminProblem: string | undefined;
    if (changes.admin != null && !isSameAdmin(this.#admin?.spec, changes.admin)) {
      try {
        admin = await this.#startAdmin(changes.admin);
      } catch (error) {
        adminProblem = errorMessage(error);
      }
    }
    if (problems.length > 0 || adminProblem !== undefined || this.#isStopped) {
      await Promise.all(bound.map((name) => this.#data.remove(name, 0)));
      this.#retireAdmin(admin);
      if (this.#isStopped) throw new Error("Cannot reconfigure: the runtime is stopped");
      const parts = problems.length > 0
        ? [`Cannot bind ${problems.length} listener(s): ${problems.join("; ")}`]
        : [];
      if (adminProblem !== undefined) parts.push(adminProblem);
      throw new Error(parts.join("; "));
    }
    if (changes.admin === null || admin !== undefined) {
      const old = this.#admin;
      this.#admin = admin;
      this.#retireAdmin(old);
      if (old !== undefined) {
        log.info("Closed the admin server on {address}", { address: old.spec.address });
      }
    } else if (changes.admin !== undefined && this.#admin !== undefined) {
      this.#admin = { ...this.#admin, spec: changes.admin };
    }
    for (const spec of changes.add) this.#listeners.set(spec.name, spec);
    for (const spec of changes.update) {
      if (!this.#listeners.has(spec.name)) continue;
      this.#data.update(spec.name, spec);
      this.#listeners.set(spec.name, spec);
    }
    const failed: string[] = [];
    for (const spec of changes.rebind) {
      if (!this.#listeners.has(spec.name)) continue;
      this.#drain(spec.name);
      try {
        await this.#data.add(spec);
        this.#listeners.set(spec.name, spec);
      } catch (error) {
        // Free a moment ago: lost to another process since. The listener is gone now.
        this.#listeners.delete(spec.name);
        failed.push(
          `${spec.name} on ${formatHostPort(spec.host, spec.port)}: ${errorMessage(error)}`,
        );
      }
    }
    for (const name of changes.remove) {
      if (!this.#listeners.delete(name)) continue;
      for (const pool of this.#plans.keys()) {
        if (listenerOfPool(pool) === name) this.#plans.delete(pool);
      }
      this.#drain(name);
    }
    this.apply(plans);
    this.#data.start();
    if (failed.length > 0) {
      throw new Error(`Cannot bind ${failed.length} moved listener(s): ${failed.join("; ")}`);
    }
  }

  #drain(name: string): void {
    const removal = this.#data.remove(name).catch((error) => {
      log.error("Cannot drain listener {listener}: {error}", { listener: name, error });
    });
    this.#removals.add(removal);
    removal.finally(() => this.#removals.delete(removal));
  }

  /**
   * Hands a new log setup to the workers (this isolate's own is the caller's to set up);
   * nothing to do without workers.
   */
  setLogging(logging: { readonly level: LogLevel; readonly format: LogFormat }): void {
    this.#workers?.setLogging(logging.level, logging.format);
  }

  /** What the admin endpoints show now. */
  snapshot(): AdminSnapshot {
    const listeners = this.#data.snapshot();
    return {
      ready: !this.#isStopping,
      readyReasons: this.#isStopping ? ["shutting down"] : [],
      discovery: this.#options.discovery(),
      listeners: listeners.map(({ name, address, stats }) => {
        const spec = this.#listeners.get(name);
        return {
          name,
          address,
          stats,
          // The settings new connections get now; a listener without them admits everyone.
          access: spec?.access ?? NO_ACCESS_RULES,
          maxConnectionsPerSource: spec?.maxConnectionsPerSource ?? 0,
        };
      }),
      pools: listeners.flatMap((l) => l.pools ?? [l]).map(({ pool, isFailOpen, fingerprint }) => {
        const plan = this.#plans.get(pool.name);
        const planned = new Map(plan?.backends.map((b) => [b.address, b]));
        return {
          ...pool,
          backends: pool.backends.map((b) => {
            const check = this.#checks.get(checkKey(pool.name, b.key));
            const from = planned.get(b.key);
            return {
              ...b,
              ...(check !== undefined && { check }),
              ...(from?.service !== undefined && { service: from.service }),
              ...(from?.node !== undefined && { node: from.node }),
              ...(from?.pod !== undefined && { pod: from.pod }),
            };
          }),
          isFailOpen,
          ...(fingerprint !== undefined && { fingerprint }),
          excluded: plan?.excluded ?? [],
          warnings: plan?.warnings ?? [],
        };
      }),
      healthTransitions: this.#transitions,
      ...(this.#options.config !== undefined && { config: this.#options.config() }),
      ...(this.#workers !== undefined && { workers: this.#workers.workers() }),
    };
  }

  /** Each data-plane worker's counters and fingerprints; empty with `workers: 1`. */
  workers(): WorkerSnapshot[] {
    return this.#workers?.workers() ?? [];
  }

  /** From now on `/readyz` fails; listeners keep accepting until {@linkcode Runtime.stop}. */
  beginShutdown(): void {
    this.#isStopping = true;
  }

  /**
   * Stops accepting, lets open connections finish for up to `drainMs` (each listener's own
   * `drainTimeoutMs` by default), closes the rest, then stops health checks and the admin
   * server. Idempotent: a second call resolves with `forced: 0`.
   */
  async stop(drainMs?: number): Promise<StopResult> {
    if (this.#isStopped) return { forced: 0 };
    this.beginShutdown();
    this.#isStopped = true;
    const active = this.#data.activeConnections;
    log.info("Shutting down: draining {active} connection(s) for up to {drainMs}ms", {
      active,
      drainMs: drainMs ??
        Math.max(0, ...[...this.#listeners.values()].map((l) => l.drainTimeoutMs)),
    });
    const forced = await this.#data.stop(drainMs);
    await Promise.all(this.#removals);
    await this.#health.close();
    const admin = this.#admin;
    this.#admin = undefined;
    admin?.stop.abort();
    await admin?.server.finished;
    return { forced };
  }

  async #start(plans: readonly PoolPlan[]): Promise<void> {
    // With reusePort a bound socket takes its share of new connections from the kernel at
    // once, next to a process handing over: bind after the check round, not before, so
    // they do not wait in a backlog (and overflow it) while the checks run.
    const isLateBind = this.#options.reusePort === true;
    if (isLateBind) {
      this.#health.update(this.#options.healthTargets(plans));
      await this.#firstRound();
    }
    let binding: DataPlaneListener | undefined;
    try {
      for (const listener of this.#listeners.values()) {
        binding = listener;
        await this.#data.add(listener);
      }
    } catch (error) {
      await this.#abandon();
      throw bindFailure(error, binding!, this.#options.reusePort === true);
    }
    this.apply(plans);
    if (isLateBind) {
      // Verdicts of the round reached no pool yet: hand them over now.
      // They came from active checks just now; the failure is the latest one.
      const sinceMs = Date.now();
      for (const status of this.#health.snapshot()) {
        this.#data.setHealth(
          status.pool,
          status.key,
          status.state,
          status.state === "unknown" ? undefined : {
            cause: "active",
            ...(status.state === "unhealthy" && status.lastError !== undefined &&
              { error: status.lastError }),
            sinceMs,
          },
        );
      }
    } else {
      await this.#firstRound();
    }
    const admin = this.#options.admin;
    if (admin !== undefined) {
      try {
        this.#admin = await this.#startAdmin(admin);
      } catch (error) {
        await this.#abandon();
        throw error;
      }
    }
    this.#data.start();
    for (const l of this.#data.snapshot()) {
      for (const { pool } of l.pools ?? [l]) {
        const healthy = pool.backends.filter((b) => !b.isDraining && b.health !== "unhealthy");
        log.info("Listening on {address} for pool {pool}: {healthy}/{backends} backends up", {
          address: l.address,
          pool: pool.name,
          healthy: healthy.length,
          backends: pool.backends.filter((b) => !b.isDraining).length,
        });
      }
    }
  }

  /** @throws {Error} `Cannot start admin server on …: …`, with the bind error as `cause` */
  async #startAdmin(spec: RuntimeAdmin): Promise<RunningAdmin> {
    const stop = new AbortController();
    try {
      const server = await startAdminServer({
        hostname: spec.hostname,
        port: spec.port,
        signal: stop.signal,
        snapshot: () => this.snapshot(),
      });
      return { spec, server, stop };
    } catch (error) {
      // A bind failure names the address already: keep the system's words only.
      const cause = error instanceof Error && error.cause !== undefined ? error.cause : error;
      throw new Error(`Cannot start admin server on ${spec.address}: ${errorMessage(cause)}`, {
        cause,
      });
    }
  }

  /** Stops accepting on `admin` at once; `stop` waits for its requests under way. */
  #retireAdmin(admin: RunningAdmin | undefined): void {
    if (admin === undefined) return;
    admin.stop.abort();
    const finished = admin.server.finished.catch((error) => {
      log.error("Admin server on {address} failed while closing: {error}", {
        address: admin.spec.address,
        error,
      });
    });
    this.#removals.add(finished);
    finished.finally(() => this.#removals.delete(finished));
  }

  async #firstRound(): Promise<void> {
    const timeouts = [...this.#listeners.values()].map((l) => l.healthCheck.timeoutMs);
    const roundMs = Math.max(0, ...timeouts) + FIRST_ROUND_MARGIN_MS;
    await settledWithin(this.#health.runOnce(this.#options.signal), roundMs);
  }

  async #abandon(): Promise<void> {
    this.#isStopped = true;
    await this.#data.stop(0);
    await this.#health.close();
  }

  #onTransition(t: HealthTransition): void {
    this.#transitions++;
    this.#data.setHealth(t.pool, t.key, t.to, {
      cause: t.cause,
      ...(t.error !== undefined && { error: t.error }),
      sinceMs: Date.now(),
    });
    const fields = {
      pool: t.pool,
      backend: t.key,
      from: t.from,
      to: t.to,
      cause: t.cause,
      error: t.error ?? "",
    };
    if (t.to === "unhealthy") {
      healthLog.warn("Backend {backend} of pool {pool} is unhealthy ({cause}): {error}", fields);
    } else if (t.from === "unknown" && t.to === "healthy") {
      healthLog.debug("Backend {backend} of pool {pool} passed its first check", fields);
    } else if (t.from === "unhealthy") {
      // As loud as the failure, so `--log-level warning` shows both ends of an outage.
      healthLog.warn("Backend {backend} of pool {pool} is {to} again ({cause})", fields);
    } else {
      healthLog.info("Backend {backend} of pool {pool} is {to} ({cause})", fields);
    }
  }
}

/** Key of a backend's check in {@linkcode Runtime} (`\0` cannot occur in a pool name). */
function checkKey(pool: string, key: string): string {
  return `${pool}\0${key}`;
}

/** True when `next` binds where `running` is bound (a port of 0 always binds anew). */
function isSameAdmin(running: RuntimeAdmin | undefined, next: RuntimeAdmin): boolean {
  return running !== undefined && next.port !== 0 && running.hostname === next.hostname &&
    running.port === next.port;
}
