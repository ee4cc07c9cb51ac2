/**
 * Binding and namespace allowlists through the real CLI against the fake API server: a
 * tenant's Service in a namespace not allowed and one without the binding annotation under
 * `binding: explicit` are left out and explained by `discover --explain`; with `namespaces`
 * listed, Services and EndpointSlices are only ever requested in those namespaces; the
 * warning for a listener open to any namespace carries its line.
 */
import assert from "node:assert/strict";
import { FakeKubeApi, type KubeObject } from "./fake_kube_api.ts";

const ROOT = new URL("../", import.meta.url);

function service(
  namespace: string,
  name: string,
  nodePort: number,
  annotations: Record<string, string> = {},
): KubeObject {
  return {
    kind: "Service",
    metadata: {
      name,
      namespace,
      annotations: { "nautiluslb.cloudresty.io/enabled": "true", ...annotations },
    },
    spec: {
      type: "NodePort",
      clusterIP: "10.96.0.10",
      ports: [{ name: "https", protocol: "TCP", port: 443, nodePort }],
    },
  };
}

function node(name: string, ip: string, labels: Record<string, string> = {}): KubeObject {
  return {
    kind: "Node",
    metadata: { name, labels },
    spec: {},
    status: {
      addresses: [{ type: "InternalIP", address: ip }],
      conditions: [{ type: "Ready", status: "True" }],
    },
  };
}

async function cli(config: string, ...args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "src/main.ts", ...args, "-c", config],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: decode(out.stdout), stderr: decode(out.stderr) };
}

async function withFake(
  configurations: string,
  fn: (fake: FakeKubeApi, config: string) => Promise<void>,
  settings = "",
): Promise<void> {
  await using fake = await FakeKubeApi.start();
  fake.upsert(node("cp", "127.0.0.2", { "node-role.kubernetes.io/control-plane": "" }));
  fake.upsert(node("w1", "127.0.0.3", { "lb.example/edge": "true" }));
  fake.upsert(node("w2", "127.0.0.4"));
  fake.upsert(
    service("shop", "web", 30443, { "nautiluslb.cloudresty.io/configurations": "https" }),
  );
  fake.upsert(service("shop", "unbound", 30444));
  fake.upsert(
    service("tenant", "intruder", 30445, { "nautiluslb.cloudresty.io/configurations": "https" }),
  );
  const dir = await Deno.makeTempDir();
  try {
    const config = `${dir}/config.yaml`;
    await Deno.writeTextFile(
      config,
      `settings:
  kubeconfigPath: ${JSON.stringify(await fake.kubeconfig())}
${settings}configurations:
${configurations}`,
    );
    await fn(fake, config);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("discover --explain: namespace-not-allowed and not-bound-to-listener, never backends", async () => {
  await withFake(
    `  - name: https
    listenerAddress: ":8443"
    backendPortName: https
    namespaces: [shop]
    skipControlPlane: true
    nodeSelector: { lb.example/edge: "true" }
  - name: audit
    listenerAddress: ":9443"
    backendPortName: https
    namespaces: ["*"]
    binding: portName
`,
    async (_fake, config) => {
      const json = await cli(config, "discover", "-o", "json");
      assert.equal(json.code, 0, json.stderr);
      const pools = JSON.parse(json.stdout).pools as {
        name: string;
        backends: { address: string; service: string }[];
        excluded: { service: string; node?: string; reason: string }[];
      }[];
      const https = pools.find((p) => p.name === "https")!;
      assert.deepEqual(https.backends.map((b) => `${b.address} ${b.service}`), [
        "127.0.0.3:30443 shop/web",
      ]);
      const reasons = https.excluded.map((e) => `${e.service} ${e.node ?? "-"} ${e.reason}`);
      assert.deepEqual(reasons.sort(), [
        "shop/unbound - not-bound-to-listener",
        "shop/web cp node-control-plane",
        "shop/web w2 node-not-selected",
        "tenant/intruder - namespace-not-allowed",
      ]);
      const explain = await cli(config, "discover", "--explain");
      assert.equal(explain.code, 0, explain.stderr);
      assert.match(
        explain.stdout,
        /https +- +tenant\/intruder +- +namespace-not-allowed \(namespace "tenant" is not in namespaces "shop"\)/,
      );
      assert.match(
        explain.stdout,
        /https +- +shop\/unbound +- +not-bound-to-listener \(binding is explicit and annotation nautiluslb\.cloudresty\.io\/configurations is missing\)/,
      );
    },
    "  binding: explicit\n",
  );
});

Deno.test("discover watches only the listed namespaces; nodes stay cluster-wide", async () => {
  await withFake(
    `  - name: https
    listenerAddress: ":8443"
    backendPortName: https
    namespaces: [shop, payments]
`,
    async (fake, config) => {
      const out = await cli(config, "discover", "-o", "json");
      assert.equal(out.code, 0, out.stderr);
      const paths = fake.requests.map((r) => r.split("?")[0]!.replace(/^[A-Z]+ /, ""));
      const namespaced = paths.filter((p) => /services|endpointslices|endpoints$/.test(p));
      assert.ok(namespaced.length > 0, fake.requests.join("\n"));
      for (const p of namespaced) {
        assert.match(p, /\/namespaces\/(shop|payments)\//, `cluster-wide request ${p}`);
      }
      assert.ok(paths.some((p) => p === "/api/v1/nodes"), fake.requests.join("\n"));
      // Discovery never saw the tenant: it is not even a candidate.
      assert.doesNotMatch(out.stdout, /tenant/);
    },
  );
});

Deno.test("a listener open to any namespace by port name alone is warned about with its line", async () => {
  await withFake(
    `  - name: open
    listenerAddress: ":8443"
    backendPortName: https
  - name: closed
    listenerAddress: ":9443"
    backendPortName: https
    namespaces: [shop]
`,
    async (_fake, config) => {
      const message =
        'configurations[0]: listener "open" admits Services from any namespace by port name alone';
      const validate = await cli(config, "validate");
      assert.equal(validate.code, 0, validate.stderr);
      assert.ok(
        (validate.stdout + validate.stderr).includes(`config.yaml:4:5: ${message}`),
        validate.stdout + validate.stderr,
      );
      const discover = await cli(config, "discover", "-o", "json");
      assert.equal(discover.code, 0, discover.stderr);
      const lines = discover.stderr.split("\n").filter((l) => l.includes(message));
      assert.equal(lines.length, 1, `warned once: ${discover.stderr}`);
      assert.match(lines[0]!, /config\.yaml:4:5/);
      // The open listener takes the tenant's Service too: exactly what the warning is about.
      const open = JSON.parse(discover.stdout).pools.find((p: { name: string }) =>
        p.name === "open"
      );
      assert.ok(
        open.backends.some((b: { service: string }) => b.service === "tenant/intruder"),
      );
    },
  );
});
