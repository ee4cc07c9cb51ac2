/**
 * Live Kubernetes discovery: one {@linkcode Reflector} (list+watch) per resource and
 * namespace, assembled into coalesced, immutable {@linkcode Inventory} snapshots, plus the
 * detection of which API serves endpoint data and the aggregate {@linkcode KubernetesSyncStatus}.
 *
 * Credentials come from `kubeconfig.ts`, requests go through `api_client.ts`, and the
 * list/watch protocol lives in `reflector.ts`.
 *
 * @module
 */
import type { DiscoveryState } from "../core/discovery_state.ts";
import { errorMessage } from "../core/error_message.ts";
import type {
  EndpointsSource,
  KubernetesDiscoveryOptions,
  KubernetesSyncStatus,
} from "./kubernetes_options.ts";
import type { EndpointSliceInfo, Inventory, NodeInfo, ServiceInfo } from "../core/inventory.ts";
import { getLogger } from "../log/mod.ts";
import { ApiClient, apiError, classifyError, InvalidResponseError } from "./api_client.ts";
import { type KubeCredentials, loadKubeConfig } from "./kubeconfig.ts";
import { redactSecrets } from "./redact.ts";
import {
  type BackoffOptions,
  DEFAULT_BACKOFF,
  Reflector,
  type ResourceName,
  type ResourceTarget,
} from "./reflector.ts";
import { RetryWaker } from "./_retry_waker.ts";
import { sleep } from "../core/sleep.ts";

export type { DiscoveryState };

const logger = getLogger("discovery", "kubernetes");

export type { EndpointsSource, KubernetesDiscoveryOptions, KubernetesSyncStatus };

/** Default event-coalescing window. */
export const DEFAULT_COALESCE_MS = 5;
/** How often an unreachable API is probed for its return. */
const REACHABILITY_PROBE_MS = 1_000;
/** The same failure of one reflector is logged again at most this often. */
const ERROR_LOG_INTERVAL_MS = 30_000;

/** The last failure logged for one reflector, to rate-limit repeats and recoveries. */
interface LoggedFailure {
  readonly message: string;
  readonly atMs: number;
  suppressed: number;
  isRecovered: boolean;
  recoveryLoggedAtMs: number;
}

/**
 * Watches Services, Nodes and EndpointSlices and keeps an {@linkcode Inventory}.
 *
 * Ownership: the instance owns its HTTP client, requests and timers; all of them end when
 * `signal` aborts. Callers never mutate the inventories they receive.
 *
 * @example
 * ```ts
 * const ac = new AbortController();
 * const discovery = new KubernetesDiscovery({
 *   namespaces: "all", signal: ac.signal, onChange: (inv) => apply(inv),
 * });
 * const first = await discovery.start();
 * ```
 */
export class KubernetesDiscovery {
  readonly #options: KubernetesDiscoveryOptions;
  readonly #backoff: BackoffOptions;
  readonly #coalesceMs: number;
  readonly #reflectors: Reflector[] = [];
  readonly #waker = new RetryWaker();
  #client?: ApiClient;
  #endpointsSource: EndpointsSource | undefined;
  #endpointsDetect: Promise<EndpointsSource> | undefined;
  #isStarted = false;
  #isInitialSynced = false;
  #emitTimer: ReturnType<typeof setTimeout> | undefined;
  /** Parts of the inventory changed since the last snapshot. */
  readonly #dirty = new Set<ResourceName>();
  #current: Inventory | undefined;
  #lastStatusKey = "";
  #finished: Promise<void> = Promise.resolve();
  #syncWaiters: (() => void)[] = [];
  /** The reachability probe while the API is unreachable; settles when it stops. */
  #probe: Promise<void> = Promise.resolve();
  #isProbing = false;
  /** Per reflector: the last failure logged and when, to rate-limit repeats. */
  readonly #logged = new Map<Reflector, LoggedFailure>();

  /**
   * Checks the options only; nothing is requested before {@linkcode KubernetesDiscovery.start}.
   *
   * @param options see {@linkcode KubernetesDiscoveryOptions}
   * @throws {RangeError} when `namespaces` is empty or `backoff` is inconsistent
   */
  constructor(options: KubernetesDiscoveryOptions) {
    if (options.namespaces !== "all" && options.namespaces.length === 0) {
      throw new RangeError(
        "Cannot watch Kubernetes as 'namespaces' is empty: use \"all\" or name at least one",
      );
    }
    const backoff = options.backoff ?? DEFAULT_BACKOFF;
    if (!(backoff.initialMs > 0) || !(backoff.maxMs >= backoff.initialMs)) {
      throw new RangeError(
        `Cannot back off as 'backoff' must have 0 < initialMs <= maxMs: current value is ${
          JSON.stringify(backoff)
        }`,
      );
    }
    this.#options = options;
    this.#backoff = backoff;
    this.#coalesceMs = options.coalesceMs ?? DEFAULT_COALESCE_MS;
  }

  /** The latest snapshot, or `undefined` before the initial sync. */
  get inventory(): Inventory | undefined {
    return this.#current;
  }

  /** The API that feeds endpoint data, once detected. */
  get endpointsSource(): EndpointsSource | undefined {
    return this.#endpointsSource;
  }

  /** Settles once every loop, request and timer has stopped after the signal aborted. */
  get finished(): Promise<void> {
    return this.#finished;
  }

  /**
   * Lists everything once, then keeps watching until the signal aborts.
   *
   * @returns the inventory after the initial list of every resource
   * @throws {Error} when the signal aborts first (its reason), credentials cannot be loaded, or
   *   `initialSyncTimeoutMs` passes
   */
  async start(): Promise<Inventory> {
    if (this.#isStarted) throw new Error("Cannot start Kubernetes discovery twice");
    this.#isStarted = true;
    const { signal } = this.#options;
    signal.throwIfAborted();
    const credentials: KubeCredentials = this.#options.credentials ??
      await loadKubeConfig({
        ...(this.#options.kubeconfigPath ? { kubeconfigPath: this.#options.kubeconfigPath } : {}),
        ...(this.#options.context ? { context: this.#options.context } : {}),
      });
    logger.info("Kubernetes discovery using {source}", { source: credentials.describe() });
    const client = new ApiClient({
      credentials,
      signal,
      ...(this.#options.requestTimeoutMs !== undefined
        ? { requestTimeoutMs: this.#options.requestTimeoutMs }
        : {}),
    });
    this.#client = client;
    const namespaces = this.#options.namespaces === "all" ? [undefined] : this.#options.namespaces;
    this.#reflectors.push(this.#reflector(client, "nodes", undefined));
    for (const namespace of namespaces) {
      this.#reflectors.push(this.#reflector(client, "services", namespace));
      this.#reflectors.push(this.#reflector(client, "endpoints", namespace));
    }
    this.#reportStatus();
    const loops = this.#reflectors.map((r) => r.run());
    this.#finished = Promise.all(loops).then(() => this.#probe).then(
      () => this.#shutdown(),
      (error) => {
        // Loops catch everything; this is a last guard so `finished` never rejects.
        logger.error("Kubernetes discovery loop failed: {error}", { error });
        this.#shutdown();
      },
    );

    await new Promise<void>((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const finish = (error?: unknown) => {
        clearTimeout(timer);
        signal.removeEventListener("abort", onAbort);
        if (error === undefined) resolve();
        else reject(error);
      };
      const onAbort = () => finish(signal.reason);
      signal.addEventListener("abort", onAbort, { once: true });
      const timeoutMs = this.#options.initialSyncTimeoutMs;
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => {
          const failing = this.#reflectors.find((r) => r.error !== undefined);
          const last = failing ? describeError(failing) : undefined;
          finish(
            new Error(
              `Cannot list Kubernetes objects within ${timeoutMs} ms${last ? `: ${last}` : ""}`,
            ),
          );
        }, timeoutMs);
      }
      this.#syncWaiters.push(() => finish());
    });
    return this.#current!;
  }

  #reflector(client: ApiClient, resource: ResourceName, namespace: string | undefined): Reflector {
    const o = this.#options;
    const reflector: Reflector = new Reflector({
      resource,
      ...(namespace !== undefined ? { namespace } : {}),
      client,
      signal: o.signal,
      backoff: this.#backoff,
      waker: this.#waker,
      ...(o.random ? { random: o.random } : {}),
      ...(o.pageSize !== undefined ? { pageSize: o.pageSize } : {}),
      ...(o.watchTimeoutSeconds !== undefined
        ? { watchTimeoutSeconds: o.watchTimeoutSeconds }
        : {}),
      ...(o.watchIdleTimeoutMs !== undefined ? { watchIdleTimeoutMs: o.watchIdleTimeoutMs } : {}),
      resolveTarget: () => this.#resourceTarget(resource, namespace),
      onChange: () => this.#scheduleEmit(resource),
      onSynced: () => this.#markSynced(reflector),
      onError: (error) => this.#markError(reflector, error),
      ...(resource === "endpoints" ? { onNotFound: () => this.#endpointsDetect = undefined } : {}),
    });
    return reflector;
  }

  #shutdown(): void {
    clearTimeout(this.#emitTimer);
    this.#emitTimer = undefined;
    this.#client?.close();
    this.#client = undefined;
  }

  // --- status ------------------------------------------------------------------------------

  #markSynced(r: Reflector): void {
    const logged = this.#logged.get(r);
    if (logged && !logged.isRecovered) {
      // Rate-limited like failures: a watch that keeps opening and failing logs neither each
      // failure nor each recovery.
      logged.isRecovered = true;
      if (Date.now() - logged.recoveryLoggedAtMs >= ERROR_LOG_INTERVAL_MS) {
        logged.recoveryLoggedAtMs = Date.now();
        logger.info("Watching {what} again", { what: r.describe() });
      }
    }
    if (!this.#isInitialSynced && this.#reflectors.every((x) => x.isSynced)) {
      this.#isInitialSynced = true;
      this.#current = this.#snapshot();
      for (const resolve of this.#syncWaiters.splice(0)) resolve();
    }
    this.#reportStatus();
  }

  /** Logs a failure (the first, a different one, or a repeat after a while) and reports status. */
  #markError(r: Reflector, error: unknown): void {
    const message = describeError(r);
    const now = Date.now();
    const last = this.#logged.get(r);
    if (
      last === undefined || last.message !== message || now - last.atMs >= ERROR_LOG_INTERVAL_MS
    ) {
      const suppressed = last?.suppressed ?? 0;
      this.#logged.set(r, {
        message,
        atMs: now,
        suppressed: 0,
        isRecovered: false,
        recoveryLoggedAtMs: last?.recoveryLoggedAtMs ?? -Infinity,
      });
      logger.warn("{message}; retrying with backoff{suppressed}", {
        message,
        failure: classifyError(error),
        suppressed: suppressed > 0 ? ` (${suppressed} similar failures not logged)` : "",
      });
    } else {
      last.suppressed++;
      last.isRecovered = false;
    }
    this.#reportStatus();
    if (classifyError(error) === "unreachable") this.#probeUntilReachable();
  }

  /**
   * While a reflector cannot reach the API, asks `GET /api` once per
   * {@linkcode REACHABILITY_PROBE_MS} and ends every backoff wait as soon as it answers, so
   * the first change after an outage applies within about a second instead of after the
   * remainder of a multi-second backoff. One probe for all reflectors; refused connections
   * cost the API server nothing, and failures other than "unreachable" (5xx, 401/403, bad
   * bodies) keep their full backoff.
   */
  #probeUntilReachable(): void {
    if (this.#isProbing || !this.#client) return;
    this.#isProbing = true;
    const client = this.#client;
    const { signal } = this.#options;
    const interval = Math.min(REACHABILITY_PROBE_MS, this.#backoff.maxMs);
    const isUnreachable = () =>
      this.#reflectors.some((r) =>
        r.error !== undefined && classifyError(r.error) === "unreachable"
      );
    this.#probe = (async () => {
      while (!signal.aborted && isUnreachable()) {
        await sleep(interval, signal);
        if (signal.aborted) break;
        try {
          const res = await client.get("/api");
          if (res.status < 500) this.#waker.wake();
        } catch {
          // Still unreachable.
        }
      }
    })().finally(() => this.#isProbing = false);
  }

  #reportStatus(): void {
    const onStatus = this.#options.onStatus;
    if (!onStatus || this.#options.signal.aborted) return;
    const failing = this.#reflectors.find((r) => r.error !== undefined);
    const state: DiscoveryState = failing !== undefined
      ? "disconnected"
      : this.#reflectors.every((r) => r.isSynced)
      ? "synced"
      : "syncing";
    const status: KubernetesSyncStatus = {
      state,
      ...(failing !== undefined
        ? { error: describeError(failing), failure: classifyError(failing.error) }
        : {}),
      ...(this.#endpointsSource ? { endpointsSource: this.#endpointsSource } : {}),
    };
    const key = JSON.stringify(status);
    if (key === this.#lastStatusKey) return;
    this.#lastStatusKey = key;
    try {
      onStatus(status);
    } catch (error) {
      logger.error("onStatus failed: {error}", { error });
    }
  }

  // --- endpoint API ------------------------------------------------------------------------

  async #resourceTarget(
    resource: ResourceName,
    namespace: string | undefined,
  ): Promise<ResourceTarget | undefined> {
    const nsPart = namespace === undefined ? "" : `/namespaces/${encodeURIComponent(namespace)}`;
    switch (resource) {
      case "nodes":
        return { path: "/api/v1/nodes", kind: "Node" };
      case "services":
        return { path: `/api/v1${nsPart}/services`, kind: "Service" };
      case "endpoints": {
        const source = await this.#detectEndpointsSource();
        if (source === "none") return undefined;
        if (source === "v1/endpoints") {
          return { path: `/api/v1${nsPart}/endpoints`, kind: "Endpoints" };
        }
        return { path: `/apis/${source}${nsPart}/endpointslices`, kind: "EndpointSlice" };
      }
    }
  }

  #detectEndpointsSource(): Promise<EndpointsSource> {
    this.#endpointsDetect ??= (async () => {
      let source: EndpointsSource = this.#options.endpointsFallback === false
        ? "none"
        : "v1/endpoints";
      for (const version of ["v1", "v1beta1"] as const) {
        const path = `/apis/discovery.k8s.io/${version}`;
        const res = await this.#client!.get(path);
        if (res.status === 200) {
          const resources = (res.body as { resources?: unknown }).resources;
          if (!res.isJson || !Array.isArray(resources)) {
            // An HTML page is not "no EndpointSlice API": do not fall back on it.
            throw new InvalidResponseError(`GET ${path} returned 200 without an API resource list`);
          }
          if (resources.some((x) => (x as { name?: unknown })?.name === "endpointslices")) {
            source = `discovery.k8s.io/${version}`;
            break;
          }
        } else if (res.status !== 404) {
          throw apiError(res.status, res.body, `GET ${path}`);
        }
      }
      const changed = this.#endpointsSource !== source;
      this.#endpointsSource = source;
      if (changed && this.#isInitialSynced) this.#scheduleEmit();
      return source;
    })().catch((error) => {
      this.#endpointsDetect = undefined;
      throw error;
    });
    return this.#endpointsDetect;
  }

  // --- snapshots ---------------------------------------------------------------------------

  /**
   * Schedules one coalesced `onChange`. `resource` marks which part of the snapshot changed,
   * so the next snapshot rebuilds only that map and consumers can cache on the others'
   * identity; without it everything is rebuilt.
   */
  #scheduleEmit(resource?: ResourceName): void {
    if (resource === undefined) {
      this.#dirty.add("services").add("nodes").add("endpoints");
    } else this.#dirty.add(resource);
    if (!this.#isInitialSynced || this.#emitTimer !== undefined) return;
    if (this.#options.signal.aborted) return;
    this.#emitTimer = setTimeout(() => {
      this.#emitTimer = undefined;
      if (this.#options.signal.aborted) return;
      this.#current = this.#snapshot();
      try {
        this.#options.onChange(this.#current);
      } catch (error) {
        // A failing consumer must not stop discovery; it gets the next snapshot.
        logger.error("onChange failed: {error}", { error });
      }
    }, this.#coalesceMs);
  }

  #snapshot(): Inventory {
    const services: [string, ServiceInfo][] = [];
    const nodes: [string, NodeInfo][] = [];
    const endpointSlices: [string, EndpointSliceInfo][] = [];
    const previous = this.#current;
    const dirty = previous === undefined
      ? new Set<ResourceName>(["services", "nodes", "endpoints"])
      : this.#dirty;
    for (const r of this.#reflectors) {
      if (!dirty.has(r.resource)) continue;
      for (const { entries } of r.store.values()) {
        for (const [key, info] of entries) {
          if (r.resource === "services") services.push([key, info as ServiceInfo]);
          else if (r.resource === "nodes") nodes.push([key, info as NodeInfo]);
          else endpointSlices.push([key, info as EndpointSliceInfo]);
        }
      }
    }
    const byKey = (a: [string, unknown], b: [string, unknown]) =>
      a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0;
    const snapshot = Object.freeze({
      services: dirty.has("services") || !previous
        ? new Map(services.sort(byKey))
        : previous.services,
      nodes: dirty.has("nodes") || !previous ? new Map(nodes.sort(byKey)) : previous.nodes,
      endpointSlices: dirty.has("endpoints") || !previous
        ? new Map(endpointSlices.sort(byKey))
        : previous.endpointSlices,
      hasEndpointSlices: this.#endpointsSource !== "none",
    });
    this.#dirty.clear();
    return snapshot;
  }
}

/**
 * `Cannot watch nodes: unauthorized: GET /api/v1/nodes returned 401: Unauthorized`: the
 * resource, what kind of failure, and the detail (with the fetch cause: refused, DNS, TLS).
 * Redacted, as it goes to logs and status.
 */
function describeError(r: Reflector): string {
  const error = r.error;
  let detail = errorMessage(error);
  if (
    error instanceof Error && error.cause instanceof Error && !detail.includes(error.cause.message)
  ) {
    detail += `: ${error.cause.message}`;
  }
  const failure = classifyError(error);
  const label = failure === "unauthorized" || failure === "forbidden" ? `${failure}: ` : "";
  return redactSecrets(`Cannot watch ${r.describe()}: ${label}${detail}`);
}
