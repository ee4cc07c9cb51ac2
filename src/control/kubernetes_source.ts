/**
 * A live plan source backed by the Kubernetes watch.
 *
 * @module
 */
import type { Config, ListenerConfig } from "../config/mod.ts";
import type { Inventory } from "../core/inventory.ts";
import type { PoolPlan } from "../core/plan.ts";
import { type KubeCredentials, KubernetesDiscovery, loadKubeConfig } from "../discovery/mod.ts";
import { apiUnreachable } from "./api_reachable.ts";
import { getLogger } from "../log/mod.ts";
import type { DiscoveryStatus } from "../core/discovery_state.ts";
import { PlanSourceError } from "./errors.ts";
import { plansFrom, type SourceOptions } from "./plans.ts";
import type { PlanSource } from "./plan_source.ts";
import { errorMessage } from "../core/error_message.ts";
import { Latest } from "../core/latest.ts";

/** How long the first list of everything may take before the source gives up. */
export const INITIAL_SYNC_TIMEOUT_MS = 15_000;

/**
 * Retry delays while the API server is away. Capped low on purpose: an apiserver restart is
 * routine, and one LB replica retrying every few seconds costs the server nothing, while a
 * 30 s cap would leave pools stale for that long after it returns.
 */
export const RECONNECT_BACKOFF = { initialMs: 250, maxMs: 5_000 } as const;

/**
 * Namespaces to watch: the union of the Kubernetes listeners' `namespaces`, or all when any
 * has none. Watching only these lets a namespaced Role replace the ClusterRole for Services
 * and EndpointSlices (Nodes stay cluster-wide).
 */
export function namespacesOf(listeners: readonly ListenerConfig[]): readonly string[] | "all" {
  const set = new Set<string>();
  for (const l of listeners) {
    if (l.backendPortName === undefined) continue;
    if (l.namespaces === undefined) return "all";
    for (const ns of l.namespaces) set.add(ns);
  }
  return [...set].sort();
}

/**
 * Connects, lists everything once, and keeps watching until `signal` aborts. With
 * `options.isOneShot`, first checks that the API server accepts a connection (within
 * {@linkcode API_CONNECT_TIMEOUT_MS}) and fails at once when it does not.
 * @throws {PlanSourceError} `stopped` when `signal` aborts before the first sync, else
 *   `unreadable` when the cluster cannot be reached or listed
 */
export async function openKubernetes(
  config: Config,
  listeners: readonly ListenerConfig[],
  options: SourceOptions,
  signal: AbortSignal,
): Promise<PlanSource> {
  const log = getLogger("discovery");
  const credentials = options.isOneShot
    ? await reachableCredentials(config, options, signal)
    : undefined;
  const stop = new AbortController();
  const onAbort = () => stop.abort(signal.reason);
  signal.addEventListener("abort", onAbort, { once: true });
  let latest: Inventory | undefined;
  const changes = new Latest<readonly PoolPlan[]>();
  let status: DiscoveryStatus = { state: "syncing" };
  let isSynced = false;
  const discovery = new KubernetesDiscovery({
    ...(credentials === undefined ? {} : { credentials }),
    kubeconfigPath: options.kubeconfig ?? (config.settings.kubeconfigPath || undefined),
    context: options.context,
    namespaces: namespacesOf(listeners),
    signal: stop.signal,
    initialSyncTimeoutMs: INITIAL_SYNC_TIMEOUT_MS,
    backoff: RECONNECT_BACKOFF,
    onChange: (inventory) => {
      latest = inventory;
      status = { ...status, lastChangeAt: Date.now() };
      changes.set(plansFrom(inventory, listeners, warningsOf(inventory)));
    },
    onStatus: (next) => {
      const was = status.state;
      status = { state: next.state, lastChangeAt: status.lastChangeAt, lastError: next.error };
      if (next.state === was) return;
      // Before the first sync there are no pools to keep; discovery logs each failure.
      if (next.state === "disconnected" && isSynced) {
        log.warn("Kubernetes API {failure}, keeping the last known pools: {error}", {
          failure: next.failure === undefined || next.failure === "unreachable"
            ? "unreachable"
            : `failing (${next.failure})`,
          error: next.error ?? "unknown error",
        });
      } else if (next.state === "synced") {
        log.info("Kubernetes API in sync{source}", {
          source: next.endpointsSource ? ` (endpoints from ${next.endpointsSource})` : "",
        });
      }
    },
  });
  let inventory: Inventory;
  try {
    inventory = await discovery.start();
  } catch (error) {
    signal.removeEventListener("abort", onAbort);
    stop.abort();
    throw firstSyncError(error, signal);
  }
  latest = inventory;
  isSynced = true;
  // Changes during the first sync are in `inventory` already; updates() yields later ones.
  const since = changes.version;
  status = { ...status, lastChangeAt: Date.now() };
  const plans = plansFrom(inventory, listeners, warningsOf(inventory));
  return {
    kind: "kubernetes",
    listeners,
    plans,
    inventory: () => latest,
    status: () => status,
    updates: () => changes.values(stop.signal, since),
    close: () => {
      signal.removeEventListener("abort", onAbort);
      stop.abort();
      return Promise.resolve();
    },
  };
}

function warningsOf(inventory: Inventory): string[] {
  return inventory.hasEndpointSlices ? [] : [
    "the cluster serves no discovery.k8s.io/v1 EndpointSlices: endpoint mode and externalTrafficPolicy: Local filtering are unavailable",
  ];
}

/**
 * The credentials `openKubernetes` would load, once the API server they name has accepted a
 * TCP connection.
 * @throws {PlanSourceError} `unreadable` when the kubeconfig cannot be loaded or the server
 *   cannot be reached, `stopped` when `signal` aborts first
 */
async function reachableCredentials(
  config: Config,
  options: SourceOptions,
  signal: AbortSignal,
): Promise<KubeCredentials> {
  let credentials: KubeCredentials;
  let why: string | undefined;
  try {
    const kubeconfigPath = options.kubeconfig ?? (config.settings.kubeconfigPath || undefined);
    credentials = await loadKubeConfig({
      ...(kubeconfigPath === undefined ? {} : { kubeconfigPath }),
      ...(options.context === undefined ? {} : { context: options.context }),
    });
    why = await apiUnreachable(credentials.server, signal);
  } catch (error) {
    throw firstSyncError(error, signal);
  }
  if (why !== undefined) {
    throw new PlanSourceError(
      `Cannot reach the Kubernetes API server: ${why} (${credentials.describe()})`,
      "unreadable",
    );
  }
  return credentials;
}

/** Why the first sync did not complete: stopped by `signal`, or the cluster could not be read. */
function firstSyncError(error: unknown, signal: AbortSignal): PlanSourceError {
  if (signal.aborted) {
    return new PlanSourceError("Stopped before the first Kubernetes sync completed", "stopped", {
      cause: error,
    });
  }
  return new PlanSourceError(
    `Cannot discover from Kubernetes: ${errorMessage(error)}`,
    "unreadable",
    { cause: error },
  );
}
