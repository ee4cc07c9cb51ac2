/**
 * What `nautiluslb serve` runs: `--dry-run`, or the runtime with reload on SIGHUP and
 * `--watch-config`, until SIGTERM/SIGINT.
 *
 * @module
 */
import type { Command } from "@commander-js/extra-typings";
import type { Config } from "../config/mod.ts";
import { errorMessage } from "../core/error_message.ts";
import { getLogger, writeOut } from "../log/mod.ts";
import { fdLimitWarning, readOpenFilesLimit } from "../core/fd_limit.ts";
import { availableCpus, reusePortSupported, Runtime, workersUnsupported } from "../runtime/mod.ts";
import { healthTargetsOf } from "../resolve/mod.ts";
import { DEFAULT_PROBE_CONCURRENCY, poolsDown, probeAll } from "./_check.ts";
import { parseHostPort } from "../core/address.ts";
import { type BindCheckOptions, bindProblems } from "./_bind_check.ts";
import { CliError, EXIT_BAD, EXIT_OK, EXIT_USAGE } from "./_errors.ts";
import { renderPlans } from "./_render.ts";
import { openFromFlags } from "./_open.ts";
import { adminOf, ConfigReloader, openSource, type PlanSource } from "../control/mod.ts";
import { globalsOf, parseLogFormat, parseLogLevel } from "./_common.ts";
import { onSighup, watchConfigDir } from "./_config_watch.ts";

/** `serve`'s own options, as the command line gives them. */
export interface ServeFlags {
  readonly dryRun?: true;
  readonly fromManifests?: string;
  readonly kubeconfig?: string;
  readonly context?: string;
  readonly watchConfig?: true;
  readonly adminAddress?: string;
  /** Another process serves these listeners and hands them over (`SO_REUSEPORT`). */
  readonly handover?: true;
}

/** Runs `serve` with `options`; sets the exit code through `setExit`. */
export async function runServe(
  options: ServeFlags,
  command: Command,
  setExit: (code: number) => void,
  signal: AbortSignal,
): Promise<void> {
  // SIGHUP ends a process that does not listen for it: listen from the start (discovery
  // may take seconds) and reload once the runtime runs.
  const early = { isPending: false, stop: () => {} };
  if (!options.dryRun) early.stop = onSighup(() => early.isPending = true);
  let opened;
  try {
    opened = await openFromFlags(
      command,
      { ...options, isOneShot: options.dryRun === true },
      signal,
    );
  } catch (error) {
    early.stop();
    throw error;
  }
  const { source, sha256 } = opened;
  let config = opened.config;
  if (options.adminAddress !== undefined) {
    config = {
      ...config,
      settings: { ...config.settings, adminAddress: checkAdminAddress(options.adminAddress) },
    };
  }
  try {
    const bindCheck = { isHandover: options.handover === true, canReusePort: reusePortSupported() };
    if (options.dryRun) {
      setExit(await dryRun(config, source, bindCheck, signal));
      return;
    }
    // Before the runtime binds with SO_REUSEPORT, which would share a served port silently.
    const problems = bindProblems(config, bindCheck);
    if (problems.length > 0) {
      throw new CliError(`Cannot start listeners: ${problems.join("; ")}`, EXIT_BAD);
    }
    const globals = globalsOf(command);
    const reloader = new ConfigReloader({
      path: globals.config,
      config,
      sha256,
      source,
      sourceOptions: {
        fromManifests: options.fromManifests,
        kubeconfig: options.kubeconfig,
        context: options.context,
      },
      openSource,
      logFlags: {
        level: globals.logLevel === undefined ? undefined : parseLogLevel(globals.logLevel),
        format: globals.logFormat === undefined ? undefined : parseLogFormat(globals.logFormat),
      },
      adminAddress: options.adminAddress,
      signal,
    });
    try {
      setExit(await serve(reloader, signal, options.watchConfig === true, early));
    } finally {
      await reloader.close();
    }
  } finally {
    early.stop();
    await source.close();
  }
}

/**
 * `serve --dry-run`: what `discover` resolves, one health round as `check` runs it, and
 * whether every listener (and the admin address) could bind. Binds nothing for traffic.
 */
async function dryRun(
  config: Config,
  source: PlanSource,
  bindCheck: BindCheckOptions,
  signal: AbortSignal,
): Promise<number> {
  const plans = source.plans;
  const targets = healthTargetsOf(plans);
  const health = await probeAll(targets, DEFAULT_PROBE_CONCURRENCY, signal);
  writeOut(renderPlans(plans, { format: "table", explain: true, health }));
  const problems = bindProblems(config, bindCheck);
  for (const plan of plans) {
    if (plan.backends.length === 0) problems.push(`${plan.name}: pool has no backends`);
    else if (poolsDown([plan], health).length > 0) {
      problems.push(`${plan.name}: no healthy backend (0/${plan.backends.length})`);
    }
  }
  if (problems.length > 0) {
    writeOut(`\nDry run found ${problems.length} problem(s):\n${problems.join("\n")}\n`);
    return EXIT_BAD;
  }
  writeOut(
    `\nDry run ok: ${config.configurations.length} listener(s) can bind, every pool has a healthy backend\n`,
  );
  return EXIT_OK;
}

/** Checks `--admin-address`. @throws {CliError} usage error */
function checkAdminAddress(value: string): string {
  if (value === "") return value;
  try {
    parseHostPort(value);
    return value;
  } catch (error) {
    throw new CliError(
      `Cannot use --admin-address "${value}": ${errorMessage(error)}`,
      EXIT_USAGE,
      { cause: error },
    );
  }
}

async function serve(
  reloader: ConfigReloader,
  signal: AbortSignal,
  watchConfig: boolean,
  early: { readonly isPending: boolean; stop(): void },
): Promise<number> {
  const log = getLogger("serve");
  log.info("Serving config {path}", { path: reloader.path });
  // The reloader owns the source from now on and replaces it on reload: read it there.
  const config = reloader.config;
  const source = reloader.source;
  const fdLimit = readOpenFilesLimit();
  const fdWarning = fdLimit &&
    fdLimitWarning(fdLimit.soft, source.listeners.map((l) => l.maxConnections), {
      hardLimit: fdLimit.hard,
    });
  if (fdWarning) log.warn(fdWarning);
  const admin = adminOf(config.settings.adminAddress);
  const workers = workerCount(config);
  let runtime: Runtime;
  try {
    runtime = await Runtime.start({
      workers,
      // Workers log as this isolate does: --log-level and --log-format over the settings.
      logging: reloader.logging,
      listeners: source.listeners,
      healthTargets: healthTargetsOf,
      discovery: () => ({ source: reloader.source.kind, ...reloader.source.status() }),
      config: () => reloader.status(),
      // Listeners in this isolate bind with it for a handover; workers always do.
      reusePort: reusePortSupported(),
      admin,
      signal,
    }, source.plans);
  } catch (error) {
    throw new CliError(errorMessage(error), EXIT_BAD, { cause: error });
  }
  reloader.attach(runtime);
  const watching = reloader.follow();
  const reload = () => void reloader.reload();
  const stopHangup = onSighup(reload);
  early.stop();
  if (early.isPending) reload();
  const watcher = watchConfig
    ? watchConfigDir(reloader.path, {
      onChange: () => void reloader.reload(true),
      signal,
    }).catch((error) => {
      log.error("Cannot watch config {path}, reload with SIGHUP instead: {error}", {
        path: reloader.path,
        error,
      });
    })
    : Promise.resolve();

  await untilAborted(signal);
  stopHangup();
  runtime.beginShutdown();
  const delayMs = reloader.config.settings.shutdownDelayMs;
  if (delayMs > 0) {
    // Readiness fails from now on; keep accepting while probes and upstream balancers notice.
    log.info("Shutting down: /readyz fails, still accepting for {delayMs}ms", { delayMs });
    await new Promise((resolve) => setTimeout(resolve, delayMs));
  }
  const { forced } = await runtime.stop();
  await reloader.close();
  await watching;
  await watcher;
  log.info("Stopped; {forced} connection(s) closed at the drain deadline", { forced });
  return EXIT_OK;
}

/**
 * `settings.workers` as a number: `auto` is the CPUs the process may use (1 where workers
 * cannot run, with a warning); an explicit count above 1 where they cannot is refused.
 */
function workerCount(config: Config): number {
  const log = getLogger("serve");
  const setting = config.settings.workers;
  const wanted = setting === "auto" ? availableCpus() : setting;
  if (wanted <= 1) return 1;
  const problem = workersUnsupported();
  if (problem === undefined) {
    log.info("Running the data plane in {workers} workers", { workers: wanted });
    return wanted;
  }
  if (setting === "auto") {
    log.warn("Running the data plane in the main isolate instead of {workers} workers: {problem}", {
      workers: wanted,
      problem,
    });
    return 1;
  }
  throw new CliError(`Cannot run ${wanted} workers: ${problem}`, EXIT_BAD);
}

/** Resolves once `signal` aborts (at once when it has). */
function untilAborted(signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener("abort", () => resolve(), { once: true });
  });
}
