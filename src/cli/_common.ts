/**
 * What every subcommand shares: global options, config loading, logging setup.
 *
 * @module
 */
import type { Command } from "@commander-js/extra-typings";
import {
  type Config,
  ConfigError,
  formatIssue,
  loadConfigFile,
  type LoadedConfig,
} from "../config/mod.ts";
import { type LogFormat, type LogLevel, setupLogging } from "../log/mod.ts";
import { errorMessage } from "../core/error_message.ts";
import { CliError, EXIT_BAD, EXIT_USAGE } from "./_errors.ts";

/** What a subcommand runs, as its `_*_run.ts` module exports it; exit code through `setExit`. */
export type SubcommandRunner<F> = (
  options: F,
  command: Command,
  setExit: (code: number) => void,
  signal: AbortSignal,
) => Promise<void>;

/**
 * The action of a subcommand whose runner `load` imports only when the subcommand runs, so
 * the other commands start without what it needs.
 */
export function lazyAction<F>(
  load: () => Promise<SubcommandRunner<F>>,
  setExit: (code: number) => void,
  signal: AbortSignal,
): (options: F, command: unknown) => Promise<void> {
  return async (options, command) => {
    const run = await load();
    await run(options, command as Command, setExit, signal);
  };
}

/** Options every subcommand accepts (defined on the program). */
export interface GlobalOptions {
  config: string;
  logLevel?: string;
  logFormat?: string;
}

/** The global options as seen from a subcommand. */
export function globalsOf(command: { optsWithGlobals(): unknown }): GlobalOptions {
  return command.optsWithGlobals() as GlobalOptions;
}

const LOG_LEVELS: readonly LogLevel[] = ["trace", "debug", "info", "warning", "error", "fatal"];
const LOG_FORMATS: readonly LogFormat[] = ["text", "json"];

/** Checks a `--log-level` value. @throws {CliError} usage error */
export function parseLogLevel(value: string): LogLevel {
  if ((LOG_LEVELS as readonly string[]).includes(value)) return value as LogLevel;
  throw new CliError(
    `Cannot use --log-level "${value}": expected one of ${LOG_LEVELS.join(", ")}`,
    EXIT_USAGE,
  );
}

/** Checks a `--log-format` value. @throws {CliError} usage error */
export function parseLogFormat(value: string): LogFormat {
  if ((LOG_FORMATS as readonly string[]).includes(value)) return value as LogFormat;
  throw new CliError(
    `Cannot use --log-format "${value}": expected one of ${LOG_FORMATS.join(", ")}`,
    EXIT_USAGE,
  );
}

/**
 * Loads and validates the config file, with the hash of the bytes parsed.
 * @param signal stops waiting for and reading the file (SIGINT/SIGTERM)
 * @throws {CliError} exit 1 with every issue when invalid, exit 2 when unreadable or
 *   interrupted
 */
export async function loadConfig(path: string, signal?: AbortSignal): Promise<LoadedConfig> {
  try {
    return await loadConfigFile(path, { signal });
  } catch (error) {
    throw configLoadError(path, error, signal);
  }
}

/**
 * The CLI error for a config that could not be loaded: every issue (exit 1) for a
 * {@linkcode ConfigError}, else the reader's own message, which names the file already
 * (exit 2). Only an interruption, whose reason knows no file, gets the name added.
 */
export function configLoadError(path: string, error: unknown, signal?: AbortSignal): CliError {
  if (error instanceof ConfigError) {
    return new CliError(
      `Cannot use config ${path}: ${error.issues.length} problem(s)\n` +
        error.issues.map(formatIssue).join("\n"),
      EXIT_BAD,
      { cause: error },
    );
  }
  const detail = errorMessage(error);
  const message = signal?.aborted && error === signal.reason
    ? `Cannot read config ${JSON.stringify(path)}: interrupted: ${detail}`
    : detail + nextStep(error);
  return new CliError(message, EXIT_USAGE, { cause: error });
}

/** What to do about a config file that cannot be opened, after a colon; `""` when unsure. */
function nextStep(error: unknown): string {
  if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.IsADirectory) {
    return ": name the config file with -c PATH, or start from the annotated example " +
      "config.yaml of the NautilusLB repository";
  }
  if (error instanceof Deno.errors.PermissionDenied) {
    return ": make it readable for the user nautiluslb runs as";
  }
  return "";
}

/** Sets up logging from flags, falling back to the config's settings. */
export async function setupLoggingFrom(
  globals: GlobalOptions,
  config?: Config,
): Promise<void> {
  await setupLogging({
    level: globals.logLevel !== undefined
      ? parseLogLevel(globals.logLevel)
      : config?.settings.logLevel ?? "info",
    format: globals.logFormat !== undefined
      ? parseLogFormat(globals.logFormat)
      : config?.settings.logFormat ?? "text",
  });
}

/** Output formats of `discover` and `check`. */
export type OutputFormat = "table" | "json" | "yaml";

/** The `-o` values of `discover` and `check`. */
export const PLAN_OUTPUT_FORMATS: readonly OutputFormat[] = ["table", "json", "yaml"];

/**
 * Checks an `-o` value against the formats a command has.
 * @returns `value`, as one of `allowed`
 * @throws {CliError} usage error
 */
export function parseOutput<T extends string>(value: string, allowed: readonly T[]): T {
  if ((allowed as readonly string[]).includes(value)) return value as T;
  throw new CliError(
    `Cannot use --output "${value}": expected one of ${allowed.join(", ")}`,
    EXIT_USAGE,
  );
}
