/**
 * Entry module of a data-plane worker (a Web Worker started by {@linkcode WorkerDataPlane}):
 * a {@linkcode DataPlane} bound with `reusePort`, counting connections in the process-wide
 * {@linkcode SharedCounts}, driven by {@linkcode ToWorker} messages and reporting back with
 * {@linkcode FromWorker} messages. It holds no discovery, health scheduling or admin.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { errorMessage } from "../core/error_message.ts";
import { getLogger, setupLogging } from "../log/mod.ts";
import { DataPlane, type DataPlaneCounters } from "./data_plane.ts";
import {
  type BindResult,
  type FromWorker,
  type SlottedBackend,
  type ToWorker,
  VersionGate,
  type WorkerListener,
  type WorkerStats,
} from "./messages.ts";
import { SharedCounts } from "./shared_counts.ts";
import { SharedSourceCounts } from "./shared_source_counts.ts";
import { listenerStatsData } from "./worker_stats.ts";
import { NO_SLOT } from "./slot_layout.ts";

/** Delay that coalesces the stats posted after a change. */
const CHANGE_STATS_DELAY_MS = 5;

function post(message: FromWorker): void {
  self.postMessage(message);
}

class WorkerState {
  readonly #worker: number;
  readonly #backendCounts: SharedCounts;
  readonly #listenerCounts: SharedCounts;
  readonly #rotationCounts: SharedCounts;
  readonly #plane: DataPlane;
  readonly #gate = new VersionGate();
  readonly #listeners = new Map<string, WorkerListener>();
  readonly #slots = new Map<string, Map<string, number>>();
  readonly #backends = new Map<string, readonly SlottedBackend[]>();
  /** Keys whose last reported connect failed: the next success is reported too. */
  readonly #failing = new Set<string>();
  readonly #statsTimer: ReturnType<typeof setInterval>;
  #changeTimer: ReturnType<typeof setTimeout> | undefined;
  #queue: Promise<void> = Promise.resolve();
  /** Listeners removed or replaced, still draining; `stop` waits for them. */
  readonly #removals = new Set<Promise<unknown>>();

  constructor(init: Extract<ToWorker, { type: "init" }>) {
    this.#worker = init.worker;
    this.#backendCounts = SharedCounts.attach(init.backendCounts);
    this.#listenerCounts = SharedCounts.attach(init.listenerCounts);
    this.#rotationCounts = SharedCounts.attach(init.rotationCounts);
    const sources = init.sourceCounts && SharedSourceCounts.attach(init.sourceCounts);
    const counters: DataPlaneCounters = {
      listener: (name) => {
        const slot = this.#listeners.get(name)?.counterSlot ?? NO_SLOT;
        return slot === NO_SLOT ? undefined : this.#listenerCounts.counter(slot, this.#worker);
      },
      rotation: (pool) => {
        const slot = this.#listeners.get(pool)?.rotationSlot ?? NO_SLOT;
        return slot === NO_SLOT ? undefined : this.#rotationCounts.ticket(slot);
      },
      source: (name) => sources?.counter(name, this.#worker),
      backend: (pool, key) => {
        const slot = this.#slots.get(pool)?.get(key) ?? NO_SLOT;
        return slot === NO_SLOT ? undefined : this.#backendCounts.counter(slot, this.#worker);
      },
    };
    this.#plane = new DataPlane({
      reusePort: true,
      counters,
      logger: getLogger("proxy"),
      accessLogger: getLogger("access"),
      onConnectResult: (pool, key, ok, error) => this.#report(pool, key, ok, error),
    });
    this.#statsTimer = setInterval(() => this.#postStats(), init.statsIntervalMs);
  }

  /** Runs messages one after another: a bind or a drain finishes before the next applies. */
  handle(message: ToWorker): void {
    this.#queue = this.#queue.then(() => this.#apply(message)).catch((error) => {
      getLogger("worker").error("Worker {worker} cannot apply a {type} message: {error}", {
        worker: this.#worker,
        type: message.type,
        error: errorMessage(error),
      });
    });
  }

  async #apply(message: ToWorker): Promise<void> {
    if (message.type === "init" || !this.#gate.accept(message.version)) return;
    switch (message.type) {
      case "listeners":
        post({
          type: "bound",
          version: message.version,
          results: this.#setListeners(message.listeners),
        });
        break;
      case "backends":
        this.#setBackends(message.pool, message.backends);
        break;
      case "update":
        if (!this.#listeners.has(message.listener.name)) break;
        this.#listeners.set(message.listener.name, message.listener);
        this.#plane.update(message.listener.name, message.listener);
        break;
      case "health":
        this.#plane.setHealth(message.pool, message.key, message.health, message.detail);
        break;
      case "logging":
        await setupLogging({ level: message.logLevel, format: message.logFormat });
        break;
      case "remove": {
        const version = message.version;
        void this.#drain(message.name, message.drainMs, (forced) => {
          post({ type: "removed", version, forced });
        });
        break;
      }
      case "start":
        this.#plane.start();
        break;
      case "stop": {
        clearInterval(this.#statsTimer);
        clearTimeout(this.#changeTimer);
        const forced = await this.#plane.stop(message.drainMs);
        await Promise.all(this.#removals);
        this.#postStats();
        post({ type: "stopped", version: message.version, forced });
        self.close();
        return;
      }
    }
    this.#changed();
  }

  #setListeners(listeners: readonly WorkerListener[]): BindResult[] {
    const next = new Map(listeners.map((l) => [l.name, l]));
    for (const [name, old] of this.#listeners) {
      const spec = next.get(name);
      if (spec === undefined || JSON.stringify(spec) !== JSON.stringify(old)) {
        void this.#drain(name);
      }
    }
    const results: BindResult[] = [];
    for (const spec of listeners) {
      if (this.#listeners.has(spec.name)) {
        results.push({ name: spec.name, address: this.#addressOf(spec.name) });
        continue;
      }
      this.#listeners.set(spec.name, spec);
      try {
        const addr = this.#plane.add(spec);
        results.push({ name: spec.name, address: `${addr.hostname}:${addr.port}` });
        const backends = this.#backends.get(spec.name);
        if (backends !== undefined) this.#plane.setBackends(spec.name, backends);
      } catch (error) {
        this.#listeners.delete(spec.name);
        results.push({ name: spec.name, error: errorMessage(error) });
      }
    }
    // New listeners accept on the next `start`, sent once their pools are set: accepting
    // now would meet an empty pool until the `backends` message arrives.
    return results;
  }

  /**
   * Removes a listener: the name is free at once; its connections drain in the background
   * for up to `drainMs` (its own `drainTimeoutMs` by default), so a reload does not wait for
   * them before binding what it adds. `done` gets the connections closed at the deadline
   * (0 when the drain failed) before `stop` stops waiting for this drain.
   */
  #drain(name: string, drainMs?: number, done?: (forced: number) => void): Promise<void> {
    this.#listeners.delete(name);
    const removal = this.#plane.remove(name, drainMs).catch((error) => {
      getLogger("worker").error("Worker {worker} cannot drain listener {listener}: {error}", {
        worker: this.#worker,
        listener: name,
        error: errorMessage(error),
      });
      return 0;
    }).then((forced) => done?.(forced));
    this.#removals.add(removal);
    removal.finally(() => this.#removals.delete(removal));
    return removal;
  }

  #setBackends(pool: string, backends: readonly SlottedBackend[]): void {
    // Slots first: the pool asks for each member's counter while it updates.
    this.#slots.set(pool, new Map(backends.map((b) => [b.key, b.slot])));
    this.#backends.set(pool, backends);
    this.#plane.setBackends(pool, backends);
  }

  #addressOf(name: string): string {
    return this.#plane.snapshot().find((l) => l.name === name)?.address ?? "";
  }

  #report(pool: string, key: string, ok: boolean, error?: string): void {
    // A success matters to the control plane only after a failure (it resets the count of
    // consecutive failures); posting every success would be a message per connection.
    const id = `${pool}\u0000${key}`;
    if (ok) {
      if (!this.#failing.delete(id)) return;
    } else {
      this.#failing.add(id);
    }
    post({ type: "connect", pool, key, ok, ...(error !== undefined && { error }) });
  }

  #changed(): void {
    this.#changeTimer ??= setTimeout(() => {
      this.#changeTimer = undefined;
      this.#postStats();
    }, CHANGE_STATS_DELAY_MS);
  }

  #postStats(): void {
    const listeners: WorkerStats["listeners"][number][] = [];
    const pools: WorkerStats["pools"][number][] = [];
    for (const l of this.#plane.snapshot()) {
      listeners.push({ name: l.name, address: l.address, stats: listenerStatsData(l.stats) });
      for (const p of l.pools ?? [l]) {
        pools.push({
          pool: p.pool,
          isFailOpen: p.isFailOpen,
          ...(p.fingerprint !== undefined && { fingerprint: p.fingerprint }),
        });
      }
    }
    post({ type: "stats", stats: { version: this.#gate.last, listeners, pools } });
  }
}

let state: Promise<WorkerState | undefined> = Promise.resolve(undefined);

// Messages that arrive while `init` sets up wait behind it, in order.
self.onmessage = (event: MessageEvent<ToWorker>) => {
  const message = event.data;
  state = state.then(async (current) => {
    if (message.type !== "init") {
      current?.handle(message);
      return current;
    }
    if (current !== undefined) return current;
    await setupLogging({ level: message.logLevel, format: message.logFormat });
    const created = new WorkerState(message);
    post({ type: "ready" });
    return created;
  });
};
