/**
 * Kubernetes credentials: finds and parses a kubeconfig (or the in-cluster service account)
 * and turns it into what one request needs (base URL, headers, TLS material).
 *
 * The only importer of `@kubernetes/client-node`, loaded on first use. The client library is
 * used for what it does well (kubeconfig parsing, contexts, exec/OIDC/token-file credentials);
 * requests are made elsewhere with Deno's own `fetch`. Nothing this module returns or throws
 * carries a secret: server URLs lose their user-info and parse errors lose their excerpt.
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
import { redactSecrets, redactUrl } from "./redact.ts";

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
  /** The API server URL, e.g. `https://10.0.0.1:443`, without any user-info (safe to log). */
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
    this.server = redactUrl(kubeConfig.getCurrentCluster()?.server ?? "");
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
    // fetch() refuses URLs with credentials; user-info becomes basic auth as in Go's client.
    const server = splitUserInfo(cluster.server);
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
      } else if (server.userInfo) headers["Authorization"] = `Basic ${btoa(server.userInfo)}`;
      if (user.impersonateUser) headers["Impersonate-User"] = user.impersonateUser;
    }
    return {
      server: server.url.replace(/\/+$/, ""),
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

function splitUserInfo(server: string): { url: string; userInfo?: string } {
  try {
    const url = new URL(server);
    if (url.username === "" && url.password === "") return { url: server };
    const userInfo = `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`;
    return { url: redactUrl(server), userInfo };
  } catch {
    return { url: server };
  }
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
    // YAML errors quote an excerpt of the file, which may hold a token: keep the first line
    // (reason and position) only, redacted, and keep the original out of the cause chain.
    const message = cause instanceof Error ? cause.message : String(cause);
    const detail = redactSecrets(message.split("\n", 1)[0]!.trim());
    const safeCause = new Error(detail);
    if (cause instanceof Error) safeCause.name = cause.name;
    throw new Error(`Cannot read kubeconfig '${path}': ${detail}`, { cause: safeCause });
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
