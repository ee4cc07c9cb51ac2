/**
 * What every command that resolves pools does first: load the config named by the global
 * options, set up logging, and open the plan source the flags ask for.
 *
 * @module
 */
import { formatIssue, type LoadedConfig } from "../config/mod.ts";
import { getLogger } from "../log/mod.ts";
import {
  openSource,
  type PlanSource,
  PlanSourceError,
  type SourceOptions,
} from "../control/mod.ts";
import { CliError, EXIT_OK, EXIT_USAGE } from "./_errors.ts";
import { globalsOf, loadConfig, setupLoggingFrom } from "./_common.ts";

/**
 * Loads the config, sets up logging, logs the config's warnings and opens the plan source
 * `flags` choose.
 * @throws {CliError} what {@linkcode loadConfig} throws; exit 2 when the source cannot open,
 *   exit 0 when `signal` stopped it before its first sync
 */
export async function openFromFlags(
  command: { optsWithGlobals(): unknown },
  flags: SourceOptions,
  signal: AbortSignal,
): Promise<LoadedConfig & { source: PlanSource }> {
  const globals = globalsOf(command);
  const loaded = await loadConfig(globals.config, signal);
  await setupLoggingFrom(globals, loaded.config);
  // Once per start, with file, line and column; a reload does not repeat them.
  for (const w of loaded.warnings) {
    getLogger("config").warn("{warning}", { warning: formatIssue(w) });
  }
  try {
    const source = await openSource(loaded.config, {
      fromManifests: flags.fromManifests,
      namespace: flags.namespace,
      kubeconfig: flags.kubeconfig,
      context: flags.context,
      // Through a proxy the API server may be unreachable directly: retry as before.
      isOneShot: flags.isOneShot === true && !isProxyConfigured(),
    }, signal);
    return { ...loaded, source };
  } catch (error) {
    throw sourceError(error);
  }
}

/** The exit code of a source that could not open: 0 when stopped on purpose, else 2. */
function sourceError(error: unknown): unknown {
  if (!(error instanceof PlanSourceError)) return error;
  const code = error.failure === "stopped" ? EXIT_OK : EXIT_USAGE;
  return new CliError(error.message, code, { cause: error });
}

/** Whether `fetch` sends requests through a proxy named in the environment. */
function isProxyConfigured(): boolean {
  return ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"].some((name) =>
    (Deno.env.get(name) ?? "") !== ""
  );
}
