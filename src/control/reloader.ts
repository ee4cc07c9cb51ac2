/**
 * Config hot reload: read the file again, validate it, and apply the difference through the
 * {@linkcode Runtime} without dropping a connection; and between reloads, hand every plan
 * change of the current source to the runtime. Triggers (SIGHUP, a watch of the file's
 * directory) belong to the command; this file does one reload at a time.
 *
 * @module
 */
import {
  type Config,
  type ConfigDiff,
  ConfigError,
  describeDiff,
  diffConfig,
  formatIssue,
  IN_PLACE_LISTENER_FIELDS,
  isEmptyDiff,
  type ListenerConfig,
  loadConfigFile,
  type LoadedConfig,
  type SettingsConfig,
} from "../config/mod.ts";
import {
  type AdminConfigStatus,
  type AdminReload,
  type AdminReloadOutcome,
  MAX_RECENT_RELOADS,
} from "../admin/mod.ts";
import { bindHostname, parseHostPort } from "../core/address.ts";
import { errorMessage } from "../core/error_message.ts";
import type { PoolPlan } from "../core/plan.ts";
import { getLogger, type LogFormat, type LogLevel, setupLogging } from "../log/mod.ts";
import type { ListenerChanges, Runtime, RuntimeAdmin } from "../runtime/mod.ts";
import type { OpenSource } from "./open_source.ts";
import { selectListeners, type SourceOptions } from "./plans.ts";
import type { PlanSource } from "./plan_source.ts";

/** Options of {@linkcode ConfigReloader}. */
export interface ConfigReloaderOptions {
  /** The config file, as given on the command line; also the name in messages. */
  readonly path: string;
  /** The running config. */
  readonly config: Config;
  /** SHA-256 of the bytes the running config was parsed from ({@linkcode LoadedConfig}). */
  readonly sha256: string;
  /** The source of the running config's plans; owned by the reloader from now on. */
  readonly source: PlanSource;
  /** How the running source was chosen (manifests, kubeconfig, context). */
  readonly sourceOptions: SourceOptions;
  /** Opens the source of a new config. */
  readonly openSource: OpenSource;
  /** `--log-level` and `--log-format` as given: they win over the file's, on reload too. */
  readonly logFlags: { readonly level?: LogLevel; readonly format?: LogFormat };
  /** `--admin-address`: replaces `settings.adminAddress` of every config loaded. */
  readonly adminAddress?: string;
  /** Stops reading the file and aborts sources opened by a reload. */
  readonly signal: AbortSignal;
  /** Now, in ms since the epoch. @default {Date.now} */
  readonly now?: () => number;
}

/** Settings applied by a reload; the others are read once at start. */
const RELOADABLE_SETTINGS: ReadonlySet<keyof SettingsConfig> = new Set<keyof SettingsConfig>([
  "adminAddress",
  "logLevel",
  "logFormat",
  "kubeconfigPath",
  "shutdownDelayMs",
]);

const log = getLogger("config");

/**
 * Owns the running config and its plan source across reloads. Create it, start the
 * {@linkcode Runtime} with {@linkcode ConfigReloader.discovery} and
 * {@linkcode ConfigReloader.status}, then {@linkcode ConfigReloader.attach} the runtime and
 * run {@linkcode ConfigReloader.follow} to feed it plans.
 */
export class ConfigReloader {
  readonly #options: ConfigReloaderOptions;
  readonly #now: () => number;
  #config: Config;
  #listeners: readonly ListenerConfig[];
  #source: PlanSource;
  #plans: readonly PoolPlan[];
  #sha256: string;
  #succeeded = 0;
  #failed = 0;
  #lastSuccessAt: number;
  #recent: AdminReload[] = [];
  #runtime: Runtime | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  #isClosed = false;

  /** Takes over the running config and its source; nothing runs until `attach`. */
  constructor(options: ConfigReloaderOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#config = options.config;
    this.#source = options.source;
    this.#listeners = options.source.listeners;
    this.#plans = options.source.plans;
    this.#sha256 = options.sha256;
    this.#lastSuccessAt = this.#now();
  }

  /** The config file, as given. */
  get path(): string {
    return this.#options.path;
  }

  /** The running config. */
  get config(): Config {
    return this.#config;
  }

  /** The log setup in effect: `--log-level`/`--log-format` over the running config's. */
  get logging(): { readonly level: LogLevel; readonly format: LogFormat } {
    const flags = this.#options.logFlags;
    return {
      level: flags.level ?? this.#config.settings.logLevel,
      format: flags.format ?? this.#config.settings.logFormat,
    };
  }

  /** The current plan source. */
  get source(): PlanSource {
    return this.#source;
  }

  /** Reload counters and the running file's hash, for metrics. */
  status(): AdminConfigStatus {
    return {
      reloadsSucceeded: this.#succeeded,
      reloadsFailed: this.#failed,
      lastSuccessAt: this.#lastSuccessAt,
      sha256: this.#sha256,
      recentReloads: [...this.#recent],
    };
  }

  /** The runtime that reloads apply to. */
  attach(runtime: Runtime): void {
    this.#runtime = runtime;
  }

  /**
   * Hands every plan change of the current source to the runtime, following the source a
   * reload swaps in, until {@linkcode ConfigReloader.close}.
   */
  async follow(): Promise<void> {
    while (!this.#isClosed) {
      const source = this.#source;
      for await (const plans of source.updates()) {
        if (this.#source !== source) break;
        this.#plans = plans;
        try {
          this.#runtime?.apply(plans);
        } catch (error) {
          // Keep serving the pools we have; the next change gets another chance.
          log.error("Cannot apply new pools, keeping the current ones: {error}", { error });
        }
      }
      if (this.#source === source) return;
    }
  }

  /**
   * Reads the file and applies it. Reloads run one at a time, in call order.
   * @param onlyIfChanged skip quietly when the file's bytes are those running (file watch)
   */
  reload(onlyIfChanged = false): Promise<AdminReloadOutcome> {
    const run = () => this.#reload(onlyIfChanged);
    const result = this.#queue.then(run, run);
    this.#queue = result.catch(() => {});
    return result;
  }

  /** Waits for a reload under way, then closes the current source. Idempotent. */
  async close(): Promise<void> {
    this.#isClosed = true;
    await this.#queue;
    await this.#source.close();
  }

  /** Keeps the latest {@linkcode MAX_RECENT_RELOADS} reloads for the status page. */
  #record(outcome: AdminReloadOutcome, summary: string): AdminReloadOutcome {
    this.#recent.push({ atMs: this.#now(), outcome, summary: summary.split("\n", 1)[0] ?? "" });
    if (this.#recent.length > MAX_RECENT_RELOADS) this.#recent.shift();
    return outcome;
  }

  async #reload(onlyIfChanged: boolean): Promise<AdminReloadOutcome> {
    const path = this.#options.path;
    const runtime = this.#runtime;
    if (this.#isClosed || runtime === undefined) return "refused";
    let loaded: LoadedConfig;
    try {
      loaded = await loadConfigFile(path, { signal: this.#options.signal });
    } catch (error) {
      if (error instanceof ConfigError) {
        const problems = error.issues.map(formatIssue);
        return this.#refuse(
          "Cannot reload {path}: {count} problem(s), keeping the running config\n{problems}",
          { path, count: problems.length, problems: problems.join("\n"), issues: problems },
        );
      }
      // The reader's message names the file already.
      return this.#refuse("Cannot reload, keeping the running config: {error}", {
        path,
        error: errorMessage(error),
      });
    }
    const { sha256 } = loaded;
    if (onlyIfChanged && sha256 === this.#sha256) return "unchanged";
    const admin = this.#options.adminAddress;
    const next = admin === undefined
      ? loaded.config
      : { ...loaded.config, settings: { ...loaded.config.settings, adminAddress: admin } };
    const nextListeners = selectListeners(next, this.#options.sourceOptions);
    const diff = diffConfig(
      { ...this.#config, configurations: this.#listeners },
      { ...next, configurations: nextListeners },
    );
    let source: PlanSource | undefined;
    if (needsNewSource(diff)) {
      try {
        // The old source keeps feeding the running pools until this one has its plans.
        source = await this.#options.openSource(
          next,
          this.#options.sourceOptions,
          this.#options.signal,
        );
      } catch (error) {
        return this.#refuse(
          "Cannot reload {path}: cannot discover pools, keeping the running config: {error}",
          { path, error: errorMessage(error) },
        );
      }
    }
    const changes: ListenerChanges = {
      add: diff.added,
      remove: diff.removed.map((l) => l.name),
      rebind: diff.rebound.map((c) => c.after),
      update: diff.changed.map((c) => c.after),
      // The new admin server binds with the new listeners; the old one closes after.
      ...(diff.settings.includes("adminAddress") &&
        { admin: adminOf(next.settings.adminAddress) ?? null }),
    };
    try {
      await runtime.reconfigure(changes, source?.plans ?? this.#plans);
    } catch (error) {
      await source?.close();
      return this.#refuse("Cannot reload {path}, keeping the running config: {error}", {
        path,
        error: errorMessage(error),
      });
    }
    if (source !== undefined) {
      const old = this.#source;
      this.#source = source;
      this.#plans = source.plans;
      await old.close();
    }
    const loggingBefore = this.logging;
    this.#config = next;
    this.#listeners = nextListeners;
    this.#sha256 = sha256;
    this.#succeeded++;
    this.#lastSuccessAt = this.#now();
    await this.#applyLogging(loggingBefore);
    if (isEmptyDiff(diff)) {
      log.info("Reloaded {path}: no change", { path });
      return this.#record("unchanged", "no change");
    }
    const summary = describeDiff(diff);
    log.info("Reloaded {path}: {summary}", { path, summary });
    this.#logSettingEffects(diff, nextListeners);
    return this.#record("applied", summary);
  }

  /** Sets logging up again when the level or format in effect changed. */
  async #applyLogging(before: { readonly level: LogLevel; readonly format: LogFormat }) {
    const logging = this.logging;
    if (logging.level === before.level && logging.format === before.format) return;
    await setupLogging(logging);
    this.#runtime?.setLogging(logging);
  }

  /**
   * Says what a changed setting that is not simply applied did: one a start flag overrides
   * changed nothing; `settings.accessLog` is the default of every listener without its own,
   * so it took effect with those listeners (or changed nothing); the others wait for the
   * next start.
   */
  #logSettingEffects(diff: ConfigDiff, listeners: readonly ListenerConfig[]): void {
    const later: string[] = [];
    const flags = this.#options.logFlags;
    const overridden: Partial<Record<keyof SettingsConfig, string | undefined>> = {
      logLevel: flags.level === undefined ? undefined : `--log-level ${flags.level}`,
      logFormat: flags.format === undefined ? undefined : `--log-format ${flags.format}`,
      kubeconfigPath: this.#options.sourceOptions.kubeconfig === undefined
        ? undefined
        : "--kubeconfig",
    };
    for (const key of diff.settings) {
      const flag = overridden[key];
      if (flag !== undefined) {
        log.info("settings.{key} of {path} changed, but {flag} given at start still wins", {
          key,
          path: this.#options.path,
          flag,
        });
        continue;
      }
      if (RELOADABLE_SETTINGS.has(key)) continue;
      if (key !== "accessLog") {
        later.push(key);
        continue;
      }
      const inheriting = [...diff.rebound, ...diff.changed]
        .filter((c) => c.fields.includes("accessLog"))
        .map((c) => c.name);
      const accessLog = this.#config.settings.accessLog ? "on" : "off";
      if (inheriting.length > 0) {
        log.info("Access log {accessLog} from now on for listener(s) {listeners} of {path}", {
          accessLog,
          listeners: inheriting.join(", "),
          path: this.#options.path,
        });
      } else {
        log.info(
          "settings.accessLog of {path} changed no listener: {reason}",
          {
            path: this.#options.path,
            reason: listeners.length === 0 ? "there are none" : "each sets its own accessLog",
          },
        );
      }
    }
    if (later.length > 0) {
      log.warn("Settings {settings} of {path} take effect at the next start", {
        settings: later.join(", "),
        path: this.#options.path,
      });
    }
  }

  #refuse(message: string, properties: Record<string, unknown>): AdminReloadOutcome {
    this.#failed++;
    log.error(message, properties);
    // The status page shows the message as the log's text format renders it.
    const text = message.replace(/\{(\w+)\}/g, (_, key: string) => String(properties[key]));
    return this.#record("refused", text);
  }
}

/**
 * Where the admin server of `settings.adminAddress` listens; `undefined` for `""` (no admin
 * server). A missing host (`:9090`) is loopback, so metrics are not exposed by accident.
 * @throws {SyntaxError|RangeError} when `address` is not a valid `host:port` (config
 *   validates it first)
 */
export function adminOf(address: string): RuntimeAdmin | undefined {
  if (address === "") return undefined;
  const { host, port } = parseHostPort(address);
  return { hostname: bindHostname(host, "127.0.0.1"), port, address };
}

/**
 * True when the plans must be resolved again: listeners come or go, a pool's membership
 * or health settings changed, or where to discover from changed.
 */
function needsNewSource(diff: ConfigDiff): boolean {
  if (diff.added.length > 0 || diff.removed.length > 0 || diff.rebound.length > 0) return true;
  if (diff.settings.includes("kubeconfigPath")) return true;
  return diff.changed.some((c) => c.fields.some((f) => !IN_PLACE_LISTENER_FIELDS.has(f)));
}
