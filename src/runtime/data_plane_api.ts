/**
 * The one method set of a data plane, whether it runs in this isolate
 * ({@linkcode DataPlane}) or in workers ({@linkcode WorkerDataPlane}); the
 * {@linkcode Runtime} drives either through it.
 *
 * @module
 */
import type { Backend, BackendHealth } from "../core/types.ts";
import type { HealthDetail } from "../pool/mod.ts";
import type { DataPlaneListener, DataPlaneListenerSnapshot } from "./data_plane.ts";

/** What the control plane calls on a data plane. See {@linkcode DataPlane} for contracts. */
export interface DataPlaneApi {
  /** Names of the listeners, in the order they were added. */
  readonly names: string[];
  /** Client connections open now, across listeners. */
  readonly activeConnections: number;
  /** Creates a listener's pool and binds its socket; accepting starts with `start`. */
  add(spec: DataPlaneListener): Deno.NetAddr | Promise<Deno.NetAddr>;
  /** Starts accepting on every bound listener that does not accept yet. */
  start(): void;
  /** Replaces a pool's membership; unknown names are ignored. */
  setBackends(name: string, backends: readonly Backend[]): void;
  /**
   * Changes a running listener's settings in place (a config reload); unknown names are
   * ignored.
   * @throws {TypeError} when `spec` has another name or address
   */
  update(name: string, spec: DataPlaneListener): void;
  /** Applies a health verdict, with why and since when; unknown names and keys are ignored. */
  setHealth(name: string, key: string, health: BackendHealth, detail?: HealthDetail): void;
  /** Every listener and its pool, for admin. */
  snapshot(): DataPlaneListenerSnapshot[];
  /** Drains and closes one listener. */
  remove(name: string, drainMs?: number): Promise<number>;
  /** Drains and closes every listener. */
  stop(drainMs?: number): Promise<number>;
}
