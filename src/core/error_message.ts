/**
 * The message of a caught value, for logs and error texts.
 *
 * @module
 */

/**
 * The text of something caught: an `Error`'s `message`, anything else as `String(value)`.
 * Never throws (a value whose `toString` throws gives a fixed placeholder).
 *
 * @example
 * ```ts
 * try {
 *   await Deno.connect({ port: 1 });
 * } catch (error) {
 *   console.error(`Cannot connect: ${errorMessage(error)}`);
 * }
 * ```
 */
export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message;
  try {
    return String(error);
  } catch {
    return "unprintable error";
  }
}

/**
 * The message of a file-system error without the `: op 'path'` Deno appends
 * (`No such file or directory (os error 2): stat 'x.yaml'` → `… (os error 2)`), for a
 * caller that names the path itself: the path is then said once.
 */
export function fileErrorMessage(error: unknown): string {
  return errorMessage(error).replace(/: [a-z]+ '[^']*'$/, "");
}
