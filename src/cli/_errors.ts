/**
 * Exit codes and the error that carries one.
 *
 * @module
 */

/** Process exit codes, stable for scripts and CI. */
export const EXIT_OK = 0;
/** The checked thing is bad: invalid config, a pool with no healthy backend, bind failure. */
export const EXIT_BAD = 1;
/** Usage error or unreadable input (file, cluster). */
export const EXIT_USAGE = 2;

/** An error that ends a command with a given exit code; its message goes to stderr. */
export class CliError extends Error {
  /** What `run` returns, usually {@linkcode EXIT_BAD} or {@linkcode EXIT_USAGE}. */
  readonly exitCode: number;
  /**
   * Prints nothing itself: `run` catches it, prints the message and returns `exitCode`.
   *
   * @param message printed to stderr after `nautiluslb: `; sentence case, no trailing period
   * @param exitCode one of the `EXIT_*` codes
   */
  constructor(message: string, exitCode: number, options?: ErrorOptions) {
    super(message, options);
    this.name = "CliError";
    this.exitCode = exitCode;
  }
}
