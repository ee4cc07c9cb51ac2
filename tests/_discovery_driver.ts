/**
 * Drives `KubernetesDiscovery` against the in-process {@linkcode FakeKubeApi}: fixture
 * objects, a small cluster to start from, and a running discovery that records what it
 * reported and can wait for an inventory or a status.
 *
 * @module
 */
import type { Inventory } from "../src/core/inventory.ts";
import {
  KubernetesDiscovery,
  type KubernetesDiscoveryOptions,
  type KubernetesSyncStatus,
} from "../src/discovery/mod.ts";
import { FakeKubeApi, type FakeKubeApiOptions, type KubeObject } from "./fake_kube_api.ts";

const ANNOTATION = "nautiluslb.cloudresty.io/enabled";

/** An annotated NodePort Service with one `http` port (80, or `extra.port`). */
export function service(
  namespace: string,
  name: string,
  extra: { port?: number } = {},
): KubeObject {
  return {
    kind: "Service",
    metadata: { name, namespace, annotations: { [ANNOTATION]: "true" } },
    spec: {
      type: "NodePort",
      clusterIP: "10.0.0.10",
      clusterIPs: ["10.0.0.10"],
      ports: [{ name: "http", protocol: "TCP", port: extra.port ?? 80, nodePort: 30080 }],
    },
  };
}

/** A Node with an InternalIP and a Ready condition. */
export function node(name: string, ready: "True" | "False" = "True", ip = "127.0.0.2"): KubeObject {
  return {
    kind: "Node",
    metadata: { name, labels: { "kubernetes.io/hostname": name } },
    spec: {},
    status: {
      addresses: [{ type: "InternalIP", address: ip }],
      conditions: [{ type: "Ready", status: ready }],
    },
  };
}

/** An EndpointSlice of Service `serviceName` with one ready endpoint on node `n1`. */
export function slice(namespace: string, name: string, serviceName: string): KubeObject {
  return {
    kind: "EndpointSlice",
    metadata: { name, namespace, labels: { "kubernetes.io/service-name": serviceName } },
    addressType: "IPv4",
    ports: [{ name: "http", port: 8080, protocol: "TCP" }],
    endpoints: [{ addresses: ["10.1.0.5"], conditions: { ready: true }, nodeName: "n1" }],
  };
}

/** A core/v1 Endpoints object with one address on node `n1`. */
export function endpoints(namespace: string, name: string): KubeObject {
  return {
    kind: "Endpoints",
    metadata: { name, namespace },
    subsets: [{
      addresses: [{ ip: "10.1.0.7", nodeName: "n1" }],
      ports: [{ name: "http", port: 8080, protocol: "TCP" }],
    }],
  };
}

/**
 * The small cluster most discovery tests start from: Services `a/web` and `b/db`, Node `n1`
 * (ready) and `n2` (not ready, `127.0.0.3`), and EndpointSlice `a/web-abc` of `web`.
 */
export function populate(fake: FakeKubeApi): void {
  fake.upsert(service("a", "web"));
  fake.upsert(service("b", "db"));
  fake.upsert(node("n1"));
  fake.upsert(node("n2", "False", "127.0.0.3"));
  fake.upsert(slice("a", "web-abc", "web"));
}

/** Options of {@linkcode startDiscovery}. */
export interface DiscoveryDriverOptions {
  /** Fills the fake before discovery starts. @default {nothing} */
  readonly setup?: (fake: FakeKubeApi) => void;
  /** Discovery options over the driver's (all namespaces, a 20-200 ms backoff, recorders). */
  readonly discovery?: Partial<KubernetesDiscoveryOptions>;
  /** Options of the fake API server. */
  readonly fake?: FakeKubeApiOptions;
  /** How long {@linkcode DiscoveryDriver.waitFor} and `waitForStatus` wait. @default {3000} */
  readonly waitMs?: number;
}

/** A started discovery on a fake API, with what it reported. Disposing stops both. */
export interface DiscoveryDriver extends AsyncDisposable {
  readonly fake: FakeKubeApi;
  readonly discovery: KubernetesDiscovery;
  /** Every inventory passed to `onChange`, in order. */
  readonly changes: Inventory[];
  /** Every status passed to `onStatus`, in order. */
  readonly statuses: KubernetesSyncStatus[];
  /** What `start()` resolved with. */
  readonly initial: Inventory;
  /**
   * Resolves with the current inventory once `predicate` holds for it; rejects after
   * `waitMs`, naming `what`.
   */
  waitFor(predicate: (inv: Inventory) => boolean, what?: string): Promise<Inventory>;
  /** Resolves with the first status reported that satisfies `predicate`; rejects likewise. */
  waitForStatus(
    predicate: (s: KubernetesSyncStatus) => boolean,
    what?: string,
  ): Promise<KubernetesSyncStatus>;
}

/**
 * Starts a {@linkcode FakeKubeApi}, fills it with `options.setup`, and starts a
 * `KubernetesDiscovery` on it; resolves once the initial sync is done. On a failed start
 * both are stopped before the error is thrown.
 */
export async function startDiscovery(
  options: DiscoveryDriverOptions = {},
): Promise<DiscoveryDriver> {
  const waitMs = options.waitMs ?? 3000;
  const fake = await FakeKubeApi.start(options.fake);
  options.setup?.(fake);
  const kubeconfigPath = await fake.kubeconfig();
  const ac = new AbortController();
  const changes: Inventory[] = [];
  const statuses: KubernetesSyncStatus[] = [];
  const listeners = new Set<() => void>();
  const notify = () => {
    for (const l of [...listeners]) l();
  };
  const discovery = new KubernetesDiscovery({
    kubeconfigPath,
    namespaces: "all",
    signal: ac.signal,
    backoff: { initialMs: 20, maxMs: 200 },
    onChange: (inv) => {
      changes.push(inv);
      notify();
    },
    onStatus: (s) => {
      statuses.push(s);
      notify();
    },
    ...options.discovery,
  });
  const close = async () => {
    ac.abort();
    await discovery.finished;
    await fake.close();
  };
  let initial: Inventory;
  try {
    initial = await discovery.start();
  } catch (error) {
    await close();
    throw error;
  }
  /** Resolves with `check()`'s first defined value, checked now and on every report. */
  const until = <T>(check: () => T | undefined, what: string) =>
    new Promise<T>((resolve, reject) => {
      const first = check();
      if (first !== undefined) return resolve(first);
      const listener = () => {
        const value = check();
        if (value === undefined) return;
        listeners.delete(listener);
        clearTimeout(timer);
        resolve(value);
      };
      const timer = setTimeout(() => {
        listeners.delete(listener);
        reject(new Error(`Timed out after ${waitMs} ms waiting for ${what}`));
      }, waitMs);
      listeners.add(listener);
    });
  return {
    fake,
    discovery,
    changes,
    statuses,
    initial,
    waitFor: (predicate, what = "an inventory") =>
      until(() => predicate(discovery.inventory!) ? discovery.inventory! : undefined, what),
    waitForStatus: (predicate, what = "a status") => until(() => statuses.find(predicate), what),
    [Symbol.asyncDispose]: close,
  };
}
