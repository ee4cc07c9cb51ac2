/**
 * The config module: YAML text to a validated, defaulted, read-only {@linkcode Config}.
 *
 * ```ts
 * import { formatIssue, parseConfig } from "./mod.ts";
 *
 * const result = parseConfig(await Deno.readTextFile("config.yaml"), "config.yaml");
 * if (!result.ok) for (const issue of result.issues) console.log(formatIssue(issue));
 * ```
 *
 * Every problem is reported at once, each with file, line, column and path, e.g.
 * `config.yaml:12:22: configurations[1].listenerAddress: port 70000 is out of range 1-65535`.
 *
 * @module
 */
export type {
  BackendMode,
  Config,
  ListenerConfig,
  LogFormat,
  LogLevel,
  NodeAddressType,
  OnRemoval,
  SettingsConfig,
  StaticBackendSpec,
  WhenAllUnhealthy,
  WorkerCount,
} from "./types.ts";
export type { PoolSpec } from "../core/pool_spec.ts";
export { ConfigError, type ConfigIssue, formatIssue, formatPath } from "./issue.ts";
export { parseConfig, type ParseResult } from "./parse.ts";
export {
  loadConfigFile,
  type LoadedConfig,
  MAX_CONFIG_BYTES,
  type ReadConfigOptions,
  readConfigText,
} from "./load.ts";
export * from "./defaults.ts";
export { parseStatusRanges } from "./schema.ts";
export {
  type ConfigDiff,
  describeDiff,
  diffConfig,
  IN_PLACE_LISTENER_FIELDS,
  isEmptyDiff,
  type ListenerChange,
} from "./diff.ts";
