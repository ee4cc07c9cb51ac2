/**
 * Reading a config file from disk.
 *
 * @module
 */
import { ConfigError } from "./issue.ts";
import { parseConfig } from "./parse.ts";
import type { Config } from "./types.ts";

/**
 * Reads and parses a config file.
 *
 * @param path file to read; also the name used in issues
 * @returns the validated config (warnings are dropped; use {@linkcode parseConfig} to see them)
 * @throws {ConfigError} when the file is readable but not a valid config
 * @throws the error of `Deno.readTextFile` (e.g. `Deno.errors.NotFound`,
 *   `Deno.errors.PermissionDenied`), same class, re-thrown with the message
 *   `Cannot read config "PATH": ...` and the original as `cause`, when the file cannot be read
 */
export async function loadConfigFile(path: string): Promise<Config> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    throw readError(path, error);
  }
  const result = parseConfig(text, path);
  if (!result.ok) throw new ConfigError(result.issues);
  return result.config;
}

function readError(path: string, error: unknown): Error {
  const detail = error instanceof Error
    ? error.message.replace(/: [a-z]+ '[^']*'$/, "")
    : String(error);
  const message = `Cannot read config ${JSON.stringify(path)}: ${detail}`;
  if (error instanceof Error) {
    const Class = error.constructor as new (message: string, options?: ErrorOptions) => Error;
    try {
      const wrapped = new Class(message, { cause: error });
      if (wrapped instanceof Error) return wrapped;
    } catch {
      // Not constructible like Error; fall through to a plain Error.
    }
  }
  return new Error(message, { cause: error });
}
