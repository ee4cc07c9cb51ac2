/**
 * A local etcd + kube-apiserver for end-to-end tests, driven through
 * `scripts/kube_apiserver_start.sh`, plus small REST helpers to create the objects a test
 * needs (the apiserver runs no controllers or kubelets, so tests create Nodes themselves).
 *
 * @module
 */

const SCRIPT = new URL("../../scripts/kube_apiserver_start.sh", import.meta.url).pathname;

/**
 * Path of the cached kube-apiserver binary built by `scripts/kube_apiserver_build.sh`, as the
 * start script names it (`scripts/_kube_apiserver_bin.sh` holds the name).
 */
export function kubeApiserverBinary(): string {
  const out = new Deno.Command("bash", { args: [SCRIPT, "binary"], stdin: "null" }).outputSync();
  const text = new TextDecoder().decode(out.stdout).trim();
  if (!out.success || text === "") {
    const error = new TextDecoder().decode(out.stderr);
    throw new Error(`Cannot run kube_apiserver_start.sh binary: exit ${out.code}: ${error}`);
  }
  return text;
}

/**
 * Why e2e tests cannot run here, or `undefined` when they can. With
 * `NAUTILUS_E2E_REQUIRED=1` (CI) nothing is skipped: a missing binary fails the tests instead.
 */
export function e2eSkipReason(): string | undefined {
  if (Deno.env.get("NAUTILUS_E2E_REQUIRED") === "1") return undefined;
  const bin = kubeApiserverBinary();
  try {
    if (Deno.statSync(bin).isFile) return undefined;
  } catch {
    // Missing: reported below.
  }
  return `no kube-apiserver at ${bin}; build it with scripts/kube_apiserver_build.sh`;
}

/** A Kubernetes object as JSON. */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace?: string;
    resourceVersion?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    [field: string]: unknown;
  };
  [field: string]: unknown;
}

/** Options of {@linkcode nodeObject}. */
export interface NodeObjectOptions {
  /** InternalIP. */
  readonly address: string;
  /** @default {"True"} */
  readonly ready?: "True" | "False" | "Unknown";
  readonly labels?: Record<string, string>;
  readonly unschedulable?: boolean;
}

/** A Node as a kubelet would register it: an InternalIP and a Ready condition. */
export function nodeObject(name: string, options: NodeObjectOptions): KubeObject {
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: { name, labels: { "kubernetes.io/hostname": name, ...options.labels } },
    spec: options.unschedulable ? { unschedulable: true } : {},
    status: {
      addresses: [
        { type: "InternalIP", address: options.address },
        { type: "Hostname", address: name },
      ],
      conditions: [readyCondition(options.ready ?? "True")],
    },
  };
}

function readyCondition(
  status: "True" | "False" | "Unknown",
): { type: string } & Record<string, string> {
  const now = new Date().toISOString().replace(/\.\d+Z$/, "Z");
  return {
    type: "Ready",
    status,
    reason: status === "True" ? "KubeletReady" : "KubeletNotReady",
    message: "",
    lastHeartbeatTime: now,
    lastTransitionTime: now,
  };
}

/** Options of {@linkcode serviceObject}. */
export interface ServiceObjectOptions {
  /** @default {"NodePort"} */
  readonly type?: "NodePort" | "ClusterIP" | "LoadBalancer";
  readonly annotations?: Record<string, string>;
  readonly labels?: Record<string, string>;
  /** @default {[{ name: "http", port: 80, targetPort: 8080 }]} */
  readonly ports?: readonly {
    name: string;
    port: number;
    targetPort?: number;
    nodePort?: number;
  }[];
}

/** A Service; the apiserver allocates its cluster IP and node ports. */
export function serviceObject(
  namespace: string,
  name: string,
  options: ServiceObjectOptions = {},
): KubeObject {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: {
      name,
      namespace,
      ...(options.annotations ? { annotations: options.annotations } : {}),
      ...(options.labels ? { labels: options.labels } : {}),
    },
    spec: {
      type: options.type ?? "NodePort",
      selector: { app: name },
      ports: (options.ports ?? [{ name: "http", port: 80, targetPort: 8080 }]).map((p) => ({
        protocol: "TCP",
        ...p,
      })),
    },
  };
}

const COLLECTIONS: Record<string, { prefix: string; plural: string; namespaced: boolean }> = {
  Namespace: { prefix: "/api/v1", plural: "namespaces", namespaced: false },
  Node: { prefix: "/api/v1", plural: "nodes", namespaced: false },
  Service: { prefix: "/api/v1", plural: "services", namespaced: true },
  Endpoints: { prefix: "/api/v1", plural: "endpoints", namespaced: true },
  EndpointSlice: {
    prefix: "/apis/discovery.k8s.io/v1beta1",
    plural: "endpointslices",
    namespaced: true,
  },
};

function collectionPath(kind: string, namespace?: string): string {
  const c = COLLECTIONS[kind];
  if (!c) throw new TypeError(`Cannot manage kind '${kind}'`);
  const ns = c.namespaced ? `/namespaces/${namespace ?? "default"}` : "";
  return `${c.prefix}${ns}/${c.plural}`;
}

/** The fields of a kube-apiserver audit event (audit.k8s.io/v1) the tests read. */
export interface AuditEvent {
  readonly verb: string;
  readonly requestURI: string;
  readonly userAgent?: string;
  readonly user: { readonly username: string };
  readonly objectRef?: {
    readonly resource?: string;
    readonly subresource?: string;
    readonly apiGroup?: string;
    readonly namespace?: string;
    readonly name?: string;
  };
  readonly responseStatus?: { readonly code?: number };
}

/**
 * A running local control plane. Stop it with {@linkcode KubeCluster.stop} (or `await using`);
 * the helpers use the admin credentials.
 */
export class KubeCluster {
  /** `https://127.0.0.1:PORT`. */
  readonly server: string;
  /** kubeconfig of the `system:masters` token user. */
  readonly adminKubeconfig: string;
  /**
   * kubeconfig holding only a token of the ServiceAccount `nautiluslb/nautiluslb`, which
   * `deploy/kubernetes/base/rbac.yaml` (applied unchanged) binds and nothing else does.
   */
  readonly lbKubeconfig: string;
  /** The user name the API server sees for {@linkcode KubeCluster.lbKubeconfig}. */
  readonly lbUser: string;
  /** State directory of the script (certs, logs, pid files). */
  readonly stateDir: string;
  readonly #token: string;
  readonly #client: Deno.HttpClient;

  private constructor(env: Record<string, string>, caPem: string) {
    this.server = env.NAUTILUS_KUBE_SERVER!;
    this.adminKubeconfig = env.KUBECONFIG!;
    this.lbKubeconfig = env.NAUTILUS_KUBE_LB_KUBECONFIG!;
    this.lbUser = env.NAUTILUS_KUBE_LB_USER!;
    this.stateDir = env.NAUTILUS_KUBE_STATE!;
    this.#token = env.NAUTILUS_KUBE_ADMIN_TOKEN!;
    this.#client = Deno.createHttpClient({ caCerts: [caPem] });
  }

  /** Starts etcd and kube-apiserver (about 10 s). */
  static async start(): Promise<KubeCluster> {
    const env = await runScript("start", {});
    const caPem = await Deno.readTextFile(env.NAUTILUS_KUBE_CA!);
    return new KubeCluster(env, caPem);
  }

  /** The ServiceAccount token in {@linkcode KubeCluster.lbKubeconfig}. */
  async lbToken(): Promise<string> {
    return (await Deno.readTextFile(`${this.stateDir}/nautiluslb.token`)).trim();
  }

  /** The admin (`system:masters`) token. */
  get adminToken(): string {
    return this.#token;
  }

  /** PEM files of the cluster CA: `ca.crt` (also the server's trust root) and `ca.key`. */
  get caFiles(): { cert: string; key: string } {
    return { cert: `${this.stateDir}/ca.crt`, key: `${this.stateDir}/ca.key` };
  }

  /**
   * Requests by {@linkcode KubeCluster.lbUser} so far, from the API server's audit log
   * (metadata level; other users are not audited).
   */
  async auditEvents(): Promise<AuditEvent[]> {
    let text = "";
    try {
      text = await Deno.readTextFile(`${this.stateDir}/audit.log`);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
    return text.split("\n").filter((line) => line.trim() !== "").map((line) =>
      JSON.parse(line) as AuditEvent
    );
  }

  /** Stops both processes and removes the state directory. */
  async stop(): Promise<void> {
    this.#client.close();
    await runScript("stop", { NAUTILUS_KUBE_STATE: this.stateDir });
  }

  /** Same as {@linkcode KubeCluster.stop}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }

  /** Stops kube-apiserver only (etcd keeps the data), to simulate an outage. */
  async stopApiserver(): Promise<void> {
    await runScript("stop-apiserver", { NAUTILUS_KUBE_STATE: this.stateDir });
  }

  /** Starts kube-apiserver again on the same port; resolves once it is ready. */
  async startApiserver(): Promise<void> {
    await runScript("start-apiserver", { NAUTILUS_KUBE_STATE: this.stateDir });
  }

  /** Sends one request with the admin token; returns the parsed JSON body. */
  async request(method: string, path: string, body?: unknown): Promise<KubeObject> {
    const res = await fetch(this.server + path, {
      method,
      client: this.#client,
      headers: {
        Authorization: `Bearer ${this.#token}`,
        Accept: "application/json",
        ...(body === undefined ? {} : { "Content-Type": "application/json" }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path} returned ${res.status}: ${text}`);
    return JSON.parse(text) as KubeObject;
  }

  /** Creates an object (kind from `obj.kind`). */
  create(obj: KubeObject): Promise<KubeObject> {
    return this.request("POST", collectionPath(obj.kind!, obj.metadata.namespace), obj);
  }

  /** Creates a namespace if it does not exist. */
  async ensureNamespace(name: string): Promise<void> {
    try {
      await this.create({ apiVersion: "v1", kind: "Namespace", metadata: { name } });
    } catch (error) {
      if (!String(error).includes(" 409:")) throw error;
    }
  }

  /** Reads an object. */
  get(kind: string, namespace: string | undefined, name: string): Promise<KubeObject> {
    return this.request("GET", `${collectionPath(kind, namespace)}/${name}`);
  }

  /** Deletes an object. */
  async delete(kind: string, namespace: string | undefined, name: string): Promise<void> {
    await this.request("DELETE", `${collectionPath(kind, namespace)}/${name}`);
  }

  /** Sets a Node's Ready condition through the status subresource, as a kubelet would. */
  async setNodeReady(name: string, status: "True" | "False" | "Unknown"): Promise<void> {
    const node = await this.get("Node", undefined, name);
    const nodeStatus = (node.status ?? {}) as { conditions?: { type: string }[] };
    nodeStatus.conditions = [
      ...(nodeStatus.conditions ?? []).filter((c) => c.type !== "Ready"),
      readyCondition(status),
    ];
    node.status = nodeStatus;
    await this.request("PUT", `/api/v1/nodes/${name}/status`, node);
  }
}

async function runScript(
  command: string,
  env: Record<string, string>,
): Promise<Record<string, string>> {
  const out = await new Deno.Command("bash", {
    args: [SCRIPT, command],
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    const stderr = new TextDecoder().decode(out.stderr);
    throw new Error(`Cannot run kube_apiserver_start.sh ${command}: exit ${out.code}: ${stderr}`);
  }
  const result: Record<string, string> = {};
  for (const line of stdout.split("\n")) {
    const eq = line.indexOf("=");
    if (eq > 0) result[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return result;
}
