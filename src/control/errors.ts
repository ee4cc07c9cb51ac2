/**
 * The errors of the control layer: what callers catch to tell an input they cannot use from
 * a stop they asked for. No exit codes here; the command layer maps them.
 *
 * @module
 */

/**
 * Why a plan source could not open: `unreadable` for input that cannot be used (a manifests
 * path that cannot be read, a cluster that cannot be reached or listed), `stopped` when the
 * caller's signal aborted first.
 */
export type PlanSourceFailure = "unreadable" | "stopped";

/** A plan source could not open; the message names what was read, once. */
export class PlanSourceError extends Error {
  override name = "PlanSourceError";

  /**
   * @param message sentence case, no trailing period; already says which input failed
   * @param failure why the source could not open
   */
  constructor(message: string, readonly failure: PlanSourceFailure, options?: ErrorOptions) {
    super(message, options);
  }
}
