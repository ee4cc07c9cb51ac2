/**
 * The live backend table of one listener: membership × health × active connections × drain.
 *
 * The pool is the single owner of this state. Discovery feeds membership through
 * {@linkcode Pool.update}, health checking feeds {@linkcode Pool.setHealth}, and the proxy
 * takes backends through the {@linkcode Picker} interface. Nobody else mutates it.
 *
 * @module
 */
import type { ConnectionCounter } from "../core/connection_counter.ts";
import type {
  Backend,
  BackendCounters,
  BackendHealth,
  Balancer,
  Candidate,
  ClientInfo,
  Lease,
  NoBackendReason,
  Picker,
} from "../core/types.ts";
import type { OnRemoval, WhenAllUnhealthy } from "../core/listener_spec.ts";

/** Health of a backend as the pool sees it; `unknown` (not checked yet) is eligible. */
export type { BackendHealth };

export type { OnRemoval, WhenAllUnhealthy };

/** Options of {@linkcode Pool}. */
export interface PoolOptions {
  /** Pool (listener) name, for logs and metrics. */
  readonly name: string;
  /** Pick policy; give each pool its own, as it caches tables per candidate array. */
  readonly balancer: Balancer;
  /**
   * How long connections to a removed backend may go on before they are closed.
   * @default {30000}
   */
  readonly drainTimeoutMs?: number;
  /**
   * What open connections to a removed backend get: `drain` (up to `drainTimeoutMs`) or `close`.
   * @default {"drain"}
   */
  readonly onRemoval?: OnRemoval;
  /**
   * With no eligible backend: `reject` new connections, or fail open to `any` member.
   * @default {"reject"}
   */
  readonly whenAllUnhealthy?: WhenAllUnhealthy;
  /**
   * Connections each backend takes at most; a backend at its limit is skipped by the
   * balancer, and when every eligible backend is full `acquire` answers `full`. A
   * backend's own `maxConnections` (from its Service's annotation) overrides it. 0 = no limit.
   * With `counterOf`, the limit is over the shared count (the whole process); a client
   * that loses a backend's last place to another pool sharing the count takes another
   * backend, and is refused only when every backend is full.
   * @default {0}
   */
  readonly maxConnectionsPerBackend?: number;
  /** Told of every connect outcome, for passive health checking. */
  readonly onConnectResult?: (key: string, ok: boolean, error?: unknown) => void;
  /**
   * A counter shared with other pools of the same name (in other workers) for a member, or
   * `undefined` to count in this pool only. When given, balancers see the shared value; asked
   * again on every {@linkcode Pool.update}. A lease releases into the counter it acquired from.
   */
  readonly counterOf?: (key: string) => ConnectionCounter | undefined;
  /**
   * Slow start: a backend that joins an already populated pool, returns from draining, or
   * turns from `unhealthy` to eligible takes a share that grows linearly from
   * {@linkcode SLOW_START_MIN_FRACTION} of its weight to all of it over this long, as
   * HAProxy's `slowstart` and Envoy's slow start mode. Backends of the first membership all
   * start at full weight (ramping them all together would change nothing). Not applied with
   * `maglev`: its table depends only on the backend set, so a weight that changes every step
   * would rebuild the table and move clients each time; a new backend there takes its slice
   * of new connections at once and open ones stay. 0 = off.
   * @default {0}
   */
  readonly slowStartMs?: number;
  /** Clock for slow start, in milliseconds. @default {performance.now} */
  readonly now?: () => number;
}

/** Share of its weight a slow-starting backend begins with. */
export const SLOW_START_MIN_FRACTION = 0.05;
/** Steps of a slow-start ramp: the candidates are rebuilt at most this often per ramp. */
const SLOW_START_STEPS = 20;

/** One backend row of {@linkcode Pool.snapshot}. */
export interface PoolBackendSnapshot {
  /** `host:port`, IPv6 in brackets; sort key of the snapshot. */
  readonly key: string;
  /** Host name or IP address, without brackets. */
  readonly host: string;
  /** TCP port. */
  readonly port: number;
  /** Relative share of new connections; 0 takes none. */
  readonly weight: number;
  /** `unknown` until {@linkcode Pool.setHealth} gives a verdict. */
  readonly health: BackendHealth;
  /** Leases of this pool not yet released (other workers' connections not included). */
  readonly activeConnections: number;
  /** Removed from the pool, open connections still draining. */
  readonly isDraining: boolean;
  /** Connection limit of the backend; 0 = none. */
  readonly maxConnections: number;
  /** Running totals (a copy). */
  readonly counters: Readonly<BackendCounters>;
  /** Why its health last changed, when it did: see {@linkcode HealthDetail}. */
  readonly healthDetail?: HealthDetail;
}

/** Why and since when a backend has its health, as the health checker said. */
export interface HealthDetail {
  /** What decided it, e.g. `active` or `passive`. */
  readonly cause: string;
  /** The failure behind an `unhealthy` verdict. */
  readonly error?: string;
  /** Wall-clock time of the change, milliseconds since the Unix epoch. */
  readonly sinceMs: number;
}

/** A point-in-time copy of the pool for printing, admin and metrics. */
export interface PoolSnapshot {
  /** Pool (listener) name. */
  readonly name: string;
  /** Members and draining backends, sorted by key. */
  readonly backends: readonly PoolBackendSnapshot[];
}

/** Default for {@linkcode PoolOptions.maxConnectionsPerBackend}: no limit. */
export const DEFAULT_MAX_CONNECTIONS_PER_BACKEND = 0;
/** Default for {@linkcode PoolOptions.drainTimeoutMs}. */
export const DEFAULT_DRAIN_TIMEOUT_MS = 30_000;
/** Default for {@linkcode PoolOptions.onRemoval}. */
export const DEFAULT_ON_REMOVAL: OnRemoval = "drain";
/**
 * Default for {@linkcode PoolOptions.whenAllUnhealthy}: refusing beats sending clients to
 * backends known to be down.
 */
export const DEFAULT_WHEN_ALL_UNHEALTHY: WhenAllUnhealthy = "reject";

class Entry implements Candidate {
  /** What balancers see: `source` with its weight scaled while it slow-starts. */
  backend: Backend;
  /** The backend as given to {@linkcode Pool.update}. */
  source: Backend;
  /** When its slow start began; `undefined` once at full weight. */
  rampFrom: number | undefined;
  /** Leases of this pool. */
  local = 0;
  counter: ConnectionCounter | undefined;
  maxConnections: number;
  health: BackendHealth = "unknown";
  healthDetail: HealthDetail | undefined;
  isDraining = false;
  drainTimer: ReturnType<typeof setTimeout> | undefined;
  controller = new AbortController();
  readonly counters: BackendCounters = {
    connections: 0,
    connectFailures: 0,
    bytesToBackend: 0,
    bytesFromBackend: 0,
  };

  constructor(backend: Backend, counter: ConnectionCounter | undefined, poolLimit: number) {
    this.backend = backend;
    this.source = backend;
    this.counter = counter;
    this.maxConnections = backend.maxConnections || poolLimit;
  }

  /**
   * What balancers and limits see: the shared count when there is one, so a backend's
   * connection limit holds for the whole process.
   */
  get activeConnections(): number {
    return this.counter === undefined ? this.local : this.counter.value;
  }
}

class PoolLease implements Lease {
  readonly backend: Backend;
  readonly signal: AbortSignal;
  readonly counters: BackendCounters;
  #entry: Entry | undefined;
  #pool: Pool;
  #counter: ConnectionCounter | undefined;

  constructor(pool: Pool, entry: Entry) {
    this.#pool = pool;
    this.#entry = entry;
    this.#counter = entry.counter;
    this.backend = entry.backend;
    this.signal = entry.controller.signal;
    this.counters = entry.counters;
  }

  reportConnect(ok: boolean, error?: unknown): void {
    this.#pool.reportConnect(this.backend.key, ok, error);
  }

  release(): void {
    const entry = this.#entry;
    if (entry === undefined) return;
    this.#entry = undefined;
    this.#counter?.release();
    this.#pool.releaseEntry(entry);
  }
}

/**
 * A live pool implementing {@linkcode Picker}.
 *
 * Eligible for new connections: members that are not draining and not `unhealthy`. When
 * none is eligible, `whenAllUnhealthy: "any"` falls back to every member (fail open). A
 * backend at its connection limit stays eligible but is skipped until a connection ends.
 */
export class Pool implements Picker {
  readonly name: string;
  #balancer: Balancer;
  #drainTimeoutMs: number;
  #onRemoval: OnRemoval;
  #whenAllUnhealthy: WhenAllUnhealthy;
  #onConnectResult: PoolOptions["onConnectResult"];
  #counterOf: PoolOptions["counterOf"];
  #maxPerBackend: number;
  #slowStartMs: number;
  readonly #now: () => number;
  /** When the candidates' ramped weights were last set; `undefined` with nothing ramping. */
  #rampedAt: number | undefined;
  #entries = new Map<string, Entry>();
  /** Candidates handed to the balancer; a new array whenever eligibility changes. */
  #eligible: Entry[] = [];
  #isFailOpen = false;

  /** Creates an empty pool; call {@linkcode Pool.update} to give it members. */
  constructor(options: PoolOptions) {
    this.name = options.name;
    this.#balancer = options.balancer;
    this.#drainTimeoutMs = options.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS;
    this.#onRemoval = options.onRemoval ?? DEFAULT_ON_REMOVAL;
    this.#whenAllUnhealthy = options.whenAllUnhealthy ?? DEFAULT_WHEN_ALL_UNHEALTHY;
    this.#onConnectResult = options.onConnectResult;
    this.#counterOf = options.counterOf;
    this.#maxPerBackend = options.maxConnectionsPerBackend ?? DEFAULT_MAX_CONNECTIONS_PER_BACKEND;
    this.#slowStartMs = options.slowStartMs ?? 0;
    this.#now = options.now ?? (() => performance.now());
  }

  /** The pick policy in use; replaced by {@linkcode Pool.configure}. */
  get balancer(): Balancer {
    return this.#balancer;
  }

  /** Number of members (not counting draining ones). */
  get size(): number {
    let n = 0;
    for (const e of this.#entries.values()) if (!e.isDraining) n++;
    return n;
  }

  /** True when new connections go to unhealthy backends because none is healthy. */
  get isFailOpen(): boolean {
    return this.#isFailOpen;
  }

  /**
   * Replaces the membership. Backends that stay keep their health and connections (their
   * weight may change); removed ones get no new connections and drain (or are closed, per
   * `onRemoval`); a removed backend that comes back while draining keeps its connections and
   * starts over as `unknown`, as health checking does.
   */
  update(backends: readonly Backend[]): void {
    const keep = new Set<string>();
    const isPopulated = this.size > 0;
    for (const backend of backends) {
      keep.add(backend.key);
      const entry = this.#entries.get(backend.key);
      if (entry === undefined) {
        const added = new Entry(backend, this.#counterOf?.(backend.key), this.#maxPerBackend);
        if (isPopulated) this.#startRamp(added);
        this.#entries.set(backend.key, added);
        continue;
      }
      entry.backend = backend;
      entry.source = backend;
      if (entry.rampFrom !== undefined) this.#rampedAt = -Infinity;
      if (this.#counterOf !== undefined) entry.counter = this.#counterOf(backend.key);
      entry.maxConnections = backend.maxConnections || this.#maxPerBackend;
      if (entry.isDraining) {
        entry.isDraining = false;
        clearTimeout(entry.drainTimer);
        entry.drainTimer = undefined;
        // Leases taken before removal keep the old (aborted) signal: those connections were
        // told to close. New leases must not start out aborted.
        if (entry.controller.signal.aborted) entry.controller = new AbortController();
        // It is a new member for health checking too (its checks stopped on removal): start
        // from `unknown` like any new backend instead of a verdict that may be stale.
        entry.health = "unknown";
        entry.healthDetail = undefined;
        this.#startRamp(entry);
      }
    }
    for (const [key, entry] of this.#entries) {
      if (keep.has(key) || entry.isDraining) continue;
      this.#remove(entry);
    }
    this.#rebuild();
  }

  /**
   * Changes the pool's settings in place, for a config reload: members keep their health,
   * connections and drain timers. A new `balancer` picks from the next connection on;
   * `drainTimeoutMs` and `onRemoval` apply to backends removed from now on;
   * `whenAllUnhealthy` applies at once.
   */
  configure(
    options: Pick<
      PoolOptions,
      "balancer" | "drainTimeoutMs" | "onRemoval" | "whenAllUnhealthy" | "slowStartMs"
    >,
  ): void {
    this.#balancer = options.balancer;
    this.#slowStartMs = options.slowStartMs ?? 0;
    this.#drainTimeoutMs = options.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS;
    this.#onRemoval = options.onRemoval ?? DEFAULT_ON_REMOVAL;
    this.#whenAllUnhealthy = options.whenAllUnhealthy ?? DEFAULT_WHEN_ALL_UNHEALTHY;
    // A fresh candidate array: balancers cache tables per array.
    this.#rebuild();
  }

  /**
   * Sets a member's health, with why and since when for `snapshot()`; unknown keys are
   * ignored.
   */
  setHealth(key: string, health: BackendHealth, detail?: HealthDetail): void {
    const entry = this.#entries.get(key);
    if (entry === undefined) return;
    if (detail !== undefined) entry.healthDetail = detail;
    if (entry.health === health) return;
    if (entry.health === "unhealthy") this.#startRamp(entry);
    entry.health = health;
    this.#rebuild();
  }

  /** Health of a member, or `undefined` when it is not in the pool. */
  health(key: string): BackendHealth | undefined {
    return this.#entries.get(key)?.health;
  }

  acquire(
    client: ClientInfo,
    exclude: ReadonlySet<string>,
    after?: string,
  ): Lease | NoBackendReason {
    if (this.#rampedAt !== undefined) this.#stepRamps();
    const eligible = this.#eligible;
    if (eligible.length === 0) {
      return this.#entries.size === 0 || this.size === 0 ? "empty" : "all_unhealthy";
    }
    let index: number;
    if (after !== undefined) {
      // A retry: the balancer made its one pick for this client already. Asking it again
      // would advance its rotation once more per failed client, so a dead backend would
      // skew the share of the others. Take the next candidate in key order instead.
      index = firstAfter(eligible, after);
    } else {
      index = this.#balancer.pick(eligible, client);
      if (index < 0) return eligible.some(isFullEntry) ? "full" : "all_unhealthy";
    }
    let isAnyFull = false;
    /** Backends whose last place another worker took between the check and the count. */
    let lost: Set<Entry> | undefined;
    let mayAskAgain = after === undefined;
    let entry = eligible[index]!;
    let shouldWalk = after !== undefined || exclude.has(entry.backend.key) || isFullEntry(entry);
    // Each round either returns or loses one more backend for good: at most n + 1 rounds.
    while (true) {
      if (shouldWalk) {
        // Walk on from the start point to the next untried backend, so the policy (and a
        // Maglev table) keeps working without rebuilding anything.
        const n = eligible.length;
        let found = -1;
        for (let step = 0; step < n; step++) {
          const j = (index + step) % n;
          const e = eligible[j]!;
          if (exclude.has(e.backend.key) || !(e.backend.weight > 0) || lost?.has(e)) continue;
          if (isFullEntry(e)) {
            isAnyFull = true;
            continue;
          }
          found = j;
          break;
        }
        if (found < 0) return isAnyFull ? "full" : "exhausted";
        index = found;
        entry = eligible[index]!;
      }
      // A shared count enforces the limit atomically: another worker may have taken the last
      // place since the check above.
      if (entry.counter === undefined || entry.counter.tryAcquire(entry.maxConnections)) {
        entry.local++;
        return new PoolLease(this, entry);
      }
      (lost ??= new Set()).add(entry);
      isAnyFull = true;
      shouldWalk = true;
      if (!mayAskAgain) continue;
      // Ask the balancer once more: the lost backend reads full now, so every policy passes
      // it over as it does a full backend (round robin takes the next turn, Maglev falls
      // through its table). Once only, so a lost race moves a rotation one extra step at
      // most; a second lost race walks on in key order.
      mayAskAgain = false;
      const again = this.#balancer.pick(eligible, client);
      if (again < 0) return "full";
      index = again;
      entry = eligible[index]!;
      shouldWalk = exclude.has(entry.backend.key) || isFullEntry(entry) || lost.has(entry);
    }
  }

  /** @internal Called by leases. */
  releaseEntry(entry: Entry): void {
    entry.local--;
    if (entry.isDraining && entry.local === 0) this.#forget(entry);
  }

  /** @internal Called by leases. */
  reportConnect(key: string, ok: boolean, error?: unknown): void {
    this.#onConnectResult?.(key, ok, error);
  }

  /** The balancer's fingerprint of the current candidates (Maglev), if it has one. */
  fingerprint(): string | undefined {
    return this.#balancer.fingerprint?.(this.#eligible);
  }

  /** A copy of the current state, members sorted by key. */
  snapshot(): PoolSnapshot {
    if (this.#rampedAt !== undefined) this.#stepRamps();
    const backends: PoolBackendSnapshot[] = [];
    for (const e of this.#entries.values()) {
      backends.push({
        key: e.backend.key,
        host: e.backend.host,
        port: e.backend.port,
        weight: e.backend.weight,
        health: e.health,
        activeConnections: e.local,
        isDraining: e.isDraining,
        maxConnections: e.maxConnections,
        counters: { ...e.counters },
        ...(e.healthDetail !== undefined && { healthDetail: e.healthDetail }),
      });
    }
    backends.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    return { name: this.name, backends };
  }

  /** Stops drain timers and aborts every lease's signal. The pool is unusable afterwards. */
  close(): void {
    for (const entry of this.#entries.values()) {
      clearTimeout(entry.drainTimer);
      entry.controller.abort(new Error(`Pool ${this.name} closed`));
    }
    this.#entries.clear();
    this.#eligible = [];
  }

  #remove(entry: Entry): void {
    if (entry.local === 0) {
      this.#forget(entry);
      return;
    }
    entry.isDraining = true;
    const reason = new Error(`Backend ${entry.backend.key} left pool ${this.name}`);
    if (this.#onRemoval === "close") {
      entry.controller.abort(reason);
      return;
    }
    entry.drainTimer = setTimeout(() => {
      entry.drainTimer = undefined;
      entry.controller.abort(reason);
    }, this.#drainTimeoutMs);
  }

  #startRamp(entry: Entry): void {
    if (this.#slowStartMs <= 0 || this.#balancer.kind === "maglev") return;
    entry.rampFrom = this.#now();
    this.#rampedAt = -Infinity;
  }

  /**
   * Sets the weights of slow-starting backends for now, at most {@linkcode SLOW_START_STEPS}
   * times per ramp: a new candidate array each time, since balancers cache per array.
   */
  #stepRamps(): void {
    const now = this.#now();
    if (now - this.#rampedAt! < this.#slowStartMs / SLOW_START_STEPS) return;
    let isRamping = false;
    for (const e of this.#entries.values()) {
      if (e.rampFrom === undefined) continue;
      const elapsed = now - e.rampFrom;
      if (this.#slowStartMs <= 0 || elapsed >= this.#slowStartMs) {
        e.rampFrom = undefined;
        e.backend = e.source;
        continue;
      }
      isRamping = true;
      const fraction = Math.max(SLOW_START_MIN_FRACTION, elapsed / this.#slowStartMs);
      e.backend = { ...e.source, weight: e.source.weight * fraction };
    }
    this.#rampedAt = isRamping ? now : undefined;
    this.#rebuild();
  }

  #forget(entry: Entry): void {
    clearTimeout(entry.drainTimer);
    if (this.#entries.get(entry.backend.key) === entry) this.#entries.delete(entry.backend.key);
  }

  #rebuild(): void {
    const healthy: Entry[] = [];
    const members: Entry[] = [];
    for (const e of this.#entries.values()) {
      if (e.isDraining) continue;
      members.push(e);
      if (e.health !== "unhealthy") healthy.push(e);
    }
    const byKey = (a: Entry, b: Entry) =>
      a.backend.key < b.backend.key ? -1 : a.backend.key > b.backend.key ? 1 : 0;
    if (healthy.length === 0 && this.#whenAllUnhealthy === "any" && members.length > 0) {
      this.#isFailOpen = true;
      this.#eligible = members.sort(byKey);
    } else {
      this.#isFailOpen = false;
      this.#eligible = healthy.sort(byKey);
    }
  }
}

function isFullEntry(e: Entry): boolean {
  return e.maxConnections > 0 && e.activeConnections >= e.maxConnections && e.backend.weight > 0;
}

/** Index of the first candidate whose key sorts after `key`, wrapping to 0. */
function firstAfter(sorted: readonly Entry[], key: string): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]!.backend.key <= key) lo = mid + 1;
    else hi = mid;
  }
  return lo % sorted.length;
}
