/**
 * The health scheduler: owns one {@linkcode HealthTracker} and one timer per target, runs
 * active probes, takes passive reports from the proxy's connect attempts, and tells its owner
 * about every state change.
 *
 * @module
 */
import { getLogger } from "../log/mod.ts";
import { DEFAULT_PROBE_CONCURRENCY } from "./check_all.ts";
import { Limiter } from "./_limiter.ts";
import {
  type HealthTarget,
  type ProbeFunction,
  probeTarget,
  safeProbe,
  validateTarget,
} from "./target.ts";
import type { BackendHealth } from "../core/types.ts";
import { HealthTracker, type Transition } from "./tracker.ts";
import type { HealthStatus, HealthTransition, TransitionCause } from "./status.ts";

export type { HealthStatus, HealthTransition, TransitionCause };

const logger = getLogger("health");

/** Options of {@linkcode HealthScheduler}. */
export interface HealthSchedulerOptions {
  /**
   * Called synchronously for every state change, from the probe result handler, from
   * {@linkcode HealthScheduler.reportPassive} and from {@linkcode HealthScheduler.update}.
   * Must not throw; an error it throws is logged and the scheduler carries on (it runs on the
   * data path through passive reports, so it must never take the process down).
   */
  readonly onTransition: (transition: HealthTransition) => void;
  /**
   * Runs one active check.
   * @default {probeTarget}
   */
  readonly probe?: ProbeFunction;
  /**
   * Clock for `at`, `lastCheck` and `lastChange`, in milliseconds.
   * @default {Date.now}
   */
  readonly now?: () => number;
  /**
   * Source of jitter, in [0, 1).
   * @default {Math.random}
   */
  readonly random?: () => number;
  /**
   * Active probes in flight at once, across all targets.
   * @default {64}
   */
  readonly maxConcurrentProbes?: number;
  /**
   * State of a new target before its first result; see the table in `tracker.ts`.
   * @default {"unknown"}
   */
  readonly initialState?: BackendHealth;
  /**
   * Passive ejection of targets whose active checks are off: when set, such targets take
   * passive reports like the others (within `maxEjectionPercent`), and one ejected that way is
   * re-admitted as `unknown` this long after its ejection, since no active check will bring
   * it back. When absent, targets with checks off ignore passive reports. `serve` passes
   * {@linkcode DEFAULT_PASSIVE_COOLDOWN_MS}.
   */
  readonly passiveCooldownMs?: number;
  /** Closes the scheduler when aborted, like {@linkcode HealthScheduler.close}. */
  readonly signal?: AbortSignal;
  /**
   * Starts a one-shot timer; with `clearTimer`, lets tests drive the schedule.
   * @default {setTimeout}
   */
  readonly setTimer?: (callback: () => void, delayMs: number) => unknown;
  /**
   * Cancels a timer started by `setTimer`.
   * @default {clearTimeout}
   */
  readonly clearTimer?: (timer: unknown) => void;
}

/**
 * Cooldown of a passive ejection while active checks are off: Envoy's outlier detection
 * `base_ejection_time` is 30s too. A dead backend then costs one client a retry per cooldown.
 */
export const DEFAULT_PASSIVE_COOLDOWN_MS = 30_000;

/** Share of the interval added or taken at random, so checks of many targets spread out. */
export const INTERVAL_JITTER = 0.1;

interface Entry {
  target: HealthTarget;
  tracker: HealthTracker;
  timer: { readonly handle: unknown } | undefined;
  controller: AbortController | undefined;
  pending: Promise<void> | undefined;
  isRemoved: boolean;
  lastLatencyMs: number | undefined;
}

/**
 * Keeps the health of every backend of every pool. The scheduler is the only writer of its
 * trackers; its owner (the pool layer) learns about changes through `onTransition` only.
 *
 * Lifecycle: {@linkcode HealthScheduler.update} with the full target list whenever pool
 * membership changes; {@linkcode HealthScheduler.reportPassive} after each connect attempt;
 * {@linkcode HealthScheduler.close} (or the `signal` option) at the end, which clears every
 * timer and aborts every probe in flight.
 *
 * @example
 * ```ts
 * const scheduler = new HealthScheduler({ onTransition: (t) => pool.setHealth(t) });
 * scheduler.update(targets);
 * await scheduler.runOnce(); // every backend has a verdict before the listener opens
 * // ...
 * await scheduler.close();
 * ```
 */
export class HealthScheduler {
  readonly #onTransition: (transition: HealthTransition) => void;
  readonly #probe: ProbeFunction;
  readonly #now: () => number;
  readonly #random: () => number;
  readonly #initialState: BackendHealth;
  readonly #limiter: Limiter;
  readonly #pools = new Map<string, Map<string, Entry>>();
  readonly #inFlight = new Set<Promise<void>>();
  readonly #signal: AbortSignal | undefined;
  readonly #setTimer: (callback: () => void, delayMs: number) => unknown;
  readonly #clearTimer: (timer: unknown) => void;
  readonly #passiveCooldownMs: number | undefined;
  readonly #onAbort = () => void this.close();
  #isClosed = false;

  /**
   * Creates an idle scheduler; checks start with the first {@linkcode HealthScheduler.update}.
   * @throws {RangeError} when `maxConcurrentProbes` is not a positive integer, or
   *   `passiveCooldownMs` is given and not a positive number
   */
  constructor(options: HealthSchedulerOptions) {
    this.#onTransition = options.onTransition;
    this.#probe = options.probe ?? probeTarget;
    this.#now = options.now ?? Date.now;
    this.#random = options.random ?? Math.random;
    this.#initialState = options.initialState ?? "unknown";
    this.#limiter = new Limiter(
      options.maxConcurrentProbes ?? DEFAULT_PROBE_CONCURRENCY,
      "maxConcurrentProbes",
    );
    this.#signal = options.signal;
    this.#setTimer = options.setTimer ?? ((callback, delayMs) => setTimeout(callback, delayMs));
    this.#clearTimer = options.clearTimer ??
      ((timer) => clearTimeout(timer as ReturnType<typeof setTimeout>));
    const cooldown = options.passiveCooldownMs;
    if (cooldown !== undefined && !(Number.isFinite(cooldown) && cooldown > 0)) {
      throw new RangeError(
        `Cannot create health scheduler as 'passiveCooldownMs' must be a positive number: current value is ${cooldown}`,
      );
    }
    this.#passiveCooldownMs = cooldown;
    if (this.#signal?.aborted) this.#isClosed = true;
    else this.#signal?.addEventListener("abort", this.#onAbort, { once: true });
  }

  /** Whether {@linkcode HealthScheduler.close} was called or the signal aborted. */
  get isClosed(): boolean {
    return this.#isClosed;
  }

  /**
   * Replaces the target list. Targets whose (`pool`, `key`) stays keep their state and
   * counters, and take the new check settings from their next check; new targets get a
   * check at once; removed ones stop (timer cleared, probe in flight aborted, late result
   * dropped). A later duplicate (`pool`, `key`) wins. Does nothing after close.
   *
   * @throws {RangeError} when a check setting is out of range; nothing is changed then
   */
  update(targets: readonly HealthTarget[]): void {
    for (const target of targets) validateTarget(target);
    if (this.#isClosed) return;
    const wanted = new Map<string, Map<string, HealthTarget>>();
    for (const target of targets) {
      let pool = wanted.get(target.pool);
      if (pool === undefined) wanted.set(target.pool, pool = new Map());
      pool.set(target.key, target);
    }
    for (const [poolName, entries] of this.#pools) {
      const keep = wanted.get(poolName);
      for (const [key, entry] of entries) {
        if (keep?.has(key)) continue;
        this.#stop(entry);
        entry.isRemoved = true;
        entries.delete(key);
      }
      if (entries.size === 0) this.#pools.delete(poolName);
    }
    for (const [poolName, pool] of wanted) {
      let entries = this.#pools.get(poolName);
      if (entries === undefined) this.#pools.set(poolName, entries = new Map());
      for (const [key, target] of pool) {
        const entry = entries.get(key);
        if (entry === undefined) {
          const added: Entry = {
            target,
            tracker: new HealthTracker({
              rise: target.check.rise,
              fall: target.check.fall,
              initial: this.#initialState,
            }),
            timer: undefined,
            controller: undefined,
            pending: undefined,
            isRemoved: false,
            lastLatencyMs: undefined,
          };
          entries.set(key, added);
          if (target.check.enabled) void this.#startCheck(added);
        } else {
          this.#change(entry, target);
        }
      }
    }
  }

  /**
   * Checks every enabled target once, at most `maxConcurrentProbes` at a time, and resolves
   * when all have a result (and transitions were reported). A check already in flight counts
   * as this round's check of its target. Each target's next periodic check is timed from
   * its check here.
   *
   * @throws the signal's reason when `signal` aborts (checks in flight go on)
   */
  async runOnce(signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    if (this.#isClosed) return;
    const checks: Promise<void>[] = [];
    for (const entry of this.#entries()) {
      if (entry.target.check.enabled) checks.push(this.#startCheck(entry));
    }
    await abortable(Promise.all(checks), signal);
  }

  /**
   * Feeds the outcome of a client's connect attempt. A failure counts as a failed check at
   * once, so a dead backend is out after `fall` failed attempts (one while `unknown`);
   * a success only resets the failure count of a healthy backend (it never overrules
   * active checks of an unhealthy one). A failure that would make more than
   * `maxEjectionPercent` of the pool's enabled targets unhealthy is dropped: passive
   * reports cannot empty a pool, only active checks can.
   * Unknown targets are ignored, and so are targets with checks off unless the
   * `passiveCooldownMs` option is set (an ejection is then undone after that cooldown).
   *
   * @returns the transition it caused, also passed to `onTransition`
   */
  reportPassive(
    pool: string,
    key: string,
    ok: boolean,
    error?: string,
  ): HealthTransition | undefined {
    const entry = this.#pools.get(pool)?.get(key);
    if (entry === undefined || !this.#takesPassive(entry)) return undefined;
    const { tracker } = entry;
    if (ok) {
      if (tracker.state === "healthy") tracker.record(true, this.#now());
      return undefined;
    }
    if (
      tracker.state !== "unhealthy" && tracker.peek(false) === "unhealthy" &&
      !this.#mayEject(entry)
    ) {
      return undefined;
    }
    const message = error ?? "connect failed";
    const transition = tracker.record(false, this.#now(), message);
    if (transition === undefined) return undefined;
    if (transition.to === "unhealthy" && !entry.target.check.enabled) this.#startCooldown(entry);
    return this.#emit(entry, transition, "passive", message);
  }

  /** State of one target, or `undefined` when the scheduler does not know it. */
  state(pool: string, key: string): BackendHealth | undefined {
    return this.#pools.get(pool)?.get(key)?.tracker.state;
  }

  /** Every target's health, grouped by pool in the order they were added. */
  snapshot(): HealthStatus[] {
    const out: HealthStatus[] = [];
    for (const entry of this.#entries()) {
      const { target, tracker } = entry;
      out.push({
        pool: target.pool,
        key: target.key,
        host: target.host,
        port: target.port,
        isEnabled: target.check.enabled,
        state: tracker.state,
        consecutiveSuccesses: tracker.consecutiveSuccesses,
        consecutiveFailures: tracker.consecutiveFailures,
        checks: tracker.checks,
        failedChecks: tracker.failedChecks,
        ...(tracker.lastCheck !== undefined && { lastCheck: tracker.lastCheck }),
        ...(tracker.lastChange !== undefined && { lastChange: tracker.lastChange }),
        ...(tracker.lastError !== undefined && { lastError: tracker.lastError }),
        ...(entry.lastLatencyMs !== undefined && { lastLatencyMs: entry.lastLatencyMs }),
      });
    }
    return out;
  }

  /**
   * Stops everything: clears timers, aborts probes in flight and resolves when they have
   * settled. No transition is reported afterwards. Idempotent.
   */
  async close(): Promise<void> {
    if (!this.#isClosed) {
      this.#isClosed = true;
      this.#signal?.removeEventListener("abort", this.#onAbort);
      for (const entry of this.#entries()) this.#stop(entry);
      this.#limiter.close();
    }
    await Promise.all(this.#inFlight);
  }

  /** Same as {@linkcode HealthScheduler.close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  *#entries(): Iterable<Entry> {
    for (const entries of this.#pools.values()) yield* entries.values();
  }

  #isLive(entry: Entry): boolean {
    return !this.#isClosed && !entry.isRemoved && entry.target.check.enabled;
  }

  /** Whether passive reports count for this target. */
  #takesPassive(entry: Entry): boolean {
    return !this.#isClosed && !entry.isRemoved &&
      (entry.target.check.enabled || this.#passiveCooldownMs !== undefined);
  }

  /**
   * Re-admits a passively ejected target with checks off after the cooldown. Uses the
   * entry's timer slot, free while checks are off; enabling checks or removing the target
   * clears it.
   */
  #startCooldown(entry: Entry): void {
    if (entry.timer !== undefined) this.#clearTimer(entry.timer.handle);
    const handle = this.#setTimer(() => {
      entry.timer = undefined;
      if (!this.#takesPassive(entry) || entry.target.check.enabled) return;
      const from = entry.tracker.state;
      entry.tracker = new HealthTracker({
        rise: entry.target.check.rise,
        fall: entry.target.check.fall,
        initial: "unknown",
      });
      if (from !== "unknown") {
        this.#emit(entry, { from, to: "unknown", at: this.#now() }, "cooldown", undefined);
      }
    }, this.#passiveCooldownMs ?? DEFAULT_PASSIVE_COOLDOWN_MS);
    entry.timer = { handle };
  }

  #change(entry: Entry, target: HealthTarget): void {
    const wasEnabled = entry.target.check.enabled;
    const wasIntervalMs = entry.target.check.intervalMs;
    entry.target = target;
    entry.tracker.reconfigure({ rise: target.check.rise, fall: target.check.fall });
    if (wasEnabled && !target.check.enabled) {
      this.#stop(entry);
      const from = entry.tracker.state;
      entry.tracker = new HealthTracker({
        rise: target.check.rise,
        fall: target.check.fall,
        initial: "unknown",
      });
      if (from !== "unknown") {
        this.#emit(entry, { from, to: "unknown", at: this.#now() }, "config", undefined);
      }
    } else if (!wasEnabled && target.check.enabled) {
      void this.#startCheck(entry);
    } else if (
      target.check.enabled && target.check.intervalMs !== wasIntervalMs &&
      entry.timer !== undefined
    ) {
      // A new interval takes effect now, not after the old (maybe hour-long) timer.
      this.#clearTimer(entry.timer.handle);
      entry.timer = undefined;
      this.#schedule(entry);
    }
  }

  #stop(entry: Entry): void {
    if (entry.timer !== undefined) this.#clearTimer(entry.timer.handle);
    entry.timer = undefined;
    entry.controller?.abort();
  }

  /** Starts a check unless one is in flight; either way returns the check's promise. */
  #startCheck(entry: Entry): Promise<void> {
    if (entry.pending !== undefined) return entry.pending;
    if (entry.timer !== undefined) this.#clearTimer(entry.timer.handle);
    entry.timer = undefined;
    const pending = this.#check(entry).finally(() => {
      entry.pending = undefined;
      this.#inFlight.delete(pending);
      this.#schedule(entry);
    });
    entry.pending = pending;
    this.#inFlight.add(pending);
    return pending;
  }

  async #check(entry: Entry): Promise<void> {
    await this.#limiter.acquire();
    try {
      if (!this.#isLive(entry)) return;
      const controller = new AbortController();
      entry.controller = controller;
      const target = entry.target;
      const result = await safeProbe(this.#probe, target, controller.signal);
      entry.controller = undefined;
      if (controller.signal.aborted || !this.#isLive(entry)) return;
      // Out of descriptors or local ports says nothing about the backend: no verdict.
      if (result.isLocalError === true) return;
      entry.lastLatencyMs = result.latencyMs;
      const transition = entry.tracker.record(result.ok, this.#now(), result.error);
      if (transition !== undefined) this.#emit(entry, transition, "active", result.error);
    } finally {
      this.#limiter.release();
    }
  }

  #schedule(entry: Entry): void {
    if (!this.#isLive(entry) || entry.timer !== undefined || entry.pending !== undefined) return;
    const { intervalMs } = entry.target.check;
    const jitter = 1 - INTERVAL_JITTER + 2 * INTERVAL_JITTER * this.#random();
    const handle = this.#setTimer(() => {
      entry.timer = undefined;
      void this.#startCheck(entry);
    }, Math.max(1, Math.round(intervalMs * jitter)));
    entry.timer = { handle };
  }

  /**
   * Whether one more unhealthy target keeps the pool within its `maxEjectionPercent` of the
   * targets that take passive reports.
   */
  #mayEject(entry: Entry): boolean {
    let total = 0;
    let unhealthy = 0;
    for (const other of this.#pools.get(entry.target.pool)?.values() ?? []) {
      if (!this.#takesPassive(other)) continue;
      total++;
      if (other.tracker.state === "unhealthy") unhealthy++;
    }
    return (unhealthy + 1) * 100 <= entry.target.check.maxEjectionPercent * total;
  }

  #emit(
    entry: Entry,
    transition: Transition,
    cause: TransitionCause,
    error: string | undefined,
  ): HealthTransition {
    const event: HealthTransition = {
      pool: entry.target.pool,
      key: entry.target.key,
      from: transition.from,
      to: transition.to,
      cause,
      ...(transition.to === "unhealthy" && error !== undefined && { error }),
      at: transition.at,
    };
    try {
      this.#onTransition(event);
    } catch (cause) {
      logger.error("Health transition handler failed for {pool}/{backend}: {error}", {
        pool: event.pool,
        backend: event.key,
        error: cause,
      });
    }
    return event;
  }
}

/** Resolves like `promise`, or rejects with the signal's reason as soon as it aborts. */
function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return promise;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}
