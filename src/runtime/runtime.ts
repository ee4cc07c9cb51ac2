/**
 * The running load balancer: the control plane (health scheduling, admin, readiness) around
 * a {@linkcode DataPlane}. `serve` opens a plan source and hands plans to
 * {@linkcode Runtime.apply}; everything that runs is owned here.
 *
 * @module
 */
import type { AdminDiscoveryStatus, AdminServer, AdminSnapshot } from "../admin/mod.ts";
import { startAdminServer } from "../admin/mod.ts";
import { errorMessage } from "../core/error_message.ts";
import type { PoolPlan } from "../core/plan.ts";
import type { Backend } from "../core/types.ts";
import {
  DEFAULT_PASSIVE_COOLDOWN_MS,
  HealthScheduler,
  type HealthTarget,
  type HealthTransition,
  type ProbeFunction,
} from "../health/mod.ts";
import { getLogger, type LogFormat, type LogLevel } from "../log/mod.ts";
import { DataPlane, type DataPlaneListener } from "./data_plane.ts";
import type { DataPlaneApi } from "./data_plane_api.ts";
import { WorkerDataPlane, type WorkerSnapshot } from "./worker_data_plane.ts";

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
  /**
   * Admin server address to bind, and `address` as written in config for messages; no
   * admin server when absent.
   */
  readonly admin?: {
    readonly hostname: string;
    readonly port: number;
    readonly address: string;
  };
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
  /** Log setup of the workers; the same as this isolate's. */
  readonly logging?: { readonly level: LogLevel; readonly format: LogFormat };
  /** How often workers post their counters (tests). @default {DEFAULT_WORKER_STATS_INTERVAL_MS} */
  readonly workerStatsIntervalMs?: number;
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
  readonly #listeners: ReadonlyMap<string, RuntimeListener>;
  readonly #data: DataPlaneApi;
  readonly #workers: WorkerDataPlane | undefined;
  readonly #health: HealthScheduler;
  readonly #adminStop = new AbortController();
  #admin: AdminServer | undefined;
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
      });
      this.#data = this.#workers;
    } else {
      this.#data = new DataPlane({ logger: getLogger("proxy"), onConnectResult });
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
    return this.#admin?.addr;
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
      if (this.#listeners.has(plan.name)) this.#data.setBackends(plan.name, backendsOf(plan));
    }
    this.#health.update(this.#options.healthTargets(plans));
  }

  /** What the admin endpoints show now. */
  snapshot(): AdminSnapshot {
    const listeners = this.#data.snapshot();
    return {
      ready: !this.#isStopping,
      readyReasons: this.#isStopping ? ["shutting down"] : [],
      discovery: this.#options.discovery(),
      listeners: listeners.map(({ name, address, stats }) => ({ name, address, stats })),
      pools: listeners.map((l) => ({
        ...l.pool,
        isFailOpen: l.isFailOpen,
        ...(l.fingerprint !== undefined && { fingerprint: l.fingerprint }),
      })),
      healthTransitions: this.#transitions,
      ...(this.#workers !== undefined && { workers: this.#workers.workers() }),
    };
  }

  /** Each data-plane worker's counters and fingerprints; empty with `workers: 1`. */
  workers(): WorkerSnapshot[] {
    return this.#workers?.workers() ?? [];
  }

  /** Test hook: makes data-plane worker `index` fail as a bug would; no-op with `workers: 1`. */
  crashWorkerForTesting(index: number): void {
    this.#workers?.crashWorkerForTesting(index);
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
    await this.#health.close();
    this.#adminStop.abort();
    await this.#admin?.finished;
    return { forced };
  }

  async #start(plans: readonly PoolPlan[]): Promise<void> {
    try {
      for (const listener of this.#listeners.values()) await this.#data.add(listener);
    } catch (error) {
      await this.#abandon();
      throw new Error(`Cannot start listeners: ${errorMessage(error)}`, { cause: error });
    }
    this.apply(plans);
    await this.#firstRound();
    const admin = this.#options.admin;
    if (admin !== undefined) {
      try {
        this.#admin = await startAdminServer({
          hostname: admin.hostname,
          port: admin.port,
          signal: this.#adminStop.signal,
          snapshot: () => this.snapshot(),
        });
      } catch (error) {
        await this.#abandon();
        throw new Error(
          `Cannot start admin server on ${admin.address}: ${errorMessage(error)}`,
          { cause: error },
        );
      }
    }
    this.#data.start();
    for (const l of this.#data.snapshot()) {
      const healthy = l.pool.backends.filter((b) => !b.isDraining && b.health !== "unhealthy");
      log.info("Listening on {address} for pool {pool}: {healthy}/{backends} backends up", {
        address: l.address,
        pool: l.name,
        healthy: healthy.length,
        backends: l.pool.backends.filter((b) => !b.isDraining).length,
      });
    }
  }

  async #firstRound(): Promise<void> {
    const timeouts = [...this.#listeners.values()].map((l) => l.healthCheck.timeoutMs);
    const roundMs = Math.max(0, ...timeouts) + FIRST_ROUND_MARGIN_MS;
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      this.#health.runOnce(this.#options.signal),
      new Promise((resolve) => timer = setTimeout(resolve, roundMs)),
    ]).catch(() => {});
    clearTimeout(timer);
  }

  async #abandon(): Promise<void> {
    this.#isStopped = true;
    await this.#data.stop(0);
    await this.#health.close();
  }

  #onTransition(t: HealthTransition): void {
    this.#transitions++;
    this.#data.setHealth(t.pool, t.key, t.to);
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
    } else {
      healthLog.info("Backend {backend} of pool {pool} is {to} ({cause})", fields);
    }
  }
}

/** Turns plan backends into pool backends. */
export function backendsOf(plan: PoolPlan): Backend[] {
  return plan.backends.map((b) => ({
    key: b.address,
    host: b.host,
    port: b.port,
    weight: b.weight,
  }));
}
