/**
 * One data-plane worker as the control plane holds it: spawn, restart with back-off when it
 * dies, versioned posts and the acknowledgement of those a worker answers, its last stats
 * and the counters of its dead incarnations. The fan-out over all workers is
 * {@linkcode WorkerDataPlane}.
 *
 * @module
 */
import { deadline } from "../core/deadline.ts";
import { errorMessage } from "../core/error_message.ts";
import { getLogger } from "../log/mod.ts";
import type { BindResult, FromWorker, ToWorker, WorkerStats } from "./messages.ts";
import type { BackendCounters } from "../core/types.ts";
import type { ListenerStats } from "../proxy/mod.ts";
import {
  addBackendCounters,
  RetiredCounters,
  sumListenerStats,
  zeroBackendCounters,
} from "./worker_stats.ts";

/** First delay before a dead worker is replaced, by default; doubles while it keeps dying. */
export const DEFAULT_WORKER_RESTART_DELAY_MS = 100;
/** Longest wait between restarts of a worker that keeps dying. */
export const MAX_RESTART_DELAY_MS = 5_000;
/** A worker that lived this long before dying is restarted after the first delay again. */
export const STABLE_AFTER_MS = 10_000;

/** What a worker answered to a `listeners`, `remove` or `stop` message. */
export interface WorkerAnswer {
  /** Per-listener bind outcomes (`listeners`); empty otherwise. */
  readonly results: readonly BindResult[];
  /** Connections closed at the drain deadline (`remove`, `stop`); 0 otherwise. */
  readonly forced: number;
}

/** The answer of a worker that died (or was not running): nothing bound, nothing forced. */
const NO_ANSWER: WorkerAnswer = { results: [], forced: 0 };

/** Options of {@linkcode WorkerHandle}. */
export interface WorkerHandleOptions {
  /** Index, 0-based; the `worker` label and the worker's row in the shared counts. */
  readonly index: number;
  /** The module the worker runs. */
  readonly module: URL;
  /**
   * The messages each new incarnation gets first, in order: `init`, then what brings it up
   * to date with the others. Called at every (re)spawn.
   */
  readonly greeting: () => readonly ToWorker[];
  /** A connect outcome the worker reports, for passive health checking. */
  readonly onConnectResult?: (pool: string, key: string, ok: boolean, error?: string) => void;
  /**
   * Called once an incarnation died and its counters retired, before any restart: release
   * what it held in shared memory.
   * @returns the client connections it had open, for the log
   */
  readonly onDeath: (index: number) => number;
  /** First delay before a dead worker is replaced; doubles while it keeps dying. */
  readonly restartDelayMs: number;
}

const log = getLogger("worker");

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

/**
 * One worker and its successors. The handle owns the `Worker`: nobody else posts to or
 * terminates it. Answers are matched to posts by message version.
 */
export class WorkerHandle {
  readonly #options: WorkerHandleOptions;
  readonly #pending = new Map<number, (answer: WorkerAnswer) => void>();
  readonly #retired = new RetiredCounters();
  #worker: Worker | undefined;
  #stats: WorkerStats | undefined;
  #startedAt = 0;
  #restarts = 0;
  #restartDelayMs: number;
  #restartTimer: ReturnType<typeof setTimeout> | undefined;
  #isStopping = false;

  /**
   * Spawns the worker at once.
   * @throws what `new Worker` throws
   */
  constructor(options: WorkerHandleOptions) {
    this.#options = options;
    this.#restartDelayMs = options.restartDelayMs;
    this.#spawn();
  }

  /** Index, 0-based. */
  get index(): number {
    return this.#options.index;
  }

  /** Times this worker died and was replaced. */
  get restarts(): number {
    return this.#restarts;
  }

  /** What the running incarnation last reported; `undefined` before its first report. */
  get stats(): WorkerStats | undefined {
    return this.#stats;
  }

  /** Counters of the dead incarnations. */
  get retired(): RetiredCounters {
    return this.#retired;
  }

  /** This worker as the admin endpoints show it. */
  snapshot(): WorkerSnapshot {
    let accepted = this.#retired.accepted;
    let active = 0;
    for (const l of this.#stats?.listeners ?? []) {
      accepted += l.stats.accepted;
      active += l.stats.activeConnections;
    }
    return {
      worker: this.index,
      restarts: this.#restarts,
      accepted,
      activeConnections: active,
      pools: (this.#stats?.pools ?? []).map((p) => ({
        name: p.pool.name,
        ...(p.fingerprint !== undefined && { fingerprint: p.fingerprint }),
      })),
    };
  }

  /**
   * Posts `message` to the running incarnation.
   * @returns false when none runs (dead, waiting for its restart, or stopped)
   */
  post(message: ToWorker): boolean {
    if (this.#worker === undefined) return false;
    this.#worker.postMessage(message);
    return true;
  }

  /**
   * Posts a `listeners`, `remove` or `stop` message and waits for the worker's answer.
   * @returns the answer; {@linkcode NO_ANSWER} at once when no worker runs or when it dies
   *   first; `undefined` when `timeoutMs` passes first
   */
  async request(
    message: Extract<ToWorker, { type: "listeners" | "remove" | "stop" }>,
    timeoutMs: number,
  ): Promise<WorkerAnswer | undefined> {
    const { version } = message;
    const answered = new Promise<WorkerAnswer>((resolve) => this.#pending.set(version, resolve));
    if (!this.post(message)) {
      this.#pending.delete(version);
      return NO_ANSWER;
    }
    try {
      return await deadline(answered, timeoutMs);
    } catch {
      return undefined;
    } finally {
      this.#pending.delete(version);
    }
  }

  /** No restart from now on; a death is logged only. Call before the last `stop` request. */
  beginStop(): void {
    this.#isStopping = true;
    clearTimeout(this.#restartTimer);
  }

  /** Ends the worker at once; waits in {@linkcode WorkerHandle.request} end with no answer. */
  terminate(): void {
    this.beginStop();
    this.#worker?.terminate();
    this.#worker = undefined;
    this.#answerAll();
  }

  #spawn(): void {
    const worker = new Worker(this.#options.module, {
      type: "module",
      name: `nautiluslb-worker-${this.index}`,
    });
    this.#worker = worker;
    this.#stats = undefined;
    this.#startedAt = performance.now();
    worker.addEventListener("message", (event: MessageEvent<FromWorker>) => {
      if (this.#worker === worker) this.#onMessage(event.data);
    });
    worker.addEventListener("error", (event) => {
      // Keep the process: a worker's failure is handled here, not propagated.
      event.preventDefault();
      this.#onDeath(worker, event.message);
    });
    worker.addEventListener("messageerror", () => {
      log.error("Worker {worker} sent a message that cannot be read", { worker: this.index });
    });
    for (const message of this.#options.greeting()) worker.postMessage(message);
  }

  #onMessage(message: FromWorker): void {
    switch (message.type) {
      case "ready":
        break;
      case "bound":
        for (const r of message.results) {
          if (r.error !== undefined) {
            log.error("Worker {worker} cannot bind listener {listener}: {error}", {
              worker: this.index,
              listener: r.name,
              error: r.error,
            });
          }
        }
        this.#pending.get(message.version)?.({ results: message.results, forced: 0 });
        break;
      case "connect":
        this.#options.onConnectResult?.(message.pool, message.key, message.ok, message.error);
        break;
      case "stats":
        this.#stats = message.stats;
        break;
      case "removed":
      case "stopped":
        this.#pending.get(message.version)?.({ results: [], forced: message.forced });
        break;
    }
  }

  #answerAll(): void {
    for (const resolve of this.#pending.values()) resolve(NO_ANSWER);
    this.#pending.clear();
  }

  #onDeath(worker: Worker, reason: string): void {
    if (this.#worker !== worker) return;
    worker.terminate();
    this.#worker = undefined;
    // Its connections are gone with it: keep its counters' history, release its counts.
    if (this.#stats !== undefined) this.#retired.retire(this.#stats);
    this.#stats = undefined;
    const lost = this.#options.onDeath(this.index);
    this.#answerAll();
    if (this.#isStopping) {
      log.error("Worker {worker} died while stopping: {error}", {
        worker: this.index,
        error: reason,
      });
      return;
    }
    const base = this.#options.restartDelayMs;
    if (performance.now() - this.#startedAt >= STABLE_AFTER_MS) this.#restartDelayMs = base;
    const delayMs = this.#restartDelayMs;
    this.#restartDelayMs = Math.min(MAX_RESTART_DELAY_MS, delayMs * 2);
    log.error(
      "Worker {worker} died, {lost} client connection(s) lost; restarting it in {delayMs}ms: {error}",
      { worker: this.index, lost, delayMs, error: reason },
    );
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = undefined;
      if (this.#isStopping) return;
      this.#restarts++;
      try {
        this.#spawn();
      } catch (error) {
        log.error("Cannot restart worker {worker}: {error}", {
          worker: this.index,
          error: errorMessage(error),
        });
      }
    }, delayMs);
  }
}

/**
 * One listener's counters over workers: live reports (with open connections) plus the
 * history of dead incarnations (without).
 */
export function sumListener(handles: readonly WorkerHandle[], name: string): ListenerStats {
  return sumListenerStats(handles.flatMap((h) => {
    const retired = h.retired.listener(name);
    const live = h.stats?.listeners.find((l) => l.name === name);
    return [
      ...(retired !== undefined ? [[retired, false] as const] : []),
      ...(live !== undefined ? [[live.stats, true] as const] : []),
    ];
  }));
}

/** Backend totals of the dead incarnations of every worker for one pool, by key. */
export function sumRetiredBackends(
  handles: readonly WorkerHandle[],
  pool: string,
): Map<string, BackendCounters> {
  const sum = new Map<string, BackendCounters>();
  for (const h of handles) {
    for (const [key, counters] of h.retired.backends(pool)) {
      let into = sum.get(key);
      if (into === undefined) sum.set(key, into = zeroBackendCounters());
      addBackendCounters(into, counters);
    }
  }
  return sum;
}

/** Connections closed at the drain deadline, over the workers that answered. */
export function forcedOf(answers: readonly (WorkerAnswer | undefined)[]): number {
  return answers.reduce((sum, a) => sum + (a?.forced ?? 0), 0);
}
