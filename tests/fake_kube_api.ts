/**
 * An in-process fake Kubernetes API server for fast discovery tests.
 *
 * Speaks the real list/watch HTTP protocol for Services, Nodes, Endpoints and EndpointSlices:
 * lists carry `metadata.resourceVersion` (and honour `limit`/`continue`), watches
 * (`?watch=1&resourceVersion=N`) stream newline-delimited JSON events (`ADDED`, `MODIFIED`,
 * `DELETED`, `BOOKMARK`, `ERROR`) over a chunked response, and a resourceVersion older than the
 * compaction point gets `410 Gone`, either as an `ERROR` event (what a real apiserver's watch
 * cache sends) or as an HTTP status. Tests can drop every watch, take the server down and bring
 * it back on the same port, choose which `discovery.k8s.io` versions are served, and make
 * list or watch requests misbehave the way broken proxies and servers do (see
 * {@linkcode FakeFault}).
 *
 * @module
 */

/** Object kinds the fake stores. */
export type FakeKind = "Service" | "Node" | "EndpointSlice" | "Endpoints";

/** A Kubernetes object as JSON; `metadata.name` is required. */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace?: string;
    resourceVersion?: string;
    uid?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    [field: string]: unknown;
  };
  [field: string]: unknown;
}

/** Options of {@linkcode FakeKubeApi.start}. */
export interface FakeKubeApiOptions {
  /** Bearer token every request must carry; `undefined` accepts anything. @default {"fake-token"} */
  readonly token?: string | undefined;
  /** How a too-old watch resourceVersion is answered. @default {"event"} */
  readonly goneAs?: "event" | "http";
  /** `discovery.k8s.io` versions served. @default {["v1", "v1beta1"]} */
  readonly discoveryVersions?: readonly ("v1" | "v1beta1")[];
}

/**
 * A way resource requests (lists, watches; not discovery documents) can misbehave:
 * - `html`: `200` with an HTML page, as an intercepting proxy answers
 * - `empty-object`: `200` with `{}` (a list without `items`; a watch line that is no event)
 * - `garbage`: `200` with text that is not JSON (a watch keeps streaming after the line)
 * - `server-error`: `500` with a `Status` body
 * - `unauthorized` / `forbidden`: `401` / `403` with a `Status` body
 * - `gone`: `410 Gone` (a watch only; a list is answered normally)
 * - `hang`: a watch gets `200` headers and then never a byte, ignoring `timeoutSeconds`;
 *   a list gets no answer at all
 */
export type FakeFault =
  | "html"
  | "empty-object"
  | "garbage"
  | "server-error"
  | "unauthorized"
  | "forbidden"
  | "gone"
  | "hang";

/** Which requests a {@linkcode FakeFault} applies to. */
export type FakeFaultTarget = "list" | "watch" | "both";

const HTML_PAGE = "<!DOCTYPE html>\n<html><head><title>Sign in</title></head>" +
  "<body><p>Please sign in to continue.</p></body></html>\n";

interface HistoryEntry {
  readonly rv: number;
  readonly type: "ADDED" | "MODIFIED" | "DELETED";
  readonly kind: FakeKind;
  readonly object: KubeObject;
}

interface Watcher {
  readonly kind: FakeKind;
  readonly namespace?: string;
  readonly apiVersion: string;
  readonly bookmarks: boolean;
  readonly controller: ReadableStreamDefaultController<Uint8Array>;
  readonly timer: ReturnType<typeof setTimeout> | undefined;
}

const encoder = new TextEncoder();

const KIND_INFO: Record<FakeKind, { list: string; namespaced: boolean }> = {
  Service: { list: "ServiceList", namespaced: true },
  Node: { list: "NodeList", namespaced: false },
  EndpointSlice: { list: "EndpointSliceList", namespaced: true },
  Endpoints: { list: "EndpointsList", namespaced: true },
};

function keyOf(kind: FakeKind, namespace: string | undefined, name: string): string {
  return KIND_INFO[kind].namespaced ? `${namespace ?? "default"}/${name}` : name;
}

/**
 * The fake server. Create with {@linkcode FakeKubeApi.start}; always `close()` it (or use
 * `await using`) so no listener or stream outlives the test.
 */
export class FakeKubeApi {
  /** Every request as `METHOD path?query`, in arrival order. */
  readonly requests: string[] = [];
  readonly #objects = new Map<FakeKind, Map<string, KubeObject>>();
  readonly #history: HistoryEntry[] = [];
  readonly #watchers = new Set<Watcher>();
  readonly #tempFiles: string[] = [];
  readonly #token: string | undefined;
  #goneAs: "event" | "http";
  #discoveryVersions: Set<string>;
  #rv = 100;
  #compactedRv = 0;
  #server: Deno.HttpServer | undefined;
  #port = 0;
  #fault: { readonly fault: FakeFault; readonly on: FakeFaultTarget } | undefined;
  /** Streams held open without a byte (`hang`, `garbage`); closed by `dropWatches()`/`stop()`. */
  readonly #silent = new Set<ReadableStreamDefaultController<Uint8Array>>();
  /** Pending answers of hung lists; answered with a 503 by `dropWatches()`/`stop()`. */
  readonly #hungLists = new Set<(res: Response) => void>();

  private constructor(options: FakeKubeApiOptions) {
    this.#token = "token" in options ? options.token : "fake-token";
    this.#goneAs = options.goneAs ?? "event";
    this.#discoveryVersions = new Set(options.discoveryVersions ?? ["v1", "v1beta1"]);
    for (const kind of Object.keys(KIND_INFO) as FakeKind[]) this.#objects.set(kind, new Map());
  }

  /** Starts a fake on 127.0.0.1 and a free port. */
  static async start(options: FakeKubeApiOptions = {}): Promise<FakeKubeApi> {
    const fake = new FakeKubeApi(options);
    await fake.start();
    return fake;
  }

  /** The listening port (kept across `stop()`/`start()`). */
  get port(): number {
    return this.#port;
  }

  /** Base URL, e.g. `http://127.0.0.1:41234`. */
  get url(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  /** The current resourceVersion. */
  get resourceVersion(): number {
    return this.#rv;
  }

  /** Number of open watch streams. */
  get watchCount(): number {
    return this.#watchers.size;
  }

  /** Whether the server is listening. */
  get isRunning(): boolean {
    return this.#server !== undefined;
  }

  /** (Re)starts listening, on the same port as before if there was one. */
  start(): Promise<void> {
    if (this.#server) return Promise.resolve();
    return new Promise((resolve) => {
      this.#server = Deno.serve({
        hostname: "127.0.0.1",
        port: this.#port,
        onListen: (addr) => {
          this.#port = addr.port;
          resolve();
        },
      }, (req) => this.#handle(req));
    });
  }

  /** Closes every watch and stops listening; clients get connection refused until `start()`. */
  async stop(): Promise<void> {
    this.dropWatches();
    const server = this.#server;
    this.#server = undefined;
    if (server) await server.shutdown();
  }

  /** Stops and removes the kubeconfig files written by {@linkcode FakeKubeApi.kubeconfig}. */
  async close(): Promise<void> {
    await this.stop();
    for (const path of this.#tempFiles.splice(0)) await Deno.remove(path).catch(() => {});
  }

  /** Same as {@linkcode FakeKubeApi.close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** Ends every open watch stream cleanly (hung ones included); clients must re-watch. */
  dropWatches(): void {
    for (const w of [...this.#watchers]) this.#closeWatcher(w);
    for (const controller of [...this.#silent]) {
      this.#silent.delete(controller);
      try {
        controller.close();
      } catch {
        // Already cancelled by the client.
      }
    }
    for (const answer of [...this.#hungLists]) {
      this.#hungLists.delete(answer);
      answer(status(503, "ServiceUnavailable", "stopping"));
    }
  }

  /**
   * Makes list and/or watch requests of resources misbehave from now on; `undefined` heals.
   * Open watches are not touched (use {@linkcode FakeKubeApi.dropWatches} or
   * {@linkcode FakeKubeApi.sendRaw}).
   */
  setFault(fault: FakeFault | undefined, on: FakeFaultTarget = "both"): void {
    this.#fault = fault === undefined ? undefined : { fault, on };
  }

  /** Number of watch streams held open without sending (`hang`, `garbage`). */
  get silentWatchCount(): number {
    return this.#silent.size;
  }

  /** Writes `line` (plus a newline) as-is to every open watch, e.g. a line that is not JSON. */
  sendRaw(line: string): void {
    for (const w of [...this.#watchers]) {
      try {
        w.controller.enqueue(encoder.encode(line + "\n"));
      } catch {
        this.#closeWatcher(w);
      }
    }
  }

  /** Chooses the served `discovery.k8s.io` versions; open EndpointSlice watches are dropped. */
  setDiscoveryVersions(versions: readonly ("v1" | "v1beta1")[]): void {
    this.#discoveryVersions = new Set(versions);
    for (const w of [...this.#watchers]) if (w.kind === "EndpointSlice") this.#closeWatcher(w);
  }

  /** Chooses how a too-old resourceVersion is answered. */
  setGoneAs(goneAs: "event" | "http"): void {
    this.#goneAs = goneAs;
  }

  /**
   * Forgets history up to now: watches from any older resourceVersion get 410 Gone. Open
   * watches receive an `ERROR` 410 event and are closed, as after an etcd compaction.
   */
  compact(): void {
    this.#compactedRv = this.#rv;
    for (const w of [...this.#watchers]) {
      this.#send(w, { type: "ERROR", object: goneStatus(this.#rv) });
      this.#closeWatcher(w);
    }
  }

  /** Sends a `BOOKMARK` with the current resourceVersion to watches that allow bookmarks. */
  bookmark(): void {
    for (const w of this.#watchers) {
      if (!w.bookmarks) continue;
      this.#send(w, {
        type: "BOOKMARK",
        object: {
          apiVersion: w.apiVersion,
          kind: w.kind,
          metadata: { resourceVersion: String(this.#rv) },
        },
      });
    }
  }

  /**
   * Creates or replaces an object (kind from `obj.kind`), bumping its resourceVersion, and
   * notifies matching watches. Returns the stored copy.
   */
  upsert(obj: KubeObject): KubeObject {
    const kind = obj.kind as FakeKind;
    if (!(kind in KIND_INFO)) throw new TypeError(`Cannot store kind '${obj.kind}'`);
    const store = this.#objects.get(kind)!;
    const namespace = KIND_INFO[kind].namespaced ? obj.metadata.namespace ?? "default" : undefined;
    const key = keyOf(kind, namespace, obj.metadata.name);
    const previous = store.get(key);
    const rv = ++this.#rv;
    const stored: KubeObject = structuredClone(obj);
    stored.metadata = {
      ...stored.metadata,
      ...(namespace !== undefined ? { namespace } : {}),
      resourceVersion: String(rv),
      uid: previous?.metadata.uid ?? crypto.randomUUID(),
    };
    store.set(key, stored);
    this.#record({ rv, type: previous ? "MODIFIED" : "ADDED", kind, object: stored });
    return stored;
  }

  /** Deletes an object; returns whether it existed. */
  delete(kind: FakeKind, namespace: string | undefined, name: string): boolean {
    const store = this.#objects.get(kind)!;
    const key = keyOf(kind, namespace, name);
    const previous = store.get(key);
    if (!previous) return false;
    store.delete(key);
    const rv = ++this.#rv;
    const object = structuredClone(previous);
    object.metadata.resourceVersion = String(rv);
    this.#record({ rv, type: "DELETED", kind, object });
    return true;
  }

  /** Writes a kubeconfig pointing at this fake (token auth) to a temp file; returns its path. */
  async kubeconfig(options: { token?: string; context?: string } = {}): Promise<string> {
    const context = options.context ?? "fake";
    const token = options.token ?? this.#token ?? "fake-token";
    const path = await Deno.makeTempFile({ prefix: "nautiluslb-fake-kubeconfig-" });
    this.#tempFiles.push(path);
    await Deno.writeTextFile(
      path,
      [
        "apiVersion: v1",
        "kind: Config",
        "clusters:",
        `- name: ${context}`,
        "  cluster:",
        `    server: ${this.url}`,
        // client-node refuses plain http otherwise; there is no TLS to verify.
        "    insecure-skip-tls-verify: true",
        "users:",
        `- name: ${context}`,
        "  user:",
        `    token: ${token}`,
        "contexts:",
        `- name: ${context}`,
        "  context:",
        `    cluster: ${context}`,
        `    user: ${context}`,
        `current-context: ${context}`,
        "",
      ].join("\n"),
    );
    return path;
  }

  // --- internals -------------------------------------------------------------------------

  #record(entry: HistoryEntry): void {
    this.#history.push(entry);
    for (const w of this.#watchers) {
      if (this.#matches(w, entry)) this.#send(w, eventFor(w, entry));
    }
  }

  #matches(w: Watcher, entry: HistoryEntry): boolean {
    return w.kind === entry.kind &&
      (w.namespace === undefined || w.namespace === entry.object.metadata.namespace);
  }

  #send(w: Watcher, event: unknown): void {
    try {
      w.controller.enqueue(encoder.encode(JSON.stringify(event) + "\n"));
    } catch {
      this.#closeWatcher(w);
    }
  }

  #closeWatcher(w: Watcher): void {
    if (!this.#watchers.delete(w)) return;
    clearTimeout(w.timer);
    try {
      w.controller.close();
    } catch {
      // Already closed or cancelled by the client.
    }
  }

  #handle(req: Request): Response | Promise<Response> {
    const url = new URL(req.url);
    this.requests.push(`${req.method} ${url.pathname}${url.search}`);
    if (this.#token !== undefined && req.headers.get("authorization") !== `Bearer ${this.#token}`) {
      return status(401, "Unauthorized", "Unauthorized");
    }
    if (req.method !== "GET") return status(405, "MethodNotAllowed", "only GET is served");
    const path = url.pathname;
    if (path === "/api") return json({ kind: "APIVersions", versions: ["v1"] });
    if (path === "/apis") return json(this.#groupList());
    if (path === "/apis/discovery.k8s.io") {
      const group = this.#group();
      return group ? json(group) : notFound(path);
    }
    const versionMatch = path.match(/^\/apis\/discovery\.k8s\.io\/(v1|v1beta1)$/);
    if (versionMatch) {
      const version = versionMatch[1]!;
      if (!this.#discoveryVersions.has(version)) return notFound(path);
      return json({
        kind: "APIResourceList",
        apiVersion: "v1",
        groupVersion: `discovery.k8s.io/${version}`,
        resources: [{
          name: "endpointslices",
          singularName: "",
          namespaced: true,
          kind: "EndpointSlice",
          verbs: ["get", "list", "watch"],
        }],
      });
    }
    let kind: FakeKind | undefined;
    let namespace: string | undefined;
    let apiVersion = "v1";
    let m = path.match(/^\/api\/v1\/(?:namespaces\/([^/]+)\/)?(services|endpoints|nodes)$/);
    if (m) {
      namespace = m[1] ? decodeURIComponent(m[1]) : undefined;
      kind = m[2] === "services" ? "Service" : m[2] === "endpoints" ? "Endpoints" : "Node";
      if (kind === "Node" && namespace !== undefined) return notFound(path);
    } else if (
      (m = path.match(
        /^\/apis\/discovery\.k8s\.io\/(v1|v1beta1)\/(?:namespaces\/([^/]+)\/)?endpointslices$/,
      ))
    ) {
      if (!this.#discoveryVersions.has(m[1]!)) return notFound(path);
      apiVersion = `discovery.k8s.io/${m[1]}`;
      namespace = m[2] ? decodeURIComponent(m[2]) : undefined;
      kind = "EndpointSlice";
    }
    if (!kind) return notFound(path);
    const params = url.searchParams;
    const isWatch = params.get("watch") === "1" || params.get("watch") === "true";
    const fault = this.#fault;
    if (
      fault && (fault.on === "both" || fault.on === (isWatch ? "watch" : "list")) &&
      !(fault.fault === "gone" && !isWatch)
    ) {
      return this.#faulty(fault.fault, isWatch);
    }
    return isWatch
      ? this.#watch(kind, namespace, apiVersion, params)
      : this.#list(kind, namespace, apiVersion, params);
  }

  #list(
    kind: FakeKind,
    namespace: string | undefined,
    apiVersion: string,
    params: URLSearchParams,
  ) {
    const items = [...this.#objects.get(kind)!.entries()]
      .filter(([, o]) => namespace === undefined || o.metadata.namespace === namespace)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([, o]) => ({ ...o, apiVersion, kind }));
    const limit = Number(params.get("limit") ?? "0");
    const start = Number(params.get("continue") ?? "0");
    const page = limit > 0 ? items.slice(start, start + limit) : items.slice(start);
    const next = limit > 0 && start + limit < items.length ? String(start + limit) : undefined;
    return json({
      apiVersion,
      kind: KIND_INFO[kind].list,
      metadata: { resourceVersion: String(this.#rv), ...(next ? { continue: next } : {}) },
      items: page,
    });
  }

  #watch(
    kind: FakeKind,
    namespace: string | undefined,
    apiVersion: string,
    params: URLSearchParams,
  ) {
    const rvParam = params.get("resourceVersion") ?? "";
    const fromRv = rvParam === "" || rvParam === "0" ? undefined : Number(rvParam);
    if (fromRv !== undefined && fromRv < this.#compactedRv) {
      if (this.#goneAs === "http") {
        return status(410, "Expired", `too old resource version: ${fromRv} (${this.#compactedRv})`);
      }
      const body = JSON.stringify({ type: "ERROR", object: goneStatus(fromRv) }) + "\n";
      return new Response(body, { headers: { "content-type": "application/json" } });
    }
    const timeoutSeconds = Number(params.get("timeoutSeconds") ?? "0");
    const bookmarks = params.get("allowWatchBookmarks") === "true";
    let watcher: Watcher | undefined;
    const stream = new ReadableStream<Uint8Array>({
      start: (controller) => {
        const timer = timeoutSeconds > 0
          ? setTimeout(() => watcher && this.#closeWatcher(watcher), timeoutSeconds * 1000)
          : undefined;
        const w: Watcher = {
          kind,
          ...(namespace !== undefined ? { namespace } : {}),
          apiVersion,
          bookmarks,
          controller,
          timer,
        };
        watcher = w;
        const probe = { kind, object: { metadata: { namespace } } } as unknown as HistoryEntry;
        if (fromRv === undefined) {
          for (const object of this.#objects.get(kind)!.values()) {
            if (this.#matches(w, { ...probe, object })) {
              this.#send(w, { type: "ADDED", object: { ...object, apiVersion, kind } });
            }
          }
        } else {
          for (const entry of this.#history) {
            if (entry.rv > fromRv && this.#matches(w, entry)) {
              this.#send(w, eventFor(w, entry));
            }
          }
        }
        this.#watchers.add(w);
      },
      cancel: () => {
        if (watcher) this.#closeWatcher(watcher);
      },
    });
    return new Response(stream, { headers: { "content-type": "application/json" } });
  }

  #faulty(fault: FakeFault, isWatch: boolean): Response | Promise<Response> {
    switch (fault) {
      case "html":
        return new Response(HTML_PAGE, { headers: { "content-type": "text/html" } });
      case "empty-object":
        return new Response(isWatch ? "{}\n" : "{}", {
          headers: { "content-type": "application/json" },
        });
      case "server-error":
        return status(500, "InternalError", "etcdserver: request timed out");
      case "gone":
        return status(410, "Expired", `too old resource version: 1 (${this.#rv})`);
      case "unauthorized":
        return status(401, "Unauthorized", "Unauthorized");
      case "forbidden":
        return status(
          403,
          "Forbidden",
          'services is forbidden: User "system:serviceaccount:lb:lb" cannot list resource',
        );
      case "garbage":
      case "hang": {
        if (!isWatch) {
          if (fault === "garbage") {
            return new Response("this is not json", {
              headers: { "content-type": "application/json" },
            });
          }
          return new Promise((resolve) => this.#hungLists.add(resolve));
        }
        let held: ReadableStreamDefaultController<Uint8Array> | undefined;
        const stream = new ReadableStream<Uint8Array>({
          start: (controller) => {
            held = controller;
            this.#silent.add(controller);
            if (fault === "garbage") controller.enqueue(encoder.encode("this is not json\n"));
          },
          cancel: () => {
            if (held) this.#silent.delete(held);
          },
        });
        return new Response(stream, { headers: { "content-type": "application/json" } });
      }
    }
  }

  #groupVersions(): { groupVersion: string; version: string }[] {
    return ["v1", "v1beta1"]
      .filter((v) => this.#discoveryVersions.has(v))
      .map((version) => ({ groupVersion: `discovery.k8s.io/${version}`, version }));
  }

  #group(): unknown {
    const versions = this.#groupVersions();
    if (versions.length === 0) return undefined;
    return {
      kind: "APIGroup",
      apiVersion: "v1",
      name: "discovery.k8s.io",
      versions,
      preferredVersion: versions[0],
    };
  }

  #groupList(): unknown {
    const group = this.#group();
    return { kind: "APIGroupList", apiVersion: "v1", groups: group ? [group] : [] };
  }
}

function eventFor(w: Watcher, entry: HistoryEntry): unknown {
  return {
    type: entry.type,
    object: { ...entry.object, apiVersion: w.apiVersion, kind: entry.kind },
  };
}

function goneStatus(rv: number): unknown {
  return {
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Failure",
    message: `too old resource version: ${rv}`,
    reason: "Expired",
    code: 410,
  };
}

function json(body: unknown, code = 200): Response {
  return new Response(JSON.stringify(body), {
    status: code,
    headers: { "content-type": "application/json" },
  });
}

function status(code: number, reason: string, message: string): Response {
  return json({ kind: "Status", apiVersion: "v1", status: "Failure", message, reason, code }, code);
}

function notFound(path: string): Response {
  return status(404, "NotFound", `the server could not find the requested resource (${path})`);
}
