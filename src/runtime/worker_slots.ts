/**
 * The shared memory of a worker data plane and who holds which slot in it: per-backend and
 * per-listener connection counts, one `round_robin` rotation per listener, and the
 * per-source counts of `maxConnectionsPerSource` (a sketch, no slots). The control
 * plane assigns slots; workers only count in them.
 *
 * @module
 */
import type { SlottedBackend } from "./messages.ts";
import { SharedCounts, type SharedCountsInit } from "./shared_counts.ts";
import { NO_SLOT, SlotLayout } from "./slot_layout.ts";
import { SharedSourceCounts, type SharedSourceCountsInit } from "./shared_source_counts.ts";

/** Backends with a process-wide connection count, over all pools, by default. */
export const DEFAULT_BACKEND_SLOTS = 65_536;
/** Listeners with a process-wide connection limit and rotation, by default. */
export const DEFAULT_LISTENER_SLOTS = 1_024;

/** The shared buffers a worker attaches to, as the `init` message carries them. */
export interface WorkerSlotsInit {
  readonly backendCounts: SharedCountsInit;
  readonly listenerCounts: SharedCountsInit;
  readonly rotationCounts: SharedCountsInit;
  readonly sourceCounts: SharedSourceCountsInit;
}

/** Slots of one listener. */
export interface ListenerSlots {
  /** Its process-wide connection count, or {@linkcode NO_SLOT} when the slots ran out. */
  readonly counterSlot: number;
  /** Its shared `round_robin` rotation, or {@linkcode NO_SLOT}. */
  readonly rotationSlot: number;
}

/**
 * Slot layouts over shared counts. A slot is reused only once its count is back to 0 and
 * at the next batch of changes, so a worker still on the previous layout never counts into
 * another backend's slot.
 */
export class WorkerSlots {
  readonly #backendCounts: SharedCounts;
  readonly #listenerCounts: SharedCounts;
  readonly #backendLayout: SlotLayout;
  readonly #listenerLayout: SlotLayout;
  /** Shared `round_robin` rotations, one per listener; any start value is as good. */
  readonly #rotationCounts: SharedCounts;
  readonly #rotationLayout: SlotLayout;
  readonly #sourceCounts: SharedSourceCounts;

  /**
   * @param workers workers that count (one row each)
   * @param backendSlots backends with a process-wide count, over all pools
   * @param listenerSlots listeners with a process-wide count and rotation
   */
  constructor(workers: number, backendSlots: number, listenerSlots: number) {
    this.#backendCounts = SharedCounts.create(backendSlots, workers);
    this.#listenerCounts = SharedCounts.create(listenerSlots, workers);
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
    this.#sourceCounts = SharedSourceCounts.create(workers);
  }

  /** What a worker attaches to. */
  get init(): WorkerSlotsInit {
    return {
      backendCounts: this.#backendCounts.init,
      listenerCounts: this.#listenerCounts.init,
      rotationCounts: this.#rotationCounts.init,
      sourceCounts: this.#sourceCounts.init,
    };
  }

  /** Version of the backend layout; a worker applies a membership only on this layout. */
  get backendLayoutVersion(): number {
    return this.#backendLayout.version;
  }

  /** Lays the listeners out anew, `names` in order; slots of those that stay are kept. */
  setListeners(names: readonly string[]): ReadonlyMap<string, ListenerSlots> {
    this.#listenerLayout.recycle();
    const counters = this.#listenerLayout.set("listeners", names);
    this.#rotationLayout.recycle();
    const rotations = this.#rotationLayout.set("rotation", names);
    return new Map(names.map((name) => [name, {
      counterSlot: counters.get(name) ?? NO_SLOT,
      rotationSlot: rotations.get(name) ?? NO_SLOT,
    }]));
  }

  /** Gives every backend of pool `name` its slot (stable for backends that stay). */
  setBackends<B extends { readonly key: string }>(
    name: string,
    backends: readonly B[],
  ): (B & Pick<SlottedBackend, "slot">)[] {
    this.#backendLayout.recycle();
    const slots = this.#backendLayout.set(name, backends.map((b) => b.key));
    return backends.map((b) => ({ ...b, slot: slots.get(b.key) ?? NO_SLOT }));
  }

  /** Frees the slots of a removed pool. */
  deletePool(name: string): void {
    this.#backendLayout.delete(name);
  }

  /** Connections open now in a listener slot, over all workers; 0 for {@linkcode NO_SLOT}. */
  listenerActive(slot: number): number {
    return slot === NO_SLOT ? 0 : this.#listenerCounts.total(slot);
  }

  /** Connections open now in a backend slot, over all workers; 0 for {@linkcode NO_SLOT}. */
  backendActive(slot: number): number {
    return slot === NO_SLOT ? 0 : this.#backendCounts.total(slot);
  }

  /**
   * Releases what a dead worker counted.
   * @returns the client connections it had open
   */
  reclaim(worker: number): number {
    this.#backendCounts.reclaim(worker);
    this.#sourceCounts.reclaim(worker);
    return this.#listenerCounts.reclaim(worker);
  }
}
