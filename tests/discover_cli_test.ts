/**
 * `discover` through the real CLI against the in-process fake API server: the JSON contract,
 * `--watch` lines with reasons, and exit codes for unusable credentials.
 */
import assert from "node:assert/strict";
import { FakeKubeApi, type KubeObject } from "./fake_kube_api.ts";
import { delay } from "./_helpers.ts";

const ROOT = new URL("../", import.meta.url);
const decode = (b: Uint8Array) => new TextDecoder().decode(b);

function service(namespace: string, name: string, annotated = true): KubeObject {
  return {
    kind: "Service",
    metadata: {
      name,
      namespace,
      annotations: annotated ? { "nautiluslb.cloudresty.io/enabled": "true" } : {},
    },
    spec: {
      type: "NodePort",
      clusterIP: "10.96.0.10",
      ports: [{ name: "mongodb", protocol: "TCP", port: 27017, nodePort: 30017 }],
    },
  };
}

function node(name: string, ip: string, ready: "True" | "False" = "True"): KubeObject {
  return {
    kind: "Node",
    metadata: { name },
    spec: {},
    status: {
      addresses: [{ type: "InternalIP", address: ip }],
      conditions: [{ type: "Ready", status: ready }],
    },
  };
}

/**
 * Writes a config whose kubeconfig points at `fake`, with `configurations` (YAML list items
 * as they stand under the key), to a temporary directory and calls `fn` with its path.
 */
async function withConfig(
  fake: FakeKubeApi,
  configurations: string,
  fn: (config: string) => Promise<void>,
): Promise<void> {
  const kubeconfig = await fake.kubeconfig();
  const dir = await Deno.makeTempDir();
  try {
    const config = `${dir}/config.yaml`;
    await Deno.writeTextFile(
      config,
      `settings:
  kubeconfigPath: ${JSON.stringify(kubeconfig)}
  logLevel: warning
configurations:
${configurations}`,
    );
    await fn(config);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** A fake API with two ready nodes and three Services, and a config for one listener. */
async function withCluster(fn: (fake: FakeKubeApi, config: string) => Promise<void>) {
  await using fake = await FakeKubeApi.start();
  fake.upsert(node("node-a", "127.0.0.2"));
  fake.upsert(node("node-b", "127.0.0.3"));
  fake.upsert(service("development", "mongodb-service"));
  fake.upsert(service("development", "plain", false));
  fake.upsert(service("other", "mongodb-service"));
  await withConfig(
    fake,
    `  - name: mongodb_internal_service
    listenerAddress: ":27017"
    backendPortName: mongodb
    namespace: development
`,
    (config) => fn(fake, config),
  );
}

/** Runs `discover -c <config> ...args` through the CLI and returns its decoded output. */
async function discover(config: string, ...args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", "-A", "src/main.ts", "discover", "-c", config, ...args],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, stdout: decode(out.stdout), stderr: decode(out.stderr) };
}

/** `discover --watch` running as a child process. */
interface DiscoverWatch {
  /** What it printed so far. */
  readonly stdout: string;
  /** Polls until stdout contains `text`; throws after 15 s, naming `what`. */
  until(what: string, text: string): Promise<void>;
  /** Sends SIGTERM, waits for the exit and asserts exit code 0. */
  stop(): Promise<void>;
}

function watchDiscover(config: string): DiscoverWatch {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", "-A", "src/main.ts", "discover", "-c", config, "--watch"],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let stdout = "";
  const reading = (async () => {
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) stdout += chunk;
  })();
  const stderr = new Response(child.stderr).text();
  return {
    get stdout() {
      return stdout;
    },
    async until(what, text) {
      const deadline = performance.now() + 15_000;
      while (!stdout.includes(text)) {
        if (performance.now() > deadline) {
          throw new Error(`Timed out waiting for ${what}: ${stdout}`);
        }
        await delay(10);
      }
    },
    async stop() {
      child.kill("SIGTERM");
      const status = await child.status;
      await reading;
      assert.equal(status.code, 0, await stderr);
    },
  };
}

Deno.test("discover -o json prints the documented contract from a live API", async () => {
  await withCluster(async (_fake, config) => {
    const out = await discover(config, "-o", "json");
    assert.equal(out.code, 0, out.stderr);
    assert.deepEqual(JSON.parse(out.stdout), {
      pools: [{
        name: "mongodb_internal_service",
        listenerAddress: ":27017",
        backends: [
          { address: "127.0.0.2:30017", service: "development/mongodb-service", node: "node-a" },
          { address: "127.0.0.3:30017", service: "development/mongodb-service", node: "node-b" },
        ],
        excluded: [],
        warnings: [],
      }],
      warnings: [],
    });
  });
});

Deno.test("discover --watch prints a NotReady node's removal with its reason", async () => {
  await withCluster(async (fake, config) => {
    const watch = watchDiscover(config);
    try {
      await watch.until("the first table", "127.0.0.3:30017");
      const t0 = performance.now();
      fake.upsert(node("node-a", "127.0.0.2", "False"));
      await watch.until("the removal", "- 127.0.0.2:30017");
      const ms = performance.now() - t0;
      assert.match(
        watch.stdout,
        /Z {2}mongodb_internal_service {2}- 127\.0\.0\.2:30017 {2}development\/mongodb-service node-a {2}node-not-ready \(Ready condition is False\)/,
      );
      assert.ok(ms < 1000, `the change took ${ms} ms`);
      fake.upsert(node("node-a", "127.0.0.2", "True"));
      await watch.until("the return", "+ 127.0.0.2:30017");
    } finally {
      await watch.stop();
    }
  });
});

Deno.test("discover exits 2 with a clear message when the kubeconfig does not exist", async () => {
  await withCluster(async (_fake, config) => {
    const out = await discover(config, "--kubeconfig", "/nonexistent");
    assert.equal(out.code, 2);
    assert.equal(
      out.stderr,
      "nautiluslb: Cannot discover from Kubernetes: Cannot read kubeconfig '/nonexistent': file does not exist\n",
    );
  });
});

/** Runs the CLI on a config written to a temporary directory. */
async function discoverOffline(configYaml: string, ...args: string[]) {
  const dir = await Deno.makeTempDir({ prefix: "nautiluslb_discover_" });
  try {
    await Deno.writeTextFile(`${dir}/config.yaml`, configYaml);
    return await discover(`${dir}/config.yaml`, ...args);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const INGRESS_CONFIG = `configurations:
  - name: http
    listenerAddress: ":80"
    backendPortName: http
  - name: https
    listenerAddress: ":443"
    backendPortName: https
`;
const INGRESS = "tests/fixtures/clusters/ingress-nginx";
const MISSING_ENDPOINTS =
  "Service ingress-nginx/ingress-nginx-controller has externalTrafficPolicy Local but the " +
  "input has no EndpointSlice or Endpoints for it, so the nodes running its pods are unknown";
const STRAY_FILE =
  `${INGRESS}/values.yaml: no Kubernetes object (nothing with a "kind") found; ignored`;

Deno.test("discover prints input warnings once and says why a pool is empty", async () => {
  const { code, stdout, stderr } = await discoverOffline(
    INGRESS_CONFIG,
    "--from-manifests",
    INGRESS,
  );
  assert.equal(code, 0, stderr);
  assert.match(stdout, /^http +:80 +\(none: 2 candidates left out; --explain shows why\)$/m);
  assert.match(stdout, /^https +:443 +\(none: 2 candidates left out; --explain shows why\)$/m);
  const warnings = stdout.split("\n").filter((l) => l.startsWith("warning: "));
  assert.deepEqual(warnings, [`warning: ${STRAY_FILE}`, `warning: ${MISSING_ENDPOINTS}`]);

  const explained = await discoverOffline(
    INGRESS_CONFIG,
    "--from-manifests",
    INGRESS,
    "--explain",
  );
  assert.match(
    explained.stdout,
    /^http +:80 +\(none: 2 candidates left out, see Excluded below\)$/m,
  );
  assert.match(
    explained.stdout,
    /^https +10\.0\.10\.12:30443 +ingress-nginx\/ingress-nginx-controller +edge-2 +endpoints-unavailable \(externalTrafficPolicy is Local and the input has no endpoint data\)$/m,
  );
});

Deno.test("discover -o json has input warnings at the top level, once", async () => {
  const { code, stdout, stderr } = await discoverOffline(
    INGRESS_CONFIG,
    "--from-manifests",
    INGRESS,
    "-o",
    "json",
  );
  assert.equal(code, 0, stderr);
  const json = JSON.parse(stdout);
  assert.deepEqual(json.warnings, [STRAY_FILE, MISSING_ENDPOINTS]);
  assert.deepEqual(json.pools.map((p: { warnings: string[] }) => p.warnings), [[], []]);
  // Optional fields are absent, never null: a node without status has no address to show.
  const openshift = JSON.parse(
    (await discoverOffline(
      `configurations:\n  - {name: http, listenerAddress: ":80", backendPortName: http}\n`,
      "--from-manifests",
      "tests/fixtures/clusters/openshift",
      "-o",
      "json",
    )).stdout,
  );
  assert.deepEqual(openshift.warnings, []);
  assert.deepEqual(openshift.pools[0].excluded[0], {
    service: "openshift-ingress/router-default",
    node: "worker-2.ocp.example.com",
    reason: "node-not-ready",
    detail: "no Ready condition",
  });
});

Deno.test("discover --explain says which terminating endpoints still take connections", async () => {
  const { code, stdout, stderr } = await discoverOffline(
    `configurations:
  - name: web
    listenerAddress: ":80"
    backendPortName: http
`,
    "--from-manifests",
    "tests/fixtures/clusters/kind",
    "--explain",
  );
  assert.equal(code, 0, stderr);
  assert.match(
    stdout,
    /^Included while terminating:\nPOOL +BACKEND +SERVICE +NODE +REASON\nweb +10\.244\.1\.7:8080 +shop\/web +kind-worker +serving-terminating \(the Service has no ready endpoint; this one is terminating but still serving, and kube-proxy forwards to it\)$/m,
  );
  assert.match(
    stdout,
    /^web +10\.244\.2\.9:8080 +shop\/web +kind-worker2 +terminating \(endpoint is terminating\)$/m,
  );
  const json = JSON.parse(
    (await discoverOffline(
      `configurations:\n  - {name: web, listenerAddress: ":80", backendPortName: http}\n`,
      "--from-manifests",
      "tests/fixtures/clusters/kind",
      "-o",
      "json",
    )).stdout,
  );
  assert.deepEqual(json.pools[0].backends, [{
    address: "10.244.1.7:8080",
    service: "shop/web",
    node: "kind-worker",
    pod: "web-6d4cf56db6-2xvqt",
    terminating: true,
  }]);
});

Deno.test("discover --watch says when a backend becomes a terminating fallback", async () => {
  await using fake = await FakeKubeApi.start();
  const headless: KubeObject = {
    apiVersion: "v1",
    kind: "Service",
    metadata: {
      name: "web",
      namespace: "shop",
      annotations: { "nautiluslb.cloudresty.io/enabled": "true" },
    },
    spec: { clusterIP: "None", ports: [{ name: "http", protocol: "TCP", port: 80 }] },
  };
  const slice = (conditions: Record<string, boolean>): KubeObject => ({
    apiVersion: "discovery.k8s.io/v1",
    kind: "EndpointSlice",
    metadata: {
      name: "web-abc",
      namespace: "shop",
      labels: { "kubernetes.io/service-name": "web" },
    },
    addressType: "IPv4",
    ports: [{ name: "http", port: 8080, protocol: "TCP" }],
    endpoints: [{
      addresses: ["10.244.1.7"],
      conditions,
      nodeName: "node-a",
      targetRef: { kind: "Pod", name: "web-1", namespace: "shop" },
    }],
  });
  fake.upsert(headless);
  fake.upsert(slice({ ready: true, serving: true, terminating: false }));
  await withConfig(
    fake,
    `  - name: web
    listenerAddress: ":80"
    backendPortName: http
    namespace: shop
`,
    async (config) => {
      const watch = watchDiscover(config);
      try {
        await watch.until("the first table", "10.244.1.7:8080");
        fake.upsert(slice({ ready: false, serving: true, terminating: true }));
        await watch.until("the change", "~ 10.244.1.7:8080");
        assert.match(
          watch.stdout,
          /Z {2}web {2}~ 10\.244\.1\.7:8080 {2}shop\/web node-a {2}serving-terminating \(the Service has no ready endpoint; still serving\)/,
        );
        fake.upsert(slice({ ready: false, serving: false, terminating: true }));
        await watch.until("the removal", "- 10.244.1.7:8080");
        assert.match(
          watch.stdout,
          /- 10\.244\.1\.7:8080 {2}shop\/web node-a {2}terminating \(endpoint is terminating\)/,
        );
      } finally {
        await watch.stop();
      }
    },
  );
});

Deno.test("discover -o json carries a Service's max-connections-per-backend, and warns on a bad one", async () => {
  await withCluster(async (fake, config) => {
    const limited = service("development", "mongodb-service");
    limited.metadata.annotations = {
      ...limited.metadata.annotations,
      "nautiluslb.cloudresty.io/max-connections-per-backend": "250",
    };
    fake.upsert(limited);
    const out = await discover(config, "-o", "json");
    assert.equal(out.code, 0, out.stderr);
    const pool = JSON.parse(out.stdout).pools[0];
    assert.deepEqual(pool.backends.map((b: { maxConnections?: number }) => b.maxConnections), [
      250,
      250,
    ]);
    limited.metadata.annotations["nautiluslb.cloudresty.io/max-connections-per-backend"] = "lots";
    fake.upsert(limited);
    const bad = JSON.parse((await discover(config, "-o", "json")).stdout).pools[0];
    assert.deepEqual(bad.backends.map((b: { maxConnections?: number }) => b.maxConnections), [
      undefined,
      undefined,
    ]);
    assert.deepEqual(bad.warnings, [
      "Ignoring annotation nautiluslb.cloudresty.io/max-connections-per-backend of Service " +
      'development/mongodb-service: "lots" is not an integer 0-10000000; using the listener\'s ' +
      "maxConnectionsPerBackend",
    ]);
  });
});
