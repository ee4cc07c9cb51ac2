/**
 * What changed between two configs, listener by listener, for a hot reload. Pure: the
 * caller decides what to do with each part (bind, drain, update in place, re-resolve).
 *
 * @module
 */
import type { Config, ListenerConfig, SettingsConfig } from "./types.ts";

/** One listener present in both configs under the same name, with what differs. */
export interface ListenerChange {
  /** Listener name, the same in both. */
  readonly name: string;
  /** The running listener's config. */
  readonly before: ListenerConfig;
  /** The config to apply. */
  readonly after: ListenerConfig;
  /**
   * Keys of {@linkcode ListenerConfig} that differ, in the order of `after`'s keys; `host`
   * and `port` are folded into `listenerAddress`.
   */
  readonly fields: readonly (keyof ListenerConfig)[];
}

/** The difference between a running config and a new one. */
export interface ConfigDiff {
  /** Listeners only the new config has, in its order: bind them. */
  readonly added: readonly ListenerConfig[];
  /** Listeners only the running config has, in its order: stop accepting, drain. */
  readonly removed: readonly ListenerConfig[];
  /**
   * Same name, another `listenerAddress` or another key of
   * {@linkcode REBIND_LISTENER_FIELDS}: the old socket stops and drains, the new one binds (a
   * remove plus an add).
   */
  readonly rebound: readonly ListenerChange[];
  /** Same name and address, other settings: change in place. */
  readonly changed: readonly ListenerChange[];
  /** Names of listeners equal in both configs: they keep running untouched. */
  readonly unchanged: readonly string[];
  /** `settings` keys that differ, in key order. */
  readonly settings: readonly (keyof SettingsConfig)[];
}

/**
 * Keys a running listener applies in place (socket, pool members and connections stay);
 * any other difference (pool membership, health checks) changes what discovery resolves.
 * `tls` is such a difference: its routes are pools, resolved again, while the listener
 * keeps its socket and the routes that stay keep their pools.
 */
export const IN_PLACE_LISTENER_FIELDS: ReadonlySet<keyof ListenerConfig> = new Set<
  keyof ListenerConfig
>([
  "balancer",
  "maglevTableSize",
  "maglevSeed",
  "requestTimeoutMs",
  "connectTimeoutMs",
  "idleTimeoutMs",
  "maxConnections",
  "maxConnectAttempts",
  "drainTimeoutMs",
  "onRemoval",
  "whenAllUnhealthy",
  "access",
  "maxConnectionsPerSource",
  "slowStartMs",
  "udp",
]);

/**
 * Keys the listener's socket, accept path or pool are built with: a change rebinds the
 * listener (the old socket drains, a new one binds), as a new `listenerAddress` does.
 */
export const REBIND_LISTENER_FIELDS: ReadonlySet<keyof ListenerConfig> = new Set<
  keyof ListenerConfig
>([
  "acceptProxyProtocol",
  "trustedProxies",
  "proxyHeaderTimeoutMs",
  "accessLog",
  "maxConnectionsPerBackend",
  "protocol",
]);

/** Compares two configs listener by listener (by name) and setting by setting. */
export function diffConfig(before: Config, after: Config): ConfigDiff {
  const old = new Map(before.configurations.map((l) => [l.name, l]));
  const next = new Set(after.configurations.map((l) => l.name));
  const added: ListenerConfig[] = [];
  const rebound: ListenerChange[] = [];
  const changed: ListenerChange[] = [];
  const unchanged: string[] = [];
  for (const listener of after.configurations) {
    const was = old.get(listener.name);
    if (was === undefined) {
      added.push(listener);
      continue;
    }
    const fields = differingKeys(was, listener)
      .filter((key) => key !== "host" && key !== "port");
    const isMoved = was.host !== listener.host || was.port !== listener.port;
    if (isMoved || fields.some((key) => REBIND_LISTENER_FIELDS.has(key))) {
      if (isMoved && !fields.includes("listenerAddress")) fields.unshift("listenerAddress");
      rebound.push({ name: listener.name, before: was, after: listener, fields });
    } else if (fields.length > 0) {
      changed.push({ name: listener.name, before: was, after: listener, fields });
    } else {
      unchanged.push(listener.name);
    }
  }
  const removed = before.configurations.filter((l) => !next.has(l.name));
  const settings = differingKeys(before.settings, after.settings);
  return { added, removed, rebound, changed, unchanged, settings };
}

/** True when applying `diff` would change nothing. */
export function isEmptyDiff(diff: ConfigDiff): boolean {
  return diff.added.length === 0 && diff.removed.length === 0 && diff.rebound.length === 0 &&
    diff.changed.length === 0 && diff.settings.length === 0;
}

/**
 * One line for the reload log, e.g.
 * `+1 listener (x), -0, ~1 changed (y: idleTimeout), settings: logLevel`. Keys are named as
 * in YAML (`idleTimeout`, not `idleTimeoutMs`); a rebound listener counts as changed.
 */
export function describeDiff(diff: ConfigDiff): string {
  const names = (list: readonly { name: string }[]) =>
    list.length === 0 ? "" : ` (${list.map((l) => l.name).join(", ")})`;
  const changes = [...diff.rebound, ...diff.changed];
  const parts = [
    `+${diff.added.length} listener${diff.added.length === 1 ? "" : "s"}${names(diff.added)}`,
    `-${diff.removed.length}${names(diff.removed)}`,
    `~${changes.length} changed${
      changes.length === 0
        ? ""
        : ` (${changes.map((c) => `${c.name}: ${c.fields.map(yamlKey).join(", ")}`).join("; ")})`
    }`,
  ];
  if (diff.settings.length > 0) parts.push(`settings: ${diff.settings.map(yamlKey).join(", ")}`);
  return parts.join(", ");
}

/** `idleTimeoutMs` → `idleTimeout`: config values in milliseconds are written without `Ms`. */
function yamlKey(key: string): string {
  return key.endsWith("Ms") ? key.slice(0, -2) : key;
}

function differingKeys<T extends object>(a: T, b: T): (keyof T)[] {
  const keys = [...new Set([...Object.keys(b), ...Object.keys(a)])] as (keyof T)[];
  return keys.filter((key) => !deepEqual(a[key], b[key]));
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a).filter((k) => (a as Record<string, unknown>)[k] !== undefined);
  const kb = Object.keys(b).filter((k) => (b as Record<string, unknown>)[k] !== undefined);
  if (ka.length !== kb.length) return false;
  return ka.every((k) =>
    deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])
  );
}
