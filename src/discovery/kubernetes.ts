/**
 * Live Kubernetes discovery: list+watch of Services, Nodes and EndpointSlices, reduced to an
 * {@linkcode Inventory} snapshot.
 *
 * The only importer of `@kubernetes/client-node`. The client library is used for what it does
 * well (kubeconfig parsing, contexts, exec/OIDC/token-file credentials); requests go through
 * Deno's own `fetch` with a `Deno.HttpClient`, so every request and timer is owned by this
 * module and stops with the caller's `AbortSignal`.
 *
 * The watch loop follows client-go's reflector: list (paginated) to get a consistent snapshot
 * and its `resourceVersion`, then watch from it with bookmarks; a dropped or timed-out watch
 * resumes from the last seen `resourceVersion`; `410 Gone` (as HTTP status or as an `ERROR`
 * event) forces a relist. Failures back off exponentially with jitter and never end the loop.
 * See https://kubernetes.io/docs/reference/using-api/api-concepts/#efficient-detection-of-changes
 *
 * @module
 */
import type { KubeConfig } from "@kubernetes/client-node";

/** The client library, loaded on first use: it costs ~80 MiB of RSS, so static pools skip it. */
type ClientNode = typeof import("@kubernetes/client-node");
let clientNode: Promise<ClientNode> | undefined;
function loadClientNode(): Promise<ClientNode> {
  return clientNode ??= import("@kubernetes/client-node");
}
import { getLogger } from "../log/mod.ts";
import type { EndpointSliceInfo, Inventory, NodeInfo, ServiceInfo } from "../core/inventory.ts";
import {
  endpointSliceFromObject,
  endpointSlicesFromEndpoints,
  nodeFromObject,
  serviceFromObject,
} from "./convert.ts";

const logger = getLogger("discovery", "kubernetes");

/** Where {@linkcode loadKubeConfig} found credentials, in the order it looks. */
export type KubeConfigSource = "path" | "KUBECONFIG" | "in-cluster" | "home";

/** Options of {@linkcode loadKubeConfig}. */
export interface LoadKubeConfigOptions {
  /** Explicit kubeconfig file (the `--kubeconfig` flag, else `settings.kubeconfigPath`). */
  readonly kubeconfigPath?: string;
  /** Context to use instead of the file's `current-context`. */
  readonly context?: string;
  /**
   * Reads an environment variable (`KUBECONFIG`, `KUBERNETES_SERVICE_HOST`,
   * `KUBERNETES_SERVICE_PORT`, `HOME`).
   * @default {Deno.env.get}
   */
  readonly env?: (name: string) => string | undefined;
  /**
   * Directory holding the in-cluster service account `token` and `ca.crt`.
   * @default {"/var/run/secrets/kubernetes.io/serviceaccount"}
   */
  readonly serviceAccountDir?: string;
}

/** Default directory of the mounted service account token. */
export const DEFAULT_SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

/**
 * Credentials for one API server, as found by {@linkcode loadKubeConfig}. Opaque apart from the
 * descriptive fields; hand it to {@linkcode KubernetesDiscovery} via `credentials`.
 */
export class KubeCredentials {
  /** Where the credentials came from. */
  readonly source: KubeConfigSource;
  /** The kubeconfig file(s) read; absent for in-cluster credentials. */
  readonly path?: string;
  /** The context in use. */
  readonly context: string;
  /** The API server URL, e.g. `https://10.0.0.1:443`. */
  readonly server: string;
  /** Name of the kubeconfig user in use. */
  readonly user: string;
  readonly #kubeConfig: KubeConfig;

  /** @internal Built by {@linkcode loadKubeConfig}. */
  constructor(kubeConfig: KubeConfig, source: KubeConfigSource, path?: string) {
    this.#kubeConfig = kubeConfig;
    this.source = source;
    if (path !== undefined) this.path = path;
    this.context = kubeConfig.getCurrentContext();
    this.server = kubeConfig.getCurrentCluster()?.server ?? "";
    this.user = kubeConfig.getCurrentUser()?.name ?? "";
  }

  /** One line for logs: `kubeconfig /home/me/.kube/config (KUBECONFIG), context kind, server https://…`. */
  describe(): string {
    const from = this.source === "in-cluster"
      ? "in-cluster service account"
      : `kubeconfig ${this.path} (${SOURCE_LABEL[this.source]})`;
    return `${from}, context ${this.context}, server ${this.server}`;
  }

  /** @internal Request material for the current cluster and user; re-read on every call so rotated tokens are picked up. */
  async requestAuth(): Promise<RequestAuth> {
    const kc = this.#kubeConfig;
    const cluster = kc.getCurrentCluster();
    const user = kc.getCurrentUser();
    if (!cluster || !user) {
      throw new Error(`Cannot use context '${this.context}': it has no cluster or user`);
    }
    const headers: Record<string, string> = {};
    if (user.exec || user.authProvider) {
      // Delegate exec plugins, OIDC, token files to the client library; only headers are used.
      await kc.applySecurityAuthentication(
        {
          setHeaderParam(name: string, value: string) {
            headers[name] = value;
          },
          setDispatcher() {},
        } as unknown as Parameters<KubeConfig["applySecurityAuthentication"]>[0],
      );
    } else {
      if (user.token) headers["Authorization"] = `Bearer ${user.token}`;
      else if (user.username) {
        headers["Authorization"] = `Basic ${btoa(`${user.username}:${user.password ?? ""}`)}`;
      }
      if (user.impersonateUser) headers["Impersonate-User"] = user.impersonateUser;
    }
    return {
      server: cluster.server.replace(/\/+$/, ""),
      headers,
      caPem: await pemFromFileOrData(cluster.caFile, cluster.caData),
      certPem: await pemFromFileOrData(user.certFile, user.certData),
      keyPem: await pemFromFileOrData(user.keyFile, user.keyData),
      skipTlsVerify: cluster.skipTLSVerify,
      ...(cluster.proxyUrl ? { proxyUrl: cluster.proxyUrl } : {}),
    };
  }
}

/** @internal What one request needs: base URL, headers and TLS material. */
export interface RequestAuth {
  readonly server: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly caPem?: string;
  readonly certPem?: string;
  readonly keyPem?: string;
  readonly skipTlsVerify: boolean;
  readonly proxyUrl?: string;
}

const SOURCE_LABEL: Record<KubeConfigSource, string> = {
  "path": "explicit path",
  "KUBECONFIG": "KUBECONFIG",
  "in-cluster": "in-cluster",
  "home": "default location",
};

async function pemFromFileOrData(file?: string, data?: string): Promise<string | undefined> {
  if (file) return await Deno.readTextFile(file);
  if (data) return new TextDecoder().decode(Uint8Array.from(atob(data), (c) => c.charCodeAt(0)));
  return undefined;
}

function fileExists(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

function readKubeconfigFile(lib: ClientNode, path: string): KubeConfig {
  const kc = new lib.KubeConfig();
  try {
    kc.loadFromFile(path);
  } catch (cause) {
    const detail = cause instanceof Error ? cause.message : String(cause);
    throw new Error(`Cannot read kubeconfig '${path}': ${detail}`, { cause });
  }
  return kc;
}

/** Merges kubeconfig files the way kubectl does: the first file defining a name wins. */
function mergeKubeconfigFiles(lib: ClientNode, paths: readonly string[]): KubeConfig {
  const merged = readKubeconfigFile(lib, paths[0]!);
  for (const path of paths.slice(1)) {
    const next = readKubeconfigFile(lib, path);
    if (!merged.currentContext && next.currentContext) merged.currentContext = next.currentContext;
    for (const c of next.clusters) if (!merged.getCluster(c.name)) merged.addCluster(c);
    for (const u of next.users) if (!merged.getUser(u.name)) merged.addUser(u);
    for (const x of next.contexts) if (!merged.getContextObject(x.name)) merged.addContext(x);
  }
  return merged;
}

function selectContext(kc: KubeConfig, context: string | undefined, where: string): void {
  if (context !== undefined) {
    if (!kc.getContextObject(context)) {
      const known = kc.getContexts().map((c) => c.name).join(", ") || "none";
      throw new Error(`Cannot use context '${context}': ${where} has contexts: ${known}`);
    }
    kc.setCurrentContext(context);
  }
  const current = kc.getCurrentContext();
  const ctx = current ? kc.getContextObject(current) : null;
  if (!ctx) {
    throw new Error(
      `Cannot use ${where}: no current-context set and no --context given`,
    );
  }
  if (!kc.getCurrentCluster()) {
    throw new Error(`Cannot use context '${current}': cluster '${ctx.cluster}' is not in ${where}`);
  }
  if (!kc.getCurrentUser()) {
    throw new Error(`Cannot use context '${current}': user '${ctx.user}' is not in ${where}`);
  }
}

/**
 * Finds Kubernetes credentials, in this order: an explicit `kubeconfigPath`, the `KUBECONFIG`
 * variable (`:`-separated files, merged as kubectl does), the in-cluster service account
 * (`KUBERNETES_SERVICE_HOST` set and a token mounted), `$HOME/.kube/config`.
 *
 * @returns the credentials; {@linkcode KubeCredentials.describe} says which source was used
 * @throws {Error} when no source is available, a file cannot be parsed, or `context` is unknown
 */
export async function loadKubeConfig(
  options: LoadKubeConfigOptions = {},
): Promise<KubeCredentials> {
  const lib = await loadClientNode();
  const env = options.env ?? ((name: string) => Deno.env.get(name));
  if (options.kubeconfigPath) {
    const path = options.kubeconfigPath;
    if (!fileExists(path)) {
      throw new Error(`Cannot read kubeconfig '${path}': file does not exist`);
    }
    const kc = readKubeconfigFile(lib, path);
    selectContext(kc, options.context, `kubeconfig '${path}'`);
    return new KubeCredentials(kc, "path", path);
  }
  const kubeconfigVar = env("KUBECONFIG");
  if (kubeconfigVar) {
    const paths = kubeconfigVar.split(":").filter((p) => p !== "");
    const existing = paths.filter(fileExists);
    if (existing.length === 0) {
      throw new Error(`Cannot read kubeconfig from KUBECONFIG: no such file: ${paths.join(", ")}`);
    }
    const kc = mergeKubeconfigFiles(lib, existing);
    const joined = existing.join(":");
    selectContext(kc, options.context, `kubeconfig '${joined}'`);
    return new KubeCredentials(kc, "KUBECONFIG", joined);
  }
  const host = env("KUBERNETES_SERVICE_HOST");
  const saDir = options.serviceAccountDir ?? DEFAULT_SERVICE_ACCOUNT_DIR;
  if (host && fileExists(`${saDir}/token`)) {
    const port = env("KUBERNETES_SERVICE_PORT") ?? "443";
    const scheme = port === "80" || port === "8080" || port === "8001" ? "http" : "https";
    const hostPart = host.includes(":") ? `[${host}]` : host;
    const kc = new lib.KubeConfig();
    kc.loadFromOptions({
      clusters: [{
        name: "in-cluster",
        server: `${scheme}://${hostPart}:${port}`,
        caFile: `${saDir}/ca.crt`,
        skipTLSVerify: false,
      }],
      users: [{
        name: "in-cluster",
        authProvider: { name: "tokenFile", config: { tokenFile: `${saDir}/token` } },
      }],
      contexts: [{ name: "in-cluster", cluster: "in-cluster", user: "in-cluster" }],
      currentContext: "in-cluster",
    });
    if (options.context !== undefined && options.context !== "in-cluster") {
      throw new Error(
        `Cannot use context '${options.context}': in-cluster credentials have only 'in-cluster'`,
      );
    }
    return new KubeCredentials(kc, "in-cluster");
  }
  const home = env("HOME");
  const homeConfig = home ? `${home}/.kube/config` : undefined;
  if (homeConfig && fileExists(homeConfig)) {
    const kc = readKubeconfigFile(lib, homeConfig);
    selectContext(kc, options.context, `kubeconfig '${homeConfig}'`);
    return new KubeCredentials(kc, "home", homeConfig);
  }
  throw new Error(
    "Cannot find Kubernetes credentials: no kubeconfig path given, KUBECONFIG is not set, " +
      `not running in a cluster (KUBERNETES_SERVICE_HOST unset or no token in ${saDir}), ` +
      `and ${homeConfig ?? "$HOME/.kube/config"} does not exist`,
  );
}

// ---------------------------------------------------------------------------------------------
// Discovery

/** Connection state reported through {@linkcode KubernetesDiscoveryOptions.onStatus}. */
export type DiscoveryState = "syncing" | "synced" | "disconnected";

/** Which API feeds `Inventory.endpointSlices`. */
export type EndpointsSource =
  | "discovery.k8s.io/v1"
  | "discovery.k8s.io/v1beta1"
  | "v1/endpoints"
  | "none";

/** A status change of the discovery loop. */
export interface DiscoveryStatus {
  /** `disconnected` while any loop has an error, else `synced` once all have listed. */
  readonly state: DiscoveryState;
  /** The latest error while `disconnected` (or `syncing` after an error). */
  readonly error?: string;
  /** The API the endpoint data comes from, once known. */
  readonly endpointsSource?: EndpointsSource;
}

/** Exponential backoff between retries; each wait is drawn from `[d/2, d]` (jitter). */
export interface BackoffOptions {
  /** First retry delay. @default {500} */
  readonly initialMs: number;
  /** Cap of the delay. @default {30000} */
  readonly maxMs: number;
}

/** Options of {@linkcode KubernetesDiscovery}. */
export interface KubernetesDiscoveryOptions {
  /** Credentials from {@linkcode loadKubeConfig}; when absent they are loaded from the next two fields. */
  readonly credentials?: KubeCredentials;
  /** Explicit kubeconfig path (flag, then settings). */
  readonly kubeconfigPath?: string;
  /** kubeconfig context to use. */
  readonly context?: string;
  /** Namespaces whose Services and EndpointSlices are watched; Nodes are cluster-scoped. */
  readonly namespaces: readonly string[] | "all";
  /** Stops every request and timer; {@linkcode KubernetesDiscovery.finished} settles afterwards. */
  readonly signal: AbortSignal;
  /**
   * Called with a fresh immutable snapshot after changes that follow the initial sync, at most
   * once per {@linkcode KubernetesDiscoveryOptions.coalesceMs}. Never called with an emptied
   * inventory because of errors: while the API server is unreachable the last one stays.
   */
  onChange(inventory: Inventory): void;
  /** Called when the aggregate state or its error changes. */
  onStatus?(status: DiscoveryStatus): void;
  /** Retry delays after a failed list or watch. @default {{ initialMs: 500, maxMs: 30000 }} */
  readonly backoff?: BackoffOptions;
  /** Jitter source in [0, 1). @default {Math.random} */
  readonly random?: () => number;
  /** Window in which bursts of events become one `onChange`. @default {5} */
  readonly coalesceMs?: number;
  /** Fall back to core/v1 Endpoints when no EndpointSlice API is served. @default {true} */
  readonly endpointsFallback?: boolean;
  /** Server-side watch timeout; the watch is re-opened from the last resourceVersion. @default {300} */
  readonly watchTimeoutSeconds?: number;
  /** Page size of list requests. @default {500} */
  readonly pageSize?: number;
  /**
   * Rejects {@linkcode KubernetesDiscovery.start} when the initial list has not completed in time
   * (the loop keeps retrying until the signal aborts). @default {undefined} (wait until aborted)
   */
  readonly initialSyncTimeoutMs?: number;
}

/** Default backoff of the discovery loop. */
export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 500, maxMs: 30_000 };
/** Default event-coalescing window. */
export const DEFAULT_COALESCE_MS = 5;
/** Default server-side watch timeout in seconds. */
export const DEFAULT_WATCH_TIMEOUT_SECONDS = 300;
/** Budget of one list page or discovery request, body included. */
const REQUEST_TIMEOUT_MS = 30_000;
/** Extra client-side wait beyond the server timeout before a silent watch is dropped. */
const WATCH_IDLE_GRACE_MS = 30_000;
/** A watch that ends cleanly this quickly without events is retried with backoff, not at once. */
const WATCH_MIN_HEALTHY_MS = 1_000;

type ObjectKind = "Service" | "Node" | "EndpointSlice" | "Endpoints";

interface RawObject {
  readonly metadata?: {
    readonly name?: string;
    readonly namespace?: string;
    readonly resourceVersion?: string;
  };
  readonly [field: string]: unknown;
}

interface WatchEvent {
  readonly type: "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";
  readonly object: RawObject & {
    readonly code?: number;
    readonly message?: string;
    readonly reason?: string;
  };
}

/** An error with the HTTP status of the API response that caused it. */
class ApiError extends Error {
  readonly status: number;
  constructor(message: string, status: number, options?: ErrorOptions) {
    super(message, options);
    this.name = "ApiError";
    this.status = status;
  }
}

/** Ends a watch so the loop lists again without counting it as a failure. */
class RelistRequest extends Error {
  constructor() {
    super("Relist requested");
    this.name = "RelistRequest";
  }
}

/** Marks the end of a watch that requires a relist (410 Gone). */
class GoneError extends ApiError {
  constructor(message: string) {
    super(message, 410);
    this.name = "GoneError";
  }
}

/** An API object as stored: its resourceVersion and its inventory entries (key, info). */
interface StoredObject {
  readonly resourceVersion: string;
  readonly entries: readonly (readonly [string, ServiceInfo | NodeInfo | EndpointSliceInfo])[];
}

/** One list+watch loop: a resource in one namespace (or all), with its own store. */
interface Reflector {
  readonly kind: "services" | "nodes" | "endpoints";
  readonly namespace?: string;
  readonly store: Map<string, StoredObject>;
  isSynced: boolean;
  error?: string;
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
  readonly #random: () => number;
  readonly #coalesceMs: number;
  readonly #reflectors: Reflector[] = [];
  #credentials?: KubeCredentials;
  #client?: Deno.HttpClient;
  #clientKey = "";
  #endpointsSource: EndpointsSource | undefined;
  #endpointsDetect: Promise<EndpointsSource> | undefined;
  #isStarted = false;
  #isInitialSynced = false;
  #emitTimer: ReturnType<typeof setTimeout> | undefined;
  /** Parts of the inventory changed since the last snapshot. */
  readonly #dirty = new Set<Reflector["kind"]>();
  #current: Inventory | undefined;
  #lastStatusKey = "";
  #finished: Promise<void> = Promise.resolve();
  #syncWaiters: (() => void)[] = [];

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
    this.#random = options.random ?? Math.random;
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
    this.#credentials = this.#options.credentials ??
      await loadKubeConfig({
        ...(this.#options.kubeconfigPath ? { kubeconfigPath: this.#options.kubeconfigPath } : {}),
        ...(this.#options.context ? { context: this.#options.context } : {}),
      });

    logger.info("Kubernetes discovery using {source}", { source: this.#credentials.describe() });
    const namespaces = this.#options.namespaces === "all" ? [undefined] : this.#options.namespaces;
    this.#reflectors.push({ kind: "nodes", store: new Map(), isSynced: false });
    for (const namespace of namespaces) {
      const ns = namespace === undefined ? {} : { namespace };
      this.#reflectors.push({ kind: "services", ...ns, store: new Map(), isSynced: false });
      this.#reflectors.push({ kind: "endpoints", ...ns, store: new Map(), isSynced: false });
    }
    this.#reportStatus();
    const loops = this.#reflectors.map((r) => this.#runReflector(r));
    this.#finished = Promise.all(loops).then(
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
          const last = this.#reflectors.find((r) => r.error)?.error;
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

  #shutdown(): void {
    clearTimeout(this.#emitTimer);
    this.#emitTimer = undefined;
    this.#client?.close();
    this.#client = undefined;
  }

  // --- loop --------------------------------------------------------------------------------

  async #runReflector(r: Reflector): Promise<void> {
    const { signal } = this.#options;
    let resourceVersion: string | undefined;
    let attempt = 0;
    while (!signal.aborted) {
      try {
        if (resourceVersion === undefined) {
          resourceVersion = await this.#list(r);
          attempt = 0;
          this.#markSynced(r);
        }
        const outcome = await this.#watch(r, resourceVersion, {
          onOpen: () => {
            if (r.error !== undefined) this.#markSynced(r);
          },
          onProgress: (rv) => {
            resourceVersion = rv;
            attempt = 0;
          },
        });
        if (outcome === "healthy") continue;
        await sleep(this.#delay(attempt++), signal);
      } catch (error) {
        if (signal.aborted) break;
        if (error instanceof RelistRequest) {
          resourceVersion = undefined;
          continue;
        }
        if (error instanceof GoneError) {
          // History is compacted: relist at once; the store is replaced, not emptied.
          resourceVersion = undefined;
          if (attempt++ === 0) continue;
        } else if (error instanceof ApiError && error.status === 404 && r.kind === "endpoints") {
          // The EndpointSlice API (or a version of it) went away: detect again and relist.
          this.#endpointsDetect = undefined;
          resourceVersion = undefined;
        }
        this.#markError(r, error);
        await sleep(this.#delay(attempt++), signal);
      }
    }
  }

  #delay(attempt: number): number {
    const base = Math.min(
      this.#backoff.maxMs,
      this.#backoff.initialMs * 2 ** Math.min(attempt, 30),
    );
    return base / 2 + this.#random() * (base / 2);
  }

  #markSynced(r: Reflector): void {
    r.isSynced = true;
    delete r.error;
    if (!this.#isInitialSynced && this.#reflectors.every((x) => x.isSynced)) {
      this.#isInitialSynced = true;
      this.#current = this.#snapshot();
      for (const resolve of this.#syncWaiters.splice(0)) resolve();
    }
    this.#reportStatus();
  }

  #markError(r: Reflector, error: unknown): void {
    r.error = describeError(r, error);
    this.#reportStatus();
  }

  #reportStatus(): void {
    const onStatus = this.#options.onStatus;
    if (!onStatus || this.#options.signal.aborted) return;
    const error = this.#reflectors.find((r) => r.error !== undefined)?.error;
    const state: DiscoveryState = error !== undefined
      ? "disconnected"
      : this.#reflectors.every((r) => r.isSynced)
      ? "synced"
      : "syncing";
    const status: DiscoveryStatus = {
      state,
      ...(error !== undefined ? { error } : {}),
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

  // --- requests ----------------------------------------------------------------------------

  async #resourcePath(r: Reflector): Promise<{ path: string; kind: ObjectKind } | undefined> {
    const nsPart = r.namespace === undefined
      ? ""
      : `/namespaces/${encodeURIComponent(r.namespace)}`;
    switch (r.kind) {
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
        const res = await this.#get(`/apis/discovery.k8s.io/${version}`);
        const body = res.body;
        if (res.status === 200) {
          const resources = (body as { resources?: { name?: string }[] }).resources ?? [];
          if (resources.some((x) => x.name === "endpointslices")) {
            source = `discovery.k8s.io/${version}`;
            break;
          }
        } else if (res.status !== 404) {
          throw apiError(res.status, body, `GET /apis/discovery.k8s.io/${version}`);
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

  async #httpClient(): Promise<{ client: Deno.HttpClient; auth: RequestAuth }> {
    const auth = await this.#credentials!.requestAuth();
    const key = JSON.stringify([auth.caPem, auth.certPem, auth.keyPem, auth.proxyUrl]);
    if (!this.#client || key !== this.#clientKey) {
      this.#client?.close();
      if (auth.skipTlsVerify && auth.server.startsWith("https:")) {
        // Deno's HTTP client has no per-client switch for this; the process flag is the way.
        logger.warn(
          "insecure-skip-tls-verify is not supported per client: add the cluster CA to the " +
            "kubeconfig, or run with --unsafely-ignore-certificate-errors={host}",
          { host: new URL(auth.server).hostname },
        );
      }
      const options: Deno.CreateHttpClientOptions = {
        ...(auth.caPem ? { caCerts: [auth.caPem] } : {}),
        ...(auth.proxyUrl ? { proxy: { url: auth.proxyUrl } } : {}),
      };
      this.#client = auth.certPem && auth.keyPem
        ? Deno.createHttpClient({ ...options, cert: auth.certPem, key: auth.keyPem })
        : Deno.createHttpClient(options);
      this.#clientKey = key;
    }
    return { client: this.#client, auth };
  }

  /**
   * A GET whose whole body is read within {@linkcode REQUEST_TIMEOUT_MS}, so a half-open
   * connection cannot stall a list forever.
   */
  async #get(path: string): Promise<{ status: number; body: unknown }> {
    const { signal } = this.#options;
    const controller = new AbortController();
    const onAbort = () => controller.abort(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    const timer = setTimeout(
      () =>
        controller.abort(
          new DOMException(`No answer within ${REQUEST_TIMEOUT_MS} ms`, "TimeoutError"),
        ),
      REQUEST_TIMEOUT_MS,
    );
    try {
      const res = await this.#request(path, controller.signal);
      return { status: res.status, body: await readJson(res) };
    } finally {
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
    }
  }

  /** A GET whose body the caller must consume or cancel. */
  async #request(path: string, signal: AbortSignal = this.#options.signal): Promise<Response> {
    const { client, auth } = await this.#httpClient();
    return await fetch(auth.server + path, {
      client,
      signal,
      headers: { ...auth.headers, Accept: "application/json" },
    });
  }

  /** Lists all pages into a fresh store and swaps it in; returns the list's resourceVersion. */
  async #list(r: Reflector): Promise<string> {
    const target = await this.#resourcePath(r);
    if (target === undefined) {
      const changed = r.store.size > 0;
      r.store.clear();
      if (changed) this.#scheduleEmit(r.kind);
      return "";
    }
    const fresh = new Map<string, StoredObject>();
    const limit = this.#options.pageSize ?? 500;
    let cont: string | undefined;
    let listVersion = "";
    do {
      const query = new URLSearchParams({ limit: String(limit) });
      if (cont) query.set("continue", cont);
      const res = await this.#get(`${target.path}?${query}`);
      const body = res.body as {
        items?: RawObject[];
        metadata?: { resourceVersion?: string; continue?: string };
      };
      if (res.status !== 200) {
        if (res.status === 410 && cont) {
          // The continue token expired: start the list again.
          fresh.clear();
          cont = undefined;
          continue;
        }
        throw apiError(res.status, body, `GET ${target.path}`);
      }
      for (const item of body.items ?? []) {
        const converted = convertObject(target.kind, item);
        if (converted) fresh.set(converted.key, converted.stored);
      }
      listVersion = body.metadata?.resourceVersion ?? "";
      cont = body.metadata?.continue || undefined;
    } while (cont);
    if (!sameStore(r.store, fresh)) {
      r.store.clear();
      for (const [key, value] of fresh) r.store.set(key, value);
      this.#scheduleEmit(r.kind);
    }
    return listVersion;
  }

  /**
   * Watches from `resourceVersion` until the stream ends.
   * @returns `"healthy"` when the stream ended normally (re-watch at once), `"quick"` when it
   *   ended at once without events (re-watch after backoff)
   */
  async #watch(
    r: Reflector,
    resourceVersion: string,
    on: { onOpen(): void; onProgress(resourceVersion: string): void },
  ): Promise<"healthy" | "quick"> {
    const target = await this.#resourcePath(r);
    const { signal } = this.#options;
    if (target === undefined) {
      // No endpoint API at all: nothing to watch; look again after the longest backoff.
      await sleep(this.#backoff.maxMs, signal);
      this.#endpointsDetect = undefined;
      throw new RelistRequest();
    }
    const timeoutSeconds = this.#options.watchTimeoutSeconds ?? DEFAULT_WATCH_TIMEOUT_SECONDS;
    const query = new URLSearchParams({
      watch: "1",
      resourceVersion,
      allowWatchBookmarks: "true",
      timeoutSeconds: String(timeoutSeconds),
    });
    const controller = new AbortController();
    const onAbort = () => controller.abort(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    let idleTimer: ReturnType<typeof setTimeout> | undefined;
    const armIdle = () => {
      clearTimeout(idleTimer);
      idleTimer = setTimeout(
        () => controller.abort(new DOMException("Watch went silent", "TimeoutError")),
        timeoutSeconds * 1000 + WATCH_IDLE_GRACE_MS,
      );
    };
    const startedAt = Date.now();
    let events = 0;
    let reader: ReadableStreamDefaultReader<string> | undefined;
    try {
      armIdle();
      const res = await this.#request(`${target.path}?${query}`, controller.signal);
      if (res.status !== 200) {
        const body = await readJson(res);
        if (res.status === 410) throw new GoneError(statusMessage(body) ?? "410 Gone");
        throw apiError(res.status, body, `GET ${target.path}?watch=1`);
      }
      if (!res.body) return "quick";
      on.onOpen();
      reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        armIdle();
        buffer += value;
        let newline: number;
        while ((newline = buffer.indexOf("\n")) >= 0) {
          const line = buffer.slice(0, newline).trim();
          buffer = buffer.slice(newline + 1);
          if (line === "") continue;
          events++;
          const rv = this.#applyEvent(r, target.kind, JSON.parse(line) as WatchEvent);
          if (rv) on.onProgress(rv);
        }
      }
    } finally {
      clearTimeout(idleTimer);
      signal.removeEventListener("abort", onAbort);
      if (reader) await reader.cancel().catch(() => {});
    }
    return events === 0 && Date.now() - startedAt < WATCH_MIN_HEALTHY_MS ? "quick" : "healthy";
  }

  /** Applies one watch event; returns the resourceVersion to resume from. */
  #applyEvent(r: Reflector, kind: ObjectKind, event: WatchEvent): string | undefined {
    const object = event.object ?? {};
    switch (event.type) {
      case "ERROR": {
        const code = object.code;
        const message = object.message ?? object.reason ?? "watch error";
        if (code === 410) throw new GoneError(message);
        throw new ApiError(message, code ?? 500);
      }
      case "BOOKMARK":
        return object.metadata?.resourceVersion;
      case "ADDED":
      case "MODIFIED": {
        const converted = convertObject(kind, object);
        if (converted) {
          const previous = r.store.get(converted.key);
          if (previous?.resourceVersion !== converted.stored.resourceVersion) {
            r.store.set(converted.key, converted.stored);
            this.#scheduleEmit(r.kind);
          }
        }
        return object.metadata?.resourceVersion;
      }
      case "DELETED": {
        const key = objectKey(kind, object);
        if (key !== undefined && r.store.delete(key)) this.#scheduleEmit(r.kind);
        return object.metadata?.resourceVersion;
      }
      default:
        return undefined;
    }
  }

  // --- snapshots ---------------------------------------------------------------------------

  /**
   * Schedules one coalesced `onChange`. `kind` marks which part of the snapshot changed, so
   * the next snapshot rebuilds only that map and consumers can cache on the others' identity;
   * without it everything is rebuilt.
   */
  #scheduleEmit(kind?: Reflector["kind"]): void {
    if (kind === undefined) {
      this.#dirty.add("services").add("nodes").add("endpoints");
    } else this.#dirty.add(kind);
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
      ? new Set<Reflector["kind"]>(["services", "nodes", "endpoints"])
      : this.#dirty;
    for (const r of this.#reflectors) {
      if (!dirty.has(r.kind)) continue;
      for (const { entries } of r.store.values()) {
        for (const [key, info] of entries) {
          if (r.kind === "services") services.push([key, info as ServiceInfo]);
          else if (r.kind === "nodes") nodes.push([key, info as NodeInfo]);
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

// ---------------------------------------------------------------------------------------------
// helpers

function objectKey(kind: ObjectKind, object: RawObject): string | undefined {
  const name = object.metadata?.name;
  if (!name) return undefined;
  return kind === "Node" ? name : `${object.metadata?.namespace ?? ""}/${name}`;
}

/** Converts one API object into its inventory entries (Endpoints may give several slices). */
function convertObject(
  kind: ObjectKind,
  object: RawObject,
): { key: string; stored: StoredObject } | undefined {
  const key = objectKey(kind, object);
  if (key === undefined) return undefined;
  let entries: StoredObject["entries"];
  try {
    switch (kind) {
      case "Service":
        entries = [[key, serviceFromObject(object)]];
        break;
      case "Node":
        entries = [[key, nodeFromObject(object)]];
        break;
      case "EndpointSlice":
        entries = [[key, endpointSliceFromObject(object)]];
        break;
      case "Endpoints":
        entries = endpointSlicesFromEndpoints(object).map((slice) => [
          `${slice.namespace}/${slice.name}`,
          slice,
        ]);
        break;
    }
  } catch {
    // A malformed object is left out rather than stopping the watch of the rest.
    return undefined;
  }
  return { key, stored: { resourceVersion: object.metadata?.resourceVersion ?? "", entries } };
}

function sameStore(a: Map<string, StoredObject>, b: Map<string, StoredObject>): boolean {
  if (a.size !== b.size) return false;
  for (const [key, value] of b) {
    if (a.get(key)?.resourceVersion !== value.resourceVersion) return false;
  }
  return true;
}

async function readJson(res: Response): Promise<unknown> {
  const text = await res.text();
  try {
    return JSON.parse(text);
  } catch {
    return { message: text.slice(0, 200) };
  }
}

function statusMessage(body: unknown): string | undefined {
  if (body && typeof body === "object" && "message" in body && typeof body.message === "string") {
    return body.message;
  }
  return undefined;
}

function apiError(status: number, body: unknown, what: string): ApiError {
  const detail = statusMessage(body) ?? `HTTP ${status}`;
  if (status === 410) return new GoneError(detail);
  return new ApiError(`${what} returned ${status}: ${detail}`, status);
}

function describeError(r: Reflector, error: unknown): string {
  const what = r.namespace === undefined ? r.kind : `${r.kind} in ${r.namespace}`;
  let detail = error instanceof Error ? error.message : String(error);
  // fetch() reports "fetch failed"/"error sending request"; the cause says why (refused, DNS, TLS).
  if (
    error instanceof Error && error.cause instanceof Error && !detail.includes(error.cause.message)
  ) {
    detail += `: ${error.cause.message}`;
  }
  return `Cannot watch ${what}: ${detail}`;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}
