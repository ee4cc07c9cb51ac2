/**
 * Which {@linkcode SharedCounts} slot counts which backend (or listener): assigned by the
 * control plane, sent to every worker with the plan, stable for keys that stay.
 *
 * @module
 */

/** Slot of a key that got none because every slot is taken: it is counted per worker. */
export const NO_SLOT = -1;

/**
 * Assigns slots to keys, per group (a pool's backends, or the listeners). A key that stays
 * keeps its slot, so connections counted before a plan change are released into the same
 * slot after it. A key that leaves gives its slot up only once `isIdle(slot)` says nobody
 * counts in it any more (its draining connections have ended), and not before the next
 * batch of changes ({@linkcode SlotLayout.recycle}), so a worker still on the previous layout
 * is unlikely to count into a reused slot; if it does, a balancer sees one connection too
 * many for a moment, never a wrong backend.
 */
export class SlotLayout {
  readonly #capacity: number;
  readonly #isIdle: (slot: number) => boolean;
  readonly #groups = new Map<string, Map<string, number>>();
  #free: number[];
  #retired: number[] = [];
  #version = 0;

  /**
   * @param capacity slots available, `0 .. capacity - 1`
   * @param isIdle whether a slot counts no connection now (the shared total is 0)
   */
  constructor(capacity: number, isIdle: (slot: number) => boolean) {
    this.#capacity = capacity;
    this.#isIdle = isIdle;
    // Popped from the end: slot 0 first.
    this.#free = Array.from({ length: capacity }, (_, i) => capacity - 1 - i);
  }

  /** Grows by one on every change of any group; sent with the plans it describes. */
  get version(): number {
    return this.#version;
  }

  /** Slots in use or waiting to be reused. */
  get used(): number {
    return this.#capacity - this.#free.length;
  }

  /**
   * Sets the keys of one group.
   * @returns each key's slot, {@linkcode NO_SLOT} when none is free
   */
  set(group: string, keys: readonly string[]): ReadonlyMap<string, number> {
    const old = this.#groups.get(group) ?? new Map<string, number>();
    const next = new Map<string, number>();
    let changed = old.size !== keys.length;
    for (const key of keys) {
      if (next.has(key)) continue;
      let slot = old.get(key);
      if (slot === undefined || slot === NO_SLOT) {
        slot = this.#free.pop() ?? NO_SLOT;
        changed = true;
      }
      next.set(key, slot);
    }
    for (const [key, slot] of old) {
      if (!next.has(key)) {
        changed = true;
        if (slot !== NO_SLOT) this.#retired.push(slot);
      }
    }
    this.#groups.set(group, next);
    if (changed) this.#version++;
    return next;
  }

  /** Slots of a group as last set; empty for an unknown group. */
  get(group: string): ReadonlyMap<string, number> {
    return this.#groups.get(group) ?? new Map();
  }

  /** Drops a group; its slots are reused once idle. */
  delete(group: string): void {
    const old = this.#groups.get(group);
    if (old === undefined) return;
    this.#groups.delete(group);
    for (const slot of old.values()) if (slot !== NO_SLOT) this.#retired.push(slot);
    this.#version++;
  }

  /**
   * Frees the slots given up before this call whose counts have reached 0. Call it once at
   * the start of each batch of changes, so a slot given up within a batch is not reused in it.
   */
  recycle(): void {
    const waiting: number[] = [];
    for (const slot of this.#retired) {
      if (this.#isIdle(slot)) this.#free.push(slot);
      else waiting.push(slot);
    }
    this.#retired = waiting;
  }
}
