/**
 * Legal but probably unintended settings of a valid config, as located warnings.
 *
 * @module
 */
import { formatDurationMs } from "../core/duration.ts";
import type { ConfigIssue } from "./issue.ts";
import type { Locator } from "./_locate.ts";
import type { Path } from "./_raw.ts";
import type { Config, ListenerConfig } from "./types.ts";

/**
 * Whether any tenant's Service with the listener's port name joins its pool: Kubernetes
 * discovery with no `namespaces`, no `service` and `portName` binding. Labels do not narrow
 * it, since every tenant sets its own.
 */
export function isOpenToAnyNamespace(l: ListenerConfig): boolean {
  return l.backendPortName !== undefined && l.namespaces === undefined &&
    l.service === undefined && (l.binding ?? "portName") === "portName";
}

/**
 * The doubtful settings of a valid `config`: a connect timeout above the request timeout, a
 * probe timeout above its interval, maglev settings with another balancer, a listener open to
 * any namespace by port name alone, connection settings on a `protocol: udp` listener (which
 * has sessions, see `udp:`).
 */
export function warningsOf(config: Config, at: Locator): ConfigIssue[] {
  const warnings: ConfigIssue[] = [];
  config.configurations.forEach((l, i) => {
    const here: Path = ["configurations", i];
    if (l.connectTimeoutMs > l.requestTimeoutMs) {
      const path = at.has([...here, "connectTimeout"])
        ? [...here, "connectTimeout"]
        : [...here, "requestTimeout"];
      warnings.push(
        at.issue(
          path,
          `connectTimeout ${formatDurationMs(l.connectTimeoutMs)} is longer than requestTimeout ${
            formatDurationMs(l.requestTimeoutMs)
          }: connect attempts end when requestTimeout runs out`,
        ),
      );
    }
    const hc = l.healthCheck;
    if (hc.enabled && hc.timeoutMs > hc.intervalMs) {
      warnings.push(
        at.issue(
          [...here, "healthCheck", "timeout"],
          `timeout ${formatDurationMs(hc.timeoutMs)} is longer than interval ${
            formatDurationMs(hc.intervalMs)
          }: a slow probe delays the next one`,
        ),
      );
    }
    if (isOpenToAnyNamespace(l)) {
      warnings.push(
        at.issue(
          here,
          `listener ${
            JSON.stringify(l.name)
          } admits Services from any namespace by port name alone: list "namespaces" or set "binding: explicit"`,
        ),
      );
    }
    if (l.balancer !== "maglev" && at.has([...here, "maglev"])) {
      warnings.push(
        at.issue(
          [...here, "maglev"],
          `maglev settings have no effect with balancer ${JSON.stringify(l.balancer)}`,
          "key",
        ),
      );
    }
    if (l.protocol === "udp") {
      for (const name of TCP_ONLY_KEYS) {
        if (!at.has([...here, name])) continue;
        warnings.push(
          at.issue(
            [...here, name],
            `${name} has no effect with protocol "udp": sessions follow the udp settings`,
            "key",
          ),
        );
      }
    }
  });
  return warnings;
}

/** Listener keys about TCP connections that a `protocol: udp` listener does not use. */
const TCP_ONLY_KEYS = [
  "requestTimeout",
  "connectTimeout",
  "idleTimeout",
  "maxConnections",
  "maxConnectAttempts",
  "maxConnectionsPerBackend",
  "maxConnectionsPerSource",
] as const;
